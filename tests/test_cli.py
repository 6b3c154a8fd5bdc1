"""The chainrule command."""

import subprocess
import sys

import pytest

import chainrule
from chainrule.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"chainrule {chainrule.__version__}"


def test_check_passes_and_prints_a_row_per_op(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "softmax" in out and "cross_entropy" in out and " 0 failed" in out
    assert "FAIL" not in out


def test_check_can_select_ops(capsys):
    assert main(["check", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "log_sigmoid" in out and "matmul" not in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "check" in capsys.readouterr().out


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "chainrule" in result.stdout


@pytest.mark.parametrize("argv, message", [
    (["check", "NOPE"], "no op name contains 'NOPE'"),
    (["check", "sigmod"], "did you mean sigmoid"),
    (["check", "--tolerance", "nan"], "--tolerance nan: must be a finite number > 0"),
    (["check", "--tolerance", "inf"], "--tolerance inf"),
    (["check", "--tolerance", "0"], "--tolerance 0.0"),
    (["check", "--tolerance=-1"], "--tolerance -1.0"),
    (["check", "--tolerance", "abc"], "invalid float value: 'abc'"),
    (["check", "--seed=-1", "sigmoid"], "--seed -1"),
])
def test_check_refuses_unknown_ops_and_bad_options(capsys, argv, message):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("chainrule check: error: ") and err.count("\n") == 1
    assert message in err


def test_usage_errors_are_one_line_too(capsys):
    for argv in (["frobnicate"], ["train", "--epochs", "abc"], ["train", "--bogus"], ["evaluate"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith("chainrule") and "usage" not in err


def test_every_chainrule_exception_is_a_chainrule_error():
    """One family: `except chainrule.ChainruleError` catches every error chainrule defines."""
    import importlib
    import inspect
    import pkgutil

    from chainrule.engine.errors import ChainruleError

    found = []
    for module_info in pkgutil.walk_packages(chainrule.__path__, "chainrule."):
        if module_info.name == "chainrule.__main__":
            continue  # importing it runs the command line (sys.exit); it defines no classes
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                found.append(cls)
    assert len(found) >= 9  # RunError, CheckpointError, DatasetError, CalculatorError ...
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in found
              if not issubclass(cls, ChainruleError)]
    assert strays == []
    from chainrule.course.calculator import CalculatorError
    from chainrule.training.runs import RunError
    assert issubclass(RunError, ValueError) and issubclass(CalculatorError, ValueError)  # as before

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
    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "chainrule" in result.stdout

"""`chainrule graph`'s expression language: values, gradients, refusals before anything runs."""

import ast
import builtins
import inspect
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.course import calculator
from chainrule.course.calculator import (
    CalculatorError,
    calculate,
    evaluate,
    parse_expression,
    parse_let,
)

pytest.importorskip("graphviz")

EXAMPLE = "max(sigmoid(W[0] @ x), sigmoid(W[1] @ x))"
LETS = ["W=[[1,2],[-2,3]]", "x=[2,-3]"]


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _central_difference(f, arrays, eps=1e-6):
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for j in range(a.size):
            plus = [b.copy() for b in arrays]
            minus = [b.copy() for b in arrays]
            plus[k].flat[j] += eps
            minus[k].flat[j] -= eps
            g.flat[j] = (f(*plus) - f(*minus)) / (2 * eps)
        grads.append(g)
    return grads


def test_example_values_and_gradients_match_finite_differences():
    result = calculate(EXAMPLE, LETS)
    W0, x0 = np.array([[1.0, 2.0], [-2.0, 3.0]]), np.array([2.0, -3.0])
    expected = max(_sigmoid(W0[0] @ x0), _sigmoid(W0[1] @ x0))
    assert result.output.item() == pytest.approx(expected, rel=1e-12)
    tree = parse_expression(EXAMPLE, ["W", "x"])

    def f(W, x):
        return evaluate(tree, {"W": cr.tensor(W, dtype="float64"),
                               "x": cr.tensor(x, dtype="float64")}).item()

    dW, dx = _central_difference(f, [W0, x0])
    np.testing.assert_allclose(result.gradients["W"], dW, atol=1e-9)
    np.testing.assert_allclose(result.gradients["x"], dx, atol=1e-9)
    s = _sigmoid(-4.0)
    np.testing.assert_allclose(result.gradients["x"], s * (1 - s) * W0[0], rtol=1e-12)
    # chainrule's own gradcheck on the same expression
    assert cr.gradcheck(lambda W, x: evaluate(tree, {"W": W, "x": x}), (W0, x0))
    # every node: values in order, gradients d output / d node
    ops = [t.grad_fn.prim.name if t.grad_fn else "leaf" for t in result.order]
    assert ops == ["leaf", "getitem", "leaf", "matmul", "sigmoid", "getitem", "matmul", "sigmoid",
                   "maximum"]
    np.testing.assert_allclose(result.order[3].data, -4.0)
    np.testing.assert_allclose(result.order[6].data, -13.0)
    np.testing.assert_allclose(result.node_gradients["t3"], s * (1 - s), rtol=1e-12)
    np.testing.assert_allclose(result.node_gradients["t4"], 1.0)
    np.testing.assert_allclose(result.node_gradients["t7"], 0.0)
    assert result.variables["W"].dtype == np.float64 and result.variables["W"].requires_grad


def test_cli_example_prints_values_gradients_and_writes_the_graph(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-dot-here"))  # no dot program: chainrule draws
    assert main(["graph", EXAMPLE, "--let", LETS[0], "--let", LETS[1]]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "t3    matmul        ()      t1, t2  -4." in out
    assert "t8    maximum       ()      t4, t7  0.018" in out
    assert "output t8 = 0.01798620996" in out
    assert "d output / d W = [[0.0353, -0.053], [0., 0.]]" in out
    assert "d output / d x = [0.0177, 0.0353]" in out
    assert ("wrote graph.svg (SVG, drawn by chainrule's own layout: the dot program was not "
            "found)") in out
    picture = (tmp_path / "graph.svg").read_text()
    assert picture.startswith("<?xml") and "maximum ()" in picture and "W (t0)" in picture
    assert main(["graph", EXAMPLE, "--let", LETS[0], "--let", LETS[1], "--out", "g.dot"]) == 0
    assert "wrote g.dot (Graphviz DOT source)" in capsys.readouterr().out
    source = (tmp_path / "g.dot").read_text()
    assert source.startswith("digraph") and "maximum" in source and "W (t0)" in source


@pytest.mark.skipif(os.name == "nt", reason="a shell script stands in for the dot program")
def test_cli_writes_svg_when_dot_exists(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "dot"  # a dot that reads the DOT text and answers <svg>-Tsvg</svg>
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nwhile read -r line; do :; done\nprintf '<svg>%s</svg>' \"$1\"\n")
    fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert main(["graph", "sum(x * x)", "--let", "x=[1,2]", "--out", "g.svg"]) == 0
    assert "wrote g.svg (SVG, drawn by Graphviz's dot)" in capsys.readouterr().out
    assert (tmp_path / "g.svg").read_bytes() == b"<svg>-Tsvg</svg>"


@pytest.mark.parametrize("expression, value, grad", [
    ("sum(x * x)", 13.0, [4.0, -6.0]),
    ("-x[0] + 2 ** 3", 6.0, [-1.0, 0.0]),
    ("sum(stack([x, 2 * x]))", -3.0, [3.0, 3.0]),
    ("mean(x ** 2) / 2", 3.25, [1.0, -1.5]),
    ("min(x, 0) @ [1, 1]", -3.0, [0.0, 1.0]),
    ("sum(relu(x), axis=0, keepdims=False)", 2.0, [1.0, 0.0]),
    ("sum(x[::-1] * [1., 10.])", 17.0, [10.0, 1.0]),
    ("max(x)", 2.0, [1.0, 0.0]),
    ("sum(where(greater(x, 0), x, zeros(2)))", 2.0, [1.0, 0.0]),
])
def test_more_expressions(expression, value, grad):
    result = calculate(expression, ["x=[2,-3]"])
    assert result.output.item() == pytest.approx(value)
    np.testing.assert_allclose(result.gradients["x"], grad)


HOSTILE = [
    "__import__('os')",
    "__import__('os').system('touch pwned')",
    "x.__class__",
    "x.__class__.__bases__[0].__subclasses__()",
    "(lambda: 1)()",
    "[i for i in x]",
    "sum(i for i in x)",
    "open('f')",
    "open('f', 'w')",
    "x ** 1000",
    "x ** -101",
    "sum(x ** (50 * 3))",
    "9 ** 9 ** 9",
    "zeros(10**9)",
    "ones((1000, 1000, 1000))",
    "eye(10**7)",
    "arange(1e12)",
    "broadcast_to(x, (10**6, 10**6))",
    "'a'",
    "b'a'",
    "f'{x}'",
    "eval('1')",
    "exec('1')",
    "compile('1', 'f', 'eval')",
    "getattr(x, 'data')",
    "globals()",
    "sum(*x)",
    "sum(x, **{'axis': 0})",
    "sum(x, axis='a')",
    "sum(x, axis=x)",
    "__builtins__",
    "x[x]",
    "x[0](1)",
    "exp",
    "y",
    "x if x else x",
    "x < 1",
    "x and x",
    "not x",
    "~x",
    "x // 2",
    "x % 2",
    "{1: 2}",
    "(y := 1)",
    "sum([x, 1])",
    "-" * 40 + "x",
    "sum(" * 40 + "x" + ")" * 40,
    "[" * 40 + "1" + "]" * 40,
    "(" * 300 + "x" + ")" * 300,
    "x" + " + x" * 1000,
    "[" + ", ".join(["1"] * 10_001) + "]",
    "sum(x",
    "",
    "1\x00",
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_expressions_are_refused_before_anything_runs(expression, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(calculator, "_evaluate", lambda *args: ran.append(args))
    assert main(["graph", expression, "--let", "x=[2,-3]"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("chainrule graph: error: ") and err.count("\n") == 1
    assert ran == []                       # not evaluated at all
    assert list(tmp_path.iterdir()) == []  # no graph, no file 'f', nothing 'pwned'


@pytest.mark.parametrize("expression, message", [
    ("x", "the output must be a scalar for gradients, or use sum(...)"),
    ("outer(ones(1000000), ones(1000000))", "at most 1,000,000"),
    ("sum(reshape(ones(1000000), (1000, 1000)) @ ones((1000, 1000)) * ones((1000, 1, 1)))",
     "at most 1,000,000"),
    ("sum(x[5])", "evaluation failed: IndexError"),
])
def test_refusals_found_while_evaluating_are_one_line(expression, message, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", expression, "--let", "x=[2,-3]"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_tensor_exponents_are_checked_when_known(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "sum(2 ** x)", "--let", "x=[2,1000]"]) == 2
    assert "exponent" in capsys.readouterr().err


@pytest.mark.parametrize("let", [
    "x", "=1", "1x=2", "__x=1", "exp=1", "x=", "x=[1,2", "x=[[1],[2,3]]", "x=__import__('os')",
    "x='a'", "x=y", "x=[1, x]", "x=1+1", "x=" + "[" * 40 + "1" + "]" * 40,
    "x=[" + ",".join(["1"] * 10_001) + "]",
])
def test_bad_lets_are_refused(let, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(calculator, "_evaluate", lambda *args: ran.append(args))
    assert main(["graph", "sum(x)", "--let", let]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and ran == []


def test_parse_let_and_usage_errors(tmp_path, monkeypatch, capsys):
    assert parse_let("W = [[1, 2], [-2, 3.5]]")[1].tolist() == [[1.0, 2.0], [-2.0, 3.5]]
    assert parse_let("a=-2")[1].dtype == np.float64
    monkeypatch.chdir(tmp_path)
    for argv in (["graph"], ["graph", "x", "y"], ["graph", "x", "--bogus"],
                 ["graph", "sum(x)", "--let"], ["graph", "sum(x)", "--let", "x=1", "--let", "x=2"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
    assert main(["graph", "--help"]) == 0
    assert "max(a, b)" in capsys.readouterr().out
    # an expression starting with '-' is not an option
    assert main(["graph", "-sum(x)", "--let", "x=[1,2]", "--out", "g.dot"]) == 0
    assert "output" in capsys.readouterr().out and (tmp_path / "g.dot").exists()


def test_the_calculator_never_calls_eval_exec_or_compile(monkeypatch):
    tree = ast.parse(inspect.getsource(calculator))
    called = {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
              for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    real_compile = builtins.compile

    def only_ast_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to a syntax tree only (PyCF_ONLY_AST); anything producing code is
        # refused
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compile() to code called")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", only_ast_compile)
    result = calculate(EXAMPLE, LETS)
    monkeypatch.undo()
    assert result.output.item() == pytest.approx(0.01798620996, rel=1e-9)


def test_refusal_messages_are_specific():
    cases = {
        "x.y": "attributes",
        "__import__('os')": "dunder",
        "(lambda: 1)()": "lambda",
        "[i for i in x]": "comprehension",
        "open('f')": "unknown function",
        "x ** 1000": "exponent",
        "zeros(10**9)": "too large",
        "'a'": "string",
        "y": "unknown name",
        "sum(*x)": "starred",
        "-" * 40 + "x": "nested too deeply",
        "x" * 2001: "2,001 characters",
    }
    for expression, words in cases.items():
        with pytest.raises(CalculatorError, match=words):
            parse_expression(expression, ["x"])


# ---------------------------------------------------------------- the whole expression's budget
def test_a_short_expression_cannot_take_gigabytes(tmp_path, monkeypatch, capsys):
    import tracemalloc

    monkeypatch.chdir(tmp_path)

    def product(leaves):  # a balanced tree: shallow enough for the depth limit
        if leaves == 1:
            return "ones(10**6)"
        return f"({product(leaves // 2)}*{product(leaves - leaves // 2)})"

    expression = f"sum{product(128)}"  # 255 results of 8 MB each, all kept for the gradients: 2 GB
    assert len(expression) < 2_000
    tracemalloc.start()
    try:
        assert main(["graph", expression]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than 10,000,000 elements in all" in err
    assert peak < 200 << 20


def test_the_work_of_the_whole_expression_is_bounded(monkeypatch):
    monkeypatch.setattr(calculator, "MAX_WORK", 10 ** 8)
    message = "matmul: the expression would take more than 100,000,000 multiply-adds"
    with pytest.raises(CalculatorError, match=message):
        calculate("sum(ones((1000, 1000)) @ ones((1000, 1000)))")
    assert calculate("sum(ones((100, 100)) @ ones((100, 100)))").output.item() == 100.0 * 100 * 100


def test_calculator_error_is_a_chainrule_error():
    assert issubclass(CalculatorError, cr.ChainruleError)
    assert issubclass(CalculatorError, ValueError)  # as before: `except ValueError` still works

"""draw_graph (a Graphviz picture of the graph) and explain (the backward pass, row by row)."""

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.course.explain import draw_graph, explain, format_array, graph_order
from chainrule.engine.errors import GraphFreedError

graphviz = pytest.importorskip("graphviz")


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _example():
    W = cr.tensor([[1.0, 2.0], [-2.0, 3.0]], dtype="float64", requires_grad=True)
    x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
    loss = cr.maximum(cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x))
    return W, x, loss


def _where_graph():
    """sum(where(x > 0, x * 2, 1)): a bool condition and two scalar constants hold no gradient."""
    x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
    y = cr.where(cr.greater(x, 0), x * 2.0, 1.0)
    return x, cr.sum(y)


def _nodes_and_edges(source):
    node_id = r"t\d+(?:_\d+)?"  # t1_0, t1_1 ...: a scalar constant drawn beside each use
    nodes = {m.group(1): m.group(2)
             for m in re.finditer(rf"^\s*({node_id}) \[(.*)\]$", source, re.M)}
    edges = [(m.group(1), m.group(2), m.group(3) or "")
             for m in re.finditer(rf"^\s*({node_id}) -> ({node_id})(?: \[(.*)\])?$", source,
                                  re.M)]
    return nodes, edges


# --------------------------------------------------------------------------- draw_graph
def test_draw_graph_has_one_node_per_tensor_and_one_edge_per_input():
    x, loss = _where_graph()
    dot = draw_graph(loss)
    assert isinstance(dot, graphviz.Digraph)
    nodes, edges = _nodes_and_edges(dot.source)
    # t0 condition, t1 x, t2 the constant 2, t3 mul, t4 the constant 1, t5 where, t6 sum
    assert len(nodes) == 7 and len(edges) == 6
    assert "mul (2,)" in nodes["t3"] and "where (2,)" in nodes["t5"] and "sum ()" in nodes["t6"]
    assert "variable (2,)" in nodes["t1"] and "ellipse" in nodes["t1"]
    assert "peripheries=2" in nodes["t6"]  # the output
    dashed_nodes = {name for name, attrs in nodes.items() if "dashed" in attrs}
    assert dashed_nodes == {"t0", "t2", "t4"}  # the condition and the two constants
    dashed_edges = {(a, b) for a, b, attrs in edges if "dashed" in attrs}
    assert dashed_edges == {("t2", "t3"), ("t0", "t5"), ("t4", "t5")}
    assert ("t1", "t3", "label=0") in edges and ("t3", "t5", "label=1") in edges


def test_draw_graph_shows_small_values_and_grads_on_request():
    W, x, loss = _example()
    plain = draw_graph(loss, show_values=False, show_grads=False).source
    assert "value" not in plain and "grad " not in plain
    loss.backward(retain_graph=True)
    source = draw_graph(loss).source
    nodes, edges = _nodes_and_edges(source)
    assert len(nodes) == 9 and len(edges) == 10
    assert "value [2., -3.]" in nodes["t2"]
    assert f"grad {format_array(x.grad)}" in nodes["t2"]
    assert "sigmoid ()" in nodes["t4"] and "maximum ()" in nodes["t8"]
    assert not any("dashed" in attrs for attrs in nodes.values())


def test_draw_graph_summarises_large_tensors_and_escapes_labels():
    big = cr.tensor(np.arange(12.0).reshape(3, 4), dtype="float64", requires_grad=True)
    out = cr.sum(big * 2.0)
    source = draw_graph(out, names={'a"b\\c <x>': big}).source
    nodes, _ = _nodes_and_edges(source)
    assert "value" not in nodes["t0"]  # 12 elements: no values printed
    assert 'a\\"b\\\\c <x> (t0)' in nodes["t0"]  # quote and backslash escaped for DOT, <x> not HTML
    assert 'label="' in nodes["t0"]


def test_draw_graph_reads_without_changing_and_needs_no_recursion():
    W, x, loss = _example()
    inputs = [t.grad_fn.inputs for t in graph_order(loss) if t.grad_fn is not None]
    draw_graph(loss)
    assert [t.grad_fn.inputs for t in graph_order(loss) if t.grad_fn is not None] == inputs
    assert W.grad is None and x.grad is None
    # a long chain: iterative walks only
    y = cr.tensor([1.0], dtype="float64", requires_grad=True)
    z = y
    for _ in range(5000):
        z = z * 1.0
    nodes, edges = _nodes_and_edges(draw_graph(z, show_values=False).source)
    # 5001 tensors on the chain and one constant 1.0 (a Python float's 0-d operand is made once
    # per thread and dtype, ops/elementwise.py _constant), drawn beside each of its 5000 uses
    # under its one name t1, with one edge each
    assert len(nodes) == 5001 + 5000 and len(edges) == 10000
    copies = [text for node_id, text in nodes.items() if node_id.startswith("t1_")]
    assert len(copies) == 5000 and all('label="t1\\nconstant ()' in text for text in copies)
    # after a backward that freed the graph: still drawable
    loss.backward()
    assert "freed" in draw_graph(loss).source


# --------------------------------------------------------------------------- explain
def test_explain_rows_follow_the_backward_pass():
    W, x, loss = _example()
    trace = explain(loss, names={"W": W, "x": x})
    assert [row.name for row in trace] == ["t8", "t4", "t3", "t1", "t7", "t6", "t5", "t0", "t2"]
    assert [row.op for row in trace] == ["maximum", "sigmoid", "matmul", "getitem", "sigmoid",
                                         "matmul", "getitem", "leaf", "leaf"]
    rows = {row.name: row for row in trace}
    a = 1 * 2 + 2 * -3          # W[0] @ x = -4
    b = -2 * 2 + 3 * -3         # W[1] @ x = -13
    s = _sigmoid(a)
    ds = s * (1 - s)
    assert _sigmoid(a) > _sigmoid(b)           # the maximum takes the first branch
    np.testing.assert_allclose(rows["t8"].incoming, 1.0)
    np.testing.assert_allclose(rows["t4"].incoming, 1.0)
    np.testing.assert_allclose(rows["t7"].incoming, 0.0)
    np.testing.assert_allclose(rows["t3"].incoming, ds, rtol=1e-12)
    np.testing.assert_allclose(rows["t1"].incoming, ds * np.array([2.0, -3.0]), rtol=1e-12)
    np.testing.assert_allclose(rows["t0"].incoming, [[2 * ds, -3 * ds], [0, 0]], rtol=1e-12)
    np.testing.assert_allclose(rows["t2"].incoming, ds * np.array([1.0, 2.0]), rtol=1e-12)
    # the steps of the matmul t6 -> (t5, t2): x's entry after adding is the running sum
    steps = rows["t6"].steps
    assert [(s.input, s.argnum, s.rule) for s in steps] == [("t5", 0, "matmul.vjp[0]"),
                                                            ("t2", 1, "matmul.vjp[1]")]
    np.testing.assert_allclose(steps[1].entry, ds * np.array([1.0, 2.0]), rtol=1e-12)
    assert rows["t0"].label == "W" and rows["t0"].is_leaf
    # nothing changed: .grad untouched, graph kept; backward gives exactly the final entries
    assert W.grad is None and x.grad is None
    loss.backward()
    np.testing.assert_array_equal(trace.leaf_gradients()["t0"], W.grad.data)
    np.testing.assert_array_equal(trace.leaf_gradients()["t2"], x.grad.data)


def test_explain_text_table():
    W, x, loss = _example()
    trace = explain(loss)
    text = trace.text
    assert isinstance(text, str) and text == str(trace)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["node", "op", "shape", "incoming"]
    assert "sigmoid.vjp[0]" in text and "maximum.vjp[1]" in text and "leaf: final entry" in text
    assert explain(loss, as_text=False).text is None


def test_explain_sums_broadcast_gradients_and_accumulates_like_backward():
    x = cr.tensor([1.0, 2.0, 3.0], dtype="float64", requires_grad=True)
    b = cr.tensor([0.5], dtype="float64", requires_grad=True)
    c = cr.tensor(np.ones((4, 1)), dtype="float64", requires_grad=True)
    loss = cr.sum((x + b) * (x * c)) + cr.mean(cr.exp(x))
    trace = explain(loss)
    leaves = trace.leaf_gradients()
    names = {id(t): f"t{i}" for i, t in enumerate(graph_order(loss))}
    loss.backward()
    for leaf in (x, b, c):
        assert leaves[names[id(leaf)]].shape == leaf.shape
        np.testing.assert_array_equal(leaves[names[id(leaf)]], leaf.grad.data)
    big = [row for row in trace if row.incoming.size > 6]
    assert big
    assert "mean" in format_array(big[0].incoming) and "norm" in format_array(big[0].incoming)


def test_explain_marks_inputs_without_gradient_and_refuses_freed_graphs():
    x, loss = _where_graph()
    trace = explain(loss)
    where_row = next(row for row in trace if row.op == "where")
    assert [s.rule for s in where_row.steps] == ["no gradient (constant)", "where.vjp[1]",
                                                 "no gradient (constant)"]
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph"):
        explain(loss)
    with pytest.raises(RuntimeError, match="does not require grad"):
        explain(cr.tensor(1.0))


def test_explain_with_a_gradient_for_non_scalar_outputs():
    x = cr.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x * x
    trace = explain(y, gradient=np.array([1.0, 10.0]))
    np.testing.assert_allclose(trace.leaf_gradients()["t0"], [2.0, 40.0])

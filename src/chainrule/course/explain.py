"""Look at a graph: ``draw_graph`` (a picture: Graphviz's when its ``dot`` program is installed,
else drawn by chainrule) and ``explain`` (the backward pass, row by row).

Both only *read* the recorded graph: nothing is freed, no ``.grad`` is touched, and the graph is
walked with explicit stacks (no recursion), so a chain of 100,000 operations is fine.

Every tensor of the graph gets a stable short name ``t0, t1, ...``: inputs are numbered before the
tensors made from them (a topological order of the *whole* graph, constants included), so the
output has the largest number and the names are the same in ``draw_graph`` and ``explain``.

>>> import chainrule as cr
>>> W = cr.tensor([[1.0, 2.0], [-2.0, 3.0]], dtype="float64", requires_grad=True)
>>> x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
>>> loss = cr.maximum(cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x))
>>> trace = explain(loss)           # a list of ExplainRow, with the plain-text table in trace.text
>>> print(trace.text)               # doctest: +SKIP
>>> draw_graph(loss)                # a graphviz.Digraph; Jupyter shows it inline  # doctest: +SKIP
>>> draw_graph(loss).render("graph", format="png")  # with or without dot      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Optional

import numpy as np

from chainrule.engine.autograd import (
    _check_root_grad,
    _default_root_grad,
    graph_walk,
    propagate,
    topological_order,
)
from chainrule.engine.errors import GraphFreedError
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor

if TYPE_CHECKING:
    from chainrule.course.graph_picture import GraphPicture

__all__ = ["draw_graph", "explain", "ExplainRow", "VJPStep", "Explanation", "graph_order",
           "format_array"]

#: tensors with at most this many elements are printed in full; larger ones are summarised.
SMALL = 6


# --------------------------------------------------------------------------- shared helpers
def graph_order(root: Tensor) -> list[Tensor]:
    """Every tensor of ``root``'s graph (constants too), each after the inputs it was made from.

    A node whose inputs were freed by ``backward()`` counts as having none.
    """
    return graph_walk([root], constants=True, freed_ok=True, left_first=True)


def _short_names(order: list[Tensor]) -> dict[int, str]:
    return {id(t): f"t{i}" for i, t in enumerate(order)}


def _user_names(names: Optional[Mapping[str, Tensor]]) -> dict[int, str]:
    return {} if not names else {id(t): str(label) for label, t in names.items()}


def format_array(value, small: int = SMALL) -> str:
    """One line: the values (precision 4) when ``value`` has <= ``small`` elements, else a
    summary."""
    if value is None:
        return "-"
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    if array.size <= small:
        text = np.array2string(array, precision=4, separator=", ", max_line_width=10**6,
                               formatter={"float_kind": _float})
        return " ".join(text.split())
    with np.errstate(all="ignore"):
        as_float = array.astype(np.float64) if array.dtype.kind in "biuf" else None
        if as_float is None:
            return f"shape {array.shape}"
        mean, norm = float(as_float.mean()), float(np.linalg.norm(as_float.ravel()))
    return f"shape {array.shape} mean {mean:.4g} norm {norm:.4g}"


def _float(v) -> str:
    """A float rounded to 4 decimals (scientific for tiny or huge magnitudes), like array2string."""
    v = float(v)
    if v == 0 or not np.isfinite(v) or 1e-4 <= abs(v) < 1e6:
        return np.format_float_positional(v, precision=4, trim=".")
    return np.format_float_scientific(v, precision=4, trim=".")


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"


def _no_gradient_inputs(tensor: Tensor) -> set[int]:
    """Positions of ``tensor``'s inputs that receive no gradient (constant, or no VJP rule)."""
    node = tensor.grad_fn
    if node is None or node.inputs is None:
        return set()
    prim, result = node.prim, set()
    for i, x in enumerate(node.inputs):
        rule = prim.vjps[0] if prim.variadic else (prim.vjps[i] if i < len(prim.vjps) else None)
        if not x.requires_grad or (rule is None and prim.joint_vjp is None):
            result.add(i)
    return result


# --------------------------------------------------------------------------- draw_graph
#: DOT attributes of each kind of node; the drawing made without Graphviz reads the same ones
_NODE_STYLE = {
    "operation": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fff2cc"},
    "variable": {"shape": "ellipse", "style": "filled", "fillcolor": "#cfe2f3"},
    "constant": {"shape": "box", "style": "dashed,filled", "fillcolor": "#eeeeee",
                 "color": "#888888"},
}
_NO_GRADIENT_EDGE = {"style": "dashed", "color": "#888888"}  # an input that gets no gradient


def draw_graph(
    tensor: Tensor,
    show_values: bool = True,
    show_grads: bool = True,
    names: Optional[Mapping[str, Tensor]] = None,
) -> GraphPicture:
    """The graph that made ``tensor`` as a :class:`graphviz.Digraph` (Jupyter shows it inline).

    * one box per operation: its short name, the primitive and the output shape (and the value
      when it has at most 6 elements and ``show_values``);
    * one node per leaf: variables (``requires_grad``) are blue ellipses, constants grey dashed
      boxes; ``.grad`` is shown when it exists and ``show_grads`` (for retain_grad() tensors too);
    * an edge from each input to the operation that used it, labelled with the input's position
      when the operation has several; inputs that receive no gradient (constants, a ``where``
      condition) are drawn dashed, and so are the tensors that hold no gradient;
    * the output has a double border. ``names`` (label -> tensor) names leaves, like ``{"W": W}``;
    * a scalar constant (the ``0.5`` of ``x * 0.5``) used by several operations is drawn beside
      each of them, under its one name (``t1``), rather than once with an edge to each.

    The result is a :class:`~chainrule.course.graph_picture.GraphPicture`, a ``graphviz.Digraph``
    whose ``.source`` is the DOT text. With Graphviz's ``dot`` program installed it is drawn by
    dot; without it (or when dot fails, or takes over 10 s in a notebook) the notebook display,
    ``.pipe(format=...)`` and ``.render(format=...)`` still give svg and png, drawn by chainrule's
    own layered layout (same styles; at most 150 nodes, those nearest the output, on larger
    graphs); other formats need dot. ``.picture("png")`` says which one drew it.
    """
    try:
        from chainrule.course.graph_picture import GraphPicture, PictureEdge, PictureNode
    except ImportError as error:  # pragma: no cover - graphviz is a dependency
        if error.name != "graphviz":
            raise
        raise ImportError("draw_graph needs the graphviz package: pip install graphviz") from error

    order = graph_order(tensor)
    short = _short_names(order)
    labels = _user_names(names)
    uses = _uses(order)
    beside = {id(t) for t in order if _scalar_constant(t, labels) and uses.get(id(t), 0) > 1}
    nodes: list[PictureNode] = []
    for t in order:
        lines, kind = _node_text(t, short[id(t)], labels, show_values, show_grads)
        attrs = dict(_NODE_STYLE[kind], **({"peripheries": "2"} if t is tensor else {}))
        copies = uses[id(t)] if id(t) in beside else 1
        nodes.extend(PictureNode(_use_id(short[id(t)], k, id(t) in beside), tuple(lines), attrs)
                     for k in range(copies))
    edges = []
    drawn: dict[int, int] = {}  # a scalar constant drawn beside each use: the copies used so far
    for t in order:
        node = t.grad_fn
        if node is None or node.inputs is None:
            continue
        cut = _no_gradient_inputs(t)
        for i, x in enumerate(node.inputs):
            attrs = {"label": str(i)} if len(node.inputs) > 1 else {}
            attrs.update(_NO_GRADIENT_EDGE if i in cut else {})
            k = drawn[id(x)] = drawn.get(id(x), -1) + 1
            source = _use_id(short[id(x)], k, id(x) in beside)
            edges.append(PictureEdge(source, short[id(t)], attrs))
    return GraphPicture.build(nodes, edges)


def _uses(order: list[Tensor]) -> dict[int, int]:
    """How many times each tensor is an input (id -> count)."""
    counts: dict[int, int] = {}
    for t in order:
        if t.grad_fn is not None and t.grad_fn.inputs is not None:
            for x in t.grad_fn.inputs:
                counts[id(x)] = counts.get(id(x), 0) + 1
    return counts


def _scalar_constant(t: Tensor, labels: dict[int, str]) -> bool:
    """A 0-d constant the user did not name (like the 0.5 of ``x * 0.5``, which one thread
    reuses): drawn beside each operation that uses it, so that a constant shared by a long chain
    is not one node with an edge into every level (Graphviz's dot takes seconds to minutes to lay
    that out)."""
    return t.grad_fn is None and not t.requires_grad and t.ndim == 0 and id(t) not in labels


def _use_id(name: str, k: int, beside: bool) -> str:
    """The DOT node id of a tensor's k-th drawing (``t1_0``, ``t1_1``, ...: the label stays t1)."""
    return f"{name}_{k}" if beside else name


def _node_text(t: Tensor, name: str, labels: dict[int, str], show_values: bool,
               show_grads: bool) -> tuple[list[str], str]:
    """(label lines, kind: operation, variable or constant) of ``t``'s node."""
    node = t.grad_fn
    title = name if id(t) not in labels else f"{labels[id(t)]} ({name})"
    if node is not None:
        lines, kind = [title, f"{node.prim.name} {_shape(t)}"], "operation"
        if node.inputs is None:
            lines.append("(inputs freed by backward)")
    elif t.requires_grad:
        lines, kind = [title, f"variable {_shape(t)}"], "variable"
    else:
        lines, kind = [title, f"constant {_shape(t)}"], "constant"
    if show_values and t.size <= SMALL:
        lines.append(f"value {format_array(t)}")
    if show_grads and t.grad is not None:
        lines.append(f"grad {format_array(t.grad)}")
    return lines, kind


# --------------------------------------------------------------------------- explain
@dataclass
class VJPStep:
    """One input's share of a row: the rule applied and the input's table entry after the
    addition."""

    input: str                      #: short name of the input (``t2``)
    argnum: int                     #: which input of the operation
    rule: str                       #: ``"sigmoid.vjp[0]"``, or why no gradient flows
    gradient: Optional[np.ndarray]  #: the contribution (summed to the input's shape); None: none
    entry: Optional[np.ndarray]     #: the input's running table entry after adding it


@dataclass
class ExplainRow:
    """A tensor's turn in the backward pass: its completed entry, then what it sends to its
    inputs."""

    name: str                  #: stable short name (``t3``), as in draw_graph
    op: str                    #: the primitive, or ``"leaf"``
    shape: tuple
    incoming: np.ndarray       #: the completed gradient-table entry: d(loss)/d(this tensor)
    steps: list[VJPStep] = field(default_factory=list)
    label: Optional[str] = None  #: the user's name for it (``names=``), if any

    @property
    def is_leaf(self) -> bool:
        return self.op == "leaf"


class Explanation(list):
    """The rows of :func:`explain` (a list of :class:`ExplainRow`) plus ``text``, the table as
    str."""

    text: Optional[str] = None

    def leaf_gradients(self) -> dict[str, np.ndarray]:
        """Short name -> final table entry of every leaf (what ``backward()`` adds to ``.grad``)."""
        return {row.name: row.incoming for row in self if row.is_leaf}

    def __str__(self) -> str:
        return self.text if self.text is not None else _table(self)

    def __repr__(self) -> str:
        return str(self)


def explain(
    loss: Tensor,
    as_text: bool = True,
    gradient=None,
    names: Optional[Mapping[str, Tensor]] = None,
) -> Explanation:
    """The back-propagation of ``loss``, one row per tensor as the gradient table is filled.

    Runs the algorithm of ``backward()`` (``autograd.topological_order``, then
    ``autograd.propagate`` for each tensor, under ``no_grad``) but keeps the graph
    (``retain_graph`` semantics: no ``node.inputs`` is freed) and leaves every ``.grad`` alone, so
    ``loss.backward()`` still works afterwards and the leaves' final entries equal what it adds to
    ``.grad``. ``gradient`` is d(final)/d(loss) (default 1 for a one-element ``loss``). Rows come
    in reverse topological order; a tensor every rule skipped (no gradient reached it) has no row,
    as in ``backward()``. Tensor hooks (``Tensor.register_hook``) are not run: the trace shows the
    gradients as the rules compute them.

    Returns an :class:`Explanation`: a list of :class:`ExplainRow` whose ``.text`` is the
    plain-text table (when ``as_text``; ``str()`` builds it in any case).
    """
    if not loss.requires_grad:
        raise RuntimeError("explain: the tensor does not require grad, so there is no backward "
                           "pass to explain (make a leaf with requires_grad=True)")
    root_grad = _default_root_grad(loss) if gradient is None else _check_root_grad(loss, gradient)
    try:
        order = topological_order([loss])
    except GraphFreedError as error:
        raise GraphFreedError(f"explain: {error}") from None
    short = _short_names(graph_order(loss))
    labels = _user_names(names)
    table: dict[int, Tensor] = {id(loss): root_grad}
    rows = Explanation()
    with no_grad():
        for tensor in order:
            g = table.pop(id(tensor), None)
            if g is None:
                continue
            node = tensor.grad_fn
            row = ExplainRow(short[id(tensor)], "leaf" if node is None else node.prim.name,
                             tensor.shape, g.data, label=labels.get(id(tensor)))
            rows.append(row)
            if node is None:
                continue
            propagate(tensor, g, table, _reporter(row, node.prim.name, short))
    if as_text:
        rows.text = _table(rows)
    return rows


def _reporter(row: "ExplainRow", op: str, short: dict):
    """What ``autograd.propagate`` reports for each input, as the row's VJP steps."""

    def report(i: int, x: Tensor, status: str, contribution, entry) -> None:
        rule = f"{op}.vjp[{i}]"
        note = {"ok": rule, "constant": "no gradient (constant)", "zero": f"{rule} = 0",
                "not differentiable": f"no gradient ({op} input {i} is not differentiable)"}[status]
        row.steps.append(VJPStep(short[id(x)], i, note,
                                 None if contribution is None else contribution.data,
                                 None if entry is None else entry.data))

    return report


def _table(rows: list[ExplainRow]) -> str:
    header = ("node", "op", "shape", "incoming gradient", "VJP applied", "-> input", "contribution",
              "input's entry after")
    lines: list[tuple[str, ...]] = []
    for row in rows:
        name = row.name if row.label is None else f"{row.name} ({row.label})"
        head = (name, row.op, str(tuple(row.shape)), format_array(row.incoming))
        if row.is_leaf:
            lines.append(head + ("(leaf: final entry = what backward() adds to .grad)", "", "", ""))
            continue
        if not row.steps:
            lines.append(head + ("", "", "", ""))
        for k, step in enumerate(row.steps):
            left = head if k == 0 else ("", "", "", "")
            lines.append(left + (step.rule, step.input, format_array(step.gradient),
                                 format_array(step.entry)))
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = []
    for r in [header, tuple("-" * w for w in widths), *lines]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return "\n".join(out)

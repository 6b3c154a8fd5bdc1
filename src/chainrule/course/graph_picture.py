"""The picture ``draw_graph`` returns: Graphviz's drawing when the ``dot`` program is installed,
chainrule's own drawing (svg, png) when it is not, so a notebook always shows the graph.

:class:`GraphPicture` is a :class:`graphviz.Digraph` (``.source``, ``.render``, ``.pipe`` and
Jupyter's display work as usual) that also keeps its nodes and edges as data
(:class:`PictureNode`, :class:`PictureEdge`): one description, from which both the DOT text and
the fallback drawing are made. Each node carries the DOT attributes of its style (``shape``,
``style``, ``fillcolor``, ``color``, ``peripheries``), and the fallback draws those too: rounded
or plain boxes, ellipses, dashed borders and edges, fill colours, a double border.

The fallback, in plain Python:

* layers as dot's ``rankdir=BT``: a node one layer above its highest input, a leaf just below its
  lowest user; within a layer, the order of a few barycenter sweeps, then x coordinates pulled
  toward the neighbours' mean with the nodes kept apart (each sweep O(V log V + E));
* an edge that skips layers runs up a lane beside its head and turns into it from the side (the
  edges from one shared leaf to a chain form one lane; draw_graph draws a shared *scalar*
  constant beside each use instead);
* svg is written directly (its labels stay text), png by matplotlib's Agg canvas (a ``Figure`` of
  its own, no pyplot state, so threads can draw at once) in the same geometry;
* at most ``max_drawn_nodes`` nodes (150): on a larger graph the 150 nearest the output are drawn
  and a dashed note node counts the rest (``.source`` keeps all of them); the png has at most
  ``MAX_PIXELS`` pixels (a very large picture is drawn at a lower resolution).
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple, Optional, Sequence, Union

import graphviz

from chainrule.data.files import atomic_write
from chainrule.engine.errors import ChainruleError

__all__ = ["GraphPicture", "PictureNode", "PictureEdge", "Picture", "DotUnavailable",
           "FALLBACK_FORMATS", "MAX_DRAWN_NODES"]

FALLBACK_FORMATS = ("svg", "png")  #: what chainrule draws without dot
MAX_DRAWN_NODES = 150              #: nodes the fallback draws at most (the nearest the output)
MAX_DRAWN_EDGES = 4 * MAX_DRAWN_NODES
MAX_PIXELS = 25_000_000            #: of the fallback png (100 MB of RGBA), and ...
MAX_SIDE = 30_000                  #: ... pixels of either side (Agg's limit is 65,536)
DOT_TIMEOUT = 10.0                 #: seconds dot may take to draw a notebook's picture
PNG_DPI = 100.0
MAX_LINE = 80                      #: characters of a label line the fallback draws

FONT_SIZE, EDGE_FONT_SIZE = 11.0, 9.0  # points, as the DOT graph's
CHAR_WIDTH = 0.62                  # of a monospace character, in em (DejaVu Sans Mono: 0.602)
LINE_HEIGHT = 1.3                  # em
PAD_X, PAD_Y = 8.0, 5.0            # text to border
NODE_SEP, RANK_SEP, MARGIN = 18.0, 36.0, 8.0  # dot's defaults: 0.25 in, 0.5 in
SWEEPS = 4
LANE_GAP = 16.0                    # from a node to the lane of the edges that skip layers
FONT_FAMILY = "monospace"          # widths are predictable, so labels fit their boxes


@dataclass(frozen=True)
class PictureNode:
    """A node: DOT name, label lines, DOT attributes of its style (no ``label``)."""

    name: str
    lines: tuple[str, ...]
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PictureEdge:
    """An edge ``tail -> head`` with its DOT attributes (``label``, ``style``, ``color``)."""

    tail: str
    head: str
    attrs: Mapping[str, str] = field(default_factory=dict)


class Picture(NamedTuple):
    """What :meth:`GraphPicture.picture` made: the bytes, who drew them, why dot did not."""

    data: bytes
    drawn_by: str   #: "dot" or "chainrule"
    reason: str     #: why dot did not draw it ('' when it did)


class DotUnavailable(ChainruleError, graphviz.ExecutableNotFound):
    """A format only Graphviz's dot draws, and dot did not: a ChainruleError, and graphviz's
    ExecutableNotFound (a RuntimeError), so handlers of graphviz's own error keep working."""

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)  # not ExecutableNotFound's: it formats a command


def _dot_label(lines: Sequence[str]) -> str:
    """A DOT label whose text is taken literally (backslashes, quotes, <...>), one line each."""
    return graphviz.nohtml("\\n".join(line.replace("\\", "\\\\") for line in lines))


class GraphPicture(graphviz.Digraph):
    """A :class:`graphviz.Digraph` that draws itself without Graphviz's ``dot`` too (svg, png).

    ``pipe``, ``render`` and Jupyter's display use ``dot`` when it is installed, as graphviz does;
    when it is not, svg and png come from chainrule's layered layout and other formats raise
    :class:`DotUnavailable` (an ``ExecutableNotFound``). The notebook display (and
    :meth:`picture`) also falls back when ``dot`` fails or takes longer than ``dot_timeout``
    seconds (dot is very slow on long chains that share a constant).
    """

    dot_timeout: Optional[float] = DOT_TIMEOUT  #: None: wait for dot however long it takes
    max_drawn_nodes: int = MAX_DRAWN_NODES

    def __init__(self, *args, picture_nodes: Sequence[PictureNode] = (),
                 picture_edges: Sequence[PictureEdge] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.picture_nodes = tuple(picture_nodes)
        self.picture_edges = tuple(picture_edges)

    def _copy_kwargs(self, **kwargs) -> dict:
        """graphviz's protocol, so that .copy() keeps the nodes and edges (added after super()'s:
        graphviz's Dot._copy_kwargs drops the keywords it is given)."""
        return dict(super()._copy_kwargs(**kwargs), picture_nodes=self.picture_nodes,
                    picture_edges=self.picture_edges)

    @classmethod
    def build(cls, nodes: Sequence[PictureNode], edges: Sequence[PictureEdge],
              name: str = "chainrule") -> "GraphPicture":
        """The picture of ``nodes`` and ``edges``: the DOT graph (inputs at the bottom) made from
        them, which keeps them for the fallback drawing."""
        picture = cls(name, graph_attr={"rankdir": "BT"},
                      node_attr={"fontname": "Helvetica", "fontsize": f"{FONT_SIZE:g}"},
                      edge_attr={"fontsize": f"{EDGE_FONT_SIZE:g}"},
                      picture_nodes=nodes, picture_edges=edges)
        for node in nodes:
            picture.node(node.name, label=_dot_label(node.lines), **node.attrs)
        for edge in edges:
            picture.edge(edge.tail, edge.head, **edge.attrs)
        return picture

    # ----------------------------------------------------------------------- drawing
    def picture(self, format: str = "svg") -> Picture:
        """The graph drawn in ``format`` by ``dot`` when it is installed and answers within
        ``dot_timeout`` seconds, else (svg, png) by chainrule's layout; another format without a
        working dot raises :class:`DotUnavailable`."""
        fmt = str(format).lower()
        if fmt not in graphviz.FORMATS:
            raise ValueError(f"format={format!r} is not a picture format (chainrule draws "
                             f"{' and '.join(FALLBACK_FORMATS)}; Graphviz's dot also "
                             f"{', '.join(sorted(graphviz.FORMATS - set(FALLBACK_FORMATS)))})")
        data, reason = self._run_dot(fmt)
        if data is not None:
            return Picture(data, "dot", "")
        return Picture(self._without_dot(fmt, reason), "chainrule", reason)

    def fallback(self, format: str = "svg") -> bytes:
        """The graph drawn by chainrule's layout (never ``dot``) as ``format``: svg or png."""
        fmt = str(format).lower()
        if fmt not in FALLBACK_FORMATS:
            raise ValueError(f"format={format!r}: chainrule draws "
                             f"{' or '.join(map(repr, FALLBACK_FORMATS))} (other formats: .pipe "
                             "or .render with Graphviz's dot program installed)")
        layout = _layout(self.picture_nodes, self.picture_edges, self.max_drawn_nodes)
        return _svg(layout).encode("utf-8") if fmt == "svg" else _png(layout)

    def _run_dot(self, fmt: str) -> tuple[Optional[bytes], str]:
        """(dot's drawing, '') or (None, why not): not installed, failed, or too slow."""
        program = shutil.which("dot")
        if program is None:
            return None, "the dot program was not found"
        try:
            done = subprocess.run([program, f"-T{fmt}"], input=self.source.encode(self.encoding),
                                  capture_output=True, timeout=self.dot_timeout, check=False)
        except subprocess.TimeoutExpired:
            return None, f"dot took longer than {self.dot_timeout:g} s"
        except OSError as error:
            return None, f"dot could not run ({error})"
        if done.returncode != 0 or not done.stdout:
            message = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
            return None, f"dot failed ({message or f'exit status {done.returncode}'})"
        return done.stdout, ""

    def _without_dot(self, fmt: str, reason: str) -> bytes:
        if fmt not in FALLBACK_FORMATS:
            raise DotUnavailable(
                f"format {fmt!r} needs Graphviz's dot program ({reason}); without it the picture "
                f"comes as {' or '.join(map(repr, FALLBACK_FORMATS))} (.pipe(format='svg'), "
                f".render(format='png')) and .source has the DOT text")
        return self.fallback(fmt)

    # ----------------------------------------------------------------------- graphviz's API
    def pipe(self, format: Optional[str] = None, renderer: Optional[str] = None,
             formatter: Optional[str] = None, neato_no_op=None, quiet: bool = False, *,
             engine: Optional[str] = None, encoding: Optional[str] = None) -> Union[bytes, str]:
        """graphviz's ``pipe``; without the dot program, svg and png are drawn by chainrule."""
        try:
            return super().pipe(format, renderer=renderer, formatter=formatter,
                                neato_no_op=neato_no_op, quiet=quiet, engine=engine,
                                encoding=encoding)
        except graphviz.ExecutableNotFound:
            data = self._without_dot(str(format or self.format).lower(),
                                     "the dot program was not found")
            return data if encoding is None else data.decode(encoding)

    def render(self, filename=None, directory=None, view: bool = False,
               cleanup: bool = False, format: Optional[str] = None, renderer=None, formatter=None,
               neato_no_op=None, quiet: bool = False, quiet_view: bool = False, *, outfile=None,
               engine=None, raise_if_result_exists: bool = False,
               overwrite_source: bool = False) -> str:
        """graphviz's ``render`` (saves the source, then the picture); without the dot program,
        svg and png pictures are drawn by chainrule. Returns the picture's path."""
        try:
            return super().render(filename, directory=directory, view=view, cleanup=cleanup,
                                  format=format, renderer=renderer, formatter=formatter,
                                  neato_no_op=neato_no_op, quiet=quiet, quiet_view=quiet_view,
                                  outfile=outfile, engine=engine,
                                  raise_if_result_exists=raise_if_result_exists,
                                  overwrite_source=overwrite_source)
        except graphviz.ExecutableNotFound:
            pass
        fmt = (format or (Path(outfile).suffix[1:] if outfile is not None else "")
               or self.format).lower()
        data = self._without_dot(fmt, "the dot program was not found")
        if outfile is not None and filename is None:
            filename = Path(outfile).with_suffix(".gv")  # as graphviz names the source
        source = self.save(filename, directory=directory, skip_existing=None)
        if outfile is None:
            target = Path(f"{source}.{fmt}")
        else:
            target = Path(outfile) if directory is not None else Path(self.directory, outfile)
        if raise_if_result_exists and target.exists():
            raise graphviz.FileExistsError(f"output file exists: {target}")
        atomic_write(target, data)
        if cleanup:
            Path(source).unlink()
        if view or quiet_view:
            self._view(target, format=fmt, quiet=quiet_view)
        return str(target)

    def _repr_image_svg_xml(self) -> str:
        """Jupyter's display: dot's svg, else chainrule's (no exception for a lacking dot)."""
        return self.picture("svg").data.decode("utf-8")

    def _repr_image_png(self) -> bytes:
        return self.picture("png").data


# --------------------------------------------------------------------------- layout
@dataclass
class _Box:
    """A node as drawn: its text, size (points), layer and centre."""

    name: str
    lines: list[str]
    attrs: Mapping[str, str]
    width: float
    height: float
    layer: int = 0
    x: float = 0.0
    y: float = 0.0


@dataclass
class _Line:
    """An edge as drawn: a path (one code a point: M move, L line, Q two points of a quadratic
    Bezier, as matplotlib's CURVE3), its label, where the label goes, and its look."""

    points: list[tuple[float, float]]
    codes: str
    label: str
    label_at: tuple[float, float]
    dashed: bool
    color: str


@dataclass
class _Layout:
    boxes: list[_Box]
    lines: list[_Line]
    width: float
    height: float


def _clean(text: str) -> str:
    """One line the fallback can draw: no control characters, at most MAX_LINE characters."""
    text = re.sub(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]", " ", text)
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 1] + "\u2026"


def _dashed(attrs: Mapping[str, str]) -> bool:
    return "dashed" in attrs.get("style", "").split(",")


def _select(nodes: Sequence[PictureNode], edges: Sequence[PictureEdge],
            limit: int) -> tuple[list[PictureNode], list[tuple[str, str, Mapping[str, str]]]]:
    """The nodes and merged edges to draw: all of them, or the ``limit`` nodes nearest the output
    (breadth first from the nodes nothing uses) plus a note node that counts the others and
    points at the nodes whose inputs were left out."""
    inputs: dict[str, list[str]] = {}
    for edge in edges:
        inputs.setdefault(edge.head, []).append(edge.tail)
    kept = {node.name for node in nodes}
    if len(nodes) > limit:
        used = {edge.tail for edge in edges}
        queue = deque(node.name for node in nodes if node.name not in used)
        queued, kept = set(queue), set()
        while queue and len(kept) < limit:
            name = queue.popleft()
            kept.add(name)
            for tail in inputs.get(name, ()):
                if tail not in queued:
                    queued.add(tail)
                    queue.append(tail)
    groups: dict[tuple[str, str], list[Mapping[str, str]]] = {}
    cut, dropped = set(), 0
    for edge in edges:
        if edge.head not in kept:
            continue
        if edge.tail not in kept:
            cut.add(edge.head)
        elif (edge.tail, edge.head) in groups or len(groups) < MAX_DRAWN_EDGES:
            groups.setdefault((edge.tail, edge.head), []).append(edge.attrs)
        else:
            dropped += 1
    drawn = [node for node in nodes if node.name in kept]
    merged: list[tuple[str, str, Mapping[str, str]]] = [
        (tail, head, _merge(group)) for (tail, head), group in groups.items()]
    omitted = len(nodes) - len(drawn)
    if omitted or dropped:
        note = ["not drawn:"] + ([f"{omitted:,} more nodes"] if omitted else []) + (
            [f"{dropped:,} more edges"] if dropped else []) + (
            [f"(drawn: the {len(drawn):,} nodes", "nearest the output)"] if omitted else []) + [
            "(.source has the whole graph)"]
        style = {"shape": "box", "style": "dashed", "color": "#888888"}
        drawn.insert(0, PictureNode("\u2026", tuple(note), style))
        edge_style = {"style": "dashed", "color": "#888888"}
        merged += [("\u2026", head, edge_style) for head in sorted(cut)]
    return drawn, merged


def _merge(group: list[Mapping[str, str]]) -> dict[str, str]:
    """One drawn edge for parallel ones: their labels joined, dashed when all are."""
    attrs = dict(group[0]) if all(_dashed(a) for a in group) else {}
    labels = [a["label"] for a in group if "label" in a]
    if labels:
        text = ",".join(labels)
        attrs["label"] = text if len(text) <= 20 else f"{text[:16]}\u2026({len(labels)})"
    return attrs


def _size(lines: list[str], attrs: Mapping[str, str]) -> tuple[float, float]:
    width = max((len(line) for line in lines), default=1) * CHAR_WIDTH * FONT_SIZE + 2 * PAD_X
    height = max(len(lines), 1) * LINE_HEIGHT * FONT_SIZE + 2 * PAD_Y
    if attrs.get("shape") == "ellipse":  # the ellipse around the text's rectangle
        width, height = width * math.sqrt(2), height * math.sqrt(2)
    return width, height


def _layout(nodes: Sequence[PictureNode], edges: Sequence[PictureEdge], limit: int) -> _Layout:
    drawn, merged = _select(nodes, edges, limit)
    boxes = {}
    for node in drawn:
        lines = [_clean(line) for line in node.lines]
        boxes[node.name] = _Box(node.name, lines, node.attrs, *_size(lines, node.attrs))
    preds: dict[str, list[str]] = {name: [] for name in boxes}
    succs: dict[str, list[str]] = {name: [] for name in boxes}
    for tail, head, _ in merged:
        preds[head].append(tail)
        succs[tail].append(head)
    rows = _rows(boxes, preds, succs)
    _order(rows, preds, succs)
    _place(rows, boxes, preds, succs)
    routes = [_route(boxes[tail], boxes[head], attrs) for tail, head, attrs in merged]
    return _fit(list(boxes.values()), routes)


def _rows(boxes: dict[str, _Box], preds: dict, succs: dict) -> list[list[str]]:
    """Layers, bottom first: longest path from the inputs, each input just below its lowest
    user. Kahn's order (ties in the given, topological, order), so any DAG works."""
    waiting = {name: len(preds[name]) for name in boxes}
    queue = deque(name for name in boxes if not waiting[name])
    order = []
    while queue:
        name = queue.popleft()
        order.append(name)
        for head in succs[name]:
            waiting[head] -= 1
            if not waiting[head]:
                queue.append(head)
    order += [name for name in boxes if waiting[name] > 0]  # a cycle: not from draw_graph
    layer: dict[str, int] = {}
    for name in order:
        layer[name] = max((layer.get(tail, 0) + 1 for tail in preds[name]), default=0)
    for name in order:
        if not preds[name] and succs[name]:
            layer[name] = min(layer[head] for head in succs[name]) - 1
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for name in order:
        rows[layer[name]].append(name)
    rows = [row for row in rows if row]  # none is empty for a DAG; a cycle could leave a gap
    for k, row in enumerate(rows):
        for name in row:
            boxes[name].layer = k
    return rows


def _order(rows: list[list[str]], preds: dict, succs: dict) -> None:
    """Barycenter sweeps, up then down: the nodes with neighbours in the layers already swept
    are sorted by their neighbours' mean position (a fraction of that layer's width); the others
    keep their places."""
    pos = {name: (i + 0.5) / len(row) for row in rows for i, name in enumerate(row)}
    for sweep in range(SWEEPS):
        near = preds if sweep % 2 == 0 else succs
        for row in rows if sweep % 2 == 0 else rows[::-1]:
            key = {name: sum(pos[o] for o in near[name]) / len(near[name])
                   for name in row if near[name]}
            moving = iter(sorted(key, key=key.__getitem__))
            row[:] = [next(moving) if name in key else name for name in row]
            for i, name in enumerate(row):
                pos[name] = (i + 0.5) / len(row)


def _place(rows: list[list[str]], boxes: dict[str, _Box], preds: dict, succs: dict) -> None:
    """x: each layer packed, then pulled toward its neighbours' mean x in alternate sweeps with
    the order and the gaps kept; y: layers from the top (the output) down."""
    for row in rows:
        left = -sum(boxes[name].width + NODE_SEP for name in row) / 2
        for name in row:
            boxes[name].x = left + boxes[name].width / 2
            left += boxes[name].width + NODE_SEP
    for sweep in range(SWEEPS):
        upward = sweep % 2 == 1  # end upward: the output centred over its inputs
        for row in rows if upward else rows[::-1]:
            near = preds if upward else succs
            wanted = []
            for name in row:
                xs = [boxes[other].x for other in near[name]]
                wanted.append(sum(xs) / len(xs) if xs else boxes[name].x)
            _spread([boxes[name] for name in row], wanted)
    top = MARGIN
    for row in reversed(rows):
        height = max(boxes[name].height for name in row)
        for name in row:
            boxes[name].y = top + height / 2
        top += height + RANK_SEP


def _spread(row: list[_Box], wanted: list[float]) -> None:
    """x as near ``wanted`` as the order and gaps allow: the mean of the leftmost and rightmost
    feasible placements (both keep every gap, so their mean does)."""
    gaps = [(a.width + b.width) / 2 + NODE_SEP for a, b in zip(row, row[1:])]
    left, right = list(wanted), list(wanted)
    for i in range(1, len(row)):
        left[i] = max(wanted[i], left[i - 1] + gaps[i - 1])
    for i in range(len(row) - 2, -1, -1):
        right[i] = min(wanted[i], right[i + 1] - gaps[i])
    for box, a, b in zip(row, left, right):
        box.x = (a + b) / 2


def _route(tail: _Box, head: _Box, attrs: Mapping[str, str]) -> _Line:
    """The edge from ``tail``'s border to ``head``'s: straight between neighbouring layers; one
    that skips layers runs up a lane beside the head (on the tail's side), turning into it from
    the side, so it passes beside the nodes in between and edges to one column share a lane."""
    label, dashed = attrs.get("label", ""), _dashed(attrs)
    color = attrs.get("color", "black")
    if head.layer - tail.layer <= 1:
        start, end = _border(tail, (head.x, head.y)), _border(head, (tail.x, tail.y))
        middle = ((start[0] + end[0]) / 2 + 3, (start[1] + end[1]) / 2)
        return _Line([start, end], "ML", label, middle, dashed, color)
    side = 1.0 if tail.x >= head.x else -1.0
    lane = head.x + side * (head.width / 2 + LANE_GAP)
    low = (lane, tail.y - tail.height / 2 - RANK_SEP / 2)   # leave the tail toward the lane
    high = (lane, head.y + head.height / 2 + RANK_SEP / 4)  # and enter the head from below-side
    start, end = _border(tail, low), _border(head, high)
    points = [start, (lane, start[1]), low, high, (lane, end[1]), end]
    return _Line(points, "MQQLQQ", label, (lane + 3, high[1]), dashed, color)


def _border(box: _Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``box``'s centre toward ``toward`` leaves its (outer) border."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    extra = 4.0 if box.attrs.get("peripheries") == "2" else 0.0
    half_w, half_h = box.width / 2 + extra, box.height / 2 + extra
    if box.attrs.get("shape") == "ellipse":
        t = 1 / math.sqrt((dx / half_w) ** 2 + (dy / half_h) ** 2)
    else:
        t = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return box.x + t * dx, box.y + t * dy


def _fit(boxes: list[_Box], lines: list[_Line]) -> _Layout:
    """Shift everything so the drawing starts at the margin; its size (a path stays inside its
    points' hull, a label is as wide as its characters)."""
    xs = [v for box in boxes for v in (box.x - box.width / 2 - 4, box.x + box.width / 2 + 4)]
    for line in lines:
        xs += [x for x, _ in line.points]
        if line.label:
            xs.append(line.label_at[0] + len(line.label) * CHAR_WIDTH * EDGE_FONT_SIZE)
    ys = [box.y + box.height / 2 + 4 for box in boxes]
    shift = MARGIN - min(xs, default=0.0)
    for box in boxes:
        box.x += shift
    for line in lines:
        line.points = [(x + shift, y) for x, y in line.points]
        line.label_at = (line.label_at[0] + shift, line.label_at[1])
    return _Layout(boxes, lines, max(xs, default=0.0) + shift + MARGIN,
                   max(ys, default=0.0) + MARGIN)


# --------------------------------------------------------------------------- the two drawings
def _look(attrs: Mapping[str, str]) -> tuple[str, bool, bool, str, str, bool]:
    """(shape, rounded, dashed, fill, stroke, double) from the DOT attributes."""
    style = attrs.get("style", "").split(",")
    fill = attrs.get("fillcolor", "lightgrey") if "filled" in style else "white"
    return (attrs.get("shape", "ellipse"), "rounded" in style, "dashed" in style, fill,
            attrs.get("color", "black"), attrs.get("peripheries") == "2")


def _svg(layout: _Layout) -> str:
    """The layout as an SVG document (labels as <text>, monospace)."""
    colors = sorted({line.color for line in layout.lines})
    marker = {color: f"arrow{i}" for i, color in enumerate(colors)}
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}pt" '
           f'height="{layout.height:.0f}pt" viewBox="0 0 {layout.width:.1f} {layout.height:.1f}" '
           f'font-family="{FONT_FAMILY}">',
           "<title>chainrule graph (drawn without Graphviz)</title>", "<defs>"]
    for color in colors:
        out.append(f'<marker id="{marker[color]}" viewBox="0 0 10 10" refX="10" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill={_attr(color)}/></marker>')
    out += ["</defs>", '<rect width="100%" height="100%" fill="white"/>']
    for line in layout.lines:
        dash = ' stroke-dasharray="5,3"' if line.dashed else ""
        out.append(f'<g class="edge"><path d="{_svg_path(line)}" fill="none" '
                   f'stroke={_attr(line.color)}{dash} marker-end="url(#{marker[line.color]})"/>')
        if line.label:
            x, y = line.label_at
            out.append(f'<text x="{x:.1f}" y="{y + 0.35 * EDGE_FONT_SIZE:.1f}" '
                       f'font-size="{EDGE_FONT_SIZE:g}">{_text(line.label)}</text>')
        out.append("</g>")
    for box in layout.boxes:
        out.append(f'<g class="node" id={_attr(box.name)}><title>{_text(box.name)}</title>')
        out += _svg_shape(box)
        first = box.y - (len(box.lines) - 1) / 2 * LINE_HEIGHT * FONT_SIZE + 0.35 * FONT_SIZE
        out.append(f'<text text-anchor="middle" font-size="{FONT_SIZE:g}">')
        for i, text in enumerate(box.lines):
            out.append(f'<tspan x="{box.x:.1f}" y="{first + i * LINE_HEIGHT * FONT_SIZE:.1f}">'
                       f"{_text(text)}</tspan>")
        out += ["</text>", "</g>"]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_path(line: _Line) -> str:
    words, i = [], 0
    while i < len(line.codes):
        step = 2 if line.codes[i] == "Q" else 1
        words.append(line.codes[i] + " ".join(f"{x:.1f},{y:.1f}"
                                              for x, y in line.points[i:i + step]))
        i += step
    return " ".join(words)


def _svg_shape(box: _Box) -> list[str]:
    shape, rounded, dashed, fill, stroke, double = _look(box.attrs)
    dash = ' stroke-dasharray="5,3"' if dashed else ""
    result = []
    for grow, paint in [(0.0, fill)] + ([(4.0, "none")] if double else []):
        w, h = box.width + 2 * grow, box.height + 2 * grow
        look = f'fill={_attr(paint)} stroke={_attr(stroke)}{dash}'
        if shape == "ellipse":
            result.append(f'<ellipse cx="{box.x:.1f}" cy="{box.y:.1f}" rx="{w / 2:.1f}" '
                          f'ry="{h / 2:.1f}" {look}/>')
        else:
            result.append(f'<rect x="{box.x - w / 2:.1f}" y="{box.y - h / 2:.1f}" '
                          f'width="{w:.1f}" height="{h:.1f}" rx="{6 if rounded else 0}" {look}/>')
    return result


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return '"' + _text(text).replace('"', "&quot;") + '"'


def _png(layout: _Layout) -> bytes:
    """The layout drawn by matplotlib's Agg canvas (a private Figure: no pyplot, thread-safe),
    one point of the layout per 1/72 inch, at PNG_DPI or less to stay under MAX_PIXELS."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as CurvePath

    inches = (max(layout.width, 1.0) / 72, max(layout.height, 1.0) / 72)
    dpi = min(PNG_DPI, math.sqrt(MAX_PIXELS / (inches[0] * inches[1])),
              MAX_SIDE / inches[0], MAX_SIDE / inches[1])
    figure = Figure(figsize=inches, dpi=dpi, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, layout.width)
    axes.set_ylim(layout.height, 0)  # y down, as in the svg
    axes.set_axis_off()  # sizes below are in points, as the layout's units: dpi scales all
    codes = {"M": CurvePath.MOVETO, "L": CurvePath.LINETO, "Q": CurvePath.CURVE3}
    for line in layout.lines:
        path = CurvePath(line.points, [codes[c] for c in line.codes])
        axes.add_artist(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=10,
                                       color=line.color, linewidth=1,
                                       linestyle="--" if line.dashed else "-"))
        if line.label:
            axes.text(*line.label_at, line.label, fontsize=EDGE_FONT_SIZE, va="center",
                      family=FONT_FAMILY, parse_math=False)
    for box in layout.boxes:
        for patch in _png_shapes(box):
            axes.add_artist(patch)
        axes.text(box.x, box.y, "\n".join(box.lines), fontsize=FONT_SIZE, ha="center",
                  va="center", family=FONT_FAMILY, linespacing=LINE_HEIGHT, parse_math=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _png_shapes(box: _Box) -> list:
    from matplotlib.patches import Ellipse, FancyBboxPatch, Patch

    shape, rounded, dashed, fill, stroke, double = _look(box.attrs)
    result: list[Patch] = []
    for grow, paint in [(0.0, fill)] + ([(4.0, "none")] if double else []):
        w, h = box.width + 2 * grow, box.height + 2 * grow
        if shape == "ellipse":
            patch: Patch = Ellipse((box.x, box.y), w, h)
        else:
            style = f"round,pad=0,rounding_size={6 if rounded else 0}"
            patch = FancyBboxPatch((box.x - w / 2, box.y - h / 2), w, h, boxstyle=style)
        patch.set(facecolor=paint, edgecolor=stroke, linewidth=1.0,
                  linestyle="--" if dashed else "-")
        result.append(patch)
    return result

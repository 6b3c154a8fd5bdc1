"""draw_graph's picture with and without Graphviz's dot program (course/graph_picture.py): the
same DOT source either way; svg and png from dot when it works, else from chainrule's layout."""

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main

graphviz = pytest.importorskip("graphviz")
Image = pytest.importorskip("PIL.Image")  # matplotlib's own dependency: decodes the png

from chainrule.course import graph_picture as gp  # noqa: E402 -- needs graphviz
from chainrule.course.explain import draw_graph  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
HAS_DOT = shutil.which("dot") is not None
POSIX = pytest.mark.skipif(os.name == "nt", reason="shell scripts stand in for the dot program")
OP, VARIABLE, CONSTANT = (255, 242, 204), (207, 226, 243), (238, 238, 238)  # the DOT fillcolors


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH without the dot program (one empty folder)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


def _fake_dot(folder, body):
    """A 'dot' shell script in ``folder`` (builtins only: PATH holds nothing else)."""
    folder.mkdir(exist_ok=True)
    script = folder / "dot"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return folder


def _example():
    W = cr.tensor([[1.0, 2.0], [-2.0, 3.0]], dtype="float64", requires_grad=True)
    x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
    loss = cr.maximum(cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x))
    loss.backward(retain_graph=True)
    return draw_graph(loss, names={"W": W, "x": x})


def _where():
    """sum(where(x > 0, x * 2, 1)): t0 condition, t2 and t4 constants, t6 the output."""
    x = cr.tensor([2.0, -3.0], dtype="float64", requires_grad=True)
    return draw_graph(cr.sum(cr.where(cr.greater(x, 0), x * 2.0, 1.0)))


def _dot_parts(source):
    """From the DOT text, independently of the picture: node -> label lines; edge labels."""
    nodes = {m.group(1): m.group(2).replace("\\\\", "\\").split("\\n")
             for m in re.finditer(r'^\s*(t\d+) \[label="((?:[^"\\]|\\.)*)"', source, re.M)}
    edges = re.findall(r"^\s*(t\d+) -> (t\d+)(?: \[(.*)\])?$", source, re.M)
    labels = sorted(m.group(1) for _, _, a in edges for m in [re.search(r"label=(\d+)", a)] if m)
    return nodes, edges, labels


def _svg_parts(svg):
    """From the svg: node id -> its text lines and shape elements; edge label texts; edges."""
    root = ET.fromstring(svg)
    nodes = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "node":
            lines = [t.text for t in group.iter(f"{SVG}tspan")]
            shapes = [e for e in group if e.tag in (f"{SVG}rect", f"{SVG}ellipse")]
            nodes[group.get("id")] = (lines, shapes)
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    labels = sorted(t.text for g in edges for t in g.iter(f"{SVG}text"))
    return nodes, edges, labels


def _png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def _colors(data):
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return {color for _, color in image.getcolors(1 << 20)}


# --------------------------------------------------------------------------- without dot
def test_without_dot_the_notebook_shows_every_node_and_edge_in_svg(no_dot):
    picture = _example()
    source = picture.source
    bundle = picture._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"] and isinstance(bundle["image/svg+xml"], str)
    nodes, edges, labels = _svg_parts(bundle["image/svg+xml"])
    dot_nodes, dot_edges, dot_labels = _dot_parts(source)
    assert {name: lines for name, (lines, _) in nodes.items()} == dot_nodes
    assert "W (t0)" in dot_nodes["t0"] and "grad [0.0177, 0.0353]" in dot_nodes["t2"]
    assert len(edges) == len(dot_edges) == 10 and labels == dot_labels == ["0", "0", "0", "1",
                                                                          "1", "1"]
    assert picture.source == source and source.startswith("digraph chainrule {")
    assert isinstance(picture, graphviz.Digraph)
    assert picture.copy().fallback("svg") == picture.fallback("svg")  # copy keeps the nodes


def test_without_dot_the_styles_are_the_dot_graphs(no_dot):
    nodes, edges, _ = _svg_parts(_where().pipe(format="svg", encoding="utf-8"))
    dashed = {name for name, (_, shapes) in nodes.items()
              if shapes[0].get("stroke-dasharray")}
    assert dashed == {"t0", "t2", "t4"}  # the condition and the constants, as in the DOT graph
    assert sum(1 for g in edges if g.find(f"{SVG}path").get("stroke-dasharray")) == 3
    variable = nodes["t1"][1]
    assert [e.tag for e in variable] == [f"{SVG}ellipse"] and variable[0].get("fill") == "#cfe2f3"
    operation = nodes["t3"][1][0]
    assert operation.tag == f"{SVG}rect" and operation.get("rx") == "6"
    assert operation.get("fill") == "#fff2cc"
    assert nodes["t2"][1][0].get("fill") == "#eeeeee" and nodes["t2"][1][0].get("rx") == "0"
    assert len(nodes["t6"][1]) == 2 and nodes["t6"][1][1].get("fill") == "none"  # double border


def test_without_dot_pipe_render_and_png_draw_the_picture(no_dot, tmp_path):
    picture = _example()
    png = picture.pipe(format="png")
    width, height = _png_size(png)
    assert 300 < width < 3000 and 300 < height < 3000
    colors = _colors(png)
    assert {OP, VARIABLE} <= colors  # the boxes' and ellipses' fills are painted
    assert _colors(_where().pipe(format="png")) >= {OP, VARIABLE, CONSTANT}
    assert picture._repr_mimebundle_(include=["image/png"])["image/png"][:4] == b"\x89PNG"
    assert picture.render(tmp_path / "graph", format="png") == str(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "graph").read_text() == picture.source  # the source, as graphviz saves it
    assert picture.render(outfile=tmp_path / "out.svg") == str(tmp_path / "out.svg")
    assert ET.parse(tmp_path / "out.svg").getroot().tag == f"{SVG}svg"
    with pytest.raises(graphviz.ExecutableNotFound, match="'svg' or 'png'"):
        picture.pipe(format="pdf")
    with pytest.raises(gp.DotUnavailable, match="needs Graphviz's dot"):
        picture.render(tmp_path / "graph", format="pdf")
    with pytest.raises(ValueError, match="format='bogus'"):
        picture.picture("bogus")


def test_fallback_draws_any_label_text(no_dot):
    big = cr.tensor(np.arange(12.0).reshape(3, 4), dtype="float64", requires_grad=True)
    picture = draw_graph(cr.sum(big * 2.0), names={'a<&>"$\\nope$\x07': big})
    nodes, _, _ = _svg_parts(picture.fallback("svg"))
    assert nodes["t0"][0][0] == 'a<&>"$\\nope$  (t0)'  # XML-escaped, control character blanked
    assert _png_size(picture.fallback("png"))[0] > 100  # $...$ is not parsed as (bad) mathtext


# --------------------------------------------------------------------------- the layout
def test_layers_put_inputs_at_the_bottom_and_keep_nodes_apart():
    picture = _example()
    layout = gp._layout(picture.picture_nodes, picture.picture_edges, 150)
    boxes = {box.name: box for box in layout.boxes}
    # longest path from the inputs; x (t2) just below its lowest user, the matmuls
    assert {n: b.layer for n, b in boxes.items()} == {"t0": 0, "t1": 1, "t5": 1, "t2": 1,
                                                      "t3": 2, "t6": 2, "t4": 3, "t7": 3, "t8": 4}
    for edge in picture.picture_edges:  # every edge goes up the picture (svg's y grows down)
        assert boxes[edge.head].y < boxes[edge.tail].y
    for a in layout.boxes:
        for b in layout.boxes:
            if a is not b and a.layer == b.layer:
                assert abs(a.x - b.x) >= (a.width + b.width) / 2 + gp.NODE_SEP - 1e-9
    assert all(0 <= b.x - b.width / 2 and b.x + b.width / 2 <= layout.width for b in boxes.values())


def _crossings(rows, edges):
    where = {name: (k, i) for k, row in enumerate(rows) for i, name in enumerate(row)}
    pairs = [(where[t][0], where[t][1], where[h][1]) for t, h in edges]
    return sum(k == m and (a - c) * (b - d) < 0
               for i, (k, a, b) in enumerate(pairs) for m, c, d in pairs[i + 1:])


def test_barycenter_sweeps_untangle_a_crossed_order():
    edges = [("a", "ya"), ("b", "yb"), ("c", "yc"), ("ya", "out"), ("yb", "out"), ("yc", "out"),
             ("a", "z"), ("c", "z")]
    rows = [["c", "a", "b"], ["yc", "z", "yb", "ya"], ["out"]]
    assert _crossings(rows, edges) == 1
    preds = {n: [t for t, h in edges if h == n] for row in rows for n in row}
    succs = {n: [h for t, h in edges if t == n] for row in rows for n in row}
    gp._order(rows, preds, succs)
    assert _crossings(rows, edges) == 0


def test_a_big_graph_draws_the_nodes_nearest_the_output_and_says_so(no_dot, monkeypatch):
    y = cr.tensor([1.0], dtype="float64", requires_grad=True)
    z = y
    for _ in range(5000):
        z = z * 1.0
    # 10,001 nodes: the chain, and its one constant drawn beside each of its 5000 uses
    picture = draw_graph(z, show_values=False)
    nodes, _, _ = _svg_parts(picture._repr_mimebundle_()["image/svg+xml"])
    assert len(nodes) == gp.MAX_DRAWN_NODES + 1 and "t5001" in nodes and "t1_4999" in nodes
    note = " ".join(nodes["\u2026"][0])
    assert f"{10001 - gp.MAX_DRAWN_NODES:,} more nodes" in note and "nearest the output" in note
    assert len(picture.source.splitlines()) > 15000  # .source keeps every node and edge
    picture.max_drawn_nodes = 40
    monkeypatch.setattr(gp, "MAX_PIXELS", 400_000)  # a tall picture: drawn at a lower resolution
    width, height = _png_size(picture.fallback("png"))
    assert width * height <= 400_000 and height > width


def test_threads_draw_the_same_png():
    picture = _where()
    expected = picture.fallback("png")
    results = [None] * 3

    def draw(i):
        results[i] = picture.fallback("png")

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 3


# --------------------------------------------------------------------------- with dot
@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot program is not installed")
def test_with_dot_the_pictures_are_dots():
    picture = _example()
    reference = graphviz.Source(picture.source)  # plain graphviz, on the same DOT text
    svg = picture._repr_mimebundle_()["image/svg+xml"]
    assert "Generated by graphviz" in svg and svg == reference.pipe(format="svg", encoding="utf-8")
    drawn = picture.picture("png")
    assert drawn.drawn_by == "dot" and drawn.reason == ""
    assert _png_size(drawn.data) == _png_size(reference.pipe(format="png"))
    assert picture.pipe(format="svg") == reference.pipe(format="svg")


@POSIX
def test_a_failing_or_slow_dot_leaves_the_notebook_a_picture(tmp_path, monkeypatch):
    picture = _where()
    monkeypatch.setenv("PATH", str(_fake_dot(tmp_path / "failing", "echo boom >&2; exit 3")))
    drawn = picture.picture("svg")
    assert (drawn.drawn_by, drawn.reason) == ("chainrule", "dot failed (boom)")
    assert "where (2,)" in picture._repr_mimebundle_()["image/svg+xml"]
    with pytest.raises(graphviz.CalledProcessError):  # pipe keeps graphviz's behaviour with dot
        picture.pipe(format="svg")
    monkeypatch.setenv("PATH", str(_fake_dot(tmp_path / "slow", "while :; do :; done")))
    picture.dot_timeout = 0.3
    drawn = picture.picture("png")
    assert (drawn.drawn_by, drawn.reason) == ("chainrule", "dot took longer than 0.3 s")
    assert drawn.data[:4] == b"\x89PNG"
    with pytest.raises(gp.DotUnavailable, match="took longer"):
        picture.picture("pdf")


# --------------------------------------------------------------------------- chainrule graph
def test_cli_draws_a_png_without_dot(tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    done = subprocess.run([sys.executable, "-m", "chainrule", "graph", "sum(x * x)", "--let",
                           "x=[1,2]", "--out", "g.png"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ("wrote g.png (PNG, drawn by chainrule's own layout: the dot program was not found)"
            in done.stdout)
    assert _png_size((tmp_path / "g.png").read_bytes())[0] > 100


def test_cli_graph_formats(no_dot, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "sum(x * x)", "--let", "x=[1,2]", "--out", "g.svg"]) == 0
    assert "drawn by chainrule's own layout" in capsys.readouterr().out
    assert "mul (2,)" in (tmp_path / "g.svg").read_text()
    for out, message in [("g.pdf", "pdf needs Graphviz's dot program"),
                         ("g.txt", "unknown picture format 'txt'"),
                         ("nope/g.svg", "no folder nope")]:
        assert main(["graph", "sum(x * x)", "--let", "x=[1,2]", "--out", out]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-path", "g.svg"]


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot program is not installed")
def test_cli_draws_with_dot_when_it_is_there(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "sum(x * x)", "--let", "x=[1,2]", "--out", "g.svg"]) == 0
    assert "wrote g.svg (SVG, drawn by Graphviz's dot)" in capsys.readouterr().out
    assert "Generated by graphviz" in (tmp_path / "g.svg").read_text()

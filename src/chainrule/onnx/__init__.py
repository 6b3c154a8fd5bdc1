"""``chainrule.onnx``: export a ``chainrule.nn`` model to an ONNX file::

    import chainrule.onnx
    chainrule.onnx.export(model, example_input, "model.onnx")  # opset 17, symbolic batch axis

The export walks the model's modules (not a trace of operations): each module class has one
converter (:mod:`chainrule.onnx.converters`) that writes its forward, in eval mode, as ONNX nodes.
Sequential, Residual and the other containers are walked; parameters and buffers become
initializers named as in the model's ``state_dict`` ("0.weight"). A module without a converter
raises :class:`ExportError` naming its path in the model and its class. The example input gives
every static size (the spatial sizes, the sequence length); with ``dynamic_batch`` axis 0 of every
input and output is the symbolic dimension "batch".

Needs the optional packages onnx and onnxruntime: ``pip install 'chainrule[onnx]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module
from chainrule.onnx.graph import MAX_OPSET, MIN_OPSET, ExportError, Graph, Value

if TYPE_CHECKING:
    import onnx

__all__ = ["export", "export_run", "ExportError", "OnnxMissingError", "supported_modules",
           "MIN_OPSET", "MAX_OPSET"]

INSTALL_HINT = "pip install 'chainrule[onnx]' (in a checkout: pip install -e '.[onnx]')"
#: the name of the symbolic axis 0 with ``dynamic_batch``
BATCH = "batch"
MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit on one message (no external data here)


class OnnxMissingError(ExportError, ImportError):
    """The optional onnx package is not installed."""


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise OnnxMissingError(f"ONNX export needs the onnx package ({error}): "
                               f"{INSTALL_HINT}") from None
    return onnx


def supported_modules() -> tuple[str, ...]:
    """The names of the module classes that export converts (each exactly, not its
    subclasses)."""
    from chainrule.onnx.converters import SUPPORTED

    return SUPPORTED


def export(model: Module, example_input: Any, path: Union[str, os.PathLike, None],
           opset: int = 17, dynamic_batch: bool = True) -> "onnx.ModelProto":
    """Write ``model``'s forward in eval mode as the ONNX file ``path``; returns the ModelProto.

    ``example_input``: a Tensor or array (or a tuple of them, one per argument of forward) whose
    shape the graph takes: its sizes are static, except axis 0 with ``dynamic_batch``, which
    becomes the symbolic dimension "batch" in every input and output. Floating inputs must be
    float32 (the graph's input type), integer ones (Embedding's ids) become int64. The model's
    parameters must be float32: a float64 model is refused, not converted.

    ``opset``: the ONNX operator set, from 17 to 21. ``path``: written atomically (None: nothing
    is written). The module tree runs once on the example input, in eval mode (BatchNorm on its
    running statistics, Dropout the identity), and every module's training flag is restored
    afterwards. The model is checked with ``onnx.checker.check_model(full_check=True)`` before it
    is written. Unsupported modules raise :class:`ExportError` naming their path and class.
    """
    if not isinstance(model, Module):
        raise ExportError(f"export: model must be a chainrule.nn.Module, got "
                          f"{type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"export: opset={opset!r}: must be an integer from {MIN_OPSET} to "
                          f"{MAX_OPSET}")
    if not isinstance(dynamic_batch, (bool, np.bool_)):
        raise ExportError(f"export: dynamic_batch={dynamic_batch!r} must be True or False")
    inputs = _example_inputs(example_input)
    _check_dtypes(model)
    target = None if path is None else Path(path)
    if target is not None and (str(path).strip() == "" or target.is_dir()):
        raise ExportError(f"export: path={str(path)!r} must name a file")
    onnx = _require_onnx()
    from chainrule import no_grad
    from chainrule.onnx.converters import CONVERTERS

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            proto = _build(onnx, model, inputs, int(opset), bool(dynamic_batch), CONVERTERS)
    finally:
        for module, flag in flags:
            object.__setattr__(module, "training", flag)
    if target is not None:
        _write(proto, target)
    return proto


def _example_inputs(example_input: Any) -> list[Tensor]:
    """The example input(s) as float32 or int64 Tensors with a batch axis, else ExportError."""
    items = list(example_input) if isinstance(example_input, (tuple, list)) else [example_input]
    if not items:
        raise ExportError("export: example_input is empty: give a tensor (or one per input)")
    tensors = []
    for i, item in enumerate(items):
        what = "example_input" + (f"[{i}]" if len(items) > 1 else "")
        if isinstance(item, Tensor):
            array = item.numpy()
        elif isinstance(item, (np.ndarray, np.generic)):
            array = np.asarray(item)
        else:
            raise ExportError(f"export: {what} must be a chainrule Tensor or a NumPy array, got "
                              f"{type(item).__name__}")
        if array.ndim == 0 or 0 in array.shape:
            raise ExportError(f"export: {what} has shape {array.shape}: it needs a batch axis "
                              f"(axis 0) and no empty axis")
        if array.dtype.kind == "f":
            if array.dtype != np.float32:
                raise ExportError(f"export: {what} is {array.dtype}: the graph's input is "
                                  f"float32 (pass x.astype('float32'))")
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        else:
            raise ExportError(f"export: {what} has dtype {array.dtype}: give float32 values or "
                              f"integer ids")
        tensors.append(Tensor(np.array(array, copy=True)))
    return tensors


def _check_dtypes(model: Module) -> None:
    for name, value in [*model.named_parameters(), *model.named_buffers()]:
        if value.dtype.kind == "f" and value.dtype != np.float32:
            raise ExportError(f"export: {name} is {value.dtype}: ONNX export writes float32 "
                              f"models only (build the model in float32, chainrule's default)")
        if value.device.type != "cpu":
            raise ExportError(f"export: {name} is on {value.device}: move the model to the CPU "
                              f"first (model.to('cpu'))")


def _build(onnx: Any, model: Module, inputs: list, opset: int, dynamic: bool,
           converters: dict) -> "onnx.ModelProto":
    from onnx import helper

    from chainrule import __version__
    from chainrule.onnx.graph import flatten, value_info

    graph = Graph(model, opset, dynamic, converters)
    names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    dyn = (0,) if dynamic else ()
    values = []
    for name, tensor in zip(names, inputs):
        graph._taken.add(name)
        values.append(Value(name, tensor, dyn))
    outputs = flatten(graph.call(model, "", values))
    out_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    _rename_outputs(graph, outputs, out_names, set(names))
    onnx_graph = helper.make_graph(
        graph.nodes, "chainrule", [value_info(n, v, BATCH) for n, v in zip(names, values)],
        [value_info(n, v, BATCH) for n, v in zip(out_names, outputs)],
        initializer=list(graph.initializers.values()))
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(onnx_graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name="chainrule", producer_version=__version__,
                              doc_string=f"{type(model).__name__} exported by chainrule.onnx")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # noqa: BLE001 -- a converter bug: say so in one line
        message = " ".join(str(error).split())[:500]
        raise ExportError(f"export: the ONNX graph of {type(model).__name__} fails "
                          f"onnx.checker ({message}); please report this") from None
    return proto


def _rename_outputs(graph: Graph, outputs: list, out_names: list, input_names: set) -> None:
    """Give the graph's outputs the names "output" (or "output_0", ...): the producing node's
    output is renamed, or an Identity added (an output that is an input, or given twice)."""
    produced = {name: node for node in graph.nodes for name in node.output}
    renamed: dict[str, str] = {}
    for value, new in zip(outputs, out_names):
        old = value.name
        if old in produced and old not in renamed and old not in input_names:
            renamed[old] = new
            value.name = new
        else:
            graph.nodes.append(graph.helper.make_node("Identity", [value.name], [new],
                                                      name=f"/{new}#node"))
            value.name = new
    for node in graph.nodes:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
        for i, name in enumerate(node.output):
            if name in renamed:
                node.output[i] = renamed[name]


def _write(proto: Any, target: Path) -> None:
    from chainrule.data.files import atomic_write

    data = proto.SerializeToString()
    if len(data) > MAX_PROTO_BYTES:
        raise ExportError(f"export: the model is {len(data):,} bytes, more than the 2 GB one "
                          f"ONNX file holds without external data")
    try:
        atomic_write(target, data)
    except OSError as error:
        raise ExportError(f"export: cannot write {target} ({error.strerror or error})") from None


def export_run(folder: Union[str, os.PathLike], path: Union[str, os.PathLike],
               opset: int = 17, dynamic_batch: bool = True) -> tuple[Any, str]:
    """Export the committed model of a ``chainrule train`` run folder to ``path``; returns the
    ModelProto and a one-line description of what was written."""
    from chainrule.onnx.runs import export_run as _export_run

    return _export_run(folder, path, opset, dynamic_batch)


def _shape_text(value_info: Any) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "x".join(d.dim_param or str(d.dim_value) for d in dims)


def describe(proto: Any) -> str:
    """"input [batchx1x8x8] -> output [batchx10]": the graph's inputs and outputs."""
    graph = proto.graph
    ins = ", ".join(f"{v.name} [{_shape_text(v)}]" for v in graph.input)
    outs = ", ".join(f"{v.name} [{_shape_text(v)}]" for v in graph.output)
    return f"{ins} -> {outs}"

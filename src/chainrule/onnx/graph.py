"""The small graph builder under :func:`chainrule.onnx.export`: values, nodes, initializers.

A :class:`Value` is one tensor of the ONNX graph being built: its name, the concrete chainrule
tensor it holds when the model runs on the example input (which gives every static size), and
the axes that are symbolic in the exported graph (the batch axis, ``dynamic_batch``). Converters
(:mod:`chainrule.onnx.converters`) add nodes with :meth:`Graph.op`, parameters with
:meth:`Graph.param` (initializers named after the model's ``state_dict``) and constants with
:meth:`Graph.const`; :meth:`Graph.call` runs the converter of a sub-module.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np

from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module

if TYPE_CHECKING:  # onnx is optional: imported where it is used
    import onnx

__all__ = ["ExportError", "Value", "Graph", "MIN_OPSET", "MAX_OPSET"]

#: The opsets export writes: 17 (LayerNormalization) up to 21, which onnx >= 1.16 and
#: onnxruntime >= 1.18 (the [onnx] extra's lower bounds) both know.
MIN_OPSET, MAX_OPSET = 17, 21


class ExportError(ChainruleError, ValueError):
    """A model, an argument or a run folder that :func:`chainrule.onnx.export` cannot export."""


class Value:
    """One tensor of the graph: ``name`` in ONNX, ``example`` its value at the example input
    (a chainrule Tensor: shapes and dtypes come from it), ``dyn`` its symbolic axes."""

    __slots__ = ("name", "example", "dyn")

    def __init__(self, name: str, example: Optional[Tensor] = None,
                 dyn: Optional[Sequence[int]] = None) -> None:
        self.name = name
        self.example = example
        self.dyn: Optional[tuple] = None if dyn is None else tuple(sorted(set(dyn)))

    @property
    def shape(self) -> tuple:
        assert self.example is not None
        return tuple(self.example.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Value({self.name!r}, shape={self.shape}, dyn={self.dyn})"


Converter = Callable[..., Any]


class Graph:
    """Nodes and initializers of one export, and the walk over the model's modules."""

    def __init__(self, model: Module, opset: int, dynamic: bool,
                 converters: dict[type, Converter]) -> None:
        from onnx import helper

        self.helper = helper
        self.opset, self.dynamic, self.converters = opset, dynamic, converters
        self.nodes: list = []
        self.initializers: dict[str, Any] = {}  # name -> TensorProto
        self.scope = ""  # the dotted path of the module being converted ("" for the root)
        self._taken: set[str] = set()
        self._counts: dict[str, int] = {}
        self._param_names: dict[int, str] = {}  # id(tensor) -> its state_dict name
        for name, tensor in [*model.state_dict().items(), *model.named_parameters(),
                             *model.named_buffers()]:
            self._param_names.setdefault(id(tensor), name)
        self._param_done: dict[int, str] = {}

    # ------------------------------------------------------------------ names
    def fresh(self, hint: str) -> str:
        """A value name not used yet, derived from ``hint``."""
        count = self._counts.get(hint, 0)
        while True:
            name = hint if count == 0 else f"{hint}_{count}"
            count += 1
            if name not in self._taken:
                self._counts[hint] = count
                self._taken.add(name)
                return name

    def _scoped(self, what: str) -> str:
        return f"/{self.scope}/{what}" if self.scope else f"/{what}"

    # ------------------------------------------------------------------ nodes
    def op(self, op_type: str, inputs: Sequence[Union[str, Value, None]], outputs: int = 1,
           **attrs: Any) -> Any:
        """Add one node; returns its output name (a list of names when ``outputs > 1``).
        An input None is an omitted optional input (the empty name)."""
        names = ["" if x is None else (x.name if isinstance(x, Value) else x) for x in inputs]
        outs = [self.fresh(self._scoped(op_type) + ("" if outputs == 1 else f":{i}"))
                for i in range(outputs)]
        node_name = self.fresh(self._scoped(op_type) + "#node")
        self.nodes.append(self.helper.make_node(op_type, names, outs, name=node_name,
                                                **{k: v for k, v in attrs.items()
                                                   if v is not None}))
        return outs[0] if outputs == 1 else outs

    def const(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """A constant initializer (an int list becomes int64, floats float32 unless ``dtype``)."""
        values = np.asarray(array)
        if dtype is not None:
            values = values.astype(dtype)
        elif values.dtype.kind in "iub":
            values = values.astype(np.int64)
        elif values.dtype.kind == "f":
            values = values.astype(np.float32)
        name = self.fresh(self._scoped(hint))
        self._add_initializer(name, values)
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def scalar(self, value: float, hint: str = "scalar") -> str:
        return self.const(np.asarray(value, dtype=np.float32), hint)

    def param(self, tensor: Tensor, hint: str = "param") -> str:
        """The initializer of a parameter or buffer, named as in the model's ``state_dict``
        (once per tensor, so shared weights stay shared)."""
        key = id(tensor)
        if key in self._param_done:
            return self._param_done[key]
        wanted = self._param_names.get(key)
        name = self.fresh(wanted if wanted is not None else self._scoped(hint))
        self._add_initializer(name, np.asarray(tensor.numpy()))
        self._param_done[key] = name
        return name

    def _add_initializer(self, name: str, values: np.ndarray) -> None:
        from onnx import numpy_helper

        self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(values), name)

    # ------------------------------------------------------------------ helpers for converters
    def reduce(self, op_type: str, x: Union[str, Value], axes: Sequence[int],
               keepdims: bool) -> str:
        """ReduceMean/ReduceMax/ReduceSum over ``axes``: an attribute before opset 18 (ReduceSum
        before 13), an input from then on."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x: Union[str, Value], axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")])

    def squeeze(self, x: Union[str, Value], axes: Sequence[int]) -> str:
        return self.op("Squeeze", [x, self.ints(axes, "axes")])

    def reshape(self, x: Union[str, Value], shape: Sequence[int]) -> str:
        """Reshape to ``shape`` (0 copies the input's size at that index, -1 is inferred: how a
        symbolic batch axis stays symbolic)."""
        return self.op("Reshape", [x, self.ints(shape, "shape")])

    def transpose(self, x: Union[str, Value], perm: Sequence[int]) -> str:
        return self.op("Transpose", [x], perm=list(perm))

    def matmul_t(self, x: Union[str, Value], weight: Tensor, bias: Optional[Tensor]) -> str:
        """x @ weight.T + bias for x of any rank (Gemm for 2-D x)."""
        w = self.param(weight, "weight")
        if isinstance(x, Value) and x.ndim == 2:
            inputs: list[Any] = [x, w] + ([self.param(bias, "bias")] if bias is not None else [])
            return self.op("Gemm", inputs, transB=1)
        out = self.op("MatMul", [x, self.transpose(w, (1, 0))])
        return out if bias is None else self.op("Add", [out, self.param(bias, "bias")])

    # ------------------------------------------------------------------ the walk
    @staticmethod
    def where(path: str) -> str:
        """A module's path as error messages name it: "model" and "model.0.f"."""
        return "model" + (f".{path}" if path else "")

    def unsupported(self, module: Module, why: str, path: Optional[str] = None) -> ExportError:
        """An ExportError naming the module (its path and class) and ``why``."""
        path = self.scope if path is None else path
        return ExportError(f"cannot export {self.where(path)} ({type(module).__name__}): {why}")

    def child(self, module: Module, name: str, *inputs: Value, **kwargs: Any) -> Any:
        """Convert ``module``'s sub-module ``name`` (an attribute or a container key)."""
        sub = module._modules[name]
        path = f"{self.scope}.{name}" if self.scope else name
        return self.call(sub, path, list(inputs), kwargs)

    def call(self, module: Module, path: str, inputs: list, kwargs: Optional[dict] = None) -> Any:
        """Convert ``module`` (at ``path``) applied to ``inputs``: its converter's outputs, as
        Values holding the module's own outputs at the example input."""
        kwargs = kwargs or {}
        converter = self.converters.get(type(module))
        if converter is None:
            raise self._no_converter(module, path)
        signature = inspect.signature(converter)
        try:
            signature.bind(self, module, *inputs, **kwargs)
        except TypeError:
            wanted = [p.name for p in list(signature.parameters.values())[2:]
                      if p.default is inspect.Parameter.empty]
            raise self.unsupported(module, f"it gets {len(inputs)} input(s) here, export converts "
                                            f"it with the inputs ({', '.join(wanted)}) (masks "
                                            f"and initial states are not exported)",
                                   path) from None
        # the converter first: inside a container, a sub-module's own error names the sub-module
        outer, self.scope = self.scope, path
        try:
            produced = converter(self, module, *inputs, **kwargs)
        except ExportError:
            raise
        except Exception:  # noqa: BLE001 -- an input forward refuses too: report forward's error
            self.scope = outer
            self._forward(module, path, inputs, kwargs)
            raise  # forward runs: a converter bug, shown as it is
        finally:
            self.scope = outer
        expected = self._forward(module, path, inputs, kwargs)
        default = inputs[0].dyn if inputs else None
        return _attach(produced, expected, default, module, path, self)

    def _forward(self, module: Module, path: str, inputs: list, kwargs: dict) -> Any:
        """The module's outputs at the example input (which give every later static size)."""
        try:
            return module(*[v.example for v in inputs], **kwargs)
        except Exception as error:  # noqa: BLE001 -- any failure of the user's forward
            message = " ".join(f"{type(error).__name__}: {error}".split())
            raise self.unsupported(module, f"its forward fails on the example input: "
                                            f"{message}", path) from None

    def _no_converter(self, module: Module, path: str) -> ExportError:
        names = ", ".join(sorted({c.__name__ for c in self.converters}))
        cls = type(module)
        base = next((b.__name__ for b in cls.__mro__[1:] if b in self.converters), None)
        hint = (f" (it subclasses {base}, but a subclass may change forward: export converts "
                f"the listed classes exactly)" if base else "")
        return self.unsupported(module, f"no ONNX converter{hint}; supported: {names}", path)


def _attach(produced: Any, expected: Any, default: Optional[tuple], module: Module, path: str,
            graph: Graph) -> Any:
    """Pair a converter's output names (or Values) with the module's outputs at the example."""
    if isinstance(produced, (tuple, list)):
        if not isinstance(expected, (tuple, list)) or len(expected) != len(produced):
            raise AssertionError(f"{graph.where(path)}: converter outputs do not match forward's")
        return tuple(_attach(p, e, default, module, path, graph)
                     for p, e in zip(produced, expected))
    if not isinstance(expected, Tensor):
        raise graph.unsupported(module, f"its forward returns a {type(expected).__name__}, "
                                        "not a tensor", path)
    if isinstance(produced, Value):
        dyn = produced.dyn if produced.dyn is not None else default
        return Value(produced.name, expected, dyn)
    return Value(produced, expected, default)


def flatten(values: Any) -> list:
    """The Values of a nested tuple of outputs, in order."""
    if isinstance(values, (tuple, list)):
        return [leaf for v in values for leaf in flatten(v)]
    return [values]


def value_info(name: str, value: Value, dynamic_name: str) -> "onnx.ValueInfoProto":
    from onnx import helper

    from chainrule.onnx.converters import onnx_dtype

    dims: list = [dynamic_name if value.dyn and axis in value.dyn else size
                  for axis, size in enumerate(value.shape)]
    assert value.example is not None
    return helper.make_tensor_value_info(name, onnx_dtype(value.example.dtype), dims)

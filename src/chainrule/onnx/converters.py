"""One converter per ``chainrule.nn`` module class: the module's forward (in eval mode) as ONNX
nodes.

Each converter is ``fn(graph, module, *inputs) -> outputs``: it reads the module's settings and
the inputs' static sizes (``Value.shape``, from the example input), adds nodes through
:class:`~chainrule.onnx.graph.Graph`, and returns the name of each output (or a ``Value`` when an
output's symbolic axes differ from the first input's). ``CONVERTERS`` maps each class, exactly (a
subclass may change forward, so it is not taken for its base), to its converter.

Where ONNX has the operation with the same definition it is used (Gemm, Conv, MaxPool, Softmax,
LayerNormalization, LSTM, ...). Otherwise the converter spells out chainrule's own formula with the
same elementary operations in the same order (Heaviside, Softplus with its threshold, GELU,
Hardtanh), or computes chainrule's constant index and weight tables (Upsample, circular padding,
adaptive pooling) so that the graph reads the same elements with the same weights.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from chainrule import nn
from chainrule.engine.tensor import Tensor
from chainrule.nn import attention as attention_module
from chainrule.onnx.graph import Converter, Graph, Value
from chainrule.ops import resample as resample_ops
from chainrule.ops.conv import functional as conv_functional

__all__ = ["CONVERTERS", "onnx_dtype"]

CONVERTERS: dict[type, Converter] = {}


def converts(*classes: type) -> Any:
    """Register the decorated function as the converter of ``classes``."""
    def register(fn: Converter) -> Converter:
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn
    return register


def onnx_dtype(dtype: Any) -> int:
    from onnx import TensorProto

    kinds = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
             "int64": TensorProto.INT64, "int32": TensorProto.INT32, "bool": TensorProto.BOOL}
    return kinds[np.dtype(dtype).name]


def _dyn(x: Value) -> tuple:
    return x.dyn or ()


def _batched(g: Graph, module: Any, x: Value, spatial: int) -> None:
    """Refuse an input that is not (N, C, *spatial) (an unbatched one has no batch axis)."""
    if x.ndim != spatial + 2:
        raise g.unsupported(module, f"export needs a batched input (N, C and {spatial} spatial "
                                    f"axes), got shape {x.shape}")


def _static_axis(g: Graph, module: Any, x: Value, axis: int, what: str) -> int:
    """``axis`` of x normalised; refused when it is the symbolic batch axis."""
    axis = axis % x.ndim
    if axis in _dyn(x):
        raise g.unsupported(module, f"{what} is the symbolic batch axis {axis}: export with "
                                    f"dynamic_batch=False")
    return axis


def _channel_shape(x: Value) -> list:
    """(1, C, 1, ...): the shape a per-channel vector takes to broadcast over x."""
    return [1, x.shape[1]] + [1] * (x.ndim - 2)


def _per_channel(g: Graph, tensor: Tensor, x: Value) -> str:
    """A per-channel parameter reshaped to broadcast over x's axis 1."""
    return g.reshape(g.param(tensor), _channel_shape(x))


# ====================================================================== containers
@converts(nn.Sequential)
def _sequential(g: Graph, m: nn.Sequential, x: Value) -> Any:
    for name in m._modules:
        if m._modules[name] is not None:
            x = g.child(m, name, x)
    return x


@converts(nn.Residual)
def _residual(g: Graph, m: nn.Residual, x: Value) -> str:
    return g.op("Add", [x, g.child(m, "f", x)])


@converts(nn.Identity, nn.Dropout, nn.Dropout2d)
def _identity(g: Graph, m: Any, x: Value) -> str:
    """Identity, and the dropouts in eval mode."""
    return g.op("Identity", [x])


# ====================================================================== linear layers
@converts(nn.Linear)
def _linear(g: Graph, m: nn.Linear, x: Value) -> str:
    return g.matmul_t(x, m.weight, m.bias)


@converts(nn.LowRankLinear)
def _low_rank_linear(g: Graph, m: nn.LowRankLinear, x: Value) -> str:
    inner = g.op("MatMul", [x, g.transpose(g.param(m.V), (1, 0))])
    out = g.op("MatMul", [inner, g.transpose(g.param(m.U), (1, 0))])
    return out if m.bias is None else g.op("Add", [out, g.param(m.bias)])


@converts(nn.Bilinear)
def _bilinear(g: Graph, m: nn.Bilinear, x1: Value, x2: Value) -> Value:
    out = g.op("Einsum", [x1, g.param(m.weight), x2], equation="...i,kij,...j->...k")
    if m.bias is not None:
        out = g.op("Add", [out, g.param(m.bias)])
    return Value(out, dyn=_dyn(x1) + _dyn(x2))


@converts(nn.Embedding)
def _embedding(g: Graph, m: nn.Embedding, ids: Value) -> str:
    if ids.example is not None and ids.example.dtype.kind not in "iu":
        raise g.unsupported(m, f"its input must be integer ids, got {ids.example.dtype}")
    return g.op("Gather", [g.param(m.weight), ids], axis=0)


# ====================================================================== convolutions
def _ntuple(value: Any, n: int) -> tuple:
    return (int(value),) * n if isinstance(value, (int, np.integer)) else tuple(
        int(v) for v in value)


@converts(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(g: Graph, m: Any, x: Value) -> str:
    n = len(m.kernel_size)
    _batched(g, m, x, n)
    stride, dilation = _ntuple(m.stride, n), _ntuple(m.dilation, n)
    pairs = conv_functional._conv_padding(m.padding, x.shape[2:], m.kernel_size, stride,
                                          dilation)
    inputs: list[Any] = [x, g.param(m.weight)] + ([g.param(m.bias)] if m.bias is not None else [])
    return g.op("Conv", inputs, kernel_shape=list(m.kernel_size), strides=list(stride),
                dilations=list(dilation), group=int(m.groups),
                pads=[lo for lo, _ in pairs] + [hi for _, hi in pairs])


@converts(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def _conv_transpose(g: Graph, m: Any, x: Value) -> str:
    n = len(m.kernel_size)
    _batched(g, m, x, n)
    stride, dilation = _ntuple(m.stride, n), _ntuple(m.dilation, n)
    pad, extra = _ntuple(m.padding, n), _ntuple(m.output_padding, n)
    inputs: list[Any] = [x, g.param(m.weight)] + ([g.param(m.bias)] if m.bias is not None else [])
    return g.op("ConvTranspose", inputs, kernel_shape=list(m.kernel_size),
                strides=list(stride), dilations=list(dilation), group=int(m.groups),
                pads=list(pad) * 2, output_padding=list(extra) if any(extra) else None)


# ====================================================================== pooling
def _pool_setup(g: Graph, m: Any, x: Value, n: int, dilation: Any = 1) -> tuple:
    _batched(g, m, x, n)
    example = x.example
    assert example is not None
    return conv_functional._pool_geometry(example, m.kernel_size, m.stride, m.padding, dilation,
                                          m.options.get("ceil_mode", False), n, type(m).__name__)


def _pad_far(g: Graph, x: Any, pads: tuple, value: float) -> str:
    """Pad the spatial axes by ``pads`` ((lo, hi) per axis) with ``value``."""
    spatial = len(pads)
    widths = [0, 0] + [lo for lo, _ in pads] + [0, 0] + [hi for _, hi in pads]
    assert len(widths) == 2 * (spatial + 2)
    return g.op("Pad", [x, g.ints(widths, "pads"), g.scalar(value, "pad_value")],
                mode="constant")


@converts(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def _max_pool(g: Graph, m: Any, x: Value) -> str:
    if m.options.get("return_indices"):
        raise g.unsupported(m, "return_indices=True (torch's per-plane indices are not ONNX's "
                               "MaxPool indices): export it with return_indices=False")
    n = x.ndim - 2
    kernel, stride, pads, dilation, _ = _pool_setup(g, m, x, n, m.options.get("dilation", 1))
    source: Any = x
    if any(lo != hi for lo, hi in pads):  # ceil mode's extra reach: -inf on the far side
        source, pads = _pad_far(g, x, pads, -np.inf), tuple((0, 0) for _ in pads)
    return g.op("MaxPool", [source], kernel_shape=list(kernel), strides=list(stride),
                dilations=list(dilation), pads=[lo for lo, _ in pads] + [hi for _, hi in pads])


@converts(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def _avg_pool(g: Graph, m: Any, x: Value) -> str:
    n = x.ndim - 2
    kernel, stride, pads, _, out_size = _pool_setup(g, m, x, n)
    include = bool(m.options.get("count_include_pad", True))
    if all(lo == hi for lo, hi in pads):  # ONNX's count_include_pad is torch's here
        return g.op("AveragePool", [x], kernel_shape=list(kernel), strides=list(stride),
                    pads=[lo for lo, _ in pads] + [hi for _, hi in pads],
                    count_include_pad=int(include))
    # ceil mode reaching past the padding: zero-pad, average over whole windows, then rescale
    # each output by k / chainrule's own divisor (windows clipped as torch clips them)
    padded = _pad_far(g, x, pads, 0.0)
    pooled = g.op("AveragePool", [padded], kernel_shape=list(kernel), strides=list(stride))
    divisor = conv_functional._avg_divisor(x.shape[2:], kernel, stride, pads, out_size, include)
    scale = (float(np.prod(kernel)) / divisor).astype(np.float32)
    return g.op("Mul", [pooled, g.const(scale, "divisor")])


@converts(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool(g: Graph, m: nn.AdaptiveAvgPool2d, x: Value) -> str:
    _batched(g, m, x, 2)
    sizes = x.shape[2:]
    wanted = conv_functional._ntuple_or_none(m.output_size, 2, "adaptive_avg_pool2d")
    out_size = tuple(i if o is None else o for i, o in zip(sizes, wanted))
    if out_size == (1, 1):
        return g.op("GlobalAveragePool", [x])
    if all(i % o == 0 for i, o in zip(sizes, out_size)):
        kernel = [i // o for i, o in zip(sizes, out_size)]
        return g.op("AveragePool", [x], kernel_shape=kernel, strides=kernel)
    # torch's windows [floor(j i / o), ceil((j + 1) i / o)): a constant (H W, oh ow) averaging
    # matrix applied to the flattened planes
    matrix = np.zeros((sizes[0] * sizes[1], out_size[0] * out_size[1]), dtype=np.float64)
    rows = [(j * sizes[0] // out_size[0], -(-(j + 1) * sizes[0] // out_size[0]))
            for j in range(out_size[0])]
    cols = [(j * sizes[1] // out_size[1], -(-(j + 1) * sizes[1] // out_size[1]))
            for j in range(out_size[1])]
    for a, (r0, r1) in enumerate(rows):
        for b, (c0, c1) in enumerate(cols):
            cell = np.zeros(sizes)
            cell[r0:r1, c0:c1] = 1.0 / ((r1 - r0) * (c1 - c0))
            matrix[:, a * out_size[1] + b] = cell.ravel()
    channels = x.shape[1]
    flat = g.reshape(x, [0, channels, sizes[0] * sizes[1]])
    pooled = g.op("MatMul", [flat, g.const(matrix.astype(np.float32), "adaptive_weights")])
    return g.reshape(pooled, [0, channels, *out_size])


# ====================================================================== normalisation
def _ones(g: Graph, n: int) -> str:
    return g.const(np.ones(n, dtype=np.float32), "ones")


def _zeros(g: Graph, n: int) -> str:
    return g.const(np.zeros(n, dtype=np.float32), "zeros")


def _scale_and_bias(g: Graph, m: Any, n: int) -> list:
    scale = g.param(m.weight) if m.weight is not None else _ones(g, n)
    bias = g.param(m.bias) if m.bias is not None else _zeros(g, n)
    return [scale, bias]


@converts(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(g: Graph, m: Any, x: Value) -> str:
    if x.ndim not in m._dims:
        raise g.unsupported(m, f"expected an input with {m._dims} dimensions, got {x.shape}")
    channels = x.shape[1]
    if m.running_mean is not None and m.running_var is not None:  # eval: the running statistics
        return g.op("BatchNormalization",
                    [x, *_scale_and_bias(g, m, channels), g.param(m.running_mean),
                     g.param(m.running_var)], epsilon=float(m.eps))
    # track_running_stats=False: the batch's own statistics, also in eval (chainrule's formula)
    axes = [0] + list(range(2, x.ndim))
    mean = g.reduce("ReduceMean", x, axes, keepdims=True)
    centred = g.op("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.op("Mul", [centred, centred]), axes, keepdims=True)
    out = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [var, g.scalar(m.eps, "eps")])])])
    return _affine(g, m, x, out)


def _affine(g: Graph, m: Any, x: Value, out: str) -> str:
    if m.weight is not None:
        out = g.op("Mul", [out, _per_channel(g, m.weight, x)])
    if m.bias is not None:
        out = g.op("Add", [out, _per_channel(g, m.bias, x)])
    return out


@converts(nn.InstanceNorm1d, nn.InstanceNorm2d)
def _instance_norm(g: Graph, m: Any, x: Value) -> str:
    if x.ndim not in m._dims:
        raise g.unsupported(m, f"expected a batched input with {m._dims[0]} dimensions, got "
                               f"{x.shape}")
    channels = x.shape[1]
    if m.track_running_stats and m.running_mean is not None:  # eval: the running statistics
        return g.op("BatchNormalization",
                    [x, *_scale_and_bias(g, m, channels), g.param(m.running_mean),
                     g.param(m.running_var)], epsilon=float(m.eps))
    return g.op("InstanceNormalization", [x, *_scale_and_bias(g, m, channels)],
                epsilon=float(m.eps))


@converts(nn.GroupNorm)
def _group_norm(g: Graph, m: nn.GroupNorm, x: Value) -> str:
    if x.ndim < 2 or any(a != 0 for a in _dyn(x)):
        raise g.unsupported(m, f"expected an input (N, C, ...), got {x.shape}")
    groups = m.num_groups
    grouped = g.reshape(x, [0, groups, -1])  # (N, G, C/G * spatial): one instance per group
    normed = g.op("InstanceNormalization", [grouped, _ones(g, groups), _zeros(g, groups)],
                  epsilon=float(m.eps))
    out = g.reshape(normed, [0, *x.shape[1:]])
    return _affine(g, m, x, out)


@converts(nn.LayerNorm)
def _layer_norm(g: Graph, m: nn.LayerNorm, x: Value) -> str:
    k = len(m.normalized_shape)
    if any(x.ndim - k <= a for a in _dyn(x)):
        raise g.unsupported(m, "it normalises over the symbolic batch axis")
    shape = tuple(m.normalized_shape)
    scale = g.param(m.weight) if m.weight is not None else g.const(np.ones(shape), "ones")
    inputs: list[Any] = [x, scale] + ([g.param(m.bias)] if m.bias is not None else [])
    return g.op("LayerNormalization", inputs, axis=-k, epsilon=float(m.eps))


# ====================================================================== shapes
@converts(nn.Flatten)
def _flatten(g: Graph, m: nn.Flatten, x: Value) -> Value:
    start, end = m.start_dim % x.ndim, m.end_dim % x.ndim
    dyn = _dyn(x)
    if start == 1 and end == x.ndim - 1 and x.ndim >= 2:
        return Value(g.op("Flatten", [x], axis=1), dyn=dyn)
    merged = int(np.prod(x.shape[start:end + 1]))
    target = [0] * start + [-1 if any(start <= a <= end for a in dyn) else merged]
    target += [-1 if a in dyn else x.shape[a] for a in range(end + 1, x.ndim)]
    if target.count(-1) > 1:
        raise g.unsupported(m, "it would leave two symbolic axes")
    out_dyn = [a if a < start else (start if a <= end else a - (end - start)) for a in dyn]
    return Value(g.reshape(x, target), dyn=out_dyn)


@converts(nn.Unflatten)
def _unflatten(g: Graph, m: nn.Unflatten, x: Value) -> Value:
    dim = _static_axis(g, m, x, m.dim, "the unflattened axis")
    sizes = list(m.unflattened_size)
    if -1 in sizes:  # resolve it from the example
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes[sizes.index(-1)] = x.shape[dim] // known
    dyn = _dyn(x)
    target = [0] * dim + sizes + [-1 if a in dyn else x.shape[a] for a in range(dim + 1, x.ndim)]
    out_dyn = [a if a < dim else a + len(sizes) - 1 for a in dyn]
    return Value(g.reshape(x, target), dyn=out_dyn)


# ====================================================================== activations
def _unary(op_type: str, **attrs: Any) -> Converter:
    def convert(g: Graph, m: Any, x: Value) -> str:
        return g.op(op_type, [x], **attrs)
    convert.__name__ = f"_{op_type.lower()}"
    return convert


for _cls, _op in ((nn.ReLU, "Relu"), (nn.Sigmoid, "Sigmoid"), (nn.Tanh, "Tanh"),
                  (nn.Abs, "Abs"), (nn.Sign, "Sign"), (nn.Softsign, "Softsign")):
    CONVERTERS[_cls] = _unary(_op)


@converts(nn.LeakyReLU)
def _leaky_relu(g: Graph, m: nn.LeakyReLU, x: Value) -> str:
    return g.op("LeakyRelu", [x], alpha=float(m.negative_slope))


@converts(nn.PReLU)
def _prelu(g: Graph, m: nn.PReLU, x: Value) -> str:
    slope = g.param(m.weight)
    if m.num_parameters != 1:
        slope = g.reshape(slope, [m.num_parameters] + [1] * (x.ndim - 2))  # (C, 1, ...)
    return g.op("PRelu", [x, slope])


@converts(nn.Heaviside, nn.Step)
def _heaviside(g: Graph, m: Any, x: Value) -> str:
    """1 for x > 0, value_at_zero at 0 (Step: 1), else 0 (nan: 0), chainrule's where-chain."""
    at_zero = 1.0 if isinstance(m, nn.Step) else float(m.value_at_zero)
    zero, one = g.scalar(0.0, "zero"), g.scalar(1.0, "one")
    inner = g.op("Where", [g.op("Equal", [x, zero]), g.scalar(at_zero, "at_zero"), zero])
    return g.op("Where", [g.op("Greater", [x, zero]), one, inner])


@converts(nn.Maxout)
def _maxout(g: Graph, m: nn.Maxout, x: Value) -> str:
    axis = _static_axis(g, m, x, 1, "Maxout's axis 1")
    assert axis == 1
    groups = x.shape[1] // m.pieces
    target = [0, groups, m.pieces] + [-1 if a in _dyn(x) else x.shape[a]
                                      for a in range(2, x.ndim)]
    return g.reduce("ReduceMax", g.reshape(x, target), [2], keepdims=False)


def _softplus_value(g: Graph, x: Any, beta: float, threshold: Optional[float]) -> str:
    """chainrule's softplus: logaddexp(0, beta x) / beta, and x where beta x > threshold."""
    z = x if beta == 1 else g.op("Mul", [x, g.scalar(beta, "beta")])
    smooth = g.op("Softplus", [z])
    if beta != 1:
        smooth = g.op("Div", [smooth, g.scalar(beta, "beta")])
    if threshold is None:
        return smooth
    above = g.op("Greater", [z, g.scalar(threshold, "threshold")])
    return g.op("Where", [above, x, smooth])


@converts(nn.Softplus)
def _softplus(g: Graph, m: nn.Softplus, x: Value) -> str:
    return _softplus_value(g, x, float(m.beta), m.threshold)


@converts(nn.LogSigmoid)
def _log_sigmoid(g: Graph, m: nn.LogSigmoid, x: Value) -> str:
    return g.op("Neg", [g.op("Softplus", [g.op("Neg", [x])])])


@converts(nn.Softmax)
def _softmax(g: Graph, m: nn.Softmax, x: Value) -> str:
    return g.op("Softmax", [x], axis=int(m.dim))


@converts(nn.LogSoftmax)
def _log_softmax(g: Graph, m: nn.LogSoftmax, x: Value) -> str:
    return g.op("LogSoftmax", [x], axis=int(m.dim))


@converts(nn.Softmin)
def _softmin(g: Graph, m: nn.Softmin, x: Value) -> str:
    return g.op("Softmax", [g.op("Neg", [x])], axis=int(m.dim))


def _gelu_value(g: Graph, x: Any, approximate: str) -> str:
    if approximate == "tanh":  # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), chainrule's order
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715, "c")])])
        inner = g.op("Mul", [inner, g.scalar(math.sqrt(2 / math.pi), "sqrt_2_over_pi")])
        half = g.op("Mul", [x, g.scalar(0.5, "half")])
        return g.op("Mul", [half, g.op("Add", [g.op("Tanh", [inner]), g.scalar(1.0, "one")])])
    # x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 (opset 17 has no Gelu operator)
    erf = g.op("Erf", [g.op("Mul", [x, g.scalar(1 / math.sqrt(2), "inv_sqrt2")])])
    phi = g.op("Mul", [g.op("Add", [erf, g.scalar(1.0, "one")]), g.scalar(0.5, "half")])
    return g.op("Mul", [x, phi])


@converts(nn.GELU)
def _gelu(g: Graph, m: nn.GELU, x: Value) -> str:
    return _gelu_value(g, x, m.approximate)


@converts(nn.SiLU)
def _silu(g: Graph, m: nn.SiLU, x: Value) -> str:
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


@converts(nn.ELU)
def _elu(g: Graph, m: nn.ELU, x: Value) -> str:
    return g.op("Elu", [x], alpha=float(m.alpha))


@converts(nn.CELU)
def _celu(g: Graph, m: nn.CELU, x: Value) -> str:
    return g.op("Celu", [x], alpha=float(m.alpha))


@converts(nn.SELU)
def _selu(g: Graph, m: nn.SELU, x: Value) -> str:
    from chainrule.ops.activations import _SELU_ALPHA, _SELU_SCALE

    return g.op("Selu", [x], alpha=float(_SELU_ALPHA), gamma=float(_SELU_SCALE))


@converts(nn.Mish)
def _mish(g: Graph, m: nn.Mish, x: Value) -> str:
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])


@converts(nn.Hardswish)
def _hardswish(g: Graph, m: nn.Hardswish, x: Value) -> str:
    return g.op("HardSwish", [x])


@converts(nn.Hardsigmoid)
def _hardsigmoid(g: Graph, m: nn.Hardsigmoid, x: Value) -> str:
    return g.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)


@converts(nn.Hardtanh)
def _hardtanh(g: Graph, m: nn.Hardtanh, x: Value) -> str:
    return g.op("Clip", [x, g.scalar(m.min_val, "min"), g.scalar(m.max_val, "max")])


@converts(nn.ReLU6)
def _relu6(g: Graph, m: nn.ReLU6, x: Value) -> str:
    return g.op("Clip", [x, g.scalar(0.0, "min"), g.scalar(6.0, "max")])


@converts(nn.GLU)
def _glu(g: Graph, m: nn.GLU, x: Value) -> str:
    axis = _static_axis(g, m, x, m.dim, "GLU's axis")
    half = x.shape[axis] // 2
    a, b = g.op("Split", [x, g.ints([half, half], "split")], outputs=2, axis=axis)
    return g.op("Mul", [a, g.op("Sigmoid", [b])])


# ====================================================================== two-input modules
def _broadcast_dyn(*xs: Value) -> tuple:
    ndim = max(x.ndim for x in xs)
    return tuple(sorted({a + ndim - x.ndim for x in xs for a in _dyn(x)}))


def _drop_axis(dyn: tuple, axis: int) -> tuple:
    return tuple(a if a < axis else a - 1 for a in dyn if a != axis)


@converts(nn.CosineSimilarity)
def _cosine_similarity(g: Graph, m: nn.CosineSimilarity, x1: Value, x2: Value) -> Value:
    ndim = max(x1.ndim, x2.ndim)
    axis = m.dim % ndim
    dot = g.reduce("ReduceSum", g.op("Mul", [x1, x2]), [axis], keepdims=False)
    n1 = g.reduce("ReduceSum", g.op("Mul", [x1, x1]), [axis], keepdims=False)
    n2 = g.reduce("ReduceSum", g.op("Mul", [x2, x2]), [axis], keepdims=False)
    norms = g.op("Sqrt", [g.op("Mul", [n1, n2])])
    out = g.op("Div", [dot, g.op("Max", [norms, g.scalar(m.eps, "eps")])])
    return Value(out, dyn=_drop_axis(_broadcast_dyn(x1, x2), axis))


@converts(nn.PairwiseDistance)
def _pairwise_distance(g: Graph, m: nn.PairwiseDistance, x1: Value, x2: Value) -> Value:
    ndim = max(x1.ndim, x2.ndim)
    difference = g.op("Abs", [g.op("Add", [g.op("Sub", [x1, x2]), g.scalar(m.eps, "eps")])])
    if math.isinf(m.norm):
        out = g.reduce("ReduceMax", difference, [ndim - 1], keepdims=m.keepdim)
    else:
        powered = g.op("Pow", [difference, g.scalar(m.norm, "p")])
        total = g.reduce("ReduceSum", powered, [ndim - 1], keepdims=m.keepdim)
        out = g.op("Pow", [total, g.scalar(1.0 / m.norm, "inv_p")])
    dyn = _broadcast_dyn(x1, x2)
    return Value(out, dyn=dyn if m.keepdim else _drop_axis(dyn, ndim - 1))


# ====================================================================== resampling
def _spatial_only(g: Graph, m: Any, x: Value, first: int) -> None:
    if any(a >= first for a in _dyn(x)):
        raise g.unsupported(m, "it resizes the symbolic batch axis: export with "
                               "dynamic_batch=False")


def _gather(g: Graph, x: Any, index: np.ndarray, axis: int) -> str:
    return g.op("Gather", [x, g.const(np.asarray(index, dtype=np.int64), "index")], axis=axis)


@converts(nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)
def _upsample(g: Graph, m: nn.Upsample, x: Value) -> str:
    """chainrule's interpolate, one spatial axis at a time, with its own index and weight
    tables: Gather for nearest, weighted Gathers (2 taps; 4 for bicubic) for the others."""
    if x.ndim < 3:
        raise g.unsupported(m, f"expected (N, C, *spatial), got {x.shape}")
    _spatial_only(g, m, x, 2)
    k = x.ndim - 2
    sizes = resample_ops._per_axis(m.size, k, "size", int)
    scales = resample_ops._per_axis(m.scale_factor, k, "scale_factor", float)
    if sizes is None:
        assert scales is not None
        sizes = [int(math.floor(float(n) * s)) for n, s in zip(x.shape[2:], scales)]
        if m.recompute_scale_factor:
            scales = None
    else:
        scales = None
    scale_list = scales or [None] * k
    align = bool(m.align_corners)
    out: Any = x
    for j in range(k):
        axis, n_in, n_out = 2 + j, x.shape[2 + j], sizes[j]
        if m.mode.startswith("nearest"):
            index = resample_ops._nearest_index(n_in, n_out, scale_list[j],
                                                m.mode == "nearest-exact")
            if len(index) != n_in or not (index == np.arange(n_in)).all():
                out = _gather(g, out, index, axis)
            continue
        if m.mode == "bicubic":
            src = resample_ops._source_coords(n_in, n_out, scale_list[j], align, True,
                                              np.float32)
            i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
            t = np.clip(src - i0, 0, 1)
            weights = resample_ops._cubic_weights(t)
            taps = [(np.clip(i0 - 1 + tap, 0, n_in - 1), weights[tap]) for tap in range(4)]
        else:
            if n_out == n_in:  # torch's identity shortcut
                continue
            src = resample_ops._source_coords(n_in, n_out, scale_list[j], align, False,
                                              np.float32)
            i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
            lam = np.clip(src - i0, 0, 1)
            taps = [(i0, 1 - lam), (i0 + (i0 < n_in - 1), lam)]
        total = None
        broadcast = (-1,) + (1,) * (x.ndim - 1 - axis)
        for index, weight in taps:
            w = np.asarray(weight).astype(np.float32).reshape(broadcast)
            term = g.op("Mul", [_gather(g, out, index, axis), g.const(w, "weights")])
            total = term if total is None else g.op("Add", [total, term])
        out = total
    return out if isinstance(out, str) else g.op("Identity", [out])


@converts(nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
          nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d,
          nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d,
          nn.CircularPad2d, nn.CircularPad3d)
def _pad(g: Graph, m: Any, x: Value) -> str:
    """Pad for constant (after cropping the negative widths), reflect and edge (widths >= 0);
    Gathers with chainrule's index tables for circular and cropping reflect/replicate."""
    widths, mode = m.padding, m._mode
    k = len(widths) // 2
    pairs = [(x.ndim - 1 - j, widths[2 * j], widths[2 * j + 1]) for j in range(k)]
    if any(axis in _dyn(x) for axis, lo, hi in pairs if lo or hi):
        raise g.unsupported(m, "it pads the symbolic batch axis: export with "
                               "dynamic_batch=False")
    if mode in ("constant", "reflect", "replicate") and (mode == "constant" or all(
            lo >= 0 and hi >= 0 for _, lo, hi in pairs)):
        source: Any = x
        crops = [(a, max(-lo, 0), max(-hi, 0)) for a, lo, hi in pairs if lo < 0 or hi < 0]
        if crops:
            source = g.op("Slice", [x, g.ints([lo for _, lo, _ in crops], "starts"),
                                    g.ints([x.shape[a] - hi for a, _, hi in crops], "ends"),
                                    g.ints([a for a, _, _ in crops], "axes")])
        begin, end = [0] * x.ndim, [0] * x.ndim
        for axis, lo, hi in pairs:
            begin[axis], end[axis] = max(lo, 0), max(hi, 0)
        onnx_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
        inputs = [source, g.ints(begin + end, "pads")]
        if mode == "constant":
            inputs.append(g.scalar(m.value, "value"))
        return g.op("Pad", inputs, mode=onnx_mode)
    out: Any = x
    for axis, lo, hi in pairs:
        n = x.shape[axis]
        if mode == "circular":
            if lo < 0 or hi < 0:
                start, stop = max(-lo, 0), n - max(-hi, 0)
                out = _gather(g, out, np.arange(start, stop), axis)
                n = stop - start
            index = np.arange(-max(lo, 0), n + max(hi, 0)) % max(n, 1)
        else:
            positions = np.arange(-lo, n + hi)
            index = ((n - 1) - np.abs((n - 1) - np.abs(positions)) if mode == "reflect"
                     else np.clip(positions, 0, n - 1))
        if len(index) == n and (index == np.arange(n)).all():
            continue
        out = _gather(g, out, index, axis)
    return out if isinstance(out, str) else g.op("Identity", [out])


def _block_kernel(channels: int, kernel: tuple) -> np.ndarray:
    """(C kh kw, 1, kh, kw): one-hot kernels picking each block element (unfold's order)."""
    per = kernel[0] * kernel[1]
    weight = np.zeros((channels * per, 1, *kernel), dtype=np.float32)
    for c in range(channels):
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                weight[c * per + i * kernel[1] + j, 0, i, j] = 1.0
    return weight


@converts(nn.Unfold)
def _unfold(g: Graph, m: nn.Unfold, x: Value) -> str:
    """im2col as a grouped convolution with one-hot kernels (every product is x * 1 or x * 0)."""
    _batched(g, m, x, 2)
    k, p, blocks, _, _ = resample_ops._block_plan("unfold", x.shape[2:], m.kernel_size,
                                                  m.dilation, m.padding, m.stride)
    d = resample_ops._pair(m.dilation, "dilation", "unfold")
    s = resample_ops._pair(m.stride, "stride", "unfold")
    channels = x.shape[1]
    cols = g.op("Conv", [x, g.const(_block_kernel(channels, k), "one_hot")],
                kernel_shape=list(k), strides=list(s), dilations=list(d), group=channels,
                pads=[p[0], p[1], p[0], p[1]])
    return g.reshape(cols, [0, channels * k[0] * k[1], blocks[0] * blocks[1]])


@converts(nn.Fold)
def _fold(g: Graph, m: nn.Fold, x: Value) -> str:
    """col2im as a grouped transposed convolution with one-hot kernels (overlaps add up)."""
    if x.ndim != 3:
        raise g.unsupported(m, f"export needs a batched input (N, C*kh*kw, L), got {x.shape}")
    size = resample_ops._pair(m.output_size, "output_size", "fold")
    k, p, blocks, _, _ = resample_ops._block_plan("fold", size, m.kernel_size, m.dilation,
                                                  m.padding, m.stride)
    d = resample_ops._pair(m.dilation, "dilation", "fold")
    s = resample_ops._pair(m.stride, "stride", "fold")
    channels = x.shape[1] // (k[0] * k[1])
    grid = g.reshape(x, [0, x.shape[1], blocks[0], blocks[1]])
    # the blocks cover padded positions [0, full); the output is [p, p + size)
    full = [(b - 1) * st + dd * (kk - 1) + 1 for b, st, dd, kk in zip(blocks, s, d, k)]
    extra = [o - (f - 2 * pp) for o, f, pp in zip(size, full, p)]
    end = [max(pp - e, 0) for pp, e in zip(p, extra)]
    out = g.op("ConvTranspose", [grid, g.const(_block_kernel(channels, k), "one_hot")],
               kernel_shape=list(k), strides=list(s), dilations=list(d), group=channels,
               pads=[p[0], p[1], end[0], end[1]])
    beyond = [max(e - pp, 0) for pp, e in zip(p, extra)]  # past every block: zeros
    if any(beyond):
        out = _pad_far(g, out, tuple((0, b) for b in beyond), 0.0)
    return out


# ====================================================================== recurrent layers
#: torch's gate blocks in ONNX's order: LSTM i f g o -> i o f c, GRU r z n -> z r h
_GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}


def _gates(g: Graph, tensor: Tensor, mode: str, hidden: int) -> str:
    """A weight or bias with its gate blocks in ONNX's order (a Gather of the initializer)."""
    order = _GATE_ORDER[mode]
    name = g.param(tensor)
    if order == tuple(range(len(order))):
        return name
    index = np.concatenate([np.arange(b * hidden, (b + 1) * hidden) for b in order])
    return _gather(g, name, index, 0)


@converts(nn.RNN, nn.GRU, nn.LSTM)
def _recurrent(g: Graph, m: Any, x: Value) -> Any:
    """Stacked ONNX RNN/GRU/LSTM nodes, one per layer (both directions in one node), in the
    sequence-first layout; zero initial states (an initial state is not an export input)."""
    unbatched = x.ndim == 2
    seq: Any = x
    if unbatched:
        seq = g.unsqueeze(x, [1])
    elif m.batch_first:
        seq = g.transpose(x, (1, 0, 2))
    mode, hidden = m.mode, m.hidden_size
    directions = 2 if m.bidirectional else 1
    op_type = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "GRU": "GRU", "LSTM": "LSTM"}[mode]
    h_last, c_last = [], []
    for layer in range(m.num_layers):
        tags = [f"l{layer}{suffix}" for suffix in ("", "_reverse")[:directions]]
        stacks: dict = {"W": [], "R": [], "B": []}
        for tag in tags:
            w_ih, w_hh, b_ih, b_hh = m._weights(tag)
            stacks["W"].append(g.unsqueeze(_gates(g, w_ih, mode, hidden), [0]))
            stacks["R"].append(g.unsqueeze(_gates(g, w_hh, mode, hidden), [0]))
            if b_ih is not None and b_hh is not None:
                both = g.op("Concat", [_gates(g, b_ih, mode, hidden),
                                       _gates(g, b_hh, mode, hidden)], axis=0)
                stacks["B"].append(g.unsqueeze(both, [0]))
        w, r = (g.op("Concat", stacks[k], axis=0) if directions == 2 else stacks[k][0]
                for k in ("W", "R"))
        bias = None
        if stacks["B"]:
            bias = g.op("Concat", stacks["B"], axis=0) if directions == 2 else stacks["B"][0]
        attrs: dict = {"hidden_size": hidden,
                       "direction": "bidirectional" if directions == 2 else "forward"}
        if op_type == "RNN":
            attrs["activations"] = ["Tanh" if mode == "RNN_TANH" else "Relu"] * directions
        if op_type == "GRU":
            attrs["linear_before_reset"] = 1  # torch's n = tanh(W_in x + b_in + r (W_hn h + b_hn))
        outputs = 3 if op_type == "LSTM" else 2
        results = g.op(op_type, [seq, w, r, bias], outputs=outputs, **attrs)
        y = results[0]  # (L, directions, N, H)
        h_last.append(results[1])
        if op_type == "LSTM":
            c_last.append(results[2])
        seq = g.reshape(g.transpose(y, (0, 2, 1, 3)), [0, 0, directions * hidden])
    out = seq
    if unbatched:
        out = g.squeeze(seq, [1])
    elif m.batch_first:
        out = g.transpose(seq, (1, 0, 2))
    states = [g.op("Concat", parts, axis=0) if len(parts) > 1 else g.op("Identity", parts)
              for parts in ([h_last, c_last] if op_type == "LSTM" else [h_last])]
    if unbatched:
        states = [g.squeeze(s, [1]) for s in states]
    # h_n is (layers * directions, N, H): symbolic where the batch is (batch_first), and free of
    # the sequence length that the symbolic axis 0 is otherwise
    state_dyn = (1,) if (m.batch_first and not unbatched and 0 in _dyn(x)) else ()
    state_values = [Value(s, dyn=state_dyn) for s in states]
    out_value = Value(out, dyn=_dyn(x))
    if op_type == "LSTM":
        return out_value, (state_values[0], state_values[1])
    return out_value, state_values[0]


# ====================================================================== attention
def _attention(g: Graph, m: attention_module.MultiheadAttention, query: Value, key: Value,
               value: Value, causal: bool, need_weights: bool) -> tuple:
    """chainrule's MultiheadAttention.forward without masks (or with the causal one): the
    projections, heads, scaled scores, softmax, weighted values, out_proj."""
    unbatched = query.ndim == 2
    heads, head_dim, embed = m.num_heads, m.head_dim, m.embed_dim
    q_in, k_in, v_in = (g.unsqueeze(t, [1]) if unbatched else t.name
                        for t in (query, key, value))
    batch_axis = 0 if m.batch_first and not unbatched else 1
    weights = g.op("Split", [g.param(m.in_proj_weight), g.ints([embed] * 3, "split")],
                   outputs=3, axis=0)
    biases: list = [None] * 3
    if m.in_proj_bias is not None:
        biases = g.op("Split", [g.param(m.in_proj_bias), g.ints([embed] * 3, "split")],
                      outputs=3, axis=0)
    projected = []
    for t, w, b in zip((q_in, k_in, v_in), weights, biases):
        out = g.op("MatMul", [t, g.transpose(w, (1, 0))])
        projected.append(out if b is None else g.op("Add", [out, b]))
    perm = (0, 2, 1, 3) if batch_axis == 0 else (1, 2, 0, 3)
    q, k, v = (g.transpose(g.reshape(t, [0, 0, heads, head_dim]), perm) for t in projected)
    scores = g.op("MatMul", [q, g.transpose(k, (0, 1, 3, 2))])
    scores = g.op("Div", [scores, g.scalar(math.sqrt(head_dim), "sqrt_head_dim")])
    if causal:
        if _dyn(query) and (unbatched or batch_axis == 1):
            raise g.unsupported(m, "a causal mask over a symbolic sequence axis: export with "
                                   "batch_first=True or dynamic_batch=False")
        length = query.shape[0 if batch_axis == 1 else 1] if not unbatched else query.shape[0]
        source = key.shape[0 if batch_axis == 1 else 1] if not unbatched else key.shape[0]
        masked = np.arange(length)[:, None] < np.arange(source)[None, :]
        mask = np.where(masked, -np.inf, 0.0).astype(np.float32)
        scores = g.op("Add", [scores, g.const(mask, "causal_mask")])
    attn = g.op("Softmax", [scores], axis=-1)
    mixed = g.op("MatMul", [attn, v])  # (N, heads, L, head_dim)
    order = (0, 2, 1, 3) if batch_axis == 0 else (2, 0, 1, 3)
    merged = g.reshape(g.transpose(mixed, order), [0, 0, embed])
    out = g.matmul_t(merged, m.out_proj.weight, m.out_proj.bias)
    if unbatched:
        out = g.squeeze(out, [1])
    if not need_weights:
        return out, None
    averaged = g.reduce("ReduceMean", attn, [1], keepdims=False)  # (N, L, S)
    return out, (g.squeeze(averaged, [0]) if unbatched else averaged)


@converts(nn.MultiheadAttention)
def _multihead_attention(g: Graph, m: attention_module.MultiheadAttention, query: Value,
                         key: Value, value: Value) -> tuple:
    if query.ndim not in (2, 3):
        raise g.unsupported(m, f"expected (L, N, E), (N, L, E) or (L, E), got {query.shape}")
    out, weights = _attention(g, m, query, key, value, causal=False, need_weights=True)
    dyn_q = _dyn(query)
    if query.ndim == 2:  # unbatched: (L, E) and weights (L, S); axis 0 is L (and S)
        weights_dyn = tuple(a for a in (0, 1) if dyn_q)
    elif m.batch_first:
        weights_dyn = (0,) if dyn_q else ()
    else:  # (L, N, E): axis 0 is L (and S for key and value): weights (N, L, S)
        weights_dyn = (1, 2) if dyn_q else ()
    return Value(out, dyn=dyn_q), Value(weights, dyn=weights_dyn)


def _activation_value(g: Graph, m: Any, x: str, who: str) -> str:
    """A transformer layer's activation: 'relu', 'gelu', or a module (converted by its row)."""
    if "activation" in m._modules:
        raise g.unsupported(m, f"its activation is a {type(m._modules['activation']).__name__} "
                               f"module: only 'relu' and 'gelu' are exported ({who})")
    if m.activation is attention_module._ACTIVATIONS["relu"]:
        return g.op("Relu", [x])
    if m.activation is attention_module._ACTIVATIONS["gelu"]:
        return _gelu_value(g, x, "none")
    raise g.unsupported(m, f"its activation is the Python callable {m.activation!r}: only "
                           f"'relu' and 'gelu' are exported ({who})")


def _layer_norm_value(g: Graph, norm: Any, x: Any) -> str:
    scale = g.param(norm.weight) if norm.weight is not None else g.const(
        np.ones(tuple(norm.normalized_shape)), "ones")
    inputs: list[Any] = [x, scale] + ([g.param(norm.bias)] if norm.bias is not None else [])
    return g.op("LayerNormalization", inputs, axis=-len(norm.normalized_shape),
                epsilon=float(norm.eps))


def _feed_forward(g: Graph, m: Any, x: Any, who: str) -> str:
    hidden = g.matmul_t(x, m.linear1.weight, m.linear1.bias)
    return g.matmul_t(_activation_value(g, m, hidden, who), m.linear2.weight, m.linear2.bias)


def _check_norm(g: Graph, m: Any, *names: str) -> None:
    for name in names:
        if type(getattr(m, name)) is not nn.LayerNorm:
            raise g.unsupported(m, f"its {name} is a {type(getattr(m, name)).__name__}, "
                                   f"not a LayerNorm")


@converts(nn.TransformerEncoderLayer)
def _encoder_layer(g: Graph, m: Any, src: Value, is_causal: bool = False) -> str:
    _check_norm(g, m, "norm1", "norm2")

    def attend(x: Any) -> str:
        shaped = Value(x, src.example, src.dyn)
        return _attention(g, m.self_attn, shaped, shaped, shaped, is_causal, False)[0]

    x: Any = src.name
    if m.norm_first:
        x = g.op("Add", [x, attend(_layer_norm_value(g, m.norm1, x))])
        return g.op("Add", [x, _feed_forward(g, m, _layer_norm_value(g, m.norm2, x),
                                             "TransformerEncoderLayer")])
    x = _layer_norm_value(g, m.norm1, g.op("Add", [x, attend(x)]))
    return _layer_norm_value(g, m.norm2, g.op("Add", [x, _feed_forward(
        g, m, x, "TransformerEncoderLayer")]))


@converts(nn.TransformerEncoder)
def _encoder(g: Graph, m: Any, src: Value, is_causal: bool = False) -> Any:
    x = src
    for name in m.layers._modules:
        x = g.call(m.layers._modules[name], _join(g.scope, f"layers.{name}"), [x],
                   {"is_causal": is_causal} if is_causal else {})
    return x if m.norm is None else g.child(m, "norm", x)


@converts(nn.TransformerDecoderLayer)
def _decoder_layer(g: Graph, m: Any, tgt: Value, memory: Value) -> str:
    _check_norm(g, m, "norm1", "norm2", "norm3")

    def self_block(x: Any) -> str:
        shaped = Value(x, tgt.example, tgt.dyn)
        return _attention(g, m.self_attn, shaped, shaped, shaped, False, False)[0]

    def cross_block(x: Any) -> str:
        shaped = Value(x, tgt.example, tgt.dyn)
        return _attention(g, m.multihead_attn, shaped, memory, memory, False, False)[0]

    who = "TransformerDecoderLayer"
    x: Any = tgt.name
    if m.norm_first:
        x = g.op("Add", [x, self_block(_layer_norm_value(g, m.norm1, x))])
        x = g.op("Add", [x, cross_block(_layer_norm_value(g, m.norm2, x))])
        return g.op("Add", [x, _feed_forward(g, m, _layer_norm_value(g, m.norm3, x), who)])
    x = _layer_norm_value(g, m.norm1, g.op("Add", [x, self_block(x)]))
    x = _layer_norm_value(g, m.norm2, g.op("Add", [x, cross_block(x)]))
    return _layer_norm_value(g, m.norm3, g.op("Add", [x, _feed_forward(g, m, x, who)]))


@converts(nn.TransformerDecoder)
def _decoder(g: Graph, m: Any, tgt: Value, memory: Value) -> Any:
    x = tgt
    for name in m.layers._modules:
        x = g.call(m.layers._modules[name], _join(g.scope, f"layers.{name}"), [x, memory])
    return x if m.norm is None else g.child(m, "norm", x)


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


# ====================================================================== chainrule train's models
def _register_language_models() -> None:
    """The character models of ``chainrule train --model lstm|transformer``."""
    from chainrule.training.language import CharLSTM, CharTransformer

    @converts(CharLSTM)
    def _char_lstm(g: Graph, m: CharLSTM, ids: Value) -> str:
        embedded = g.child(m, "embedding", ids)
        out, _ = g.child(m, "lstm", embedded)
        return g.transpose(g.child(m, "head", out), (0, 2, 1))

    @converts(CharTransformer)
    def _char_transformer(g: Graph, m: CharTransformer, ids: Value) -> str:
        if ids.ndim != 2 or 1 in _dyn(ids):
            raise g.unsupported(m, f"expected ids (N, L), got {ids.shape}")
        length = ids.shape[1]
        tokens = g.child(m, "embedding", ids)
        positions = _gather(g, g.param(m.position.weight), np.arange(length), 0)
        h = Value(g.op("Add", [tokens, positions]), tokens.example, tokens.dyn)
        encoded = g.child(m, "encoder", h, is_causal=True)
        return g.transpose(g.child(m, "head", encoded), (0, 2, 1))


_register_language_models()

#: the names of the classes that have a converter
SUPPORTED = tuple(sorted(cls.__name__ for cls in CONVERTERS))

"""The public convolution and pooling functions: argument parsing, shape checks, then one primitive.

Arguments follow ``torch.nn.functional``: (N, C, *spatial) or unbatched (C, *spatial) inputs;
``stride``, ``padding``, ``dilation`` as an int or one per axis. Errors name the function the user
called and the argument at fault.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Optional, Sequence, Union

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.conv import sizes as shapes
from chainrule.ops.conv.pooling import avg_pool_p, max_pool_indices_p, max_pool_p
from chainrule.ops.conv.primitives import conv_p, conv_transpose_p
from chainrule.ops.primitive import as_tensor
from chainrule.ops.reductions import mean
from chainrule.ops.shape import getitem, reshape, stack

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
    "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "max_unpool1d",
    "max_unpool2d", "conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d",
]

# ---------------------------------------------------------------- argument handling
Size = Union[int, Sequence[int]]
Padding = Union[int, str, Sequence]


def _ntuple(value, n: int, name: str, minimum: int = 1) -> tuple:
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name}={value!r}: expected an int or {n} ints")
    if any(v < minimum for v in values):
        raise ValueError(f"{name}={value!r}: every entry must be >= {minimum}")
    return tuple(int(v) for v in values)


def _conv_padding(padding: Padding, sizes: tuple, kernel: tuple, stride: tuple,
                  dilation: tuple) -> tuple:
    """Per-side pads ((lo, hi), ...) from an int, a tuple (per axis, or per-side pairs) or a mode
    name.

    In 1-d a pair of ints is (before, after).
    'same' has TensorFlow's meaning for every stride: output = ceil(input / stride), the odd pad
    on the far side. 'full' pads d(k-1) on both sides, 'valid' nothing.
    """
    n = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "full":
            return tuple((shapes.effective_kernel(k, d) - 1,) * 2 for k, d in zip(kernel, dilation))
        if padding == "same":
            return tuple(shapes.same_padding(i, k, s, d)
                         for i, k, s, d in zip(sizes, kernel, stride, dilation))
        raise ValueError(f"padding={padding!r}: use an int, a tuple, or 'valid', 'same', 'full'")
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * n
    padding = tuple(padding)
    if n == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        padding = (padding,)  # 1-d: a pair of ints is (before, after)
    if len(padding) == n and all(isinstance(p, (int, np.integer)) for p in padding):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif len(padding) == n and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    else:
        raise ValueError(f"padding={padding!r}: expected an int, {n} ints, "
                         f"or {n} (before, after) pairs")
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"padding={padding!r} must not be negative")
    return pairs


def _output_sizes(sizes, padding, kernel, stride, dilation, what: str) -> tuple:
    """floor((i + lo + hi - d(k-1) - 1) / s) + 1 per axis (``shapes.conv_output_size``)."""
    with _named(what):
        return tuple(shapes.conv_output_size(i, k, s, pads, d)
                     for i, pads, k, s, d in zip(sizes, padding, kernel, stride, dilation))


@contextlib.contextmanager
def _named(what: str):
    """Prefix the shape arithmetic's errors with the function the user called."""
    try:
        yield
    except ShapeError as error:
        raise ShapeError(f"{what}: {error}") from None


def _batched(x: Tensor, n_spatial: int, name: str) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or the unbatched (C, *spatial); return the batched tensor and a
    flag."""
    if x.ndim == n_spatial + 1:
        return x.reshape((1,) + x.shape), True
    if x.ndim != n_spatial + 2:
        raise ShapeError(f"{name}: input must be (N, C, {'L' if n_spatial == 1 else 'H, W'}) "
                         f"or unbatched, got shape {x.shape}")
    return x, False


def _convnd(x, weight, bias, stride, padding, dilation, groups, n: int) -> Tensor:
    name = f"conv{n}d"
    x, weight = as_tensor(x), as_tensor(weight)
    x, unbatched = _batched(x, n, name)
    if weight.ndim != n + 2:
        raise ShapeError(f"{name}: weight must be (out_channels, in_channels/groups, *kernel) "
                         f"with {n + 2} dimensions, got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups={groups!r} must be a positive int")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ShapeError(f"{name}: in_channels {c_in} and out_channels {c_out} must both be "
                         f"divisible by groups={groups}")
    if weight.shape[1] * groups != c_in:
        raise ShapeError(f"{name}: weight {weight.shape} expects {weight.shape[1] * groups} "
                         f"input channels (weight.shape[1] * groups), the input has {c_in}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(stride, n, "stride"), _ntuple(dilation, n, "dilation")
    pads = _conv_padding(padding, x.shape[2:], kernel, stride, dilation)
    out_size = _output_sizes(x.shape[2:], pads, kernel, stride, dilation, name)
    out = conv_p.bind(x, weight, stride=stride, padding=pads, dilation=dilation, groups=int(groups),
                      output_size=out_size)
    out = _add_bias(out, bias, c_out, name)
    return out.reshape(out.shape[1:]) if unbatched else out


def _add_bias(out: Tensor, bias, channels: int, name: str) -> Tensor:
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (channels,):
        raise ShapeError(f"{name}: bias must have shape ({channels},), got {bias.shape}")
    return out + bias.reshape((1, channels) + (1,) * (out.ndim - 2))


def conv1d(x, weight, bias=None, stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation of x (N, C_in, L) with weight (C_out, C_in/groups, k), as
    ``torch.nn.functional.conv1d``.

    out[n, o, l] = bias[o] + sum_{c, j} weight[o, c, j] x_pad[n, g(o) C_in/groups + c, l s + j d].
    ``padding``: int, tuple, per-side pairs, or 'valid' / 'same' (any stride: output ceil(L / s))
    / 'full'.
    """
    return _convnd(x, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(x, weight, bias=None, stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation of x (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW), as
    PyTorch.

    Output size per axis: floor((i + pad_lo + pad_hi - d(k-1) - 1) / s) + 1. ``padding='same'``
    works for every stride with TensorFlow's meaning (output ceil(i / s), the odd pad on the far
    side).
    """
    return _convnd(x, weight, bias, stride, padding, dilation, groups, 2)


def _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation,
                      n: int) -> Tensor:
    name = f"conv_transpose{n}d"
    x, weight = as_tensor(x), as_tensor(weight)
    x, unbatched = _batched(x, n, name)
    if weight.ndim != n + 2:
        raise ShapeError(f"{name}: weight must be (in_channels, out_channels/groups, *kernel), "
                         f"got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1 or x.shape[1] % groups:
        raise ShapeError(f"{name}: groups={groups!r} must be a positive int dividing "
                         f"in_channels {x.shape[1]}")
    if weight.shape[0] != x.shape[1]:
        raise ShapeError(f"{name}: weight {weight.shape} expects {weight.shape[0]} input channels, "
                         f"input has {x.shape[1]}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(stride, n, "stride"), _ntuple(dilation, n, "dilation")
    pad = _ntuple(padding, n, "padding", minimum=0)
    extra = _ntuple(output_padding, n, "output_padding", minimum=0)
    with _named(name):
        input_size = tuple(shapes.conv_transpose_output_size(i, k, s, p, e, d)
                           for i, k, s, p, e, d
                           in zip(x.shape[2:], kernel, stride, pad, extra, dilation))
    out = conv_transpose_p.bind(x, weight, stride=stride, padding=tuple((p, p) for p in pad),
                                dilation=dilation, groups=int(groups), input_size=input_size)
    out = _add_bias(out, bias, weight.shape[1] * groups, name)
    return out.reshape(out.shape[1:]) if unbatched else out


def conv_transpose1d(x, weight, bias=None, stride: Size = 1, padding: Size = 0,
                     output_padding: Size = 0, groups: int = 1, dilation: Size = 1) -> Tensor:
    """The adjoint of conv1d in its input (``torch.nn.functional.conv_transpose1d``): weight
    (C_in, C_out/groups, k)."""
    return _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x, weight, bias=None, stride: Size = 1, padding: Size = 0,
                     output_padding: Size = 0, groups: int = 1, dilation: Size = 1) -> Tensor:
    """The adjoint of conv2d in its input, as ``torch.nn.functional.conv_transpose2d``.

    weight is (C_in, C_out/groups, kH, kW); output size (i-1)s - 2p + d(k-1) + output_padding + 1.
    """
    return _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def _pool_geometry(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, n: int, name: str):
    """(kernel, stride, per-side padding incl. ceil-mode extra, dilation, output size), PyTorch's
    rules."""
    kernel = _ntuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None or stride == () else _ntuple(stride, n, "stride")
    pad = _ntuple(padding, n, "padding", minimum=0)
    dilation = _ntuple(dilation, n, "dilation")
    sizes = x.shape[2:]
    with _named(name):
        out = [shapes.pool_output_size(i, k, s, p, d, bool(ceil_mode))
               for i, k, s, p, d in zip(sizes, kernel, stride, pad, dilation)]
    # ceil mode's last window may run past the padding: pad the far side as far as it reaches
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - i - p))
                 for i, k, s, p, d, o in zip(sizes, kernel, stride, pad, dilation, out))
    return kernel, stride, pads, dilation, tuple(out)


def _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, n: int,
                return_indices: bool = False) -> Any:
    name = f"max_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    kernel, stride, pads, dilation, out_size = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, n, name)
    params = dict(kernel=kernel, stride=stride, padding=pads, dilation=dilation,
                  output_size=out_size)
    out = max_pool_p.bind(x, **params)
    if not return_indices:
        return out.reshape(out.shape[1:]) if unbatched else out
    indices = max_pool_indices_p.bind(x.detach(), out.detach(), **params)
    if unbatched:
        return out.reshape(out.shape[1:]), indices.reshape(indices.shape[1:])
    return out, indices


def max_pool1d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False
               ) -> Any:  # a Tensor, or (values, indices) with return_indices
    """Maximum over windows of (N, C, L). The gradient goes to the first maximum of each window
    (PyTorch). ``return_indices``: also the position of each maximum in L (int64)."""
    return _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, 1, return_indices)


def max_pool2d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False
               ) -> Any:  # a Tensor, or (values, indices) with return_indices
    """Maximum over windows of (N, C, H, W), stride defaulting to the kernel size; padding counts
    as -inf.

    Ties: the whole gradient goes to the *first* maximum of the window in row-major order, as
    PyTorch does (a valid subgradient; ``max`` splits ties instead). ``return_indices``: also
    each maximum's flat position h * W + w in its (H, W) plane (int64, torch's numbering), which
    ``max_unpool2d`` takes.
    """
    return _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, 2, return_indices)


def _max_unpoolnd(x, indices, kernel_size, stride, padding, output_size, n: int) -> Tensor:
    """Scatter each value to its recorded position in a zero plane (torch's max_unpool)."""
    from chainrule.ops.creation import zeros
    from chainrule.ops.indexing import scatter

    name = f"max_unpool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    indices = as_tensor(indices)
    if unbatched:
        indices = reshape(indices, (1,) + indices.shape)
    if indices.shape != x.shape or indices.dtype.kind not in "iu":
        raise ShapeError(f"{name}: indices must be integers of the input's shape {x.shape}, got "
                         f"{indices.dtype} {indices.shape}")
    kernel = _ntuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None else _ntuple(stride, n, "stride")
    pad = _ntuple(padding, n, "padding", minimum=0)
    default = tuple((i - 1) * s - 2 * p + k
                    for i, k, s, p in zip(x.shape[2:], kernel, stride, pad))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)[-n:]
        if len(size) != n:
            raise ShapeError(f"{name}: output_size={output_size!r} must give {n} spatial sizes")
    batch, channels = x.shape[:2]
    plane = zeros(batch, channels, int(np.prod(size)), dtype=x.dtype, device=x.device)
    flat = scatter(plane, 2, reshape(indices, (batch, channels, -1)),
                   reshape(x, (batch, channels, -1)))
    out = reshape(flat, (batch, channels) + size)
    return reshape(out, out.shape[1:]) if unbatched else out


def max_unpool1d(x, indices, kernel_size: Size, stride: Optional[Size] = None,
                 padding: Size = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """The partial inverse of max_pool1d(return_indices=True): zeros except at the maxima."""
    return _max_unpoolnd(x, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(x, indices, kernel_size: Size, stride: Optional[Size] = None,
                 padding: Size = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """The partial inverse of max_pool2d(return_indices=True): each value goes back to the
    position of its maximum in an (H_out, W_out) plane of zeros, H_out = (H - 1) s - 2 p + k by
    default (torch's). Differentiable in x (the gradient gathers from those positions)."""
    return _max_unpoolnd(x, indices, kernel_size, stride, padding, output_size, 2)


def _avg_divisor(sizes, kernel, stride, pads, out_size, count_include_pad: bool) -> np.ndarray:
    """Per-output-position divisor, as PyTorch: windows clipped to input + padding (or to the
    input)."""
    divisor = np.ones((), dtype=np.float64)
    for i, k, s, (p, _), o in zip(sizes, kernel, stride, pads, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, i + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, i)
        divisor = np.multiply.outer(divisor, (end - start).astype(np.float64))
    return divisor


def _floating(x: Tensor, name: str) -> None:
    """Averages need a floating input (as PyTorch): a clear error, not the backend's casting one."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"{name}: x has dtype {x.dtype}, averaging needs a floating point input "
                        f"(convert it first, e.g. x.astype('float32'))")


def _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, n: int,
                name: str = "") -> Tensor:
    name = name or f"avg_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    _floating(x, name)
    kernel, stride, pads, _, out_size = _pool_geometry(
        x, kernel_size, stride, padding, 1, ceil_mode, n, name)
    divisor = _avg_divisor(x.shape[2:], kernel, stride, pads, out_size,
                           count_include_pad).astype(x.dtype)
    out = avg_pool_p.bind(x, kernel=kernel, stride=stride, padding=pads, output_size=out_size,
                          divisor=divisor)
    return out.reshape(out.shape[1:]) if unbatched else out


def avg_pool1d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, L), as ``torch.nn.functional.avg_pool1d``."""
    return _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, 1)


def avg_pool2d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, H, W). ``count_include_pad`` decides whether zero padding counts
    in the divisor."""
    return _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, 2)


def _adaptive_avg_poolnd(x, output_size, n: int) -> Tensor:
    name = f"adaptive_avg_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    _floating(x, name)
    sizes = x.shape[2:]
    wanted = _ntuple_or_none(output_size, n, name)
    out_size = tuple(i if o is None else o for i, o in zip(sizes, wanted))
    if all(i % o == 0 for i, o in zip(sizes, out_size)):  # equal windows: a plain average pool
        kernel = tuple(i // o for i, o in zip(sizes, out_size))
        out = _avg_poolnd(x, kernel, kernel, 0, False, True, n, name)
    else:  # PyTorch's windows: [floor(j i / o), ceil((j + 1) i / o)) on each axis
        out = _adaptive_by_slices(x, sizes, out_size)
    return out.reshape(out.shape[1:]) if unbatched else out


def _ntuple_or_none(value, n: int, name: str) -> tuple:
    values = (value,) * n if value is None or isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or any(
        v is not None and (not isinstance(v, (int, np.integer)) or v < 1) for v in values
    ):
        raise ValueError(f"{name}: output_size={value!r} must be a positive int, None, "
                         f"or {n} of those")
    return values


def _adaptive_by_slices(x: Tensor, sizes: tuple, out_size: tuple) -> Tensor:
    bounds = [[(j * i // o, -(-(j + 1) * i // o)) for j in range(o)]
              for i, o in zip(sizes, out_size)]
    cells = []
    for region in itertools.product(*bounds):
        index = (slice(None), slice(None)) + tuple(slice(a, b) for a, b in region)
        cells.append(mean(getitem(x, index), axis=tuple(range(2, x.ndim))))
    return reshape(stack(cells, axis=-1), x.shape[:2] + out_size)


def adaptive_avg_pool1d(x, output_size: int) -> Tensor:
    """Average pooling to a fixed output length (PyTorch's window boundaries)."""
    return _adaptive_avg_poolnd(x, output_size, 1)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """Average pooling to a fixed (H, W) output (an int for both; None keeps an axis); 1 is global
    average pooling."""
    return _adaptive_avg_poolnd(x, output_size, 2)


# ---------------------------------------------------------------- 3-D (volumes (N, C, D, H, W))
def conv3d(x, weight, bias=None, stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
           groups: int = 1) -> Tensor:
    """3-D cross-correlation of x (N, C_in, D, H, W) with weight (C_out, C_in/groups, kD, kH, kW),
    as PyTorch: the same n-d primitives as conv2d, one more spatial axis."""
    return _convnd(x, weight, bias, stride, padding, dilation, groups, 3)


def conv_transpose3d(x, weight, bias=None, stride: Size = 1, padding: Size = 0,
                     output_padding: Size = 0, groups: int = 1, dilation: Size = 1) -> Tensor:
    """The adjoint of conv3d in its input; weight (C_in, C_out/groups, kD, kH, kW)."""
    return _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, 3)


def max_pool3d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               dilation: Size = 1, ceil_mode: bool = False, return_indices: bool = False
               ) -> Any:  # a Tensor, or (values, indices) with return_indices
    """Maximum over windows of (N, C, D, H, W); the gradient to each window's first maximum."""
    return _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, 3, return_indices)


def avg_pool3d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, D, H, W)."""
    return _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, 3)

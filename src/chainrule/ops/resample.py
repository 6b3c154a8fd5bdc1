"""Resampling: torch's padding modes, interpolation, unfold/fold (issue 12).

Every function here is a composite of shape primitives (``getitem`` with host integer index
arrays, ``pad``, ``index_add``, ``reshape``, ``transpose``) and elementwise products with constant
weights: exact, on every backend (index arrays go on the leading axes, the array API standard's
form), and differentiable to any order. Layouts are PyTorch's: ``(N, C, *spatial)``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.primitive import as_tensor
from chainrule.ops.shape import getitem, index_add, moveaxis, reshape, transpose
from chainrule.ops.shape import pad as np_pad

__all__ = ["pad_nd", "interpolate", "unfold", "fold"]

#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {}

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _take(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """x's entries at the integer ``index`` (1-D, valid) along ``axis``: the axis moved to the
    front, one leading-array getitem, moved back. The gradient is getitem's scatter-add."""
    front = moveaxis(x, axis, 0)
    return moveaxis(getitem(front, (np.asarray(index, dtype=np.intp),)), 0, axis)


def _crop(x: Tensor, axis: int, lo: int, hi: int) -> Tensor:
    lead = (slice(None),) * axis
    return getitem(x, lead + (slice(lo, x.shape[axis] - hi),))


# ------------------------------------------------------------------ pad
def pad_nd(x, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """``torch.nn.functional.pad``: ``pad`` lists (before, after) widths from the LAST axis
    backwards: (left, right) pads the last axis, (left, right, top, bottom) the last two, ...

    Modes (for an axis of length n and the output position i = -before .. n+after-1):

    * ``"constant"``: ``value`` outside the input; any rank, ``len(pad) <= 2 * ndim``.
    * ``"reflect"``: ``x[n-1 - |n-1 - |i||]`` (mirrored without repeating the edge); each width
      must be < n.
    * ``"replicate"``: x[clip(i, 0, n-1)] (the edge repeated); n must be > 0.
    * ``"circular"``: negative widths crop first, then x[i mod m] on the cropped length m;
      each width must be <= n (wrapping once at most).

    Negative widths crop (all modes, as torch). The non-constant modes take torch's shapes:
    2 widths for 2-D/3-D input, 4 for 3-D/4-D, 6 for 4-D/5-D. The result is linear in x; the
    gradient sums each output's cotangent into the element it copies (``getitem``'s
    scatter-add), ``value`` gets no gradient.
    """
    x = as_tensor(x)
    try:
        widths = [int(p) for p in pad]
    except TypeError:
        raise TypeError(f"pad_nd: pad={pad!r} must be a sequence of ints") from None
    if any(isinstance(p, bool) for p in pad) or any(p != w for p, w in zip(pad, widths)):
        raise TypeError(f"pad_nd: pad={pad!r} must hold ints")
    if len(widths) % 2:
        raise ValueError(f"pad_nd: pad={tuple(widths)} must have an even length (a (before, "
                         "after) pair per axis, from the last axis backwards)")
    if len(widths) > 2 * x.ndim:
        raise ShapeError(f"pad_nd: pad={tuple(widths)} pads {len(widths) // 2} axes, more than "
                         f"the input's {x.ndim} (shape {x.shape})")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad_nd: mode={mode!r} must be one of {', '.join(_PAD_MODES)}")
    k = len(widths) // 2
    if mode != "constant" and (k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2)):
        raise ShapeError(
            f"pad_nd: mode={mode!r} with {len(widths)} widths needs a {k + 1}-D or {k + 2}-D "
            f"input, got shape {x.shape} (2 widths: 2-D or 3-D input, 4: 3-D or 4-D, 6: 4-D or "
            "5-D)")
    pairs = [(x.ndim - 1 - j, widths[2 * j], widths[2 * j + 1]) for j in range(k)]
    for axis, lo, hi in pairs:
        n = x.shape[axis]
        if n + lo + hi < 0:
            raise ShapeError(f"pad_nd: pad ({lo}, {hi}) crops more than the {n} elements of "
                             f"axis {axis} (input shape {x.shape})")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"pad_nd: reflect padding ({lo}, {hi}) must be less than the "
                             f"length {n} of axis {axis} (input shape {x.shape})")
        if mode == "replicate" and n == 0 and (lo > 0 or hi > 0):
            raise ValueError(f"pad_nd: replicate padding of the empty axis {axis} (input shape "
                             f"{x.shape}) has nothing to repeat")
        if mode == "circular":
            m = n + min(lo, 0) + min(hi, 0)
            if max(lo, hi) > n or max(lo, hi) > m:
                raise ValueError(
                    f"pad_nd: circular padding ({lo}, {hi}) of axis {axis} (length {n}, "
                    f"{m} after cropping) wraps around more than once: each width must be at "
                    "most the (cropped) length")
    if mode in ("reflect", "replicate") and pairs and all(
            x.shape[axis] + lo + hi < 1 for axis, lo, hi in pairs):
        raise ShapeError(f"pad_nd: {mode} padding {tuple(widths)} leaves no element on any "
                         f"padded axis of input {x.shape} (torch refuses such an output too)")

    if mode == "constant":
        crops = [(a, max(-lo, 0), max(-hi, 0)) for a, lo, hi in pairs]
        for axis, lo, hi in crops:
            if lo or hi:
                x = _crop(x, axis, lo, hi)
        grow = [(0, 0)] * x.ndim
        for axis, lo, hi in pairs:
            grow[axis] = (max(lo, 0), max(hi, 0))
        if any(lo or hi for lo, hi in grow):
            x = np_pad(x, grow, constant_values=value)
        return x
    for axis, lo, hi in pairs:
        n = x.shape[axis]
        if mode == "circular":
            if lo < 0 or hi < 0:
                x = _crop(x, axis, max(-lo, 0), max(-hi, 0))
                n = x.shape[axis]
            positions = np.arange(-max(lo, 0), n + max(hi, 0))
            index = positions % max(n, 1)
        else:
            positions = np.arange(-lo, n + hi)
            if mode == "reflect":
                index = (n - 1) - np.abs((n - 1) - np.abs(positions))
            else:
                index = np.clip(positions, 0, n - 1)
        if len(index) == n and (index == np.arange(n)).all():
            continue
        x = _take(x, index, axis)
    return x


# ------------------------------------------------------------------ interpolate
_INTERP_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic")


def _per_axis(value, k: int, name: str, kind: type) -> Optional[list]:
    if value is None:
        return None
    values = list(value) if isinstance(value, (tuple, list)) else [value] * k
    if len(values) != k:
        raise ValueError(f"interpolate: {name}={value!r} must give one value or {k} (one per "
                         "spatial axis)")
    try:
        return [kind(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"interpolate: {name}={value!r} must hold numbers") from None


def _nearest_index(n_in: int, n_out: int, scale: Optional[float], exact: bool) -> np.ndarray:
    """torch's source index for nearest (floor(dst * s)) and nearest-exact (floor((dst + 0.5)
    * s)), s = 1/scale_factor when given, else n_in/n_out, in float32 as torch computes it."""
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else \
        np.float32(np.float32(n_in) / np.float32(n_out))
    dst = np.arange(n_out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    index = np.floor(dst * s).astype(np.int64)
    return np.minimum(index, n_in - 1)


def _source_coords(n_in: int, n_out: int, scale: Optional[float], align_corners: bool,
                   cubic: bool, dtype) -> np.ndarray:
    """torch's area_pixel_compute_source_index, in the tensor's precision."""
    dt = np.dtype(dtype).type
    if align_corners:
        s = dt(n_in - 1) / dt(n_out - 1) if n_out > 1 else dt(0)
        return s * np.arange(n_out).astype(dt)
    s = dt(1.0 / scale) if scale is not None and scale > 0 else dt(n_in) / dt(n_out)
    src = s * (np.arange(n_out).astype(dt) + dt(0.5)) - dt(0.5)
    return src if cubic else np.maximum(src, dt(0))


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> list:
    def near(v):  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _weighted(x: Tensor, axis: int, taps: list) -> Tensor:
    """sum over taps (index, weight) of x[index along axis] * weight (broadcast on that axis)."""
    front = moveaxis(x, axis, 0)
    out = None
    for index, weight in taps:
        part = getitem(front, (np.asarray(index, dtype=np.intp),))
        w = as_tensor(np.asarray(weight).astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1)),
                      like=x)
        term = part * w
        out = term if out is None else out + term
    assert out is not None
    return moveaxis(out, 0, axis)


def _linear_axis(x: Tensor, axis: int, n_out: int, scale, align_corners: bool) -> Tensor:
    n_in = x.shape[axis]
    if n_out == n_in:  # torch's identity shortcut
        return x
    src = _source_coords(n_in, n_out, scale, align_corners, False, x.dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0, 0, 1)
    i1 = i0 + (i0 < n_in - 1)
    return _weighted(x, axis, [(i0, 1 - lam), (i1, lam)])


def _cubic_axis(x: Tensor, axis: int, n_out: int, scale, align_corners: bool) -> Tensor:
    n_in = x.shape[axis]
    src = _source_coords(n_in, n_out, scale, align_corners, True, x.dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - i0, 0, 1)
    weights = _cubic_weights(t)
    return _weighted(x, axis, [(np.clip(i0 - 1 + j, 0, n_in - 1), weights[j]) for j in range(4)])


def interpolate(x, size: Union[int, Sequence[int], None] = None,
                scale_factor: Union[float, Sequence[float], None] = None,
                mode: str = "nearest", align_corners: Optional[bool] = None,
                recompute_scale_factor: Optional[bool] = None) -> Tensor:
    """``torch.nn.functional.interpolate`` on ``(N, C, *spatial)`` input, one axis at a time.

    Output size: ``size``, or floor(n * scale_factor) per spatial axis (exactly one of the two).
    Source coordinate of output index d (s = 1/scale_factor when it was given and
    ``recompute_scale_factor`` is not True, else n_in/n_out):

    * ``"nearest"``: x[min(floor(d * s), n_in - 1)] (float32 arithmetic, as torch);
      ``"nearest-exact"``: x[min(floor((d + 0.5) * s), n_in - 1)].
    * ``"linear"`` (3-D input), ``"bilinear"`` (4-D), ``"trilinear"`` (5-D): with
      ``align_corners=True`` src = d (n_in - 1)/(n_out - 1); else src = max(s (d + 0.5) - 0.5, 0)
      (torch's clamp at the left edge); out = (1 - l) x[i0] + l x[i1], i0 = floor(src),
      i1 = min(i0 + 1, n_in - 1), l = src - i0.
    * ``"bicubic"`` (4-D): Keys' cubic convolution (a = -0.75) on x[i0-1 .. i0+2], indices
      clamped to the edge, src not clamped.

    The result is linear in x with constant weights: the gradient spreads each output's
    cotangent back onto its source elements with the same weights (nearest: a piecewise
    constant map, the derivative w.r.t. the sampling positions is not modelled, as in torch).
    """
    x = as_tensor(x)
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode={mode!r} must be one of {', '.join(_MODES)}")
    if x.ndim < 3:
        raise ShapeError(f"interpolate: needs (N, C, *spatial) input with 1 to 3 spatial axes, "
                         f"got shape {x.shape}")
    k = x.ndim - 2
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != k:
        raise ShapeError(f"interpolate: mode={mode!r} needs a {_INTERP_DIMS[mode] + 2}-D input "
                         f"(N, C and {_INTERP_DIMS[mode]} spatial axes), got shape {x.shape}")
    if k > 3:
        raise ShapeError(f"interpolate: at most 3 spatial axes, got shape {x.shape}")
    if mode.startswith("nearest"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners can only be set with the interpolating "
                             "modes linear, bilinear, bicubic, trilinear")
        align_corners = False
    elif align_corners is None:
        align_corners = False
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    sizes = _per_axis(size, k, "size", int)
    scales = _per_axis(scale_factor, k, "scale_factor", float)
    if sizes is None:
        assert scales is not None
        sizes = [int(math.floor(float(n) * s)) for n, s in zip(x.shape[2:], scales)]
        if recompute_scale_factor:
            scales = None
    else:
        scales = None
    if any(s <= 0 for s in sizes):
        raise ValueError(f"interpolate: the output size {tuple(sizes)} must be positive on "
                         f"every spatial axis (input shape {x.shape})")
    if any(n == 0 for n in x.shape[2:]):
        raise ShapeError(f"interpolate: the input's spatial axes must not be empty, got shape "
                         f"{x.shape}")
    scale_list = scales or [None] * k
    for j in range(k):
        axis = 2 + j
        if mode.startswith("nearest"):
            index = _nearest_index(x.shape[axis], sizes[j], scale_list[j],
                                   mode == "nearest-exact")
            if len(index) != x.shape[axis] or not (index == np.arange(len(index))).all():
                x = _take(x, index, axis)
        elif mode == "bicubic":
            x = _cubic_axis(x, axis, sizes[j], scale_list[j], align_corners)
        else:
            x = _linear_axis(x, axis, sizes[j], scale_list[j], align_corners)
    return x


# ------------------------------------------------------------------ unfold / fold
def _pair(value, name: str, fn: str) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   for v in values):
        raise TypeError(f"{fn}: {name}={value!r} must be an int or a pair of ints")
    return tuple(int(v) for v in values)


def _block_plan(fn: str, spatial: tuple, kernel_size, dilation, padding, stride) -> tuple:
    """(kernel, padding, blocks per axis, row index (kh,1,oh,1), column index (1,kw,1,ow))."""
    k = _pair(kernel_size, "kernel_size", fn)
    d = _pair(dilation, "dilation", fn)
    p = _pair(padding, "padding", fn)
    s = _pair(stride, "stride", fn)
    for name, vals, low in (("kernel_size", k, 1), ("dilation", d, 1), ("stride", s, 1),
                            ("padding", p, 0)):
        if min(vals) < low:
            raise ValueError(f"{fn}: {name}={vals} must be >= {low}")
    blocks = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                   for n, kk, dd, pp, ss in zip(spatial, k, d, p, s))
    if min(blocks) < 1:
        raise ShapeError(f"{fn}: spatial size {spatial} with padding {p}, kernel_size {k} and "
                         f"dilation {d} holds no block (computed {blocks})")
    rows = np.arange(k[0])[:, None] * d[0] + np.arange(blocks[0])[None, :] * s[0]
    cols = np.arange(k[1])[:, None] * d[1] + np.arange(blocks[1])[None, :] * s[1]
    return k, p, blocks, rows[:, None, :, None], cols[None, :, None, :]


def unfold(x, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.unfold`` (im2col): (N, C, H, W) -> (N, C*kh*kw, L), the sliding
    blocks as columns; (C, H, W) -> (C*kh*kw, L).

    out[n, (c, i, j), (a, b)] = xp[n, c, a*sh + i*dh, b*sw + j*dw] with xp the zero-padded input
    and L = oh*ow, o = floor((n + 2p - d(k-1) - 1)/s) + 1. A gather by index (``getitem``):
    linear in x; the gradient is ``fold`` of the cotangent (overlapping blocks add up).
    """
    x = as_tensor(x)
    if x.ndim not in (3, 4):
        raise ShapeError(f"unfold: needs a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{x.shape}")
    batched = x.ndim == 4
    if not batched:
        x = reshape(x, (1,) + x.shape)
    n, c = x.shape[:2]
    k, p, blocks, rows, cols = _block_plan("unfold", x.shape[2:], kernel_size, dilation,
                                           padding, stride)
    if p[0] or p[1]:
        x = np_pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    spatial_first = transpose(x, (2, 3, 0, 1))  # (Hp, Wp, N, C): index arrays lead
    patches = getitem(spatial_first, (rows, cols))  # (kh, kw, oh, ow, N, C)
    out = reshape(transpose(patches, (4, 5, 0, 1, 2, 3)),
                  (n, c * k[0] * k[1], blocks[0] * blocks[1]))
    return out if batched else reshape(out, out.shape[1:])


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.fold`` (col2im), unfold's adjoint: (N, C*kh*kw, L) -> (N, C, H, W)
    with every block's values added at its place (overlaps sum), padding cropped;
    (C*kh*kw, L) -> (C, H, W).

    <unfold(x), y> == <x, fold(y)>. A scatter-add (``index_add``): linear in x; the gradient is
    ``unfold`` of the cotangent.
    """
    x = as_tensor(x)
    if x.ndim not in (2, 3):
        raise ShapeError(f"fold: needs a 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) input, got "
                         f"shape {x.shape}")
    batched = x.ndim == 3
    if not batched:
        x = reshape(x, (1,) + x.shape)
    size = _pair(output_size, "output_size", "fold")
    k, p, blocks, rows, cols = _block_plan("fold", size, kernel_size, dilation, padding, stride)
    n, ckk, length = x.shape
    if ckk % (k[0] * k[1]):
        raise ShapeError(f"fold: the input's axis 1 ({ckk}) must be divisible by kh*kw = "
                         f"{k[0] * k[1]} (input shape {x.shape})")
    if length != blocks[0] * blocks[1]:
        raise ShapeError(f"fold: the input's last axis ({length}) must equal the number of "
                         f"blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]} for "
                         f"output_size {size} (input shape {x.shape})")
    c = ckk // (k[0] * k[1])
    parts = reshape(x, (n, c, k[0], k[1], blocks[0], blocks[1]))
    values = transpose(parts, (2, 3, 4, 5, 0, 1))  # (kh, kw, oh, ow, N, C)
    padded = (size[0] + 2 * p[0], size[1] + 2 * p[1])
    out = index_add(values, (rows, cols), padded + (n, c))
    out = transpose(out, (2, 3, 0, 1))
    if p[0] or p[1]:
        out = getitem(out, (slice(None), slice(None), slice(p[0], p[0] + size[0]),
                            slice(p[1], p[1] + size[1])))
    return out if batched else reshape(out, out.shape[1:])

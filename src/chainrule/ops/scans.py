"""Scans along an axis: cumsum, cumprod, logcumsumexp, cummax/cummin.

``axis`` is one int (PyTorch's ``dim``); ``axis=None`` scans the flattened tensor (NumPy's
default for ``cumsum``). A 0-d tensor scans as one element and stays 0-d.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable, Optional

import numpy as np

from chainrule import backends
from chainrule.engine.grad_mode import is_grad_enabled
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.creation import arange
from chainrule.ops.elementwise import (
    exp,
    floating,
    isfinite,
    log,
    where,
)
from chainrule.ops.ordering import ValuesIndices, take_along
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import normalize_one_axis
from chainrule.ops.reductions import prod as _prod
from chainrule.ops.reductions import sum as _sum
from chainrule.ops.shape import expand_dims, getitem, reshape, transpose

__all__ = ["cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"]


# ------------------------------------------------------------------ helpers
def _scan_dtype(dtype: Any) -> np.dtype:
    """NumPy's dtype of a cumulative sum or product: bools and small integers widen to int64."""
    return np.cumsum(np.zeros(1, dtype)).dtype


def _slice_along(axis: int, part: slice) -> tuple:
    return (slice(None),) * axis + (part,)


def _flip(t: Tensor, axis: int) -> Tensor:
    return getitem(t, _slice_along(axis, slice(None, None, -1)))


def _one_axis(name: str, x: Tensor, axis: Optional[int]) -> tuple[Tensor, int, tuple]:
    """(x on one axis, that axis, the result's shape): None flattens, a 0-d x scans as (1,)."""
    if axis is None:
        return reshape(x, (-1,)), 0, (x.size,)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None, got {type(axis).__name__}")
    ax = normalize_one_axis(axis, x.ndim)
    return (reshape(x, (1,)), 0, ()) if ax is None else (x, ax, x.shape)


def _done(result: Tensor, shape: tuple) -> Tensor:
    return result if result.shape == shape else reshape(result, shape)


def _loop_scan(xp: Any, x: Any, axis: int, step: Callable[[Any, Any], Any]) -> Any:
    """The inclusive scan of ``step`` along ``axis`` by a loop over it (standard-only backends)."""
    moved = xp.moveaxis(x, axis, 0)
    if moved.shape[0] == 0:
        return x
    parts = [moved[0, ...]]
    for i in range(1, moved.shape[0]):
        parts.append(step(parts[-1], moved[i, ...]))
    return xp.moveaxis(xp.stack(parts, axis=0), 0, axis)


def _scan_abstract(x: ShapeDtype, *, axis: int) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape), _scan_dtype(x.dtype), x.device)


def _float_scan_abstract(x: ShapeDtype, *, axis: int) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape), np.dtype(x.dtype), x.device)


# ------------------------------------------------------------------ cumsum
def _cumsum_generic(xp: Any, x: Any, *, axis: int) -> Any:
    if x.dtype == xp.bool:
        x = xp.astype(x, xp.int64)
    dtype = xp.int64 if xp.isdtype(x.dtype, "integral") else x.dtype
    return xp.cumulative_sum(x, axis=axis, dtype=dtype)


def _reverse_cumsum(g: Tensor, axis: int) -> Tensor:
    """sum_{k >= i} g_k along ``axis``: cumsum's adjoint."""
    return _flip(cumsum_p.bind(_flip(g, axis), axis=axis), axis)


# ------------------------------------------------------------------ cumprod
def _cumprod_generic(xp: Any, x: Any, *, axis: int) -> Any:
    if x.dtype == xp.bool or xp.isdtype(x.dtype, "integral"):
        x = xp.astype(x, xp.int64)
    if hasattr(xp, "cumulative_prod"):
        return xp.cumulative_prod(x, axis=axis)
    return _loop_scan(xp, x, axis, lambda a, b: a * b)


def _cumprod_vjp(g: Tensor, out: Tensor, x: Tensor, *, axis: int) -> Tensor:
    """d/dx_i of sum_k g_k prod_{j<=k} x_j, without dividing by a zero.

    A plain backward pass takes the O(n) rule :func:`_cumprod_vjp_first_zero`: its values are
    exact, but it is flat in x_z at a zero x_z, so its own derivative is not. Under
    ``create_graph=True`` (the rule will be differentiated) and with a zero in x, the rule is the
    O(n^2) polynomial :func:`_cumprod_vjp_exact` instead, exact to every order.
    """
    recorded = is_grad_enabled() and builtins.any(t.requires_grad for t in (g, x, out))
    if recorded and _has_zero(x):
        return _cumprod_vjp_exact(g, x, axis)
    return _cumprod_vjp_first_zero(g, out, x, axis)


def _has_zero(x: Tensor) -> bool:
    xp = backends.backend_of(x.data).xp
    return bool(xp.any(x.data == 0))


def _cumprod_vjp_exact(g: Tensor, x: Tensor, axis: int) -> Tensor:
    """grad_i = sum_{k>=i} g_k C[i, k] with C[i, k] = prod_{j<=k, j!=i} x_j: the cumulative
    product of x with x_i replaced by 1, one row per i (an (n, n) block per slice)."""
    n = x.shape[axis]
    last = x.ndim - 1
    order = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    xm, gm = transpose(x, order), transpose(g, order)
    positions = arange(n, device=x.device)
    diagonal = reshape(positions, (n, 1)) == reshape(positions, (1, n))  # [i, j]: j == i
    upper = reshape(positions, (n, 1)) <= reshape(positions, (1, n))  # [i, k]: k >= i
    rows = where(diagonal, 1.0, expand_dims(xm, last))  # (..., i, j)
    products = cumprod_p.bind(rows, axis=last + 1)
    grad = _sum(where(upper, expand_dims(gm, last) * products, 0.0), axis=last + 1)
    return transpose(grad, tuple(int(a) for a in np.argsort(order)))


def _cumprod_vjp_first_zero(g: Tensor, out: Tensor, x: Tensor, axis: int) -> Tensor:
    """Before the first zero of x along the axis: sum_{k>=i} g_k out_k / x_i (x_i is not 0
    there). At the first zero z: prod_{j<z} x_j * sum_{k>=z} g_k prod_{z<j<=k} x_j. After it: 0
    (the zero at z is a factor of every product that holds x_i). O(n), exact in value."""
    zero = x == 0
    zeros_so_far = cumsum_p.bind(zero, axis=axis)  # int64
    before = zeros_so_far == 0
    first_zero = where(zero, zeros_so_far, 0) == 1
    safe_x = where(before, x, 1.0)
    early = where(before, _reverse_cumsum(g * out, axis) / safe_x, 0.0)
    head = _prod(where(before, x, 1.0), axis=axis, keepdims=True)  # prod_{j<z} x_j
    tail = cumprod_p.bind(where(zeros_so_far >= 1, where(first_zero, 1.0, x), 1.0), axis=axis)
    at_zero = head * _sum(where(zeros_so_far >= 1, g * tail, 0.0), axis=axis, keepdims=True)
    return early + where(first_zero, at_zero, 0.0)


# ------------------------------------------------------------------ logcumsumexp
def _logcumsumexp_numpy(x: np.ndarray, *, axis: int) -> np.ndarray:
    return np.logaddexp.accumulate(x, axis=axis)


def _logcumsumexp_generic(xp: Any, x: Any, *, axis: int) -> Any:
    return _loop_scan(xp, x, axis, xp.logaddexp)


def _logcumsumexp_vjp(g: Tensor, out: Tensor, x: Tensor, *, axis: int) -> Tensor:
    """d/dx_i = sum_{k>=i} g_k exp(x_i - out_k), summed in log space with g split by sign:
    exp(x_i + rev_logcumsumexp(log g+ - out)_i) - the same for g-, so nothing overflows.

    A position whose out_k is -inf (every x_j, j <= k, is -inf) gives nothing (its terms are
    exp(-inf)), so -out_k is taken as 0 there rather than +inf.
    """
    finite_out = where(isfinite(out), out, 0.0)

    def signed_part(part: Tensor) -> Tensor:  # sum_{k>=i} part_k+ exp(x_i - out_k)
        positive = part > 0
        log_part = where(positive, log(where(positive, part, 1.0)), -np.inf) - finite_out
        summed = _flip(logcumsumexp_p.bind(_flip(log_part, axis), axis=axis), axis)
        return exp(where(isfinite(summed), x + summed, -np.inf))

    return signed_part(g) - signed_part(-g)


# ------------------------------------------------------------------ cummax / cummin indices
def _cum_extreme_numpy(x: np.ndarray, *, axis: int, largest: bool) -> np.ndarray:
    """The index of the running max (min) along ``axis``; on ties the latest (PyTorch's).

    A position is a "hit" when it equals the running extreme so far; the running extreme only
    changes at hits, so the answer at k is the last hit at or before k. NaN is a hit (PyTorch's
    rule: NaN wins, and each later NaN takes over), and the running extreme stays NaN after it.
    """
    running = (np.maximum if largest else np.minimum).accumulate(x, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = np.arange(x.shape[axis], dtype=np.int64).reshape(shape)
    hit = (x == running) | np.isnan(x) if x.dtype.kind == "f" else x == running
    hits = np.where(hit, positions, 0)
    return np.maximum.accumulate(hits, axis=axis)


def _cum_extreme_generic(xp: Any, x: Any, *, axis: int, largest: bool) -> Any:
    moved = xp.moveaxis(x, axis, 0)
    n = moved.shape[0]
    if n == 0:
        return xp.astype(x, xp.int64)
    best, where_best = moved[0, ...], xp.zeros(moved.shape[1:], dtype=xp.int64, device=x.device)
    parts = [where_best]
    for i in range(1, n):
        row = moved[i, ...]
        take = (row >= best) if largest else (row <= best)
        take = take | (row != row)  # NaN wins, as in PyTorch
        best = xp.where(take, row, best)
        where_best = xp.where(take, xp.asarray(i, dtype=xp.int64, device=x.device), where_best)
        parts.append(where_best)
    return xp.moveaxis(xp.stack(parts, axis=0), 0, axis)


def _index_abstract(x: ShapeDtype, *, axis: int, largest: bool) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape), np.dtype(np.int64), x.device)


# fmt: off
cumsum_p         = Primitive("cumsum", lambda x, *, axis: np.cumsum(x, axis=axis),
                             generic=_cumsum_generic, abstract_eval=_scan_abstract,
                             saves=()).defvjp(
    lambda g, out, x, *, axis: _reverse_cumsum(g, axis))
cumprod_p        = Primitive("cumprod", lambda x, *, axis: np.cumprod(x, axis=axis),
                             generic=_cumprod_generic, abstract_eval=_scan_abstract).defvjp(
    _cumprod_vjp)
logcumsumexp_p   = Primitive("logcumsumexp", _logcumsumexp_numpy, generic=_logcumsumexp_generic,
                             abstract_eval=_float_scan_abstract).defvjp(_logcumsumexp_vjp)
cum_extreme_index_p = Primitive("cum_extreme_index", _cum_extreme_numpy,
                                generic=_cum_extreme_generic, abstract_eval=_index_abstract,
                                smooth=False).defvjp(None)
# fmt: on


# ------------------------------------------------------------------ the public functions
def cumsum(x, axis: Optional[int] = None) -> Tensor:
    """Cumulative sum along ``axis``: out_k = sum_{j<=k} x_j (``axis=None``: of the flattened x).

    Bools and integers give int64 (PyTorch's and NumPy's). The gradient is the reverse
    cumulative sum of g: d/dx_i = sum_{k>=i} g_k.
    """
    x = as_tensor(x)
    work, ax, shape = _one_axis("cumsum", x, axis)
    return _done(cumsum_p.bind(work, axis=ax), shape)


def cumprod(x, axis: Optional[int] = None) -> Tensor:
    """Cumulative product along ``axis``: out_k = prod_{j<=k} x_j (``axis=None``: flattened).

    Bools and integers give int64. The gradient d/dx_i = sum_{k>=i} g_k prod_{j<=k, j!=i} x_j
    is computed without dividing by x, so it is exact where x has one zero or several.
    """
    x = as_tensor(x)
    work, ax, shape = _one_axis("cumprod", x, axis)
    return _done(cumprod_p.bind(work, axis=ax), shape)


def logcumsumexp(x, axis: Optional[int] = None) -> Tensor:
    """log(cumsum(exp(x))) along ``axis``, computed stably (a running ``logaddexp``).

    Finite for any finite x (no overflow of exp, no log(0) for very negative early elements);
    -inf elements contribute nothing. Integers give float32. The gradient is
    d/dx_i = sum_{k>=i} g_k exp(x_i - out_k) (a reverse running softmax), evaluated in log space.
    """
    x = floating(x)
    work, ax, shape = _one_axis("logcumsumexp", x, axis)
    return _done(logcumsumexp_p.bind(work, axis=ax), shape)


def _cum_extreme(name: str, x, axis: int, largest: bool) -> ValuesIndices:
    x = as_tensor(x)
    if np.dtype(x.dtype).kind not in "iufb":
        raise TypeError(f"{name}: expected a real tensor, got {x.dtype}")
    if axis is None:
        raise TypeError(f"{name}: axis must be an int (PyTorch's dim), got None")
    work, ax, shape = _one_axis(name, x, axis)
    indices = cum_extreme_index_p.bind(work.detach(), axis=ax, largest=largest)
    values = take_along(work, indices, ax)
    return ValuesIndices(_done(values, shape), _done(indices, shape))


def cummax(x, axis: int) -> ValuesIndices:
    """``(values, indices)``: the running maximum along ``axis`` and where it was attained.

    As ``torch.cummax``: on ties the index is the *latest* position holding the running maximum
    (``[1, 3, 3]`` gives indices ``[0, 1, 2]``), and the gradient of each value goes to that
    one element (g is added where indices repeat). NaN propagates as in PyTorch: from a NaN on,
    the values are NaN and the index is that of the latest NaN.
    """
    return _cum_extreme("cummax", x, axis, largest=True)


def cummin(x, axis: int) -> ValuesIndices:
    """``(values, indices)``: the running minimum along ``axis``, ties to the latest index and
    NaN propagated (``torch.cummin``); the gradient goes to the element at the returned index."""
    return _cum_extreme("cummin", x, axis, largest=False)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "cumsum": cumsum, "cumprod": cumprod, "logcumsumexp": logcumsumexp, "cummax": cummax,
    "cummin": cummin,
}

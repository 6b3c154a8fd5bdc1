"""Ordering and selection: sort, argsort, topk, median, kthvalue, nonzero, masked_select.

The values of sort, topk, median and kthvalue (and of :func:`chainrule.cummax`) are elements of
the input picked by integer indices along one axis: ``values = take_along_axis(x, indices)``.
The indices come from a non-differentiable primitive (``argsort``) run on the detached input, the
values from the private linear primitive ``select_along``, whose adjoint ``select_along_adjoint``
scatters the gradient back to the source positions (adding where an index repeats). The two are
each other's VJP, so gradients of every order flow, and every backend runs them with the array
API standard alone.

Ties: with ``stable=True`` (the default) sort keeps equal elements in their input order, as
PyTorch's ``stable=True`` does; topk, median and kthvalue then pick among equal values by that
order, which may differ from the index PyTorch returns (its choice on ties is unspecified). The
gradient goes to the one element whose index is returned.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, overload

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.elementwise import where
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import broadcast_to, normalize_one_axis
from chainrule.ops.reductions import sum as _sum
from chainrule.ops.shape import getitem, reshape

__all__ = ["ValuesIndices", "sort", "argsort", "topk", "median", "kthvalue", "quantile",
           "searchsorted", "nonzero", "masked_select"]


class ValuesIndices(NamedTuple):
    """``(values, indices)``, as PyTorch's ``torch.return_types.sort`` and its kin."""

    values: Tensor
    indices: Tensor


# ------------------------------------------------------------------ the private primitives
def _take_along_generic(xp: Any, x: Any, index: Any, *, axis: int) -> Any:
    """x picked at ``index`` along ``axis`` (``take_along_axis``; by flat positions otherwise)."""
    if hasattr(xp, "take_along_axis"):
        return xp.take_along_axis(x, index, axis=axis)
    moved_x, moved_i = xp.moveaxis(x, axis, -1), xp.moveaxis(index, axis, -1)
    n, k = moved_x.shape[-1], moved_i.shape[-1]
    rows = math.prod(moved_i.shape[:-1])
    base = xp.reshape(xp.arange(rows, dtype=xp.int64, device=x.device) * n, (rows, 1))
    flat = xp.reshape(base + xp.reshape(moved_i, (rows, k)), (-1,))
    picked = xp.take(xp.reshape(moved_x, (-1,)), flat, axis=0)
    return xp.moveaxis(xp.reshape(picked, moved_i.shape), -1, axis)


def _put_along_generic(xp: Any, g: Any, index: Any, *, axis: int, size: int) -> Any:
    """zeros with ``size`` along ``axis``, g added at ``index``: a one-hot sum over the picks.

    ``where`` (not a product) keeps an inf or nan of g at its own position only.
    """
    moved_g, moved_i = xp.moveaxis(g, axis, -1), xp.moveaxis(index, axis, -1)
    targets = xp.arange(size, dtype=index.dtype, device=g.device)
    hits = moved_i[..., None] == targets  # (..., k, size)
    zero = xp.zeros((), dtype=g.dtype, device=g.device)
    out = xp.sum(xp.where(hits, moved_g[..., None], zero), axis=-2)
    return xp.moveaxis(out, -1, axis)


def _put_along_numpy(g: np.ndarray, index: np.ndarray, *, axis: int, size: int) -> np.ndarray:
    shape = list(g.shape)
    shape[axis] = size
    out = np.zeros(shape, dtype=g.dtype)
    grid = list(np.ix_(*[np.arange(n) for n in g.shape])) if g.ndim else []
    grid[axis] = index
    np.add.at(out, tuple(grid), g)  # a repeated index adds up (cummax, median of a 0-d)
    return out


def _take_abstract(x: ShapeDtype, index: ShapeDtype, *, axis: int) -> ShapeDtype:
    return ShapeDtype(tuple(index.shape), x.dtype, x.device)


def _put_abstract(g: ShapeDtype, index: ShapeDtype, *, axis: int, size: int) -> ShapeDtype:
    shape = list(g.shape)
    shape[axis] = size
    return ShapeDtype(tuple(shape), g.dtype, g.device)


def _argsort_numpy(x: np.ndarray, *, axis: int, descending: bool, stable: bool) -> np.ndarray:
    if not descending:
        order = np.argsort(x, axis=axis, kind="stable" if stable else "quicksort")
        return order.astype(np.int64, copy=False)
    # descending and stable: sort the reversed axis ascending, read it backwards, map back
    n = x.shape[axis]
    flipped = np.flip(x, axis)
    order = np.flip(np.argsort(flipped, axis=axis, kind="stable"), axis)
    return (n - 1 - order).astype(np.int64, copy=False)


def _argsort_generic(xp: Any, x: Any, *, axis: int, descending: bool, stable: bool) -> Any:
    index = xp.argsort(x, axis=axis, descending=descending, stable=stable)
    return xp.astype(index, xp.int64)


def _argsort_abstract(x: ShapeDtype, *, axis: int, descending: bool,
                      stable: bool) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape), np.dtype(np.int64), x.device)


def _select_vjp(g: Tensor, out: Tensor, x: Tensor, index: Tensor, *, axis: int) -> Tensor:
    return select_along_adjoint_p.bind(g, index, axis=axis, size=x.shape[axis])


def _select_adjoint_vjp(g: Tensor, out: Tensor, y: Tensor, index: Tensor, *, axis: int,
                        size: int) -> Tensor:
    return select_along_p.bind(g, index, axis=axis)


# fmt: off
select_along_p = Primitive(
    "select_along", lambda x, index, *, axis: np.take_along_axis(x, index, axis=axis),
    generic=_take_along_generic, abstract_eval=_take_abstract, saves=(1,)).defvjp(
    _select_vjp, None)
select_along_adjoint_p = Primitive(
    "select_along_adjoint", _put_along_numpy, generic=_put_along_generic,
    abstract_eval=_put_abstract, saves=(1,)).defvjp(_select_adjoint_vjp, None)
argsort_p = Primitive("argsort", _argsort_numpy, generic=_argsort_generic,
                      abstract_eval=_argsort_abstract, smooth=False).defvjp(None)
# fmt: on


def take_along(x: Tensor, indices: Tensor, axis: int) -> Tensor:
    """``x`` at ``indices`` along ``axis`` (normalized, in range): the values of a selection.

    The gradient is scattered back to the picked positions (added where an index repeats).
    """
    return select_along_p.bind(x, indices, axis=axis)


def _one_axis(name: str, x: Tensor, axis: Optional[int]) -> tuple[Tensor, int]:
    """(x, axis) with ``axis`` in range; ``axis=None`` (or a 0-d x) flattens x to one axis."""
    if axis is None:
        return reshape(x, (-1,)), 0
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None, got {type(axis).__name__}")
    ax = normalize_one_axis(axis, x.ndim)
    return (reshape(x, (1,)), 0) if ax is None else (x, ax)


def _check_real(name: str, x: Tensor) -> None:
    if np.dtype(x.dtype).kind not in "iuf":
        raise TypeError(f"{name}: expected a real (integer or floating) tensor, got {x.dtype}")


def _argsort_indices(x: Tensor, axis: int, descending: bool, stable: bool) -> Tensor:
    return argsort_p.bind(x.detach(), axis=axis, descending=bool(descending), stable=bool(stable))


# ------------------------------------------------------------------ the public functions
def sort(x, axis: int = -1, descending: bool = False, stable: bool = True) -> ValuesIndices:
    """``(values, indices)``: ``x`` sorted along ``axis`` and where each value came from (int64).

    ``values = take_along_axis(x, indices, axis)``: a permutation, so the gradient of the values
    is g scattered back, ``grad[indices] = g``. ``stable=True`` keeps equal elements in input
    order (descending too: the first of equal elements comes first, as PyTorch). NaN sorts last
    ascending (NumPy's rule; PyTorch treats it as the largest, the same order). A 0-d tensor is
    its own sort. Unlike NumPy, ``axis=None`` is not allowed (PyTorch's ``dim`` is an int).
    """
    x = as_tensor(x)
    _check_real("sort", x)
    if axis is None or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"sort: axis must be an int, got {axis!r}")
    work, ax = _one_axis("sort", x, axis)
    indices = _argsort_indices(work, ax, descending, stable)
    values = take_along(work, indices, ax)
    if work is not x:
        values, indices = reshape(values, x.shape), reshape(indices, x.shape)
    return ValuesIndices(values, indices)


def argsort(x, axis: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """The int64 indices that sort ``x`` along ``axis`` (:func:`sort`'s second result).

    Not differentiable. Stable by default, so equal elements keep their input order (PyTorch's
    ``argsort`` defaults to ``stable=False``, whose order among ties is unspecified).
    """
    return sort(x, axis, descending, stable).indices


def topk(x, k: int, axis: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (``largest=False``: smallest) elements along ``axis``, with their indices.

    Always returned in sorted order (largest first, or smallest first); ``sorted=False`` is
    accepted for PyTorch's signature (its order is then unspecified, so sorted is one valid
    order). Among equal values the earlier index wins. The gradient goes to the picked
    elements. ``k`` must be in ``0 .. x.shape[axis]``.
    """
    x = as_tensor(x)
    _check_real("topk", x)
    work, ax = _one_axis("topk", x, axis)
    n = work.shape[ax]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k={k!r} must be an int in 0 .. {n} (the size of axis {axis})")
    order = _argsort_indices(work, ax, descending=largest, stable=True)
    indices = getitem(order, (slice(None),) * ax + (slice(0, int(k)),))
    values = take_along(work, indices, ax)
    if work is not x:  # a 0-d x: k is 0 or 1, the result keeps the 0-d shape when k == 1
        shape = x.shape if k else (0,)
        values, indices = reshape(values, shape), reshape(indices, shape)
    return ValuesIndices(values, indices)


def kthvalue(x, k: int, axis: int = -1, keepdims: bool = False) -> ValuesIndices:
    """The ``k``-th smallest element along ``axis`` (k counts from 1, as PyTorch), with its index.

    ``k`` must be in ``1 .. x.shape[axis]``. The gradient goes to the element whose index is
    returned; among equal values, the one earlier in the input is the smaller.
    """
    x = as_tensor(x)
    _check_real("kthvalue", x)
    work, ax = _one_axis("kthvalue", x, axis)
    n = work.shape[ax]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"kthvalue: k={k!r} must be an int in 1 .. {n} (the size of axis "
                         f"{axis})")
    return _pick_sorted(x, work, ax, int(k) - 1, axis is not None, keepdims)


@overload
def median(x: Any, axis: None = None, keepdims: bool = False) -> Tensor: ...


@overload
def median(x: Any, axis: int, keepdims: bool = False) -> ValuesIndices: ...


def median(x, axis: Optional[int] = None, keepdims: bool = False) -> ValuesIndices | Tensor:
    """The median along ``axis``, PyTorch's: the lower of the two middle values for an even count.

    With ``axis`` an int: ``(values, indices)`` as ``torch.median(x, dim)``. With ``axis=None``
    (the default): the median of all elements as a 0-d tensor, as ``torch.median(x)`` (no
    indices). Not NumPy's median, which averages the two middle values. The gradient goes to the
    element whose index is returned; equal values count in input order, the earlier as the
    smaller (as :func:`sort`), so ``[2, 2, 2]`` gives index 1. PyTorch may return another index,
    and ``torch.median(x)`` splits the gradient evenly among the elements equal to the median.
    A slice holding NaN has the median NaN, at the index of its first NaN
    (PyTorch's). An empty tensor raises :class:`ShapeError`.
    """
    x = as_tensor(x)
    _check_real("median", x)
    work, ax = _one_axis("median", x, axis)
    n = work.shape[ax]
    if n == 0:
        raise ShapeError(f"median: cannot take the median over an empty axis (shape {x.shape})")
    result = _pick_sorted(x, work, ax, (n - 1) // 2, axis is not None, keepdims, nan_first=True)
    return result if axis is not None else result.values


def _pick_sorted(x: Tensor, work: Tensor, ax: int, position: int, keep_axis: bool,
                 keepdims: bool, nan_first: bool = False) -> ValuesIndices:
    """The element at ``position`` of the stable ascending order along ``ax``, and its index;
    ``nan_first``: a slice's first NaN instead where it has one (sorted last, in input order)."""
    order = _argsort_indices(work, ax, descending=False, stable=True)
    indices = getitem(order, (slice(None),) * ax + (slice(position, position + 1),))
    if nan_first and np.dtype(work.dtype).kind == "f":
        data = work.detach()
        nans = _sum(data != data, axis=ax, keepdims=True)  # int64
        first_nan = work.shape[ax] - nans
        indices = take_along(order, where(nans > 0, first_nan, position), ax)
    values = take_along(work, indices, ax)
    if not keep_axis or x.ndim == 0:  # a whole-tensor result, or a 0-d input: 0-d
        shape: tuple = tuple(1 for _ in x.shape) if keepdims and keep_axis else ()
    elif keepdims:
        shape = values.shape
    else:
        shape = tuple(n for i, n in enumerate(values.shape) if i != ax)
    return ValuesIndices(reshape(values, shape), reshape(indices, shape))


_INTERPOLATIONS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(x, q, axis: Optional[int] = None, keepdims: bool = False,
             interpolation: str = "linear") -> Tensor:
    """The ``q``-quantiles of ``x`` along ``axis`` (of all elements if None), as
    ``torch.quantile`` and ``numpy.quantile`` (``method=``) with the same five rules.

    With the sorted slice s of n elements and position p = q (n - 1), ``"linear"`` gives
    s[floor p] + (p - floor p) (s[ceil p] - s[floor p]); ``"lower"``/``"higher"`` s[floor p] /
    s[ceil p]; ``"nearest"`` s[round p] (half to even, as both libraries); ``"midpoint"`` the mean
    of the two. ``q`` is a number in [0, 1] or a 1-D sequence of them: then the quantiles form a
    new first axis. Differentiable w.r.t. ``x`` (the gradient goes to the one or two elements
    interpolated; ties as :func:`sort`); a slice holding NaN gives NaN (PyTorch's rule).
    """
    x = as_tensor(x)
    if np.dtype(x.dtype).kind != "f":
        raise TypeError(f"quantile: x must be a floating tensor (as torch.quantile), got "
                        f"{x.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"quantile: interpolation={interpolation!r} must be one of "
                         f"{', '.join(_INTERPOLATIONS)}")
    qs = np.asarray(q.numpy() if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1 or not np.all((qs >= 0) & (qs <= 1)):
        raise ValueError(f"quantile: q={q!r} must be a number or a 1-D sequence in [0, 1]")
    work, ax = _one_axis("quantile", x, axis)
    n = work.shape[ax]
    if n == 0:
        raise ShapeError(f"quantile: cannot take a quantile over an empty axis (shape {x.shape})")
    ordered = sort(work, ax).values
    results = [_quantile_one(ordered, ax, float(p) * (n - 1), interpolation) for p in
               qs.reshape(-1)]
    data = work.detach()
    nans = _sum(data != data, axis=ax, keepdims=True)
    results = [where(nans > 0, np.nan, r) for r in results]
    results = [_quantile_shape(r, x, ax, axis is not None, keepdims) for r in results]
    if qs.ndim == 0:
        return results[0]
    from chainrule.ops.shape import stack  # noqa: PLC0415 -- only here

    return stack(results, axis=0)


def _quantile_one(ordered: Tensor, ax: int, position: float, interpolation: str) -> Tensor:
    """One quantile of the sorted slices (axis ``ax`` kept, length 1) at fractional ``position``."""
    low, high = int(np.floor(position)), int(np.ceil(position))
    if interpolation == "nearest":
        low = high = int(np.round(position))  # half to even, as NumPy and PyTorch

    def at(i: int) -> Tensor:
        return getitem(ordered, (slice(None),) * ax + (slice(i, i + 1),))

    if interpolation in ("lower", "nearest") or low == high:
        return at(low)
    if interpolation == "higher":
        return at(high)
    if interpolation == "midpoint":
        return (at(low) + at(high)) * 0.5
    return at(low) + (at(high) - at(low)) * (position - low)


def _quantile_shape(r: Tensor, x: Tensor, ax: int, keep_axis: bool, keepdims: bool) -> Tensor:
    if not keep_axis:
        return reshape(r, tuple(1 for _ in x.shape) if keepdims else ())
    if x.ndim == 0:
        return reshape(r, ())
    return r if keepdims else reshape(r, tuple(n for i, n in enumerate(r.shape) if i != ax))


def searchsorted(sorted_sequence, values, side: str = "left", right: bool = False) -> Tensor:
    """Where ``values`` would be inserted into ``sorted_sequence`` to keep it sorted (int64).

    PyTorch's ``torch.searchsorted``: ``sorted_sequence`` is 1-D, or N-D searched along its last
    axis with leading axes equal to ``values``' leading axes. ``side="left"`` gives the first
    suitable index (``sorted[i-1] < v <= sorted[i]``), ``"right"`` (or ``right=True``) the last
    (``sorted[i-1] <= v < sorted[i]``). The sequence must be sorted ascending (not checked, as
    neither library does). Not differentiable.
    """
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side={side!r} must be 'left' or 'right'")
    side = "right" if right else side
    seq = as_tensor(sorted_sequence)
    v = as_tensor(values, like=seq)
    if seq.ndim == 0:
        raise ShapeError("searchsorted: sorted_sequence must have at least one axis")
    if seq.ndim > 1 and seq.shape[:-1] != v.shape[:-1]:
        raise ShapeError(f"searchsorted: the leading axes of sorted_sequence {seq.shape[:-1]} "
                         f"must equal those of values {v.shape[:-1]}")
    backend = backends.backend_of(seq.data)
    xp = backend.xp
    if type(seq.data) is np.ndarray and seq.ndim == 1:
        found = np.searchsorted(seq.data, v.data, side="right" if side == "right" else "left")
        return Tensor._from_array(np.asarray(found, dtype=np.int64))
    # count the elements before each value: sorted < v (left) or sorted <= v (right)
    s = seq.data if seq.ndim > 1 else xp.reshape(seq.data, (1,) * v.ndim + seq.shape)
    vv = v.data[..., None] if v.ndim else xp.reshape(v.data, (1,))
    if seq.ndim > 1:
        s = s[..., None, :]
    before = (s < vv) if side == "left" else (s <= vv)
    count = xp.sum(xp.astype(before, xp.int64), axis=-1)
    return Tensor._from_array(count if v.ndim else xp.reshape(count, ()))


def nonzero(x, as_tuple: bool = False) -> Tensor | tuple:
    """The indices of the non-zero elements of ``x``, in row-major order (not differentiable).

    PyTorch's result, not NumPy's: an ``(n, x.ndim)`` int64 tensor with one row per non-zero
    element. ``as_tuple=True`` gives NumPy's (and ``torch.nonzero(as_tuple=True)``'s) form
    instead: a tuple of ``x.ndim`` 1-D index tensors (a 0-d x counts as 1-D: one tensor).
    """
    x = as_tensor(x)
    backend = backends.backend_of(x.data)
    xp = backend.xp
    data = x.data if x.ndim else xp.reshape(x.data, (1,))
    parts = [xp.astype(p, backend.dtype(np.int64)) for p in xp.nonzero(data)]
    if as_tuple:
        return tuple(Tensor._from_array(p) for p in parts)
    if x.ndim == 0:  # PyTorch: shape (n, 0) for a 0-d tensor
        count = parts[0].shape[0]
        return Tensor._from_array(xp.zeros((count, 0), dtype=backend.dtype(np.int64),
                                           device=getattr(x.data, "device", None)))
    return Tensor._from_array(xp.stack(parts, axis=-1))


def masked_select(x, mask) -> Tensor:
    """The elements of ``x`` where the boolean ``mask`` is True, as a 1-D tensor (row-major).

    ``x`` and ``mask`` broadcast together (PyTorch's rule). Differentiable w.r.t. ``x``: the
    gradient is g put back at the selected positions (zeros elsewhere).
    """
    x = as_tensor(x)
    if isinstance(mask, Tensor):
        mask_data, dtype = mask.data, np.dtype(mask.dtype)
        xp: Any = backends.backend_of(mask_data).xp
    else:  # a host mask (ndarray, list): getitem moves it to x's device
        mask_data, xp = np.asarray(mask), np
        dtype = mask_data.dtype
    if dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be a boolean tensor, got {dtype}")
    try:
        shape = np.broadcast_shapes(x.shape, tuple(mask_data.shape))
    except ValueError:
        raise ShapeError(f"masked_select: mask of shape {tuple(mask_data.shape)} does not "
                         f"broadcast with x of shape {x.shape}") from None
    flat = reshape(broadcast_to(x, shape), (-1,))
    return getitem(flat, xp.reshape(xp.broadcast_to(mask_data, shape), (-1,)))


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "sort": sort, "argsort": argsort, "topk": topk, "median": median, "kthvalue": kthvalue,
    "quantile": quantile, "nonzero": nonzero, "masked_select": masked_select,
}

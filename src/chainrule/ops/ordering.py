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
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import broadcast_to, normalize_one_axis
from chainrule.ops.shape import getitem, reshape

__all__ = ["ValuesIndices", "sort", "argsort", "topk", "median", "kthvalue", "nonzero",
           "masked_select"]


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
    element whose index is returned (on ties: the earliest in the input among equal values; PyTorch
    may return another). An empty tensor raises :class:`ShapeError`.
    """
    x = as_tensor(x)
    _check_real("median", x)
    work, ax = _one_axis("median", x, axis)
    n = work.shape[ax]
    if n == 0:
        raise ShapeError(f"median: cannot take the median over an empty axis (shape {x.shape})")
    result = _pick_sorted(x, work, ax, (n - 1) // 2, axis is not None, keepdims)
    return result if axis is not None else result.values


def _pick_sorted(x: Tensor, work: Tensor, ax: int, position: int, keep_axis: bool,
                 keepdims: bool) -> ValuesIndices:
    """The element at ``position`` of the stable ascending order along ``ax``, and its index."""
    order = _argsort_indices(work, ax, descending=False, stable=True)
    indices = getitem(order, (slice(None),) * ax + (slice(position, position + 1),))
    values = take_along(work, indices, ax)
    if not keep_axis or x.ndim == 0:  # a whole-tensor result, or a 0-d input: 0-d
        shape: tuple = tuple(1 for _ in x.shape) if keepdims and keep_axis else ()
    elif keepdims:
        shape = values.shape
    else:
        shape = tuple(n for i, n in enumerate(values.shape) if i != ax)
    return ValuesIndices(reshape(values, shape), reshape(indices, shape))


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
    "nonzero": nonzero, "masked_select": masked_select,
}

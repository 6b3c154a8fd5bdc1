"""Indexing and scatter: gather, scatter, scatter_add, index_select, take_along_axis,
masked_fill, one_hot.

``gather`` and ``scatter_add`` are a closed pair of primitives: each one's VJP is the other
(out[c] = x[c with c[axis] = index[c]] reads what scatter_add writes), so derivatives of every
order stay in the pair. ``scatter`` (non-accumulating) is a third primitive whose VJPs are built
from the two. The rest are composites of existing ops.

Indices follow PyTorch: integers in ``0 .. n-1`` of the axis they index (a negative or too large
index is an IndexError naming the argument, never wrapped), and an ``index`` of the same rank as
``x`` with ``index.shape[d] <= x.shape[d]`` on the other axes (gather, scatter).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ABSTRACT, ShapeDtype
from chainrule.ops.creation import arange, ones_like
from chainrule.ops.elementwise import astype, equal, greater, promote, where
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import broadcast_to, normalize_one_axis
from chainrule.ops.shape import _scatter_rows, _take, getitem, reshape

__all__ = ["gather", "take_along_axis", "scatter", "scatter_add", "index_select", "masked_fill",
           "one_hot"]


# ------------------------------------------------------------------ kernels
def _positions(xp: Any, index: Any, shape: tuple, axis: int) -> Any:
    """The row-major position in an array of ``shape`` of every element of ``index``:
    the element at coordinates c goes to c with c[axis] replaced by index[c]."""
    flat = xp.astype(index, xp.int64)
    stride = math.prod(shape[axis + 1:])
    flat = flat * stride
    for d in range(index.ndim):
        if d == axis:
            continue
        along = [1] * index.ndim
        along[d] = index.shape[d]
        coord = xp.reshape(xp.arange(index.shape[d], dtype=xp.int64, device=index.device),
                           tuple(along))
        flat = flat + coord * math.prod(shape[d + 1:])
    return flat


def _gather_generic(xp: Any, x: Any, index: Any, *, axis: int) -> Any:
    """out = take(flat x, positions): the standard's ``take`` on the flattened tensor."""
    flat = _positions(xp, index, tuple(x.shape), axis)
    picked = xp.take(xp.reshape(x, (-1,)), xp.reshape(flat, (-1,)), axis=0)
    return xp.reshape(picked, tuple(index.shape))


def _gather_numpy(x: np.ndarray, index: np.ndarray, *, axis: int) -> np.ndarray:
    trimmed = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(index.shape))]
    return np.take_along_axis(trimmed, index, axis)


def _scatter_add_generic(xp: Any, src: Any, index: Any, *, axis: int, shape: tuple) -> Any:
    """zeros(shape) with src added at the positions (a one-hot matmul: repeats add up)."""
    flat = xp.reshape(_positions(xp, index, shape, axis), (-1,))
    values = xp.reshape(src, (-1, 1))
    return xp.reshape(_scatter_rows(xp, values, flat, math.prod(shape)), shape)


def _scatter_add_numpy(src: np.ndarray, index: np.ndarray, *, axis: int,
                       shape: tuple) -> np.ndarray:
    out = np.zeros(math.prod(shape), dtype=src.dtype)
    np.add.at(out, _positions(np, index, shape, axis).ravel(), src.ravel())
    return out.reshape(shape)


def _scatter_generic(xp: Any, x: Any, index: Any, src: Any, *, axis: int) -> Any:
    """x with src written at the positions; of repeated positions the last in C order wins.

    Loop-free: a stable sort of the positions marks the last writer of each one, whose values
    (the others zeroed) and a coverage count are scattered by one-hot matmuls.
    """
    flat = xp.reshape(_positions(xp, index, tuple(x.shape), axis), (-1,))
    values = xp.reshape(src, (-1,))
    size = math.prod(x.shape)
    if flat.shape[0] == 0:
        return x
    order = xp.argsort(flat, stable=True)
    ranked = xp.take(flat, order, axis=0)
    last = xp.concat([ranked[1:] != ranked[:-1], xp.ones((1,), dtype=xp.bool, device=x.device)])
    picked = xp.take(values, order, axis=0)
    picked = xp.where(last, picked, xp.zeros_like(picked))
    written = _scatter_rows(xp, picked[:, None], ranked, size)
    covered = _scatter_rows(xp, xp.astype(last, xp.int64)[:, None], ranked, size)
    out = xp.where(covered[:, 0] > 0, written[:, 0], xp.reshape(x, (-1,)))
    return xp.reshape(out, tuple(x.shape))


def _scatter_numpy(x: np.ndarray, index: np.ndarray, src: np.ndarray, *,
                   axis: int) -> np.ndarray:
    out = x.copy()
    out.reshape(-1)[_positions(np, index, x.shape, axis).ravel()] = src.ravel()  # last wins
    return out


# ------------------------------------------------------------------ abstract rules and VJPs
def _gather_abstract(x: ShapeDtype, index: ShapeDtype, *, axis: int) -> ShapeDtype:
    return ShapeDtype(tuple(index.shape), x.dtype, x.device)


def _scatter_add_abstract(src: ShapeDtype, index: ShapeDtype, *, axis: int,
                          shape: tuple) -> ShapeDtype:
    return ShapeDtype(tuple(shape), src.dtype, src.device)


def _scatter_abstract(x: ShapeDtype, index: ShapeDtype, src: ShapeDtype, *,
                      axis: int) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape), x.dtype, x.device)


def _scatter_vjp_x(g: Tensor, out: Tensor, x: Tensor, index: Tensor, src: Tensor, *,
                   axis: int) -> Tensor:
    """g, zeroed where src overwrote x (PyTorch's rule)."""
    hits = scatter_add_p.bind(ones_like(index, dtype=g.dtype), index, axis=axis, shape=g.shape)
    return where(greater(hits, 0), as_tensor(np.zeros((), g.dtype), like=g), g)


gather_p: Primitive = Primitive(
    "gather", _gather_numpy, generic=_gather_generic, abstract_eval=_gather_abstract,
    saves=(1,)).defvjp(
    lambda g, out, x, index, *, axis: scatter_add_p.bind(g, index, axis=axis, shape=x.shape),
    None)
scatter_add_p: Primitive = Primitive(
    "scatter_add", _scatter_add_numpy, generic=_scatter_add_generic,
    abstract_eval=_scatter_add_abstract, saves=(1,)).defvjp(
    lambda g, out, src, index, *, axis, shape: gather_p.bind(g, index, axis=axis),
    None)
scatter_p: Primitive = Primitive(
    "scatter", _scatter_numpy, generic=_scatter_generic, abstract_eval=_scatter_abstract,
    saves=(1,)).defvjp(
    _scatter_vjp_x, None,
    lambda g, out, x, index, src, *, axis: gather_p.bind(g, index, axis=axis))


# ------------------------------------------------------------------ checks
def _index_tensor(index: Any, x: Tensor, name: str) -> Tensor:
    """``index`` as an integer Tensor on ``x``'s backend and device."""
    if isinstance(index, Tensor):
        kinds = {backends.backend_of(index.data), backends.backend_of(x.data)}
        if type(index.data) is not type(x.data) and ABSTRACT not in kinds:
            index = Tensor._from_array(backends.move(index.data, x.device))
    else:
        index = as_tensor(np.asarray(index), like=x)
    if np.dtype(index.dtype).kind not in "iu":
        raise TypeError(f"{name}: index must hold integers, got {index.dtype}")
    return index


def _check_range(name: str, index: Tensor, n: int, what: str) -> None:
    """IndexError unless every index lies in 0 .. n-1 (skipped for abstract values)."""
    backend = backends.backend_of(index.data)
    if backend is ABSTRACT or index.size == 0:
        return
    data = index.data
    if bool(backend.xp.any((data < 0) | (data >= n))):
        low, high = backend.to_host(backend.xp.min(data)), backend.to_host(backend.xp.max(data))
        raise IndexError(f"{name}: index holds values in {int(low)} .. {int(high)}, out of range "
                         f"for {what} of size {n} (valid: 0 .. {n - 1}; negative indices are "
                         "not wrapped)")


def _check_gather_shapes(name: str, x: Tensor, index: Tensor, axis: int,
                         src: Optional[Tensor] = None) -> None:
    if index.ndim != x.ndim:
        raise ShapeError(f"{name}: index has {index.ndim} dimensions, the tensor {x.ndim} "
                         f"(shapes {index.shape} and {x.shape}); they must be equal")
    for d, n in enumerate(index.shape):
        if d != axis and n > x.shape[d]:
            raise ShapeError(f"{name}: index shape {index.shape} exceeds the tensor's {x.shape} "
                             f"on axis {d} (only axis {axis} may be longer)")
        if src is not None and n > src.shape[d]:
            raise ShapeError(f"{name}: index shape {index.shape} exceeds src's {src.shape} on "
                             f"axis {d}")


def _axis(name: str, axis: int, ndim: int) -> int:
    ax = normalize_one_axis(axis, ndim)
    return 0 if ax is None else ax


# ------------------------------------------------------------------ public functions
def gather(x, axis: int, index) -> Tensor:
    """``torch.gather``: out[c] = x[c with c[axis] replaced by index[c]], out.shape = index.shape.

    ``index`` has x's rank, ``index.shape[d] <= x.shape[d]`` for d != axis, and values in
    0 .. x.shape[axis]-1. The gradient is ``scatter_add`` of g into zeros of x's shape (an
    element picked twice gets both contributions); no gradient reaches ``index``.
    """
    x = as_tensor(x)
    index = _index_tensor(index, x, "gather")
    if x.ndim == 0:
        if index.ndim != 0:
            raise ShapeError(f"gather: a 0-d tensor takes a 0-d index, got shape {index.shape}")
        return reshape(gather(reshape(x, (1,)), 0, reshape(index, (1,))), ())
    ax = _axis("gather", axis, x.ndim)
    _check_gather_shapes("gather", x, index, ax)
    _check_range("gather", index, x.shape[ax], f"axis {axis}")
    return gather_p.bind(x, index, axis=ax)


def take_along_axis(x, index, axis: Optional[int] = -1) -> Tensor:
    """``numpy.take_along_axis`` (``torch.take_along_dim``): gather, with x and index broadcast
    against each other on the axes other than ``axis``; ``axis=None`` works on the flattened x.

    The same derivative as :func:`gather` (the broadcast of x sums back).
    """
    x = as_tensor(x)
    index = _index_tensor(index, x, "take_along_axis")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    if index.ndim != x.ndim:
        raise ShapeError(f"take_along_axis: index has {index.ndim} dimensions, the tensor "
                         f"{x.ndim} (shapes {index.shape} and {x.shape})")
    if x.ndim == 0:
        return gather(x, 0, index)
    ax = _axis("take_along_axis", axis, x.ndim)
    others = [s for d, s in enumerate(x.shape) if d != ax]
    index_others = [s for d, s in enumerate(index.shape) if d != ax]
    try:
        common = list(np.broadcast_shapes(tuple(others), tuple(index_others)))
    except ValueError:
        raise ShapeError(f"take_along_axis: shapes {x.shape} and {index.shape} do not broadcast "
                         f"outside axis {axis}") from None
    x = broadcast_to(x, tuple(common[:ax] + [x.shape[ax]] + common[ax:]))
    index = broadcast_to(index, tuple(common[:ax] + [index.shape[ax]] + common[ax:]))
    return gather(x, ax, index)


def _scatter_inputs(name: str, x, axis: int, index, src) -> tuple:
    x = as_tensor(x)
    if x.ndim == 0:
        raise ShapeError(f"{name}: needs a tensor of at least 1 dimension (got a 0-d tensor)")
    index = _index_tensor(index, x, name)
    ax = _axis(name, axis, x.ndim)
    if not isinstance(src, Tensor) and np.ndim(src) == 0:  # torch's scatter(..., value)
        src = as_tensor(np.full(index.shape, src, dtype=np.result_type(x.dtype, src)), like=x)
    x, src = promote(x, as_tensor(src, like=x))
    _check_gather_shapes(name, x, index, ax, src)
    _check_range(name, index, x.shape[ax], f"axis {axis}")
    if src.shape != index.shape:  # only the index-shaped corner of src is read (as torch)
        src = getitem(src, tuple(slice(0, n) for n in index.shape))
    return x, ax, index, src


def scatter(x, axis: int, index, src) -> Tensor:
    """``torch.scatter``: x with out[c with c[axis] = index[c]] = src[c] (src a tensor or a
    number).

    Of repeated targets the last src element in C order wins (NumPy's order; PyTorch leaves it
    unspecified). Gradient as PyTorch: 0 at the overwritten positions of x, g elsewhere; src
    gets g gathered at its targets (every writer, also the ones a repeat overwrote).
    """
    x, ax, index, src = _scatter_inputs("scatter", x, axis, index, src)
    return scatter_p.bind(x, index, src, axis=ax)


def scatter_add(x, axis: int, index, src) -> Tensor:
    """``torch.scatter_add``: x plus src added at out[c with c[axis] = index[c]] (repeats add).

    Linear: x's gradient is g, src's is g gathered at the targets (:func:`gather`).
    """
    x, ax, index, src = _scatter_inputs("scatter_add", x, axis, index, src)
    return x + scatter_add_p.bind(src, index, axis=ax, shape=x.shape)


def index_select(x, axis: int, index) -> Tensor:
    """``torch.index_select``: the entries at a 1-D (or 0-d) ``index`` along ``axis``.

    out.shape is x.shape with axis's length replaced by len(index). The gradient adds g back
    at the selected positions (repeats accumulate).
    """
    x = as_tensor(x)
    if isinstance(index, Tensor):
        index = index.data
        index = index if type(index) is np.ndarray else backends.backend_of(index).to_host(index)
    index = np.asarray(index)
    if index.size and index.dtype.kind not in "iu":
        raise TypeError(f"index_select: index must hold integers, got {index.dtype}")
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 0-d or 1-D, got shape {index.shape}")
    index = index.reshape(-1).astype(np.int64)
    if x.ndim == 0:
        x = reshape(x, (1,))
    ax = _axis("index_select", axis, x.ndim)
    _check_range("index_select", Tensor._from_array(index), x.shape[ax], f"axis {axis}")
    return _take(x, index, ax)


def masked_fill(x, mask, value) -> Tensor:
    """``torch.masked_fill``: ``value`` where the boolean ``mask`` (broadcast to x) is True,
    x elsewhere.

    The gradient is g where the mask is False (0 where filled); a tensor ``value`` gets the sum
    of g over the filled positions.
    """
    x = as_tensor(x)
    mask = as_tensor(mask, like=x)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise ShapeError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                         f"{value.shape}")
    try:
        shape = np.broadcast_shapes(mask.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ShapeError(f"masked_fill: mask of shape {mask.shape} does not broadcast to the "
                         f"tensor's {x.shape}")
    if not isinstance(value, Tensor):  # a number takes x's dtype, as in PyTorch
        value = as_tensor(np.asarray(value).astype(x.dtype), like=x)
    return where(mask, value, x)


def one_hot(index, num_classes: int = -1) -> Tensor:
    """``torch.nn.functional.one_hot``: out[..., c] = 1 if index[...] == c else 0, int64, shape
    index.shape + (num_classes,). ``-1`` takes max(index) + 1. Not differentiable (integers)."""
    index = as_tensor(index)
    if np.dtype(index.dtype).kind not in "iu":
        raise TypeError(f"one_hot: index must hold integers, got {index.dtype}")
    if num_classes == -1:
        if index.size == 0:
            raise ValueError("one_hot: num_classes=-1 cannot be inferred from an empty index")
        backend = backends.backend_of(index.data)
        num_classes = int(backend.to_host(backend.xp.max(index.data))) + 1
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes={num_classes!r} must be a positive int or -1")
    _check_range("one_hot", index, int(num_classes), "num_classes")
    classes = arange(int(num_classes), dtype=index.dtype, device=index.device)
    return astype(equal(reshape(index, index.shape + (1,)), classes), np.int64)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add,
    "index_select": index_select, "masked_fill": masked_fill, "take_along_dim": take_along_axis,
}

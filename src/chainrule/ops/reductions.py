"""Reductions: sum, prod, mean, var, std, max, min, logsumexp, any, all, and ``sum_to``
(broadcasting undone).

NumPy naming: ``axis`` (None, an int or a tuple of ints, negatives allowed) and ``keepdims``.
``sum`` and ``broadcast_to``/``sum_to`` are linear pairs: each one's VJP is the other.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable, Optional, Union

import numpy as np

from chainrule import backends
from chainrule.engine.errors import AxisError, ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, reduce
from chainrule.ops.elementwise import exp, floating, isfinite, log, sqrt, where
from chainrule.ops.primitive import Primitive, as_tensor

__all__ = [
    "sum", "prod", "mean", "var", "std", "max", "min", "logsumexp", "sum_to", "broadcast_to",
    "argmax", "argmin", "any", "all", "AxisError",
]

Axis = Optional[Union[int, tuple]]


def normalize_axis(axis: Axis, ndim: int, name: str = "axis") -> tuple:
    """``axis`` (None, an int or a sequence of ints) as a sorted tuple of axes in ``range(ndim)``.

    The one place every axis argument is checked (reductions, softmax, squeeze, flatten,
    transpose, stack ...). PyTorch's rule: valid axes are -n .. n-1, and a 0-d tensor acts as one
    element, so axis 0 and -1 are valid for it and name no axis at all (the result is ``()``:
    reducing or squeezing it changes nothing). Anything else raises :class:`AxisError` naming
    the valid range; an axis given twice raises too.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    span = builtins.max(ndim, 1)
    result = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -span <= a < span:
            where = f"a tensor with {ndim} dimensions" if ndim else "a 0-d tensor"
            rule = "" if ndim else "; a 0-d tensor acts as one element"
            raise AxisError(f"{name}={axis!r} is out of range for {where} "
                            f"(valid: {-span} .. {span - 1}{rule})")
        result.append(int(a) % span)
    if len(set(result)) != len(result):
        raise ShapeError(f"{name}={axis!r} repeats an axis")
    return tuple(sorted(result)) if ndim else ()


def normalize_one_axis(axis: int, ndim: int, name: str = "axis") -> Optional[int]:
    """One axis (an int) as an int in ``range(ndim)``; None for a 0-d tensor's axis 0 or -1.

    For the functions that act along a single axis (softmax, argmax, split, flatten's ends ...);
    checked by :func:`normalize_axis`. None is NumPy's ``axis=None``, the whole of a 0-d array.
    """
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    axes = normalize_axis(axis, ndim, name)
    return axes[0] if axes else None


def _count(x: Tensor, axes: tuple) -> int:
    """How many elements each result element of a reduction over ``axes`` gathers."""
    return int(np.prod([x.shape[a] for a in axes]))


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_to(g: Tensor, shape: tuple, axes: tuple) -> Tensor:
    """A reduction's output gradient ``g`` broadcast back over the reduced ``axes`` of ``shape``."""
    if g.ndim:  # a 0-d gradient (a full reduction) broadcasts as it is
        g = g.reshape(_kept_shape(shape, axes))
    return broadcast_to(g, shape)


def _sum_to_axes(from_shape: tuple, shape: tuple) -> tuple:
    """The axes of ``from_shape`` that broadcasting ``shape`` up to it added or stretched."""
    lead = len(from_shape) - len(shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and from_shape[lead + i] != 1
    )


def _sum_to_impl(x: np.ndarray, *, shape: tuple) -> np.ndarray:
    axes = _sum_to_axes(x.shape, shape)
    return (x.sum(axis=axes, keepdims=True) if axes else x).reshape(shape)


def _sum_to_generic(xp: Any, x: Any, *, shape: tuple) -> Any:
    axes = _sum_to_axes(x.shape, shape)
    return xp.reshape(_sum_generic(xp, x, axis=axes, keepdims=True) if axes else x, shape)


def _sum_generic(xp: Any, x: Any, *, axis: tuple, keepdims: bool) -> Any:
    """sum(x) over ``axis``; bools count as int64 (NumPy's sum; the standard has no bool sum)."""
    if x.dtype == xp.bool:
        x = xp.astype(x, xp.int64)
    return xp.sum(x, axis=axis, keepdims=keepdims)


def _extreme_generic(name: str, bool_name: str) -> Callable[..., Any]:
    """xp.max / xp.min; on bools any / all (the standard's max and min take numbers only)."""
    def kernel(xp: Any, x: Any, *, axis: tuple, keepdims: bool) -> Any:
        fn = getattr(xp, bool_name if x.dtype == xp.bool else name)
        return fn(x, axis=axis, keepdims=keepdims)
    return kernel


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    """NumPy's dtype of a sum: small integers and bools widen to the default integer."""
    return np.zeros(1, dtype).sum().dtype


def _sum_abstract(x: ShapeDtype, *, axis: tuple, keepdims: bool) -> ShapeDtype:
    return reduce(x, axis=axis, keepdims=keepdims, dtype=_sum_dtype(x.dtype))


def _sum_to_abstract(x: ShapeDtype, *, shape: tuple) -> ShapeDtype:
    dtype = _sum_dtype(x.dtype) if _sum_to_axes(x.shape, shape) else x.dtype
    return ShapeDtype(tuple(shape), dtype, x.device)


def _broadcast_to_abstract(x: ShapeDtype, *, shape: tuple) -> ShapeDtype:
    return ShapeDtype(tuple(shape), x.dtype, x.device)


def _extreme_vjp(g, out, x, *, axis, keepdims):
    """max/min: the gradient is split evenly among the elements that attain the extreme."""
    kept = _kept_shape(x.shape, axis)
    if type(x.data) is np.ndarray:
        hits = x.data == out.data.reshape(kept)
        share = (hits / hits.sum(axis=axis, keepdims=True)).astype(x.dtype, copy=False)
    else:
        xp = backends.backend_of(x.data).xp
        ones = xp.astype(x.data == xp.reshape(out.data, kept), x.data.dtype)
        share = ones / xp.sum(ones, axis=axis, keepdims=True)
    return g.reshape(kept) * Tensor._from_array(share)


def _prod_generic(xp: Any, x: Any, *, axis: tuple, keepdims: bool) -> Any:
    """prod(x) over ``axis``; bools and integers multiply as int64 (NumPy's prod)."""
    if x.dtype == xp.bool or xp.isdtype(x.dtype, "integral"):
        x = xp.astype(x, xp.int64)
    return xp.prod(x, axis=axis, keepdims=keepdims)


def _prod_abstract(x: ShapeDtype, *, axis: tuple, keepdims: bool) -> ShapeDtype:
    return reduce(x, axis=axis, keepdims=keepdims, dtype=np.zeros(1, x.dtype).prod().dtype)


def _prod_vjp(g: Tensor, out: Tensor, x: Tensor, *, axis: tuple, keepdims: bool) -> Tensor:
    """d/dx_i prod(x) = prod_{j != i} x_j, as (exclusive cumprod) * (reverse exclusive cumprod)
    along the reduced axes flattened into one: no division, so exact with any number of zeros
    (and to every order: the rule is a polynomial of x built from differentiable operations)."""
    from chainrule.ops.creation import ones_like  # noqa: PLC0415
    from chainrule.ops.scans import cumprod_p  # noqa: PLC0415 -- scans imports this module
    from chainrule.ops.shape import concatenate, getitem, reshape, transpose  # noqa: PLC0415

    if x.size == 0:  # nothing to differentiate
        return x * 0.0
    kept = tuple(i for i in range(x.ndim) if i not in axis)
    order = kept + tuple(axis)
    moved = transpose(x, order) if order != tuple(range(x.ndim)) else x
    lead = tuple(x.shape[i] for i in kept)
    n = _count(x, axis)
    flat = reshape(moved, lead + (n,))
    last = len(lead)
    one = ones_like(getitem(flat, (slice(None),) * last + (slice(0, 1),))).detach()

    def exclusive(t: Tensor) -> Tensor:  # prod_{j<i} t_j along the last axis
        head = getitem(t, (slice(None),) * last + (slice(0, n - 1),))
        return concatenate([one, cumprod_p.bind(head, axis=last)], axis=last)

    def flip(t: Tensor) -> Tensor:
        return getitem(t, (slice(None),) * last + (slice(None, None, -1),))

    others = exclusive(flat) * flip(exclusive(flip(flat)))
    others = reshape(others, tuple(x.shape[i] for i in order))
    if order != tuple(range(x.ndim)):
        others = transpose(others, tuple(int(a) for a in np.argsort(order)))
    return _expand_to(g, x.shape, axis) * others


# fmt: off
sum_p          = Primitive("sum", lambda x, *, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
                           generic=_sum_generic, abstract_eval=_sum_abstract, saves=()).defvjp(
    lambda g, out, x, *, axis, keepdims: _expand_to(g, x.shape, axis))
prod_p         = Primitive("prod",
                           lambda x, *, axis, keepdims: x.prod(axis=axis, keepdims=keepdims),
                           generic=_prod_generic, abstract_eval=_prod_abstract, saves=(0,)).defvjp(
    _prod_vjp)
max_p          = Primitive("max", lambda x, *, axis, keepdims: x.max(axis=axis, keepdims=keepdims),
                           generic=_extreme_generic("max", "any"), abstract_eval=reduce,
                           smooth=False).defvjp(_extreme_vjp)
min_p          = Primitive("min", lambda x, *, axis, keepdims: x.min(axis=axis, keepdims=keepdims),
                           generic=_extreme_generic("min", "all"), abstract_eval=reduce,
                           smooth=False).defvjp(_extreme_vjp)
sum_to_p       = Primitive("sum_to", _sum_to_impl, generic=_sum_to_generic,
                           abstract_eval=_sum_to_abstract, saves=()).defvjp(
    lambda g, out, x, *, shape: broadcast_to(g, x.shape))
broadcast_to_p = Primitive("broadcast_to", generic="broadcast_to",  # NumPy's: a read-only view
                           abstract_eval=_broadcast_to_abstract, saves=()).defvjp(
    lambda g, out, x, *, shape: sum_to(g, x.shape))
# fmt: on


def sum(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes by default); 0 over an empty axis."""
    x = as_tensor(x)
    return sum_p.bind(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def mean(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``: sum / count; integer and bool tensors give float32.

    Over an empty axis the mean is nan, as in NumPy and PyTorch (without NumPy's warning).
    """
    x = floating(x)
    axes = normalize_axis(axis, x.ndim)
    total = sum_p.bind(x, axis=axes, keepdims=keepdims)
    count = _count(x, axes)
    return total / count if count else total * np.nan  # 0 * nan: nan, and no 0/0 warning


def var(x, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance, mean((x - mean(x))^2) * n / (n - ddof). NumPy's default ddof=0 (population).

    With no more than ``ddof`` elements (an empty axis, or one element and ddof=1) the variance
    is nan, as in NumPy and PyTorch (without their warnings). Integers give float32.
    """
    x = floating(x)
    axes = normalize_axis(axis, x.ndim)
    count = _count(x, axes)
    centred = x - mean(x, axis=axes, keepdims=True)
    squares = sum(centred * centred, axis=axes, keepdims=keepdims)
    return squares / (count - ddof) if count > ddof else squares * np.nan


def prod(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (all axes by default); 1 over an empty axis. Bools and integers
    give int64 (NumPy's and PyTorch's).

    The gradient d/dx_i = prod_{j != i} x_j is computed without dividing by x: exact where x
    holds one zero (the gradient there is the product of the others) or several (all zero).
    """
    x = as_tensor(x)
    return prod_p.bind(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def std(x, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation, sqrt(var(x, axis, ddof)): NumPy's default ``ddof=0`` (population).

    PyTorch's ``torch.std`` defaults to ``correction=1`` (the sample estimate): pass ``ddof=1``
    for its value. The gradient is (x - mean) / ((n - ddof) * std); where std is 0 (all
    elements equal) it is 0, as ``torch.std``'s (a plain sqrt(var) would give 0 * inf = nan).
    No more than ``ddof`` elements give nan.
    """
    variance = var(x, axis=axis, keepdims=keepdims, ddof=ddof)
    spread = variance != 0  # nan (too few elements) counts as spread, and stays nan
    # the inner where keeps sqrt away from 0, so no inf meets the outer where's zero gradient
    return where(spread, sqrt(where(spread, variance, 1.0)), 0.0)


def any(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Whether any element over ``axis`` is non-zero (a bool tensor; False over an empty axis).

    Not differentiable: the result is outside the graph.
    """
    return _logical("any", x, axis, keepdims)


def all(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Whether every element over ``axis`` is non-zero (a bool tensor; True over an empty axis).

    Not differentiable: the result is outside the graph.
    """
    return _logical("all", x, axis, keepdims)


def _logical(name: str, x, axis: Axis, keepdims: bool) -> Tensor:
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    if type(x.data) is np.ndarray:
        return Tensor._from_array(
            np.asarray(getattr(np, name)(x.data, axis=axes, keepdims=keepdims)))
    xp = backends.backend_of(x.data).xp
    return Tensor._from_array(getattr(xp, name)(x.data, axis=axes, keepdims=keepdims))


def max(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``. Tied maxima share the gradient equally (a valid subgradient).

    An empty axis raises :class:`ShapeError` (the maximum of nothing has no identity).
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    _check_not_empty("max", x, axes)
    return max_p.bind(x, axis=axes, keepdims=keepdims)


def min(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``. Tied minima share the gradient equally (a valid subgradient).

    An empty axis raises :class:`ShapeError` (the minimum of nothing has no identity).
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    _check_not_empty("min", x, axes)
    return min_p.bind(x, axis=axes, keepdims=keepdims)


def argmax(x, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """Index of the maximum along ``axis`` (of the flattened tensor if None), int64; first on ties.

    Not differentiable (an index has no gradient): the result is outside the graph. An empty
    axis raises :class:`ShapeError`.
    """
    return _arg_extreme(np.argmax, "argmax", x, axis, keepdims)


def argmin(x, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """Index of the minimum along ``axis``, int64; the first one on ties. Not differentiable."""
    return _arg_extreme(np.argmin, "argmin", x, axis, keepdims)


def _arg_extreme(fn, name: str, x, axis, keepdims: bool) -> Tensor:
    x = as_tensor(x)
    if axis is not None:
        axis = normalize_one_axis(axis, x.ndim)  # None for a 0-d tensor: its one element
    _check_not_empty(name, x, tuple(range(x.ndim)) if axis is None else (axis,))
    if type(x.data) is np.ndarray:
        return Tensor._from_array(
            np.asarray(fn(x.data, axis=axis, keepdims=keepdims), dtype=np.int64))
    backend = backends.backend_of(x.data)
    index = getattr(backend.xp, name)(x.data, axis=axis, keepdims=keepdims)
    return Tensor._from_array(backend.xp.astype(index, backend.dtype(np.int64), copy=False))


def _check_not_empty(name: str, x: Tensor, axes: tuple) -> None:
    """max, min, argmax, argmin: an empty axis is an error (as PyTorch), never NumPy's message."""
    empty = [a for a in axes if x.shape[a] == 0]
    if empty:
        raise ShapeError(f"{name}: cannot reduce over an empty axis (axis {empty[0]} of shape "
                         f"{x.shape}): {name} has no identity; reduce a non-empty axis")


def logsumexp(x, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) computed as m + log(sum(exp(x - m))), m = max(x): finite for any finite x.

    Its gradient is softmax(x) along ``axis``. The shift m is a constant (detached): the result
    does not depend on it. Over an empty axis the result is log(0) = -inf (NumPy's and
    PyTorch's value); integer and bool tensors give float32.
    """
    x = floating(x)
    axes = normalize_axis(axis, x.ndim)
    if not _count(x, axes):  # no max to shift by, and log's divide-by-zero warning avoided
        return sum(x, axis=axes, keepdims=keepdims) - np.inf
    shift = _finite_or_zero(max(x.detach(), axis=axes, keepdims=True))
    result = log(sum(exp(x - shift), axis=axes, keepdims=True)) + shift
    if keepdims:
        return result
    return result.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _finite_or_zero(t: Tensor) -> Tensor:
    """The max of an all -inf slice is -inf: shift by 0 there instead of producing nan."""
    return where(isfinite(t), t, 0.0)  # t is detached: no graph (ops: also under eval_shape)


def sum_to(x, shape: tuple) -> Tensor:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting ``shape`` up to ``x.shape``)."""
    x = as_tensor(x)
    shape = tuple(shape)
    if np.broadcast_shapes(shape, x.shape) != x.shape:
        raise ShapeError(f"sum_to: shape {shape} does not broadcast to {x.shape}")
    return sum_to_p.bind(x, shape=shape)


def broadcast_to(x, shape) -> Tensor:
    """``x`` broadcast to ``shape`` (a read-only view); the gradient sums back."""
    x = as_tensor(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if x.shape == shape:
        return x
    try:
        target = np.broadcast_shapes(x.shape, shape)
    except ValueError:
        target = None
    if target != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return broadcast_to_p.bind(x, shape=shape)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``;
#: ``sum``, ``max`` ... are Tensor's own methods already.
TENSOR_METHODS: dict[str, Callable] = {"prod": prod, "std": std, "any": any, "all": all}

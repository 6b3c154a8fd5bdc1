"""Logic on bool tensors (``&``, ``|``, ``^``, ``~``, ``logical_*``) and tests of values
(``isnan``, ``isinf``, ``isclose``): not differentiable, outside the graph.

Every function here returns a new tensor computed from its inputs' values (``.data``), with no
graph: the results are bool (or, for the bitwise operations on integers, integers), which have no
derivative. Each runs on any backend through the standard's functions of the same name
(``logical_and``, ``bitwise_and``, ``isnan`` ...) and under ``eval_shape`` as its abstract value.

Dtypes follow PyTorch: ``logical_*`` take any dtype (nonzero is true) and return bool; ``&``,
``|``, ``^``, ``~`` (``bitwise_*``) are the logical operations on bool tensors and the bitwise
ones on integer tensors (a bool operand meeting an integer one becomes that integer), and refuse
floating tensors.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from chainrule import backends
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, broadcast_shapes
from chainrule.ops.elementwise import _cast, _check_broadcast, isfinite
from chainrule.ops.primitive import as_tensor

__all__ = [
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "isnan", "isinf", "isclose", "allclose",
]

_BOOL = np.dtype(np.bool_)


def _pair(x, y) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other's dtype kind (NEP 50)."""
    x = as_tensor(x, like=y if isinstance(y, Tensor) else None)
    return x, as_tensor(y, like=x)


def _abstract(tensors: tuple, dtype: Any) -> Optional[Tensor]:
    """Under ``eval_shape`` (an input is abstract): the result's abstract value, else None."""
    if not any(type(t.data) is ShapeDtype for t in tensors):
        return None
    shape = broadcast_shapes(*[t.shape for t in tensors])
    value: Any = ShapeDtype(shape, np.dtype(dtype), tensors[0].device)  # an abstract "array"
    return Tensor._from_array(value)


def _namespace(name: str, tensors: tuple) -> Any:
    """The array namespace of ``tensors``, refusing two backends in one call."""
    backend = backends.backend_of(tensors[0].data)
    for t in tensors[1:]:
        if backends.backend_of(t.data) is not backend:
            raise backends.mismatch(tensors[0].data, t.data, name)
    return backend.xp


def _apply(name: str, tensors: tuple, arrays: list, xp: Any) -> Tensor:
    """``xp.<name>(*arrays)`` as a Tensor; a ShapeError naming the shapes if they do not
    broadcast."""
    try:
        return Tensor._from_array(xp.asarray(getattr(xp, name)(*arrays)))
    except ValueError:
        _check_broadcast(name, *[t.shape for t in tensors])
        raise


# ------------------------------------------------------------------ logical_*
def _logical(name: str, *tensors: Tensor) -> Tensor:
    """The standard's ``name`` on the inputs read as bool (nonzero is true)."""
    abstract = _abstract(tensors, _BOOL)
    if abstract is not None:
        return abstract
    xp = _namespace(name, tensors)
    arrays = [t.data if t.dtype == _BOOL else t.data != 0 for t in tensors]
    return _apply(name, tensors, arrays, xp)


def logical_and(x, y) -> Tensor:
    """x and y, elementwise, as a bool tensor (any dtype: nonzero is true); broadcasting."""
    return _logical("logical_and", *_pair(x, y))


def logical_or(x, y) -> Tensor:
    """x or y, elementwise, as a bool tensor (any dtype: nonzero is true); broadcasting."""
    return _logical("logical_or", *_pair(x, y))


def logical_xor(x, y) -> Tensor:
    """x xor y (exactly one true), as a bool tensor (any dtype: nonzero is true)."""
    return _logical("logical_xor", *_pair(x, y))


def logical_not(x) -> Tensor:
    """not x, elementwise, as a bool tensor (any dtype: zero is false, so becomes true)."""
    return _logical("logical_not", as_tensor(x))


# ------------------------------------------------------------------ bitwise (& | ^ ~)
def _bitwise(name: str, logical: str, *tensors: Tensor) -> Tensor:
    """``logical`` on bool tensors, the standard's bitwise ``name`` on integers (brought to their
    common dtype); floating and complex tensors are refused, as PyTorch does."""
    dtypes = [t.dtype for t in tensors]
    bad = [d for d in dtypes if d.kind not in "biu"]
    if bad:
        listed = " and ".join(str(d) for d in dtypes)
        raise TypeError(f"{name}: needs bool or integer tensors, got {listed} "
                        f"(logical_{logical.split('_')[1]} takes any dtype)")
    target = np.result_type(*dtypes)
    if target == _BOOL:
        return _logical(logical, *tensors)
    abstract = _abstract(tensors, target)
    if abstract is not None:
        return abstract
    xp = _namespace(name, tensors)
    cast = tuple(t if t.dtype == target else _cast(t, target) for t in tensors)
    return _apply(name, tensors, [t.data for t in cast], xp)


def bitwise_and(x, y) -> Tensor:
    """x & y: logical and of bool tensors, bitwise and of integer tensors."""
    return _bitwise("bitwise_and", "logical_and", *_pair(x, y))


def bitwise_or(x, y) -> Tensor:
    """x | y: logical or of bool tensors, bitwise or of integer tensors."""
    return _bitwise("bitwise_or", "logical_or", *_pair(x, y))


def bitwise_xor(x, y) -> Tensor:
    """x ^ y: logical xor of bool tensors, bitwise xor of integer tensors."""
    return _bitwise("bitwise_xor", "logical_xor", *_pair(x, y))


def bitwise_not(x) -> Tensor:
    """~x: logical not of a bool tensor, bitwise not (-x - 1) of an integer tensor."""
    return _bitwise("bitwise_invert", "logical_not", as_tensor(x))


# ------------------------------------------------------------------ tests of values
def _test(name: str, x) -> Tensor:
    x = as_tensor(x)
    abstract = _abstract((x,), _BOOL)
    if abstract is not None:
        return abstract
    return _apply(name, (x,), [x.data], _namespace(name, (x,)))


def isnan(x) -> Tensor:
    """x is nan, as a bool tensor (false for every integer)."""
    return _test("isnan", x)


def isinf(x) -> Tensor:
    """x is +inf or -inf, as a bool tensor (false for every integer)."""
    return _test("isinf", x)


def _tolerance(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"isclose: {name} must be a number >= 0, got {value!r}")
    if not value >= 0:
        raise ValueError(f"isclose: {name} must be >= 0 (and not nan), got {value!r}")
    return float(value)


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """``|a - b| <= atol + rtol |b|``, elementwise, as a bool tensor (as ``torch.isclose`` and
    ``np.isclose``; not symmetric: the tolerance scales with b).

    Equal values are close (inf with inf of the same sign too); otherwise the difference must be
    finite, so inf is never close to a finite number. nan is close to nan only with
    ``equal_nan=True``. Integer tensors are compared in float64, bool tensors by equality.
    """
    rtol, atol = _tolerance("rtol", rtol), _tolerance("atol", atol)
    a, b = _pair(a, b)
    abstract = _abstract((a, b), _BOOL)
    if abstract is not None:
        return abstract
    xp = _namespace("isclose", (a, b))
    target = np.result_type(a.dtype, b.dtype)
    if target == _BOOL:
        return _apply("equal", (a, b), [a.data, b.data], xp)
    if target.kind not in "fc":
        target = np.dtype(np.float64)
    x, y = (t.data if t.dtype == target else _cast(t, target).data for t in (a, b))
    try:
        close = x == y
    except ValueError:
        _check_broadcast("isclose", a.shape, b.shape)
        raise
    if equal_nan:
        close = xp.logical_or(close, xp.logical_and(xp.isnan(x), xp.isnan(y)))
    with np.errstate(invalid="ignore"):  # inf - inf, 0 * inf = nan: not close (isfinite)
        error = xp.abs(x - y)
        within = xp.logical_and(xp.isfinite(error), error <= atol + rtol * xp.abs(y))
    return Tensor._from_array(xp.asarray(xp.logical_or(close, within)))


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True when every element of a is close to b's (:func:`isclose`), as ``torch.allclose``."""
    close = isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    return bool(backends.backend_of(close.data).xp.all(close.data))


# ------------------------------------------------------------------ Tensor methods
def _reflected(fn: Callable[[Any, Any], Tensor]) -> Callable[[Tensor, Any], Tensor]:
    return lambda self, other: fn(other, self)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "logical_and": logical_and, "logical_or": logical_or, "logical_xor": logical_xor,
    "logical_not": logical_not, "bitwise_and": bitwise_and, "bitwise_or": bitwise_or,
    "bitwise_xor": bitwise_xor, "bitwise_not": bitwise_not, "isnan": isnan, "isinf": isinf,
    "isfinite": isfinite, "isclose": isclose, "allclose": allclose,
    "__and__": bitwise_and, "__rand__": _reflected(bitwise_and),
    "__or__": bitwise_or, "__ror__": _reflected(bitwise_or),
    "__xor__": bitwise_xor, "__rxor__": _reflected(bitwise_xor),
    "__invert__": bitwise_not,
}

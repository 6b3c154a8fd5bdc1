"""Elementwise arithmetic and functions, with NumPy broadcasting.

Each primitive is one table row: name, NumPy forward, VJP per input. The rules return
gradients of the broadcast output shape; the engine sums them back to each input's shape.
Comparisons (``less``, ``equal`` ...) return bool tensors and are not part of the graph.

Dtypes follow PyTorch: a function whose result is a float (exp, log, sqrt, sin, tanh, true
division ...) computes integer and bool tensors in float32, PyTorch's default dtype
(:func:`floating`); an integer operand meeting a floating one takes its dtype, a Python float
meeting an integer tensor is float32 (:func:`promote`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, broadcast, compare, float_of, same
from chainrule.ops.primitive import REGISTRY, Primitive, as_tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt",
    "sin", "cos", "tanh", "abs", "clip", "maximum", "minimum", "where", "astype",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "isfinite",
]

#: PyTorch's default dtype: what integer and bool tensors become in a floating function.
DEFAULT_FLOAT = np.dtype(np.float32)
#: NumPy's floating dtype classes: ``_operands``' one-dtype test without reading ``.kind`` from a
#: namespace's dtype object (array_api_strict's has none).
_NUMPY_FLOATS = frozenset(type(np.dtype(t)) for t in (np.float16, np.float32, np.float64,
                                                       np.longdouble))
#: NumPy's array type, one global read on the hot paths that test for it
_NDARRAY = np.ndarray


def _cast(t: Tensor, dtype: Any) -> Tensor:
    """``t``'s values in ``dtype``, outside the graph (integers to float, a condition to bool).

    NumPy's ``astype`` directly; other backends through ``astype``'s kernel on a detached copy of
    ``t``, so the abstract backend (``eval_shape``) casts too.
    """
    if type(t.data) is _NDARRAY:
        return Tensor._from_array(t.data.astype(dtype))
    return astype_p.bind(Tensor._from_array(t.data), dtype=np.dtype(dtype))


def floating(x) -> Tensor:
    """``x`` as a Tensor of a floating dtype: integer and bool tensors become float32.

    For every function whose result is a float (exp, log, sigmoid, mean ...), as PyTorch
    promotes integer inputs to its default dtype (NumPy would give float64).
    """
    x = as_tensor(x)
    data = x.data
    if (data.dtype if type(data) is _NDARRAY else x.dtype).kind in "fc":
        return x
    return _cast(x, DEFAULT_FLOAT)


def promote(*tensors: Tensor, to_float: bool = False) -> tuple:
    """The operands of one operation brought to one kind, by PyTorch's category rule.

    Where floating and integer (or bool) tensors meet, the integer ones take the floating
    operands' common dtype (NumPy would widen int64 + float32 to float64); with
    ``to_float=True`` (true division) all-integer operands become float32.
    """
    dtypes = [t.data.dtype if type(t.data) is _NDARRAY else t.dtype for t in tensors]
    floats = [d for d in dtypes if d.kind in "fc"]
    if len(floats) == len(tensors) or not (floats or to_float):
        if type(tensors[0].data) is _NDARRAY or len(set(dtypes)) == 1:
            return tensors  # one kind: NumPy's promotion within a kind is PyTorch's
        target = np.result_type(*dtypes)  # the standard refuses bool + int: cast as NumPy would
    else:
        target = np.result_type(*floats) if floats else DEFAULT_FLOAT
    return tuple(t if d == target else _cast(t, target) for t, d in zip(tensors, dtypes))


def _namespace(*tensors: Tensor) -> Any:
    """The array namespace of ``tensors`` (for masks inside rules, never on the graph)."""
    return backends.backend_of(tensors[0].data).xp


def _ties_weight(x: Tensor, y: Tensor) -> Tensor:
    """1 where x wins, 1/2 where x and y tie, 0 where y wins: the share of maximum(x, y)'s
    gradient."""
    return where(greater(x, y), 1.0, where(equal(x, y), 0.5, 0.0))


def _power_derivative(x: Tensor, y: Tensor) -> Tensor:
    """d/dx x^y = y x^(y-1), exactly 0 where x = y = 0 (not 0 * 0^-1 = nan).

    Exact at every order: the derivative of x^(y-1) is this rule again with exponent y - 1, so
    d^k/dx^k x^y at x = 0 is 0 for each integer y < k (PyTorch's values for a Python exponent;
    with a tensor exponent PyTorch gives nan from the second order on). Both ``where``s keep
    the masked elements out of the graph, so their derivatives in x and y are 0, not nan.
    """
    xp = _namespace(x)
    zero = xp.logical_and(x.data == 0, y.data == 0)
    if not bool(xp.any(zero)):
        return y * x ** (y - 1)
    zero = Tensor._from_array(zero)
    return where(zero, 0.0, y * where(zero, 1.0, x) ** (y - 1))


def _log_base(x: Tensor, y: Tensor) -> Tensor:
    """x with 1 where x = 0 and y >= 0, for d/dy x^y = x^y log x (PyTorch's values).

    There 0^y is 1 or 0, constant in y: the derivative is 0. For y < 0 it stays 0^y log 0 =
    inf * -inf = -inf, and x^y log x elsewhere.
    """
    xp = _namespace(x)
    constant = xp.logical_and(x.data == 0, y.data >= 0)
    return where(Tensor._from_array(constant), 1.0, x) if bool(xp.any(constant)) else x


def _clip(xp, x, *, lo, hi):
    """min(max(x, lo), hi); a bound of None is no bound."""
    return xp.clip(x, lo, hi)


def _clip_vjp(g, out, x, *, lo, hi):
    """g on [lo, hi], ends included (the convention), 0 outside."""
    masks = [x.data >= lo] if lo is not None else []
    if hi is not None:
        masks.append(x.data <= hi)
    inside = masks[0] if len(masks) == 1 else _namespace(x).logical_and(*masks)
    return g * Tensor._from_array(inside)


def _divide(*inputs: ShapeDtype, **params: Any) -> ShapeDtype:
    """True division's abstract value: the broadcast, integers divided give float64 (NumPy)."""
    result = broadcast(*inputs)
    if result.dtype.kind in "fc":
        return result
    return ShapeDtype(result.shape, np.dtype(np.float64), result.device)


def _where(c: ShapeDtype, x: ShapeDtype, y: ShapeDtype) -> ShapeDtype:
    """``where``'s abstract value: the three shapes broadcast, x's and y's dtypes promoted."""
    return ShapeDtype(compare(c, x, y).shape, broadcast(x, y).dtype, x.device)


def _as_dtype(x: ShapeDtype, *, dtype: Any) -> ShapeDtype:
    return ShapeDtype(x.shape, np.dtype(dtype), x.device)


def _astype(xp, x, *, dtype):
    return xp.astype(x, backends.backend_of(x).dtype(dtype))


# The generic kernels are the standard's functions by name: for NumPy the name is its ufunc
# (np.add ...), called as directly as before. NumPy keeps a kernel of its own only for astype
# (the method, no namespace lookup of the dtype).
# fmt: off
add_p     = Primitive("add", generic="add", abstract_eval=broadcast, saves=()).defvjp(
    lambda g, out, x, y: g, lambda g, out, x, y: g)
# (the rules bind directly: their operands already share one kind and backend, so the public
# functions' checks and promotion would only cost time on the backward pass's hottest path)
mul_p: Primitive
div_p: Primitive
neg_p: Primitive
sub_p     = Primitive("sub", generic="subtract", abstract_eval=broadcast, saves=()).defvjp(
    lambda g, out, x, y: g, lambda g, out, x, y: neg_p.bind(g))
mul_p     = Primitive("mul", generic="multiply", abstract_eval=broadcast).defvjp(
    lambda g, out, x, y: mul_p.bind(g, y), lambda g, out, x, y: mul_p.bind(g, x))
div_p     = Primitive("div", generic="divide", abstract_eval=_divide).defvjp(
    lambda g, out, x, y: div_p.bind(g, y),
    lambda g, out, x, y: div_p.bind(mul_p.bind(neg_p.bind(g), out), y))
neg_p     = Primitive("neg", generic="negative", abstract_eval=same, saves=()).defvjp(
    lambda g, out, x: neg_p.bind(g))
pow_p     = Primitive("pow", generic="pow", abstract_eval=broadcast).defvjp(
    lambda g, out, x, y: g * _power_derivative(x, y),
    lambda g, out, x, y: g * out * log(_log_base(x, y)))
exp_p     = Primitive("exp", generic="exp", abstract_eval=float_of, saves=("out",)).defvjp(
    lambda g, out, x: g * out)
log_p     = Primitive("log", generic="log", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / x)
log1p_p   = Primitive("log1p", generic="log1p", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / (x + 1))
expm1_p   = Primitive("expm1", generic="expm1", abstract_eval=float_of).defvjp(
    lambda g, out, x: g * exp(x))  # not out + 1: that loses e^x below x = -37
sqrt_p    = Primitive("sqrt", generic="sqrt", abstract_eval=float_of, saves=("out",)).defvjp(
    lambda g, out, x: g / (out * 2))
sin_p     = Primitive("sin", generic="sin", abstract_eval=float_of).defvjp(
    lambda g, out, x: g * cos(x))
cos_p     = Primitive("cos", generic="cos", abstract_eval=float_of).defvjp(
    lambda g, out, x: -g * sin(x))
tanh_p    = Primitive("tanh", generic="tanh", abstract_eval=float_of, saves=("out",)).defvjp(
    lambda g, out, x: g * (1 - out * out))
abs_p     = Primitive("abs", generic="abs", abstract_eval=same, smooth=False).defvjp(
    lambda g, out, x: g * _sign(x))  # sign(0) = 0: the convention at the kink
clip_p    = Primitive("clip", generic=_clip, abstract_eval=same, smooth=False).defvjp(_clip_vjp)
maximum_p = Primitive("maximum", generic="maximum", abstract_eval=broadcast, smooth=False).defvjp(
    lambda g, out, x, y: g * _ties_weight(x, y), lambda g, out, x, y: g * _ties_weight(y, x))
minimum_p = Primitive("minimum", generic="minimum", abstract_eval=broadcast, smooth=False).defvjp(
    lambda g, out, x, y: g * _ties_weight(y, x), lambda g, out, x, y: g * _ties_weight(x, y))
where_p   = Primitive("where", generic="where", abstract_eval=_where, smooth=False).defvjp(
    None, lambda g, out, c, x, y: where(c, g, 0.0), lambda g, out, c, x, y: where(c, 0.0, g))
astype_p  = Primitive("astype", lambda x, *, dtype: x.astype(dtype), generic=_astype,
                      abstract_eval=_as_dtype).defvjp(
    lambda g, out, x, *, dtype: g.astype(x.dtype))
# fmt: on


def _scalar(value, dtype: Any, like: Tensor) -> Tensor:
    """A 0-d tensor holding ``value`` in ``dtype`` on ``like``'s backend and device."""
    data = like.data
    if type(data) is _NDARRAY:
        return Tensor._from_array(np.asarray(value, dtype))
    backend = backends.backend_of(data)
    return Tensor._from_array(backend.asarray(value, dtype, backend.device_of(data)))


_constants = threading.local()  # per thread: {(value, dtype): read-only 0-d Tensor}


def _constant(value: float, dtype: np.dtype) -> Tensor:
    """The 0-d NumPy tensor of a Python float, made once per thread and reused: ``x * 0.5`` in a
    loop builds no new operand (a 0-d array and a Tensor cost a third of a cheap op's forward).
    Its array is read-only, and one whose version moved (an in-place op reached it through a
    graph) is replaced. 0.0 and NaN are not cached: -0.0 == 0.0 as a key, and NaN != NaN."""
    table = getattr(_constants, "table", None)
    if table is None:
        table = _constants.table = {}
    key = (value, dtype)
    found = table.get(key)
    if found is not None and found._version == 0:
        return found
    array = np.asarray(value, dtype)
    array.flags.writeable = False
    made = Tensor._from_array(array)
    if value and value == value:
        if len(table) >= 256:  # a bound, for loops over many distinct constants
            table.clear()
        table[key] = made
    return made


def _scalar_operand(value, other: Tensor) -> Tensor:
    """A Python number takes the tensor's dtype (NEP 50); next to integers a float is float32."""
    data = other.data
    if type(value) is float and type(data) is _NDARRAY:  # the hot path (x * 0.5)
        dtype = data.dtype
        return _constant(value, dtype if dtype.kind in "fc" else DEFAULT_FLOAT)
    python_float = isinstance(value, float) and not isinstance(value, np.generic)
    if python_float:
        dtype = other.dtype
        return _scalar(value, dtype if dtype.kind in "fc" else DEFAULT_FLOAT, other)
    return as_tensor(value, like=other)


def _operands(x, y, to_float: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of one kind (:func:`promote`); see :func:`_scalar_operand`."""
    if not isinstance(x, Tensor):
        x = _scalar_operand(x, y) if isinstance(y, Tensor) else as_tensor(x)
    if not isinstance(y, Tensor):
        y = _scalar_operand(y, x)
    x_dtype = x.data.dtype
    if x_dtype is y.data.dtype and type(x_dtype) in _NUMPY_FLOATS:  # the hot path: one float
        return x, y
    return promote(x, y, to_float=to_float)


def _binary(prim: Primitive, x, y, to_float: bool = False) -> Tensor:
    x, y = _operands(x, y, to_float)
    try:
        return prim.bind(x, y)
    except ValueError:
        _check_broadcast(prim.name, x.shape, y.shape)
        raise


def _check_broadcast(name: str, *shapes: tuple) -> None:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise ShapeError(
            f"{name}: shapes {listed} do not broadcast (trailing axes must be equal or 1)"
        ) from None


def add(x, y) -> Tensor:
    """x + y, broadcasting."""
    return _binary(add_p, x, y)


def sub(x, y) -> Tensor:
    """x - y, broadcasting."""
    return _binary(sub_p, x, y)


def mul(x, y) -> Tensor:
    """x * y, broadcasting."""
    return _binary(mul_p, x, y)


def div(x, y) -> Tensor:
    """x / y (true division), broadcasting; integers give float32. d/dx = 1/y, d/dy = -x/y^2."""
    return _binary(div_p, x, y, to_float=True)


def pow(x, y) -> Tensor:
    """x ** y. d/dx = y x^(y-1), exactly 0 where y = 0 (also at x = 0, at every order);
    d/dy = x^y log x, 0 where x = 0 and y >= 0, -inf where x = 0 and y < 0 (as PyTorch).
    """
    return _binary(pow_p, x, y)


def maximum(x, y) -> Tensor:
    """Elementwise max. Where x == y the gradient is split in halves (a valid subgradient)."""
    return _binary(maximum_p, x, y)


def minimum(x, y) -> Tensor:
    """Elementwise min. Where x == y the gradient is split in halves (a valid subgradient)."""
    return _binary(minimum_p, x, y)


def neg(x) -> Tensor:
    """-x."""
    return neg_p.bind(as_tensor(x))


def exp(x) -> Tensor:
    """e^x; d/dx = e^x."""
    return exp_p.bind(floating(x))


def log(x) -> Tensor:
    """Natural logarithm; d/dx = 1/x."""
    return log_p.bind(floating(x))


def log1p(x) -> Tensor:
    """log(1 + x), accurate for small x; d/dx = 1/(1 + x)."""
    return log1p_p.bind(floating(x))


def expm1(x) -> Tensor:
    """e^x - 1, accurate for small x; d/dx = e^x."""
    return expm1_p.bind(floating(x))


def sqrt(x) -> Tensor:
    """Square root; d/dx = 1/(2 sqrt x)."""
    return sqrt_p.bind(floating(x))


def sin(x) -> Tensor:
    """Sine; d/dx = cos x."""
    return sin_p.bind(floating(x))


def cos(x) -> Tensor:
    """Cosine; d/dx = -sin x."""
    return cos_p.bind(floating(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent; d/dx = 1 - tanh(x)^2."""
    return tanh_p.bind(floating(x))


def abs(x) -> Tensor:
    """``|x|``; d/dx = sign(x), with the convention d/dx ``|x|`` = 0 at x = 0 (as PyTorch)."""
    return abs_p.bind(as_tensor(x))


def clip(x, min=None, max=None) -> Tensor:
    """x limited to [min, max] (either may be None). Gradient 1 inside, ends included, 0 outside.

    An integer tensor clipped to a float bound becomes float32 (as ``torch.clamp``).
    """
    x = as_tensor(x)
    if any(isinstance(b, (float, np.floating)) for b in (min, max)):
        x = floating(x)
    if min is None and max is None:
        raise ValueError("clip: give min, max or both (both are None)")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) must not exceed max ({max})")
    return clip_p.bind(x, lo=min, hi=max)


def _sign(x: Tensor) -> Tensor:
    """``activations.sign(x)``, found by name in the registry when a rule runs: elementwise is the
    bottom family and imports no other (its derivative, 0, keeps the graph as PyTorch's does)."""
    return REGISTRY["sign"].bind(x, surrogate_slope=None)


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` else ``y`` (broadcasting); no gradient flows to the condition."""
    condition = as_tensor(condition)
    if condition.dtype != np.bool_:
        condition = _cast(condition, np.bool_)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = _beside(as_tensor(x), condition)  # two Python numbers: on the condition's device
    x, y = _operands(x, y)
    try:
        return where_p.bind(condition, x, y)
    except ValueError:
        _check_broadcast("where", condition.shape, x.shape, y.shape)
        raise


def _beside(t: Tensor, other: Tensor) -> Tensor:
    """``t`` (made from Python data) on ``other``'s backend and device."""
    if type(t.data) is type(other.data):
        return t
    return Tensor._from_array(backends.move(t.data, other.device))


def astype(x, dtype) -> Tensor:
    """A copy converted to ``dtype``.

    Differentiable to float dtypes; otherwise outside the graph.
    """
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return _cast(x, dtype)
    return astype_p.bind(x, dtype=dtype)


def _compare(ufunc, x, y) -> Tensor:
    """NumPy's comparison; a Python number takes the other operand's dtype, nothing else is cast
    (float32 would round large integers). Other backends call the standard function of the
    ufunc's name, on both operands brought to NumPy's common dtype (the standard refuses to
    compare int with float)."""
    x = as_tensor(x, like=y if isinstance(y, Tensor) else None)
    y = as_tensor(y, like=x)
    xd, yd = x.data, y.data
    if type(xd) is not _NDARRAY or type(yd) is not _NDARRAY:
        return _compare_generic(ufunc.__name__, x, y)
    try:
        return Tensor._from_array(np.asarray(ufunc(xd, yd)))
    except ValueError:
        _check_broadcast(ufunc.__name__, x.shape, y.shape)
        raise


def _compare_generic(name: str, x: Tensor, y: Tensor) -> Tensor:
    """``xp.<name>(x, y)`` for an array-API backend; the abstract value under ``eval_shape``."""
    if type(x.data) is ShapeDtype or type(y.data) is ShapeDtype:
        return Tensor._from_array(compare(_aval(x), _aval(y)))
    backend = backends.backend_of(x.data)
    if backends.backend_of(y.data) is not backend:
        raise backends.mismatch(x.data, y.data, name)
    if x.dtype != y.dtype:
        target = np.result_type(x.dtype, y.dtype)
        x, y = (t if t.dtype == target else _cast(t, target) for t in (x, y))
    try:
        return Tensor._from_array(getattr(backend.xp, name)(x.data, y.data))
    except ValueError:
        _check_broadcast(name, x.shape, y.shape)
        raise


def _aval(t: Tensor) -> ShapeDtype:
    """The abstract value of a tensor, abstract (``eval_shape``) or concrete."""
    return t.data if type(t.data) is ShapeDtype else ShapeDtype(t.shape, t.dtype, t.device)


def less(x, y) -> Tensor:
    """x < y as a bool tensor (not differentiable)."""
    return _compare(np.less, x, y)


def less_equal(x, y) -> Tensor:
    """x <= y as a bool tensor (not differentiable)."""
    return _compare(np.less_equal, x, y)


def greater(x, y) -> Tensor:
    """x > y as a bool tensor (not differentiable)."""
    return _compare(np.greater, x, y)


def greater_equal(x, y) -> Tensor:
    """x >= y as a bool tensor (not differentiable)."""
    return _compare(np.greater_equal, x, y)


def equal(x, y) -> Tensor:
    """x == y as a bool tensor (not differentiable)."""
    return _compare(np.equal, x, y)


def not_equal(x, y) -> Tensor:
    """x != y as a bool tensor (not differentiable)."""
    return _compare(np.not_equal, x, y)


def isfinite(x) -> Tensor:
    """Elementwise finiteness as a bool tensor (not differentiable)."""
    data = as_tensor(x).data
    if type(data) is _NDARRAY:
        return Tensor._from_array(np.asarray(np.isfinite(data)))
    if type(data) is ShapeDtype:
        return Tensor._from_array(ShapeDtype(data.shape, np.dtype(np.bool_), data.device))
    return Tensor._from_array(backends.backend_of(data).xp.isfinite(data))



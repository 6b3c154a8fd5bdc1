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

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.primitive import Primitive, as_tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt",
    "sin", "cos", "tanh", "abs", "clip", "maximum", "minimum", "where", "astype",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "isfinite",
]

#: PyTorch's default dtype: what integer and bool tensors become in a floating function.
DEFAULT_FLOAT = np.dtype(np.float32)


def floating(x) -> Tensor:
    """``x`` as a Tensor of a floating dtype: integer and bool tensors become float32.

    For every function whose result is a float (exp, log, sigmoid, mean ...), as PyTorch
    promotes integer inputs to its default dtype (NumPy would give float64).
    """
    x = as_tensor(x)
    if x.data.dtype.kind in "fc":
        return x
    return Tensor._from_array(x.data.astype(DEFAULT_FLOAT))


def promote(*tensors: Tensor, to_float: bool = False) -> tuple:
    """The operands of one operation brought to one kind, by PyTorch's category rule.

    Where floating and integer (or bool) tensors meet, the integer ones take the floating
    operands' common dtype (NumPy would widen int64 + float32 to float64); with
    ``to_float=True`` (true division) all-integer operands become float32.
    """
    floats = [t.data.dtype for t in tensors if t.data.dtype.kind in "fc"]
    if len(floats) == len(tensors) or not (floats or to_float):
        return tensors  # one kind: NumPy's promotion within a kind is PyTorch's
    target = np.result_type(*floats) if floats else DEFAULT_FLOAT
    return tuple(t if t.data.dtype == target else Tensor._from_array(t.data.astype(target))
                 for t in tensors)


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
    zero = np.logical_and(x.data == 0, y.data == 0)
    if not zero.any():
        return y * x ** (y - 1)
    zero = Tensor._from_array(zero)
    return where(zero, 0.0, y * where(zero, 1.0, x) ** (y - 1))


def _log_base(x: Tensor, y: Tensor) -> Tensor:
    """x with 1 where x = 0 and y >= 0, for d/dy x^y = x^y log x (PyTorch's values).

    There 0^y is 1 or 0, constant in y: the derivative is 0. For y < 0 it stays 0^y log 0 =
    inf * -inf = -inf, and x^y log x elsewhere.
    """
    constant = np.logical_and(x.data == 0, y.data >= 0)
    return where(Tensor._from_array(constant), 1.0, x) if constant.any() else x


def _clip_impl(x, *, lo, hi):
    return np.clip(x, lo, hi)


def _clip_vjp(g, out, x, *, lo, hi):
    inside = np.ones(x.shape, dtype=bool)  # the convention: gradient 1 on [lo, hi], ends included
    if lo is not None:
        inside &= x.data >= lo
    if hi is not None:
        inside &= x.data <= hi
    return g * Tensor._from_array(inside)


# fmt: off
add_p     = Primitive("add", np.add, saves=()).defvjp(
    lambda g, out, x, y: g, lambda g, out, x, y: g)
sub_p     = Primitive("sub", np.subtract, saves=()).defvjp(
    lambda g, out, x, y: g, lambda g, out, x, y: -g)
mul_p     = Primitive("mul", np.multiply).defvjp(
    lambda g, out, x, y: g * y, lambda g, out, x, y: g * x)
div_p     = Primitive("div", np.true_divide).defvjp(
    lambda g, out, x, y: g / y, lambda g, out, x, y: -g * out / y)
neg_p     = Primitive("neg", np.negative, saves=()).defvjp(lambda g, out, x: -g)
pow_p     = Primitive("pow", np.power).defvjp(
    lambda g, out, x, y: g * _power_derivative(x, y),
    lambda g, out, x, y: g * out * log(_log_base(x, y)))
exp_p     = Primitive("exp", np.exp, saves=("out",)).defvjp(lambda g, out, x: g * out)
log_p     = Primitive("log", np.log).defvjp(lambda g, out, x: g / x)
log1p_p   = Primitive("log1p", np.log1p).defvjp(lambda g, out, x: g / (x + 1))
expm1_p   = Primitive("expm1", np.expm1, saves=("out",)).defvjp(lambda g, out, x: g * (out + 1))
sqrt_p    = Primitive("sqrt", np.sqrt, saves=("out",)).defvjp(lambda g, out, x: g / (out * 2))
sin_p     = Primitive("sin", np.sin).defvjp(lambda g, out, x: g * cos(x))
cos_p     = Primitive("cos", np.cos).defvjp(lambda g, out, x: -g * sin(x))
tanh_p    = Primitive("tanh", np.tanh, saves=("out",)).defvjp(lambda g, out, x: g * (1 - out * out))
abs_p     = Primitive("abs", np.abs, smooth=False).defvjp(lambda g, out, x: g * sign(x))
clip_p    = Primitive("clip", _clip_impl, smooth=False).defvjp(_clip_vjp)
maximum_p = Primitive("maximum", np.maximum, smooth=False).defvjp(
    lambda g, out, x, y: g * _ties_weight(x, y), lambda g, out, x, y: g * _ties_weight(y, x))
minimum_p = Primitive("minimum", np.minimum, smooth=False).defvjp(
    lambda g, out, x, y: g * _ties_weight(y, x), lambda g, out, x, y: g * _ties_weight(x, y))
where_p   = Primitive("where", np.where, smooth=False).defvjp(
    None, lambda g, out, c, x, y: where(c, g, 0.0), lambda g, out, c, x, y: where(c, 0.0, g))
astype_p  = Primitive("astype", lambda x, *, dtype: x.astype(dtype)).defvjp(
    lambda g, out, x, *, dtype: g.astype(x.dtype))
# fmt: on


def _scalar_operand(value, other: Tensor) -> Tensor:
    """A Python number takes the tensor's dtype (NEP 50); next to integers a float is float32."""
    dtype = other.data.dtype
    if type(value) is float:  # the hot path (x * 0.5): a float tensor's dtype, else float32
        return Tensor._from_array(np.asarray(value, dtype if dtype.kind in "fc" else DEFAULT_FLOAT))
    python_float = isinstance(value, float) and not isinstance(value, np.generic)
    if python_float and dtype.kind not in "fc":
        return Tensor._from_array(np.asarray(value, dtype=DEFAULT_FLOAT))
    return as_tensor(value, like=other)


def _operands(x, y, to_float: bool = False) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors of one kind (:func:`promote`); see :func:`_scalar_operand`."""
    if not isinstance(x, Tensor):
        x = _scalar_operand(x, y) if isinstance(y, Tensor) else as_tensor(x)
    if not isinstance(y, Tensor):
        y = _scalar_operand(y, x)
    x_dtype = x.data.dtype
    if x_dtype is y.data.dtype and x_dtype.kind == "f":  # the hot path: one floating dtype
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
    """|x|; d/dx = sign(x), with the convention d/dx |x| = 0 at x = 0 (as PyTorch)."""
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


def where(condition, x, y) -> Tensor:
    """``x`` where ``condition`` else ``y`` (broadcasting); no gradient flows to the condition."""
    condition = as_tensor(condition)
    if condition.dtype != np.bool_:
        condition = Tensor._from_array(condition.data.astype(bool))
    x, y = _operands(x, y)
    try:
        return where_p.bind(condition, x, y)
    except ValueError:
        _check_broadcast("where", condition.shape, x.shape, y.shape)
        raise


def astype(x, dtype) -> Tensor:
    """A copy converted to ``dtype``.

    Differentiable to float dtypes; otherwise outside the graph.
    """
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return Tensor._from_array(x.data.astype(dtype))
    return astype_p.bind(x, dtype=dtype)


def _compare(ufunc, x, y) -> Tensor:
    """NumPy's comparison; a Python number takes the other operand's dtype, nothing else is cast
    (float32 would round large integers)."""
    x = as_tensor(x, like=y if isinstance(y, Tensor) else None)
    y = as_tensor(y, like=x)
    try:
        return Tensor._from_array(np.asarray(ufunc(x.data, y.data)))
    except ValueError:
        _check_broadcast(ufunc.__name__, x.shape, y.shape)
        raise


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
    return Tensor._from_array(np.asarray(np.isfinite(as_tensor(x).data)))


from chainrule.ops.activations import sign  # noqa: E402  (abs's rule uses it)

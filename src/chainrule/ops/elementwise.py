"""Elementwise arithmetic and functions, with NumPy broadcasting.

Each primitive is one table row: name, NumPy forward, VJP per input. The rules return
gradients of the broadcast output shape; the engine sums them back to each input's shape.
Comparisons (``less``, ``equal`` ...) return bool tensors and are not part of the graph.
"""

from __future__ import annotations

import numpy as np

from chainrule.errors import ShapeError
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sqrt",
    "sin", "cos", "tanh", "abs", "clip", "maximum", "minimum", "where", "astype",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "isfinite",
]


def _ties_weight(x: Tensor, y: Tensor) -> Tensor:
    """1 where x wins, 1/2 where x and y tie, 0 where y wins: the share of maximum(x, y)'s gradient."""
    return where(greater(x, y), 1.0, where(equal(x, y), 0.5, 0.0))


def _safe_log_base(x: Tensor) -> Tensor:
    """x with zeros replaced by 1, so d(x**y)/dy = x**y log x is 0 at x = 0 (as PyTorch)."""
    return where(equal(x, 0), 1.0, x)


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
add_p     = Primitive("add", np.add).defvjp(lambda g, out, x, y: g, lambda g, out, x, y: g)
sub_p     = Primitive("sub", np.subtract).defvjp(lambda g, out, x, y: g, lambda g, out, x, y: -g)
mul_p     = Primitive("mul", np.multiply).defvjp(lambda g, out, x, y: g * y, lambda g, out, x, y: g * x)
div_p     = Primitive("div", np.true_divide).defvjp(lambda g, out, x, y: g / y, lambda g, out, x, y: -g * out / y)
neg_p     = Primitive("neg", np.negative).defvjp(lambda g, out, x: -g)
pow_p     = Primitive("pow", np.power).defvjp(
    lambda g, out, x, y: g * y * x ** (y - 1),
    lambda g, out, x, y: g * out * log(_safe_log_base(x)))
exp_p     = Primitive("exp", np.exp).defvjp(lambda g, out, x: g * out)
log_p     = Primitive("log", np.log).defvjp(lambda g, out, x: g / x)
log1p_p   = Primitive("log1p", np.log1p).defvjp(lambda g, out, x: g / (x + 1))
expm1_p   = Primitive("expm1", np.expm1).defvjp(lambda g, out, x: g * (out + 1))
sqrt_p    = Primitive("sqrt", np.sqrt).defvjp(lambda g, out, x: g / (out * 2))
sin_p     = Primitive("sin", np.sin).defvjp(lambda g, out, x: g * cos(x))
cos_p     = Primitive("cos", np.cos).defvjp(lambda g, out, x: -g * sin(x))
tanh_p    = Primitive("tanh", np.tanh).defvjp(lambda g, out, x: g * (1 - out * out))
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


def _operands(x, y) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other operand's dtype (NEP 50)."""
    if not isinstance(x, Tensor):
        x = as_tensor(x, like=y if isinstance(y, Tensor) else None)
    if not isinstance(y, Tensor):
        y = as_tensor(y, like=x)
    return x, y


def _binary(prim: Primitive, x, y) -> Tensor:
    x, y = _operands(x, y)
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
    """x / y (true division), broadcasting. d/dx = 1/y, d/dy = -x/y^2."""
    return _binary(div_p, x, y)


def pow(x, y) -> Tensor:
    """x ** y. d/dx = y x^(y-1); d/dy = x^y log x (taken as 0 where x = 0)."""
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
    return exp_p.bind(as_tensor(x))


def log(x) -> Tensor:
    """Natural logarithm; d/dx = 1/x."""
    return log_p.bind(as_tensor(x))


def log1p(x) -> Tensor:
    """log(1 + x), accurate for small x; d/dx = 1/(1 + x)."""
    return log1p_p.bind(as_tensor(x))


def expm1(x) -> Tensor:
    """e^x - 1, accurate for small x; d/dx = e^x."""
    return expm1_p.bind(as_tensor(x))


def sqrt(x) -> Tensor:
    """Square root; d/dx = 1/(2 sqrt x)."""
    return sqrt_p.bind(as_tensor(x))


def sin(x) -> Tensor:
    """Sine; d/dx = cos x."""
    return sin_p.bind(as_tensor(x))


def cos(x) -> Tensor:
    """Cosine; d/dx = -sin x."""
    return cos_p.bind(as_tensor(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent; d/dx = 1 - tanh(x)^2."""
    return tanh_p.bind(as_tensor(x))


def abs(x) -> Tensor:
    """|x|; d/dx = sign(x), with the convention d/dx |x| = 0 at x = 0 (as PyTorch)."""
    return abs_p.bind(as_tensor(x))


def clip(x, min=None, max=None) -> Tensor:
    """x limited to [min, max] (either may be None). Gradient 1 inside, ends included, 0 outside."""
    x = as_tensor(x)
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
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    x = as_tensor(x, like=like)
    y = as_tensor(y, like=like)
    try:
        return where_p.bind(condition, x, y)
    except ValueError:
        _check_broadcast("where", condition.shape, x.shape, y.shape)
        raise


def astype(x, dtype) -> Tensor:
    """A copy converted to ``dtype``. Differentiable to float dtypes; otherwise outside the graph."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return Tensor._from_array(x.data.astype(dtype))
    return astype_p.bind(x, dtype=dtype)


def _compare(ufunc, x, y) -> Tensor:
    x, y = _operands(x, y)
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

"""Special functions and the rest of the math of a PyTorch user (issue 12): erf, erfinv,
the inverse and hyperbolic trigonometric functions, rounding, remainders, logaddexp, lerp ...

Primitives (a standard function as the generic kernel, a VJP rule in chainrule ops): tan, the
hyperbolic and inverse trigonometric functions, log2, log10, arctan2, logaddexp, hypot, floor,
ceil, round, trunc, mod, fmod, floor_divide, erf and erfinv. Composites of existing operations
(exact, every backend, every order of derivative for free): rsqrt, reciprocal, square, exp2,
lerp, sinc.

Dtypes follow PyTorch: a function with a floating result computes integer and bool tensors in
float32; the rounding functions return an integer tensor unchanged; ``mod``, ``fmod`` and
``floor_divide`` keep integers integers (and refuse a zero integer divisor, as PyTorch does).

Rounding and remainders: ``floor``, ``ceil``, ``round``, ``trunc`` and ``floor_divide`` are
piecewise constant, so their derivative is 0 where it exists; at the jumps it is 0 as well
(PyTorch's convention). ``mod`` and ``fmod`` have the derivative of a sawtooth: 1 for x, and
-floor(x/y), resp. -trunc(x/y), for y, the one-sided value of PyTorch at the jumps.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from chainrule import backends
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, broadcast, float_of, same
from chainrule.ops.elementwise import (
    _cast,
    _check_broadcast,
    _operands,
    div,
    equal,
    exp,
    floating,
    pow,
    sin,
    sqrt,
    where,
)
from chainrule.ops.primitive import Primitive, as_tensor

__all__ = [
    "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "arcsinh", "arccosh",
    "arctanh", "log2", "log10", "exp2", "rsqrt", "reciprocal", "square", "logaddexp", "hypot",
    "lerp", "sinc", "floor", "ceil", "round", "trunc", "mod", "remainder", "fmod", "floor_divide",
    "erf", "erfinv",
]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(math.pi) / 2.0


# ------------------------------------------------------------------ erf and erfinv kernels
#: |x| below which erf is its power series, above which erfc is its continued fraction
_ERF_SPLIT = 2.5
#: terms of each: both reach float64's precision (max relative error of erf vs SciPy ~1.3e-15)
_ERF_TERMS = 42


def _erf_series(xp, x):
    """erf(x) = 2/sqrt(pi) e^(-x^2) sum_k (2x^2)^k x / (1*3*...*(2k+1)): all terms positive (no
    cancellation), full relative precision near 0; for |x| < 2.5 42 terms reach float64's."""
    x2 = 2 * x * x
    term = x
    total = x
    for k in range(1, _ERF_TERMS):
        term = term * x2 / (2 * k + 1)
        total = total + term
    return total * xp.exp(-x * x) * _TWO_OVER_SQRT_PI


def _erfc_fraction(xp, x):
    """erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) for x >= 2.5,
    the continued fraction evaluated from its tail (42 levels: float64's precision there)."""
    tail = x
    for k in range(_ERF_TERMS, 0, -1):
        tail = x + (k / 2) / tail
    return xp.exp(-x * x) / math.sqrt(math.pi) / tail


def _erf_parts(xp, x):
    """(small, erf_series(x) where |x| < 2.5, erfc(|x|) elsewhere): each evaluated on inputs
    kept inside its range so no branch makes inf or nan where the other is taken."""
    ax = xp.abs(x)
    small = ax < _ERF_SPLIT
    return small, _erf_series(xp, xp.where(small, x, 0.0)), _erfc_fraction(
        xp, xp.where(small, _ERF_SPLIT, ax))


def _erf(xp, x):
    """erf with the standard's functions only: the series below 2.5, 1 - erfc beyond (there
    erf is within 2e-5 of 1, so erfc's relative precision carries over); nan stays nan."""
    small, series, erfc = _erf_parts(xp, x)
    return xp.where(small, series, xp.where(x < 0, erfc - 1, 1 - erfc))


def _erf_numpy(x):
    from scipy import special  # lazily: ``import chainrule`` does not import SciPy

    return special.erf(x).astype(x.dtype, copy=False)  # SciPy computes float16 in float32/64


# Giles (2010), "Approximating the erfinv function": single precision, the start of Newton.
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
               -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
_ERFINV_STEPS = 4


def _erfinv_guess(xp, x):
    """Giles' polynomial in w = -log(1 - x^2): about 1e-7 relative for |x| < 1 - 2^-24."""
    w = -xp.log((1 - x) * (1 + x))
    central = w < 5
    c = xp.where(central, w - 2.5, xp.sqrt(w) - 3)
    p = xp.where(central, xp.full_like(x, _GILES_CENTRAL[0]), _GILES_TAIL[0])
    for a, b in zip(_GILES_CENTRAL[1:], _GILES_TAIL[1:]):
        p = xp.where(central, a + p * c, b + p * c)
    return p * x


def _erfinv(xp, x):
    """erfinv with the standard's functions only: Giles' guess, then Newton steps on the erf
    above. Halley's step y - f/(f' + y f) on f = erf(y) - x where |y| < 2.5; beyond, Newton on
    log erfc(|y|) = log(1 - |x|), nearly quadratic in y, so it converges in the far tail too
    (x = 1 - 1e-16), where the residual erf(y) - x would lose all its digits.
    erfinv(+-1) = +-inf, nan outside [-1, 1] (as SciPy and PyTorch)."""
    inside = xp.abs(x) < 1
    xs = xp.where(inside, x, 0.0)
    q = 1 - xp.abs(xs)  # exact for |x| >= 1/2 (Sterbenz), where the tail branch is used
    sign = xp.where(xs < 0, -1.0, xp.ones_like(xs))
    y = _erfinv_guess(xp, xs)
    for _ in range(_ERFINV_STEPS):
        small, series, erfc = _erf_parts(xp, y)
        slope = _TWO_OVER_SQRT_PI * xp.exp(-y * y)
        f = series - xs
        halley = y - f / (slope + y * f)
        tail = sign * (xp.abs(y) + (xp.log(erfc) - xp.log(q)) * erfc / xp.where(small, 1.0, slope))
        y = xp.where(small, halley, tail)
    edge = xp.where(xp.abs(x) == 1, xp.copysign(xp.full_like(x, xp.inf), x), xp.nan)
    return xp.where(inside, y, edge)


def _erfinv_numpy(x):
    from scipy import special  # lazily: ``import chainrule`` does not import SciPy

    return special.erfinv(x).astype(x.dtype, copy=False)  # SciPy computes float16 in float32/64


# ------------------------------------------------------------------ the rules
def _mod_vjp_y(g, out, x, y):
    """d/dy (x - floor(x/y) y) = -floor(x/y), with floor(x/y) as floor_divide computes it."""
    return -g * floor_divide(x, y)


def _fmod_vjp_y(g, out, x, y):
    """d/dy (x - trunc(x/y) y) = -trunc(x/y)."""
    return -g * trunc(x / y)


def _radius_squared(y: Tensor, x: Tensor) -> Tensor:
    """x^2 + y^2, with 1 at the origin: there arctan2's gradient is 0 (PyTorch's value; the
    numerators x and y are 0), not 0/0."""
    r2 = x * x + y * y
    return where(equal(r2, 0), 1.0, r2)


def _arccosh_slope(x: Tensor) -> Tensor:
    """sqrt((x - 1)(x + 1)) = sqrt(x^2 - 1), without x^2's rounding near 1."""
    return sqrt((x - 1) * (x + 1))


# fmt: off
tan_p     = Primitive("tan", generic="tan", abstract_eval=float_of, saves=("out",)).defvjp(
    lambda g, out, x: g * (1 + out * out))
arcsin_p  = Primitive("arcsin", generic="asin", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / sqrt(1 - x * x))
arccos_p  = Primitive("arccos", generic="acos", abstract_eval=float_of).defvjp(
    lambda g, out, x: -g / sqrt(1 - x * x))
arctan_p  = Primitive("arctan", generic="atan", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / (1 + x * x))
sinh_p    = Primitive("sinh", generic="sinh", abstract_eval=float_of).defvjp(
    lambda g, out, x: g * cosh(x))
cosh_p    = Primitive("cosh", generic="cosh", abstract_eval=float_of).defvjp(
    lambda g, out, x: g * sinh(x))
arcsinh_p = Primitive("arcsinh", generic="asinh", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / sqrt(x * x + 1))
arccosh_p = Primitive("arccosh", generic="acosh", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / _arccosh_slope(x))
arctanh_p = Primitive("arctanh", generic="atanh", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / (1 - x * x))
log2_p    = Primitive("log2", generic="log2", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / (x * _LN2))
log10_p   = Primitive("log10", generic="log10", abstract_eval=float_of).defvjp(
    lambda g, out, x: g / (x * _LN10))
arctan2_p = Primitive("arctan2", generic="atan2", abstract_eval=broadcast).defvjp(
    lambda g, out, y, x: g * x / _radius_squared(y, x),
    lambda g, out, y, x: -g * y / _radius_squared(y, x))
logaddexp_p = Primitive("logaddexp", generic="logaddexp", abstract_eval=broadcast).defvjp(
    lambda g, out, x, y: g * exp(x - out), lambda g, out, x, y: g * exp(y - out))
hypot_p   = Primitive("hypot", generic="hypot", abstract_eval=broadcast).defvjp(
    lambda g, out, x, y: g * x / out, lambda g, out, x, y: g * y / out)
# piecewise constant: no rule is the zero gradient (PyTorch's, at the jumps too)
floor_p   = Primitive("floor", generic="floor", abstract_eval=same, smooth=False,
                      saves=()).defvjp(None)
ceil_p    = Primitive("ceil", generic="ceil", abstract_eval=same, smooth=False,
                      saves=()).defvjp(None)
round_p   = Primitive("round", generic="round", abstract_eval=same, smooth=False,
                      saves=()).defvjp(None)
trunc_p   = Primitive("trunc", generic="trunc", abstract_eval=same, smooth=False,
                      saves=()).defvjp(None)
floor_divide_p = Primitive("floor_divide", generic="floor_divide", abstract_eval=broadcast,
                           smooth=False, saves=()).defvjp(None, None)
mod_p     = Primitive("mod", generic="remainder", abstract_eval=broadcast, smooth=False,
                      saves=(0, 1)).defvjp(lambda g, out, x, y: g, _mod_vjp_y)
erf_p     = Primitive("erf", _erf_numpy, generic=_erf, abstract_eval=float_of,
                      saves=(0,)).defvjp(
    lambda g, out, x: g * (exp(-(x * x)) * _TWO_OVER_SQRT_PI))
erfinv_p  = Primitive("erfinv", _erfinv_numpy, generic=_erfinv, abstract_eval=float_of,
                      saves=("out",)).defvjp(
    lambda g, out, x: g * (exp(out * out) * _SQRT_PI_OVER_TWO))
# fmt: on


def _fmod(xp, x, y):
    """C's fmod (the sign of x) from the standard's remainder (the sign of y): of |x| and |y|
    the two agree, exactly; the result takes x's sign (-0.0 included)."""
    r = xp.remainder(xp.abs(x), xp.abs(y))
    if xp.isdtype(r.dtype, "real floating"):
        return xp.copysign(r, x)
    return xp.where(x < 0, -r, r)


fmod_p = Primitive("fmod", np.fmod, generic=_fmod, abstract_eval=broadcast, smooth=False,
                   saves=(0, 1)).defvjp(lambda g, out, x, y: g, _fmod_vjp_y)


# ------------------------------------------------------------------ unary functions
def tan(x) -> Tensor:
    """Tangent; d/dx = 1 + tan(x)^2."""
    return tan_p.bind(floating(x))


def arcsin(x) -> Tensor:
    """Inverse sine on [-1, 1]; d/dx = 1/sqrt(1 - x^2) (inf at +-1, as PyTorch)."""
    return arcsin_p.bind(floating(x))


def arccos(x) -> Tensor:
    """Inverse cosine on [-1, 1]; d/dx = -1/sqrt(1 - x^2) (-inf at +-1, as PyTorch)."""
    return arccos_p.bind(floating(x))


def arctan(x) -> Tensor:
    """Inverse tangent; d/dx = 1/(1 + x^2)."""
    return arctan_p.bind(floating(x))


def sinh(x) -> Tensor:
    """Hyperbolic sine; d/dx = cosh x."""
    return sinh_p.bind(floating(x))


def cosh(x) -> Tensor:
    """Hyperbolic cosine; d/dx = sinh x."""
    return cosh_p.bind(floating(x))


def arcsinh(x) -> Tensor:
    """Inverse hyperbolic sine; d/dx = 1/sqrt(x^2 + 1)."""
    return arcsinh_p.bind(floating(x))


def arccosh(x) -> Tensor:
    """Inverse hyperbolic cosine on [1, inf); d/dx = 1/sqrt(x^2 - 1) (inf at 1)."""
    return arccosh_p.bind(floating(x))


def arctanh(x) -> Tensor:
    """Inverse hyperbolic tangent on (-1, 1); d/dx = 1/(1 - x^2)."""
    return arctanh_p.bind(floating(x))


def log2(x) -> Tensor:
    """Base-2 logarithm; d/dx = 1/(x log 2)."""
    return log2_p.bind(floating(x))


def log10(x) -> Tensor:
    """Base-10 logarithm; d/dx = 1/(x log 10)."""
    return log10_p.bind(floating(x))


def exp2(x) -> Tensor:
    """2^x (``pow(2, x)``: exact where 2^x is representable); d/dx = 2^x log 2."""
    return pow(2.0, floating(x))


def rsqrt(x) -> Tensor:
    """1/sqrt(x) (inf at 0); d/dx = -1/(2 x^(3/2))."""
    return 1.0 / sqrt(x)


def reciprocal(x) -> Tensor:
    """1/x; integers give float32 (as PyTorch). d/dx = -1/x^2."""
    return div(1, x)


def square(x) -> Tensor:
    """x * x, in x's dtype (integers stay integers, as PyTorch); d/dx = 2x."""
    x = as_tensor(x)
    return x * x


def sinc(x) -> Tensor:
    """The normalized sinc, sin(pi x)/(pi x), 1 at x = 0 (as ``torch.sinc``, ``np.sinc``).

    d/dx = (cos(pi x) - sinc(x))/x, 0 at x = 0. The point 0 is substituted before dividing, so
    no nan enters the graph; the *second* derivative at exactly 0 comes out 0 (the true value is
    -pi^2/3; PyTorch's is nan there), everywhere else it is exact.
    """
    x = floating(x)
    zero = equal(x, 0)
    scaled = where(zero, 1.0, x) * math.pi
    return where(zero, 1.0, sin(scaled) / scaled)


# ------------------------------------------------------------------ binary functions
def _binary(prim: Primitive, x, y, to_float: bool = False) -> Tensor:
    """``prim`` on both operands brought to one dtype (elementwise's rules), broadcasting, with a
    ShapeError naming the shapes when they do not broadcast."""
    x, y = _operands(x, y, to_float)
    if to_float and x.dtype.kind not in "fc":  # float32 and an int: promote made them float
        x, y = floating(x), floating(y)
    try:
        return prim.bind(x, y)
    except ValueError:
        _check_broadcast(prim.name, x.shape, y.shape)
        raise


def arctan2(y, x) -> Tensor:
    """The angle of the point (x, y), in (-pi, pi], y first (as NumPy and ``torch.atan2``).

    d/dy = x/(x^2 + y^2), d/dx = -y/(x^2 + y^2); 0 at the origin (PyTorch's convention).
    """
    return _binary(arctan2_p, y, x, to_float=True)


def logaddexp(x, y) -> Tensor:
    """log(e^x + e^y) without overflow; d/dx = e^(x - out), d/dy = e^(y - out) (softmax)."""
    return _binary(logaddexp_p, x, y, to_float=True)


def hypot(x, y) -> Tensor:
    """sqrt(x^2 + y^2) without overflow; d/dx = x/hypot, d/dy = y/hypot (nan at the origin, as
    PyTorch)."""
    return _binary(hypot_p, x, y, to_float=True)


def lerp(start, end, weight) -> Tensor:
    """start + weight (end - start) (``torch.lerp``), broadcasting; weight a tensor or a number.

    d/dstart = 1 - weight, d/dend = weight, d/dweight = end - start.
    """
    start, end = _operands(start, end)
    if not isinstance(weight, (int, float)):  # an array or tensor (a number keeps its kind)
        weight = as_tensor(weight, like=start)
    return start + weight * (end - start)


# ------------------------------------------------------------------ rounding and remainders
def _rounded(prim: Primitive, x) -> Tensor:
    """An integer (or bool) tensor unchanged (a copy, as PyTorch returns), else ``prim``."""
    x = as_tensor(x)
    if x.dtype.kind not in "fc":
        return _cast(x, x.dtype)
    return prim.bind(x)


def floor(x) -> Tensor:
    """The largest integer <= x, in x's dtype. Derivative 0 (also at the jumps, as PyTorch)."""
    return _rounded(floor_p, x)


def ceil(x) -> Tensor:
    """The smallest integer >= x, in x's dtype. Derivative 0 (also at the jumps, as PyTorch)."""
    return _rounded(ceil_p, x)


def trunc(x) -> Tensor:
    """x rounded toward 0, in x's dtype. Derivative 0 (also at the jumps, as PyTorch)."""
    return _rounded(trunc_p, x)


def round(x, decimals: int = 0) -> Tensor:
    """x rounded to the nearest integer, halves to even (0.5 -> 0, 1.5 -> 2, as PyTorch and
    NumPy), or to ``decimals`` decimal places (round(x 10^d) / 10^d, as ``torch.round``; a
    negative d rounds to tens, hundreds ...). Derivative 0 (also at the jumps, as PyTorch)."""
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    x = as_tensor(x)
    if decimals == 0 or x.dtype.kind not in "fc":
        return _rounded(round_p, x)
    if decimals > 0:
        scale = 10.0 ** decimals
        return round_p.bind(x * scale) / scale
    scale = 10.0 ** -decimals
    return round_p.bind(x / scale) * scale


def _integer_divisor(name: str, x: Tensor, y: Tensor) -> None:
    """Refuse an integer division by zero (PyTorch raises; NumPy would warn and give 0)."""
    if y.dtype.kind in "fc" or isinstance(y.data, ShapeDtype):
        return
    xp = backends.backend_of(y.data).xp
    if bool(xp.any(y.data == 0)):
        raise ZeroDivisionError(f"{name}: integer division by zero (the divisor y has zeros)")


def _integer_binary(prim: Primitive, x, y) -> Tensor:
    x, y = _operands(x, y)
    _integer_divisor(prim.name, x, y)
    return _binary(prim, x, y)


def mod(x, y) -> Tensor:
    """x mod y with the sign of the divisor y (Python's ``%``, ``np.remainder``,
    ``torch.remainder``): x - floor(x/y) y. Integers stay integers; an integer y of 0 raises
    ZeroDivisionError.

    d/dx = 1, d/dy = -floor(x/y) (as PyTorch; at the jumps x/y integer, the value on the side
    floor gives).
    """
    return _integer_binary(mod_p, x, y)


#: PyTorch's name of :func:`mod`
remainder = mod


def fmod(x, y) -> Tensor:
    """x mod y with the sign of the dividend x (C's fmod, ``torch.fmod``): x - trunc(x/y) y.
    Integers stay integers; an integer y of 0 raises ZeroDivisionError.

    d/dx = 1, d/dy = -trunc(x/y) (as PyTorch).
    """
    return _integer_binary(fmod_p, x, y)


def floor_divide(x, y) -> Tensor:
    """floor(x/y) (Python's ``//``, ``torch.floor_divide``), in the operands' dtype; an integer
    y of 0 raises ZeroDivisionError. Derivative 0 in both x and y (piecewise constant; PyTorch
    has none)."""
    return _integer_binary(floor_divide_p, x, y)


# ------------------------------------------------------------------ erf, erfinv
def erf(x) -> Tensor:
    """The error function 2/sqrt(pi) int_0^x e^(-t^2) dt; d/dx = 2/sqrt(pi) e^(-x^2).

    NumPy computes it with SciPy; other backends with the standard's functions only (a power
    series below ``|x| = 2.5``, erfc's continued fraction above: float64's precision, ~1e-15).
    """
    return erf_p.bind(floating(x))


def erfinv(x) -> Tensor:
    """The inverse of erf on (-1, 1) (+-inf at +-1, nan outside); d/dx = sqrt(pi)/2
    e^(erfinv(x)^2).

    NumPy computes it with SciPy; other backends with the standard's functions only (Giles'
    approximation refined by Newton steps on the erf above, ~1e-13 relative).
    """
    return erfinv_p.bind(floating(x))


# ------------------------------------------------------------------ Tensor methods
def _reflected(fn: Callable[[Any, Any], Tensor]) -> Callable[[Tensor, Any], Tensor]:
    return lambda self, other: fn(other, self)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "tan": tan, "arcsin": arcsin, "arccos": arccos, "arctan": arctan, "asin": arcsin,
    "acos": arccos, "atan": arctan, "arctan2": arctan2, "atan2": arctan2, "sinh": sinh,
    "cosh": cosh, "arcsinh": arcsinh, "arccosh": arccosh, "arctanh": arctanh, "asinh": arcsinh,
    "acosh": arccosh, "atanh": arctanh, "log2": log2, "log10": log10, "exp2": exp2,
    "rsqrt": rsqrt, "reciprocal": reciprocal, "square": square, "logaddexp": logaddexp,
    "hypot": hypot, "lerp": lerp, "sinc": sinc, "floor": floor, "ceil": ceil, "round": round,
    "trunc": trunc, "remainder": mod, "fmod": fmod, "floor_divide": floor_divide, "erf": erf,
    "erfinv": erfinv,
    "__mod__": mod, "__rmod__": _reflected(mod), "__floordiv__": floor_divide,
    "__rfloordiv__": _reflected(floor_divide),
}

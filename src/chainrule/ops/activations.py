"""Activation functions, each with its formula and its convention where it is not differentiable.

Primitives with their own O(n) rule: relu, heaviside, sign, sigmoid, softplus, softmax,
log_softmax (no VJP builds a Jacobian matrix), and normal_cdf (Phi, behind the exact gelu). The
others are composites of primitives and need no rule: leaky_relu, prelu, step, log_sigmoid,
maxout, gelu, silu, elu, selu, celu, mish, hardswish, hardsigmoid, hardtanh, relu6, softsign,
softmin, glu, normalize.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import float_of, same
from chainrule.ops.elementwise import (
    abs,
    astype,
    exp,
    expm1,
    floating,
    greater,
    greater_equal,
    less_equal,
    sqrt,
    tanh,
    where,
)
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import max, normalize_one_axis, sum
from chainrule.ops.shape import reshape, split

__all__ = [
    "relu", "leaky_relu", "prelu", "heaviside", "step", "sign", "sigmoid", "softplus",
    "log_sigmoid", "softmax", "log_softmax", "maxout",
    "gelu", "silu", "elu", "selu", "celu", "mish", "hardswish", "hardsigmoid", "hardtanh",
    "relu6", "softsign", "softmin", "glu", "normalize",
]


def _surrogate(g: Tensor, x: Tensor, slope: Optional[float], scale: float) -> Optional[Tensor]:
    """Straight-through surrogate: the backward pass uses scale * d/dx sigmoid(slope * x)."""
    if slope is None:
        return None  # the true derivative: 0 everywhere it exists
    s = sigmoid(x * slope)
    return g * (s * (1 - s) * (slope * scale))


def _heaviside_impl(x, *, value_at_zero, surrogate_slope):
    return np.where(x > 0, 1, np.where(x == 0, value_at_zero, 0)).astype(x.dtype, copy=False)


def _heaviside(xp, x, *, value_at_zero, surrogate_slope):
    """1 for x > 0, ``value_at_zero`` at 0, else 0, in x's dtype (an integer x truncates the value
    at 0, as NumPy's astype)."""
    if not xp.isdtype(x.dtype, ("real floating", "complex floating")):
        value_at_zero = int(value_at_zero)
    return xp.where(x > 0, xp.ones_like(x), xp.where(x == 0, value_at_zero, xp.zeros_like(x)))


def _sign(xp, x, *, surrogate_slope):
    """-1, 0 or 1 (nan for nan)."""
    return xp.sign(x)


def _sigmoid(xp, x):
    """1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, from e = e^-|x| <= 1: no overflow,
    and full relative precision in both tails (as scipy.special.expit), in x's dtype."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1 + e)


def _softplus(xp, x):
    """log(e^0 + e^x), finite for any finite x."""
    return xp.logaddexp(0.0, x)


def _softmax_impl(x, *, axis):
    if not x.size:  # an empty axis: nothing to normalise (and no maximum to shift by)
        return x.copy()
    e = x - x.max(axis=axis, keepdims=True)
    if type(e) is not np.ndarray or e.dtype.kind != "f":  # 0-d (a NumPy scalar) or integers
        e = np.exp(e)
        return e / e.sum(axis=axis, keepdims=True)
    np.exp(e, out=e)  # in place: no temporaries the size of x (a transformer's attention scores)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _softmax(xp, x, *, axis):
    """e^(x - max x) / sum e^(x - max x) along ``axis``."""
    if not math.prod(x.shape):
        return xp.asarray(x, copy=True)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax_impl(x, *, axis):
    if not x.size:
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax(xp, x, *, axis):
    """(x - max x) - log sum e^(x - max x) along ``axis``."""
    if not math.prod(x.shape):
        return xp.asarray(x, copy=True)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _relu(xp, x):
    """max(x, 0), nan kept."""
    return xp.maximum(x, 0)


_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_NDTR_SWITCH = 2.0  # |x| below: the series; above: the continued fraction
_NDTR_SERIES_TERMS = 40  # x^(2n+1) / (2n+1)!! < 1e-17 relative for |x| < 2 well before n = 40
_NDTR_FRACTION_DEPTH = 100  # converged to double precision for t >= 2


def _normal_pdf(xp, t):
    """phi(t) = e^(-t^2/2) / sqrt(2 pi), with t split as hi + lo (hi a multiple of 1/256, so hi^2
    is exact): e^(-hi^2/2) e^(-lo (hi + lo/2)) keeps full relative precision at large |t|, where
    the rounding error of t^2 alone would cost t^2 ulps."""
    hi = xp.round(t * 256) / 256
    lo = t - hi
    return xp.exp(-(hi * hi) / 2) * xp.exp(-lo * (hi + lo / 2)) * _INV_SQRT_2PI


def _normal_cdf_generic(xp, x):
    """Phi(x), the standard normal CDF, with the standard's functions only (~1e-14 relative in
    float64 wherever Phi(x) is a normal number; mpmath-checked in the tests).

    With t = |x|: for t < 2 the series Phi(t) - 1/2 = phi(t) sum_n t^(2n+1) / (2n+1)!! (all terms
    positive: no cancellation); for t >= 2 the upper tail 1 - Phi(t) = phi(t) M(t) with Mills'
    ratio as the continued fraction M(t) = 1/(t + 1/(t + 2/(t + 3/(t + ...)))), evaluated from
    the bottom up. Phi(-t) = 1 - Phi(t) takes the tail directly, so the left tail keeps its
    relative precision down to ~1e-300. Both branches see clamped inputs (no inf or nan from the
    branch not taken); t is capped at 40, where phi underflows to 0.
    """
    t = xp.abs(x)
    ts = xp.minimum(t, _NDTR_SWITCH)
    term = ts
    series = ts
    for n in range(1, _NDTR_SERIES_TERMS):
        term = term * (ts * ts) / (2 * n + 1)
        series = series + term
    centre = _normal_pdf(xp, ts) * series  # Phi(t) - 1/2 for t < 2
    tc = xp.minimum(xp.maximum(t, _NDTR_SWITCH), 40.0)
    fraction = tc
    for k in range(_NDTR_FRACTION_DEPTH, 0, -1):
        fraction = tc + k / fraction
    tail = _normal_pdf(xp, tc) / fraction  # 1 - Phi(t) for t >= 2
    near = t < _NDTR_SWITCH
    lower = xp.where(near, 0.5 - centre, tail)  # Phi(-t)
    upper = xp.where(near, 0.5 + centre, 1 - tail)  # Phi(t)
    return xp.where(x < 0, lower, xp.where(xp.isnan(x), x, upper))


def _normal_cdf_numpy(x):
    """Phi(x) by SciPy's ndtr (imported here: ``import chainrule`` does not import SciPy)."""
    from scipy.special import ndtr

    return ndtr(x).astype(x.dtype, copy=False)


def _normal_cdf_vjp(g, out, x):
    """d/dx Phi(x) = phi(x) = e^(-x^2/2) / sqrt(2 pi), in chainrule ops (second order for free)."""
    return g * (exp(x * x * -0.5) * _INV_SQRT_2PI)


# Generic kernels (the standard, every backend), and NumPy's own where they are faster:
# heaviside's (no ones/zeros arrays, astype without a copy) and softmax's (array methods). For
# relu, sign, sigmoid and softplus the generic kernel is the same NumPy code.
# fmt: off
relu_p        = Primitive("relu", generic=_relu, abstract_eval=same, smooth=False).defvjp(
    lambda g, out, x: g * astype(greater(x, 0), g.dtype))  # g H(x), H(0) = 0; a float mask:
                                                          # NumPy casts a bool operand slowly
heaviside_p   = Primitive("heaviside", _heaviside_impl, generic=_heaviside, abstract_eval=same,
                          smooth=False).defvjp(
    lambda g, out, x, *, value_at_zero, surrogate_slope: _surrogate(g, x, surrogate_slope, 1.0))
sign_p        = Primitive("sign", generic=_sign, abstract_eval=same, smooth=False).defvjp(
    lambda g, out, x, *, surrogate_slope: _surrogate(g, x, surrogate_slope, 2.0))
sigmoid_p     = Primitive("sigmoid", generic=_sigmoid, abstract_eval=float_of,
                          saves=("out",)).defvjp(
    lambda g, out, x: g * out * (1 - out))
softplus_p    = Primitive("softplus", generic=_softplus, abstract_eval=float_of).defvjp(
    lambda g, out, x: g * sigmoid(x))
softmax_p     = Primitive("softmax", _softmax_impl, generic=_softmax,
                          abstract_eval=float_of).defvjp(
    lambda g, out, x, *, axis: out * (g - sum(g * out, axis=axis, keepdims=True)))
log_softmax_p = Primitive("log_softmax", _log_softmax_impl, generic=_log_softmax,
                          abstract_eval=float_of).defvjp(
    lambda g, out, x, *, axis: g - exp(out) * sum(g, axis=axis, keepdims=True))
normal_cdf_p  = Primitive("normal_cdf", _normal_cdf_numpy, generic=_normal_cdf_generic,
                          abstract_eval=float_of, saves=(0,)).defvjp(_normal_cdf_vjp)
# fmt: on


def relu(x) -> Tensor:
    """max(x, 0). Derivative H(x): 1 for x > 0, 0 for x < 0, and the convention 0 at x = 0."""
    return relu_p.bind(as_tensor(x))


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise. Derivative at 0: negative_slope (as PyTorch)."""
    x = as_tensor(x)
    return where(greater(x, 0), x, x * negative_slope)


def prelu(x, alpha) -> Tensor:
    """Parametric ReLU: x for x > 0, alpha * x otherwise, alpha trainable and broadcast as NumPy.

    d/dx = 1 (x > 0) or alpha (x <= 0); d/dalpha = 0 (x > 0) or x (x <= 0), summed over the
    elements alpha is broadcast to.
    """
    x = as_tensor(x)
    return where(greater(x, 0), x, x * alpha)


def heaviside(x, value_at_zero: float = 0.5, surrogate_slope: Optional[float] = None) -> Tensor:
    """H(x): 1 for x > 0, 0 for x < 0, ``value_at_zero`` at 0 (NumPy's default is 1/2 as here).

    The derivative is 0 wherever it exists (the distributional derivative is Dirac's delta), so no
    gradient flows. With ``surrogate_slope=k`` the backward pass uses d/dx sigmoid(kx) =
    k s(kx)(1 - s(kx)) instead, a straight-through estimator that lets threshold units train.
    """
    return heaviside_p.bind(
        as_tensor(x), value_at_zero=value_at_zero, surrogate_slope=surrogate_slope
    )


def step(x, surrogate_slope: Optional[float] = None) -> Tensor:
    """The hard threshold unit: 1 if x >= 0 else 0 (heaviside with value 1 at 0).

    ``surrogate_slope`` is heaviside's surrogate option.
    """
    return heaviside(x, value_at_zero=1.0, surrogate_slope=surrogate_slope)


def sign(x, surrogate_slope: Optional[float] = None) -> Tensor:
    """sign(x) in {-1, 0, 1} with sign(0) = 0 = H(x) - H(-x). Derivative 0 where it exists.

    With ``surrogate_slope=k`` the backward pass uses
    d/dx (2 sigmoid(kx) - 1) = 2k s(kx)(1 - s(kx)).
    """
    return sign_p.bind(as_tensor(x), surrogate_slope=surrogate_slope)


def sigmoid(x) -> Tensor:
    """s(x) = 1 / (1 + e^-x), computed without overflow; d/dx = s(x)(1 - s(x)) (VJP g s (1 - s)).

    Keeps float16 (and float32, float64); integer and bool tensors give float32.
    """
    return sigmoid_p.bind(floating(x))


def softplus(x, beta: float = 1.0, threshold: Optional[float] = None) -> Tensor:
    """(1/beta) log(1 + e^(beta x)) = logaddexp(0, beta x) / beta, finite for any finite x;
    d/dx = sigmoid(beta x).

    ``threshold`` is PyTorch's: where beta x > threshold the result is x itself (derivative 1),
    the linear asymptote, as ``torch.nn.functional.softplus(x, beta, threshold)``. The default
    None keeps the exact function everywhere (it differs from PyTorch's default threshold=20 by
    less than e^-20 relative); ``nn.Softplus`` uses PyTorch's defaults beta=1, threshold=20.
    """
    x = floating(x)
    if not isinstance(beta, (int, float, np.integer, np.floating)) or not beta:
        raise ValueError(f"softplus: beta must be a nonzero number, got {beta!r}")
    if threshold is not None and not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"softplus: threshold must be a number or None, got {threshold!r}")
    if beta == 1 and threshold is None:
        return softplus_p.bind(x)
    z = x * beta
    smooth = softplus_p.bind(z) if beta == 1 else softplus_p.bind(z) / beta
    return smooth if threshold is None else where(greater(z, threshold), x, smooth)


def log_sigmoid(x) -> Tensor:
    """log s(x) = -softplus(-x); d/dx = 1 - s(x) = s(-x)."""
    return -softplus(-floating(x))


def softmax(x, axis: int = -1) -> Tensor:
    """S_i = e^{x_i} / sum_j e^{x_j} along ``axis`` (shifted by the max, so it never overflows).

    Jacobian diag(S) - S S^T, applied in O(n) as the VJP S * (g - sum(g * S)). A 0-d tensor
    (axis 0 or -1) is one element: softmax 1. Integer and bool tensors give float32.
    """
    x = floating(x)
    return softmax_p.bind(x, axis=normalize_one_axis(axis, x.ndim))


def log_softmax(x, axis: int = -1) -> Tensor:
    """log S_i = x_i - logsumexp(x) along ``axis``; VJP g - S * sum(g). 0 for a 0-d tensor."""
    x = floating(x)
    return log_softmax_p.bind(x, axis=normalize_one_axis(axis, x.ndim))


def maxout(x, pieces: int, axis: int = -1) -> Tensor:
    """Maximum over consecutive groups of ``pieces`` along ``axis`` (Goodfellow et al.'s maxout
    unit).

    An axis of length n gives n / pieces outputs; ties share the gradient as in ``max``. A 0-d
    tensor is one element (axis 0 or -1, pieces=1) and is its own maxout.
    """
    x = as_tensor(x)
    ax = normalize_one_axis(axis, x.ndim)
    if not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise ValueError(f"maxout: pieces must be a positive int, got {pieces!r}")
    n = 1 if ax is None else x.shape[ax]
    if n % pieces:
        raise ShapeError(f"maxout: axis {axis} has length {n}, not divisible by pieces={pieces}")
    if ax is None:
        return x
    grouped = reshape(x, x.shape[:ax] + (n // pieces, pieces) + x.shape[ax + 1:])
    return max(grouped, axis=ax + 1)


# ------------------------------------------------------------------ issue 12's activations
def _number(name: str, arg: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: {arg} must be a real number, got {value!r}")
    return float(value)


def _ndtr(x) -> Tensor:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF; d/dx = phi(x)."""
    return normal_cdf_p.bind(floating(x))


_GELU_TANH_C = math.sqrt(2 / math.pi)


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU(x) = x Phi(x), Phi the standard normal CDF (``approximate="none"``, exact);
    d/dx = Phi(x) + x phi(x).

    ``approximate="tanh"``: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's tanh form;
    d/dx follows by the chain rule. Both are smooth everywhere.
    """
    x = floating(x)
    if approximate == "none":
        return x * _ndtr(x)
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * _GELU_TANH_C
        return x * 0.5 * (tanh(inner) + 1)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x) -> Tensor:
    """SiLU (swish): x sigmoid(x); d/dx = s(x) (1 + x (1 - s(x)))."""
    x = floating(x)
    return x * sigmoid(x)


def _elu_core(x: Tensor, alpha: float, input_scale: float) -> Tensor:
    """x for x > 0, alpha (e^(input_scale x) - 1) for x <= 0; at 0 the derivative is the left
    one, alpha input_scale (PyTorch's). The exponential sees min(x, 0) (through ``where``, so
    the gradient at 0 takes that branch) and never overflows."""
    negative = where(greater(x, 0), 0.0, x)
    return where(greater(x, 0), x, expm1(negative * input_scale) * alpha)


def elu(x, alpha: float = 1.0) -> Tensor:
    """ELU: x for x > 0, alpha (e^x - 1) for x <= 0; d/dx = 1 (x > 0) or alpha e^x (x <= 0).

    At x = 0 the derivative is the left one, alpha (as PyTorch; the kink vanishes for alpha = 1).
    """
    return _elu_core(floating(x), _number("elu", "alpha", alpha), 1.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x) -> Tensor:
    """SELU: scale * elu(x, alpha) with Klambauer et al.'s alpha = 1.6732632423543772 and
    scale = 1.0507009873554805; d/dx = scale (x > 0) or scale alpha e^x (x <= 0), the left
    derivative scale * alpha at 0 (as PyTorch)."""
    return _elu_core(floating(x), _SELU_ALPHA, 1.0) * _SELU_SCALE


def celu(x, alpha: float = 1.0) -> Tensor:
    """CELU: max(0, x) + min(0, alpha (e^(x/alpha) - 1)); d/dx = 1 (x > 0) or e^(x/alpha)
    (x <= 0), so 1 at 0 for every alpha (continuously differentiable). alpha must be nonzero."""
    alpha = _number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must be nonzero (it divides x), got 0")
    return _elu_core(floating(x), alpha, 1 / alpha)


def mish(x) -> Tensor:
    """Mish: x tanh(softplus(x)); d/dx = tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), smooth."""
    x = floating(x)
    return x * tanh(softplus(x))


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; d/dx = 1 strictly inside, 0 outside.

    At the kinks x = min_val and x = max_val the derivative is 0 (PyTorch's hardtanh_backward
    passes the gradient only where min_val < x < max_val).
    """
    x = floating(x)
    lo = _number("hardtanh", "min_val", min_val)
    hi = _number("hardtanh", "max_val", max_val)
    if lo > hi:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return where(less_equal(x, lo), lo, where(greater_equal(x, hi), hi, x))


def relu6(x) -> Tensor:
    """min(max(x, 0), 6) = hardtanh(x, 0, 6); d/dx = 1 for 0 < x < 6, else 0 (0 at both kinks,
    as PyTorch)."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x) -> Tensor:
    """relu6(x + 3) / 6: 0 for x <= -3, 1 for x >= 3, x/6 + 1/2 between; d/dx = 1/6 strictly
    inside (-3, 3), 0 outside and at the kinks x = +-3 (as PyTorch)."""
    x = floating(x)
    return where(less_equal(x, -3.0), 0.0, where(greater_equal(x, 3.0), 1.0, x / 6 + 0.5))


def hardswish(x) -> Tensor:
    """x relu6(x + 3) / 6: 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between; d/dx = 0, 1 or
    x/3 + 1/2.

    At the kinks the derivative is the outer one: 0 at x = -3 and 1 at x = 3 (PyTorch's
    hardswish_backward uses x/3 + 1/2 only strictly inside (-3, 3)).
    """
    x = floating(x)
    return where(less_equal(x, -3.0), 0.0, where(greater_equal(x, 3.0), x, x * (x + 3) / 6))


def softsign(x) -> Tensor:
    """``x / (1 + |x|)``; d/dx = ``1 / (1 + |x|)^2`` (1 at 0: smooth to first order)."""
    x = floating(x)
    return x / (abs(x) + 1)


def softmin(x, axis: int = -1) -> Tensor:
    """softmax(-x) along ``axis``: e^{-x_i} / sum_j e^{-x_j}; VJP -S * (g - sum(g * S))."""
    return softmax(-floating(x), axis=axis)


def glu(x, axis: int = -1) -> Tensor:
    """Gated linear unit: a * sigmoid(b), a and b the first and second halves of ``x`` along
    ``axis`` (whose length must be even); d/da = s(b), d/db = a s(b) (1 - s(b))."""
    x = floating(x)
    if x.ndim == 0:
        raise ShapeError("glu: needs at least one axis to halve, got a 0-d tensor")
    ax = normalize_one_axis(axis, x.ndim)
    assert ax is not None
    n = x.shape[ax]
    if n % 2:
        raise ShapeError(f"glu: axis {axis} must have an even length to halve, got {n}")
    a, b = split(x, 2, axis=ax)
    return a * sigmoid(b)


def _p_norm(x: Tensor, p: float, axis: int) -> Tensor:
    """||x||_p along ``axis`` (kept), with a gradient that is 0, not nan, for a zero vector (the
    root sees 1 there: its derivative is finite and masked away)."""
    if p == math.inf:
        return max(abs(x), axis=axis, keepdims=True)
    if p == 1:
        return sum(abs(x), axis=axis, keepdims=True)
    total = sum(x * x, axis=axis, keepdims=True) if p == 2 else sum(
        abs(x) ** p, axis=axis, keepdims=True)
    nonzero = greater(total, 0)
    safe = where(nonzero, total, 1.0)
    root = sqrt(safe) if p == 2 else safe ** (1 / p)
    return where(nonzero, root, 0.0)


def normalize(x, p: float = 2.0, axis: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along ``axis`` (``torch.nn.functional.normalize``).

    p >= 1 (``math.inf`` for the max norm). d/dx of x / n is (g - x (d||x||/dx . g) / n) / n for
    n > eps; where ||x||_p <= eps the denominator is the constant eps (gradient g / eps), and a
    zero vector gets gradient g / eps, no nan (``|x|`` has derivative 0 at 0, as PyTorch).
    """
    x = floating(x)
    p = _number("normalize", "p", p)
    if not p >= 1:
        raise ValueError(f"normalize: p must be >= 1 (a norm), got {p}")
    eps = _number("normalize", "eps", eps)
    if eps < 0:
        raise ValueError(f"normalize: eps must be >= 0, got {eps}")
    ax = normalize_one_axis(axis, x.ndim)
    if ax is None:
        raise ShapeError("normalize: needs at least one axis, got a 0-d tensor")
    norm = _p_norm(x, p, ax)
    return x / where(greater(norm, eps), norm, eps)

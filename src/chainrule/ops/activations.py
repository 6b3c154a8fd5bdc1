"""Activation functions, each with its formula and its convention where it is not differentiable.

Primitives with their own O(n) rule: relu, heaviside, sign, sigmoid, softplus, softmax,
log_softmax (no VJP builds a Jacobian matrix). The others are composites of primitives and
need no rule: leaky_relu, prelu, step, log_sigmoid, maxout.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import float_of, same
from chainrule.ops.elementwise import exp, floating, greater, where
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import max, normalize_one_axis, sum
from chainrule.ops.shape import reshape

__all__ = [
    "relu", "leaky_relu", "prelu", "heaviside", "step", "sign", "sigmoid", "softplus",
    "log_sigmoid", "softmax", "log_softmax", "maxout",
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
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


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


# Generic kernels (the standard, every backend), and NumPy's own where they are faster:
# heaviside's (no ones/zeros arrays, astype without a copy) and softmax's (array methods). For
# relu, sign, sigmoid and softplus the generic kernel is the same NumPy code.
# fmt: off
relu_p        = Primitive("relu", generic=_relu, abstract_eval=same, smooth=False).defvjp(
    lambda g, out, x: g * greater(x, 0))  # g times the 0/1 mask H(x), H(0) = 0
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


def softplus(x) -> Tensor:
    """log(1 + e^x) = logaddexp(0, x), finite for any finite x; d/dx = sigmoid(x)."""
    return softplus_p.bind(floating(x))


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

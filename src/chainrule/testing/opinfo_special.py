"""Op-info rows of issue 12's special ops (see ``opinfo.py`` for what a row holds)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import special

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, cases, fixed


def _unary(domain: tuple = (None, None)) -> Callable:
    """Three samples (a matrix, a 0-d and an empty tensor): opinfo's ``unary`` has five, and
    these rows are many."""
    return cases(((3, 4),), ((),), ((0, 3),), domain=domain)


def _binary() -> Callable:
    """Three broadcasting samples (equal shapes, both sides broadcast, 0-d with a matrix)."""
    return cases(((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3)))


def _off_integers(rng, shape):
    """Values at least 0.1 away from every integer and half-integer (rounding's jumps, round's
    ties), both signs."""
    whole = rng.integers(-4, 4, shape)
    frac = rng.choice([0.15, 0.35, 0.65, 0.85], shape) + rng.uniform(-0.05, 0.05, shape)
    return np.asarray(whole + frac, dtype=np.float64)


def _rounding(rng):
    return [(_off_integers(rng, s),) for s in [(3, 4), (), (0, 3)]]


def _nonzero(rng, shape, low=0.3, high=2.0):
    return np.asarray(rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape))


def _reciprocal_samples(rng):
    return [(_nonzero(rng, s),) for s in [(3, 4), (), (2, 3, 2)]]


def _remainder_samples(rng):
    """x of both signs, y away from 0 of both signs; x/y is away from the jumps with
    probability 1 at a finite-difference step of 1e-6."""
    pairs = [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3))]
    return [(np.asarray(3 * rng.standard_normal(a)), _nonzero(rng, b, 0.5, 2.0)) for a, b in pairs]


_SINC_AT_ZERO = np.array([0.0, 0.5, -1.5, 2.25])

# fmt: off
ROWS: list[OpInfo] = [
    # smooth unary functions
    OpInfo("tan", cr.tan, _unary((-1.2, 1.2)), np.tan, lambda t, x: x.tan()),
    OpInfo("arcsin", cr.arcsin, _unary((-0.9, 0.9)), np.arcsin, lambda t, x: x.asin()),
    OpInfo("arccos", cr.arccos, _unary((-0.9, 0.9)), np.arccos, lambda t, x: x.acos()),
    OpInfo("arctan", cr.arctan, _unary(), np.arctan, lambda t, x: x.atan()),
    OpInfo("sinh", cr.sinh, _unary(), np.sinh, lambda t, x: x.sinh()),
    OpInfo("cosh", cr.cosh, _unary(), np.cosh, lambda t, x: x.cosh()),
    OpInfo("arcsinh", cr.arcsinh, _unary(), np.arcsinh, lambda t, x: x.asinh()),
    OpInfo("arccosh", cr.arccosh, _unary((1.2, 3.0)), np.arccosh, lambda t, x: x.acosh()),
    OpInfo("arctanh", cr.arctanh, _unary((-0.9, 0.9)), np.arctanh, lambda t, x: x.atanh()),
    OpInfo("log2", cr.log2, _unary((0.2, 3.0)), np.log2, lambda t, x: x.log2()),
    OpInfo("log10", cr.log10, _unary((0.2, 3.0)), np.log10, lambda t, x: x.log10()),
    OpInfo("exp2", cr.exp2, _unary(), np.exp2, lambda t, x: x.exp2(), covers=("pow",)),
    OpInfo("rsqrt", cr.rsqrt, _unary((0.2, 3.0)), lambda x: 1 / np.sqrt(x),
           lambda t, x: x.rsqrt(), covers=("sqrt", "div")),
    OpInfo("reciprocal", cr.reciprocal, _reciprocal_samples, np.reciprocal,
           lambda t, x: x.reciprocal(), covers=("div",)),
    OpInfo("square", cr.square, _unary(), np.square, lambda t, x: x.square(), covers=("mul",)),
    OpInfo("sinc", cr.sinc, _unary(), np.sinc, lambda t, x: x.sinc(),
           covers=("sin", "where", "mul", "div", "equal")),
    # at 0 exactly: value 1, derivative 0 (the second derivative there is PyTorch's 0: order 1)
    OpInfo("sinc_at_zero", cr.sinc, lambda rng: [(_SINC_AT_ZERO,)], np.sinc,
           lambda t, x: x.sinc(), covers=("sin", "where"), order=1),
    # binary
    OpInfo("arctan2", cr.arctan2, _binary(), np.arctan2, lambda t, y, x: t.atan2(y, x)),
    OpInfo("logaddexp", cr.logaddexp, _binary(), np.logaddexp, lambda t, x, y: t.logaddexp(x, y)),
    OpInfo("hypot", cr.hypot, _binary(), np.hypot, lambda t, x, y: t.hypot(x, y)),
    OpInfo("lerp", cr.lerp, cases(((3, 4), (3, 4), (3, 4)), ((3, 1), (4,), ()), ((), (), ())),
           lambda a, b, w: a + w * (b - a), lambda t, a, b, w: t.lerp(a, b, w),
           covers=("add", "sub", "mul")),
    OpInfo("lerp_scalar_weight", lambda a, b: cr.lerp(a, b, 0.3), _binary(),
           lambda a, b: a + 0.3 * (b - a), lambda t, a, b: t.lerp(a, b, 0.3),
           covers=("add", "sub", "mul")),
    # rounding and remainders: derivative 0, and 1 / -floor(x/y) / -trunc(x/y)
    OpInfo("floor", cr.floor, _rounding, np.floor, lambda t, x: x.floor(), order=1),
    OpInfo("ceil", cr.ceil, _rounding, np.ceil, lambda t, x: x.ceil(), order=1),
    OpInfo("round", cr.round, _rounding, np.round, lambda t, x: x.round(), order=1),
    OpInfo("round_decimals", lambda x: cr.round(x / 7, decimals=1),
           lambda rng: [(np.array([1.0, -2.0, 3.0, 9.5, 12.0]),)],
           lambda x: np.round(x / 7, 1), lambda t, x: (x / 7).round(decimals=1),
           covers=("round",), order=1),
    OpInfo("trunc", cr.trunc, _rounding, np.trunc, lambda t, x: x.trunc(), order=1),
    OpInfo("mod", cr.mod, _remainder_samples, np.remainder, lambda t, x, y: t.remainder(x, y),
           covers=("mod", "floor_divide"), order=1),
    OpInfo("fmod", cr.fmod, _remainder_samples, np.fmod, lambda t, x, y: t.fmod(x, y),
           covers=("fmod", "trunc"), order=1),
    # PyTorch has no derivative of floor_divide: NumPy is the only reference
    OpInfo("floor_divide", cr.floor_divide, _remainder_samples, np.floor_divide, None, order=1),
    # erf, erfinv
    OpInfo("erf", cr.erf, _unary(), special.erf, lambda t, x: x.erf()),
    OpInfo("erf_wide", cr.erf, fixed((4, 5), domain=(-4.0, 4.0)), special.erf,
           lambda t, x: x.erf(), covers=("erf",)),
    OpInfo("erfinv", cr.erfinv, _unary((-0.9, 0.9)), special.erfinv, lambda t, x: x.erfinv()),
]
# fmt: on

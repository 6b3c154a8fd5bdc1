"""Op-info rows of issue 12's activations ops (see ``opinfo.py`` for what a row holds).

Piecewise functions are sampled away from their kinks (``_avoiding``); their gradient *at* the
kinks is checked against PyTorch in tests/ops/test_activations_more.py.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, cases, unary

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _avoiding(*kinks, low=-5.0, high=5.0, margin=0.1, shapes=((3, 4), (5,), ())):
    """Samples uniform in [low, high], each at least ``margin`` from every kink."""

    def draw(rng):
        out = []
        for shape in shapes:
            x = rng.uniform(low, high, shape)
            for k in kinks:
                near = np.abs(x - k) < margin
                x = np.where(near, k + np.copysign(2 * margin, x - k), x)
            out.append((np.asarray(x),))
        return out

    return draw


def _distinct_abs(rng):
    """(2, 4, 3) values away from 0 whose |x| has no near-ties along axis 1 (for the max norm)."""
    magnitude = (rng.permutation(24) * 0.2 + 0.3 + rng.uniform(0, 0.05, 24)).reshape(2, 4, 3)
    return [(magnitude * rng.choice([-1.0, 1.0], (2, 4, 3)),)]


def _away_from_zero(rng, shape=(3, 4)):
    return np.asarray(rng.uniform(0.2, 2, shape) * rng.choice([-1.0, 1.0], shape))


# NumPy/SciPy references, written from the formulas (not from chainrule's code)
def _ref_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(x))


def _ref_celu(x, alpha):
    return np.maximum(0, x) + np.minimum(0, alpha * np.expm1(x / alpha))


def _ref_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _ref_softplus(x, beta, threshold):
    return np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta)


def _ref_glu(x, axis):
    a, b = np.split(x, 2, axis=axis)
    return a * special.expit(b)


def _ref_normalize(x, p, axis):
    norm = np.linalg.norm(np.moveaxis(x, axis, -1), ord=p, axis=-1)
    return x / np.expand_dims(np.maximum(norm, 1e-12), axis)


def _tf(t):
    """torch.nn.functional, from the torch module the row is given."""
    return t.nn.functional


# fmt: off
ROWS: list[OpInfo] = [
    OpInfo("gelu", cr.gelu, unary(), lambda x: 0.5 * x * (1 + special.erf(x / math.sqrt(2))),
           lambda t, x: _tf(t).gelu(x), covers=("normal_cdf", "mul")),
    OpInfo("gelu_wide", cr.gelu, unary((-9.0, 9.0), empty=False),
           lambda x: 0.5 * x * special.erfc(-x / math.sqrt(2)), lambda t, x: _tf(t).gelu(x),
           covers=("normal_cdf", "mul")),
    OpInfo("gelu_tanh", lambda x: cr.gelu(x, approximate="tanh"), unary(), _ref_gelu_tanh,
           lambda t, x: _tf(t).gelu(x, approximate="tanh"), covers=("tanh", "mul", "add")),
    OpInfo("silu", cr.silu, unary(), lambda x: x * special.expit(x),
           lambda t, x: _tf(t).silu(x), covers=("sigmoid", "mul")),
    OpInfo("mish", cr.mish, unary(), lambda x: x * np.tanh(np.logaddexp(0, x)),
           lambda t, x: _tf(t).mish(x), covers=("softplus", "tanh", "mul")),
    # the elu family: a kink (or a jump of the second derivative) at 0 only, smooth around it
    OpInfo("elu", lambda x: cr.elu(x, 0.7), _avoiding(0.0, low=-3, high=3),
           lambda x: _ref_elu(x, 0.7), lambda t, x: _tf(t).elu(x, 0.7),
           covers=("where", "greater", "expm1")),
    OpInfo("selu", cr.selu, _avoiding(0.0, low=-3, high=3),
           lambda x: _SELU_SCALE * _ref_elu(x, _SELU_ALPHA), lambda t, x: _tf(t).selu(x),
           covers=("where", "greater", "expm1")),
    OpInfo("celu", lambda x: cr.celu(x, 1.5), _avoiding(0.0, low=-3, high=3),
           lambda x: _ref_celu(x, 1.5), lambda t, x: _tf(t).celu(x, 1.5),
           covers=("where", "greater", "expm1")),
    # piecewise (linear) functions: first order only, away from the kinks
    OpInfo("hardtanh", lambda x: cr.hardtanh(x, -0.5, 1.2), _avoiding(-0.5, 1.2, low=-2, high=2),
           lambda x: np.clip(x, -0.5, 1.2), lambda t, x: _tf(t).hardtanh(x, -0.5, 1.2),
           covers=("where", "less_equal", "greater_equal"), order=1),
    OpInfo("relu6", cr.relu6, _avoiding(0.0, 6.0, low=-2, high=8),
           lambda x: np.clip(x, 0, 6), lambda t, x: _tf(t).relu6(x),
           covers=("where",), order=1),
    OpInfo("hardsigmoid", cr.hardsigmoid, _avoiding(-3.0, 3.0),
           lambda x: np.clip(x / 6 + 0.5, 0, 1), lambda t, x: _tf(t).hardsigmoid(x),
           covers=("where",), order=1),
    OpInfo("hardswish", cr.hardswish, _avoiding(-3.0, 3.0),
           lambda x: x * np.clip(x + 3, 0, 6) / 6, lambda t, x: _tf(t).hardswish(x),
           covers=("where",), order=1),
    # softsign's second derivative jumps at 0: sampled away from it
    OpInfo("softsign", cr.softsign, _avoiding(0.0, low=-4, high=4),
           lambda x: x / (1 + np.abs(x)), lambda t, x: _tf(t).softsign(x),
           covers=("abs", "div")),
    OpInfo("softmin", lambda x: cr.softmin(x, axis=1), cases(((3, 4),), ((2, 3, 2),)),
           lambda x: special.softmax(-x, axis=1), lambda t, x: _tf(t).softmin(x, dim=1),
           covers=("softmax", "neg")),
    OpInfo("softplus_beta_threshold", lambda x: cr.softplus(x, 2.0, 3.0),
           _avoiding(1.5, low=-4, high=4), lambda x: _ref_softplus(x, 2.0, 3.0),
           lambda t, x: _tf(t).softplus(x, 2.0, 3.0), covers=("softplus", "where", "div")),
    OpInfo("softplus_beta", lambda x: cr.softplus(x, 0.5), unary(),
           lambda x: np.logaddexp(0, 0.5 * x) / 0.5,
           lambda t, x: _tf(t).softplus(x, 0.5, 1000.0), covers=("softplus", "div")),
    OpInfo("glu", cr.glu, cases(((3, 4),), ((2, 3, 6),)), lambda x: _ref_glu(x, -1),
           lambda t, x: _tf(t).glu(x), covers=("getitem", "sigmoid", "mul")),
    OpInfo("glu_axis0", lambda x: cr.glu(x, axis=0), cases(((4, 3),), ((2,),)),
           lambda x: _ref_glu(x, 0), lambda t, x: _tf(t).glu(x, dim=0),
           covers=("getitem", "sigmoid", "mul")),
    OpInfo("normalize", cr.normalize, cases(((3, 4),), ((2, 3, 2),)),
           lambda x: _ref_normalize(x, 2, 1), lambda t, x: _tf(t).normalize(x),
           covers=("sum", "sqrt", "div", "where")),
    OpInfo("normalize_p3_last", lambda x: cr.normalize(x, p=3, axis=-1),
           lambda rng: [(_away_from_zero(rng),)], lambda x: _ref_normalize(x, 3, -1),
           lambda t, x: _tf(t).normalize(x, p=3, dim=-1), covers=("pow", "abs", "sum")),
    OpInfo("normalize_p1", lambda x: cr.normalize(x, p=1, axis=0),
           lambda rng: [(_away_from_zero(rng),)], lambda x: _ref_normalize(x, 1, 0),
           lambda t, x: _tf(t).normalize(x, p=1, dim=0), covers=("abs", "sum"), order=1),
    OpInfo("normalize_max", lambda x: cr.normalize(x, p=math.inf), _distinct_abs,
           lambda x: _ref_normalize(x, np.inf, 1),
           lambda t, x: _tf(t).normalize(x, p=math.inf), covers=("max", "abs"), order=1),
]
# fmt: on

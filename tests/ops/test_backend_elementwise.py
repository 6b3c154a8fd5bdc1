"""Elementwise ops, activations and losses on NumPy and on array_api_strict (the standard only).

One table row per public function of ``chainrule.ops.elementwise``, ``.activations`` and
``.losses`` (a test checks that every name of their ``__all__`` has a row): each row runs on NumPy
and on array_api_strict, and the two must agree -- the values and the gradients of every float
input to 1e-6 (float64), the result staying on the strict backend. A second table checks each
primitive of these modules' ``abstract_eval`` rule against the result of its NumPy kernel, and a
third that the losses' target validation raises the same error on both backends.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import activations, elementwise, losses
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.primitive import Primitive

STRICT = "array_api_strict"
MODULES = (elementwise, activations, losses)
TOLERANCE = dict(rtol=1e-6, atol=1e-6)


def _uniform(shape: tuple, low: float = -2.0, high: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape)


A = _uniform((3, 4))                                        # any real
B = _uniform((4,), seed=1)                                  # broadcasts against A
POS = _uniform((3, 4), 0.1, 2.0, seed=2)                    # log, sqrt, a base of pow
PROB = _uniform((3, 4), 0.05, 0.95, seed=3)                 # probabilities
TARGET = _uniform((3, 4), 0.0, 1.0, seed=4)                 # BCE targets
TIES = np.where(_uniform((3, 4), seed=5) > 0, A, 0.25)      # equal to A at some elements
WITH_ZERO = np.array([[-1.5, 0.0, 0.7], [0.0, 2.0, -0.3]])  # heaviside / sign at 0
INTS = np.array([[-3, 0, 2, 5], [1, -1, 4, 0], [2, 2, -2, 7]])
CONDITION = np.array([[True], [False], [True]])             # (3, 1): broadcasts in where
LOGITS = _uniform((5, 4), seed=6)
LOGITS_2D = _uniform((2, 3, 2), seed=7)                     # (N, C, d1)
CLASSES = np.array([0, 3, 1, 2, 3])
CLASSES_IGNORED = np.array([0, -100, 1, 2, -100])
CLASSES_2D = np.array([[0, 2], [1, 1]])
CLASS_WEIGHT = np.array([0.5, 1.0, 2.0, 1.5])
LOG_PROBS = LOGITS - np.log(np.exp(LOGITS).sum(axis=1, keepdims=True))
PROB_TARGET = np.exp(LOG_PROBS[::-1].copy())


class Row(NamedTuple):
    """One call: ``fn(*args, **kwargs)``; float ndarrays become leaves that require grad."""

    fn: Callable[..., Any]
    args: tuple
    kwargs: dict = {}


def rows(fn: Callable[..., Any], *calls: Any) -> list[Row]:
    """Rows of ``fn``: each call is a tuple of args, or (args, kwargs)."""
    out = []
    for call in calls:
        args, kwargs = call if isinstance(call, list) else (call, {})
        out.append(Row(fn, args, kwargs))
    return out


def _id(row: Row) -> str:
    return row.fn.__name__


# fmt: off
ROWS = [
    # elementwise
    *rows(cr.add,           (A, B), (A, 2.5), (INTS, A), (INTS, INTS)),
    *rows(cr.sub,           (A, B), (1.5, A), (INTS, 0.5)),
    *rows(cr.mul,           (A, B), (A, INTS), (INTS, 3)),
    *rows(cr.div,           (A, POS), (INTS, 4), (2.0, POS)),
    *rows(cr.neg,           (A,), (INTS,)),
    *rows(cr.pow,           (POS, B), (A, 2),
                            (np.array([0.0, 1.5, 0.0]), np.array([0.0, 2.0, 3.0])),
                            (np.array([0.0, 2.0]), np.array([-1.0, 0.5]))),
    *rows(cr.exp,           (A,), (INTS,)),
    *rows(cr.log,           (POS,)),
    *rows(cr.log1p,         (POS,)),
    *rows(cr.expm1,         (A,)),
    *rows(cr.sqrt,          (POS,), (np.abs(INTS),)),
    *rows(cr.sin,           (A,)),
    *rows(cr.cos,           (A,)),
    *rows(cr.tanh,          (A,)),
    *rows(cr.abs,           (A,), (INTS,)),
    *rows(cr.clip,          [(A,), {"min": -0.5, "max": 0.7}], [(A,), {"min": 0.0}],
                            [(INTS,), {"max": 2.5}], [(INTS,), {"min": 0, "max": 3}]),
    *rows(cr.maximum,       (A, B), (A, TIES), (INTS, A)),
    *rows(cr.minimum,       (A, B), (A, TIES), (A, 0.0)),
    *rows(cr.where,         (CONDITION, A, B), (CONDITION, A, 0.0), (INTS, A, INTS)),
    *rows(cr.astype,        (A, np.float32), (A, np.int32), (INTS, np.float64)),
    *rows(cr.less,          (A, B), (A, 0), (INTS, A)),
    *rows(cr.less_equal,    (A, TIES), (INTS, 2)),
    *rows(cr.greater,       (A, B), (INTS, 0.5)),
    *rows(cr.greater_equal, (A, TIES), (INTS, A)),
    *rows(cr.equal,         (A, TIES), (INTS, 2)),
    *rows(cr.not_equal,     (A, TIES), (INTS, A)),
    *rows(cr.isfinite,      (np.array([1.0, np.inf, -np.inf, np.nan]),), (INTS,)),
    # activations
    *rows(cr.relu,          (A,), (INTS,)),
    *rows(cr.leaky_relu,    (A,), [(A,), {"negative_slope": 0.2}]),
    *rows(cr.prelu,         (A, np.array([0.1, 0.2, 0.3, 0.4]))),
    *rows(cr.heaviside,     (WITH_ZERO,), [(WITH_ZERO,), {"value_at_zero": 1.0,
                                                          "surrogate_slope": 2.0}], (INTS,)),
    *rows(cr.step,          (WITH_ZERO,), [(WITH_ZERO,), {"surrogate_slope": 1.5}]),
    *rows(cr.sign,          (WITH_ZERO,), [(WITH_ZERO,), {"surrogate_slope": 3.0}], (INTS,)),
    *rows(cr.sigmoid,       (A * 20,), (INTS,)),
    *rows(cr.softplus,      (A * 20,)),
    *rows(cr.log_sigmoid,   (A * 20,)),
    *rows(cr.softmax,       (A,), [(LOGITS_2D,), {"axis": 1}], (np.float64(0.5),)),
    *rows(cr.log_softmax,   (A,), [(LOGITS_2D,), {"axis": 0}]),
    *rows(cr.maxout,        [(A,), {"pieces": 2}], [(TIES,), {"pieces": 3, "axis": 0}]),
    # losses
    *rows(cr.mse_loss,      (A, TIES), [(A, TIES), {"reduction": "none"}]),
    *rows(cr.binary_cross_entropy,
                            (PROB, TARGET), [(PROB, TARGET), {"weight": B, "reduction": "sum"}],
                            (np.array([0.0, 0.3, 1.0]), np.array([0.2, 1.0, 0.5]))),
    *rows(cr.binary_cross_entropy_with_logits,
                            (A, TARGET), [(A, TARGET), {"pos_weight": np.abs(B)}],
                            [(A, TARGET), {"reduction": "none"}]),
    *rows(cr.cross_entropy, (LOGITS, CLASSES), (LOGITS_2D, CLASSES_2D), (LOGITS, PROB_TARGET),
                            [(LOGITS[0], np.int64(3)), {"weight": CLASS_WEIGHT,
                                                        "label_smoothing": 0.1}],
                            [(LOGITS[0], PROB_TARGET[0]), {"weight": CLASS_WEIGHT}],
                            [(LOGITS, CLASSES), {"weight": CLASS_WEIGHT, "label_smoothing": 0.2}],
                            [(LOGITS, CLASSES_IGNORED), {"reduction": "none"}],
                            [(LOGITS, CLASSES_IGNORED), {"label_smoothing": 0.1}],
                            [(LOGITS, CLASSES), {"ignore_index": 3, "reduction": "sum"}]),
    *rows(cr.nll_loss,      (LOG_PROBS, CLASSES),
                            [(LOG_PROBS, CLASSES_IGNORED), {"reduction": "sum"}],
                            [(LOG_PROBS, CLASSES), {"weight": CLASS_WEIGHT}],
                            [(LOG_PROBS[0], np.int64(2)), {"weight": CLASS_WEIGHT}]),
    *rows(cr.l1_loss,       (A, TIES), [(A, POS), {"weight": POS, "reduction": "none"}]),
    *rows(cr.smooth_l1_loss,
                            (A, TIES), [(A, POS), {"beta": 0.5, "reduction": "sum"}]),
    *rows(cr.huber_loss,    (A, TIES), [(A, POS), {"delta": 0.5, "weight": POS}]),
    *rows(cr.kl_div,        (LOG_PROBS, PROB_TARGET),
                            [(LOG_PROBS, np.where(CLASSES[:, None] == 1, 0.0, PROB_TARGET)),
                             {"reduction": "batchmean"}],
                            [(LOG_PROBS, LOG_PROBS[::-1].copy()), {"log_target": True}]),
    *rows(cr.margin_ranking_loss,
                            [(A[0], B, np.array([1.0, -1.0, -1.0, 1.0])), {"margin": 0.3}]),
    *rows(cr.cosine_embedding_loss,
                            [(A, POS, np.array([1, -1, 1])), {"margin": 0.1}],
                            (A[0], POS[0], np.array(-1))),
    *rows(cr.triplet_margin_loss,
                            (A, POS, TIES), [(A, POS, TIES), {"p": 3, "swap": True}],
                            [(A[0], POS[0], B), {"p": 1, "reduction": "none"}]),
    *rows(cr.poisson_nll_loss,
                            (A, POS * 3), [(POS, POS * 3), {"log_input": False, "full": True}]),
]
# fmt: on


def _leaves(args: tuple, device: str) -> list:
    """The row's arrays as leaf tensors on ``device``; floating ones require grad."""
    out = []
    for arg in args:
        if isinstance(arg, (np.ndarray, np.generic)):
            leaf = cr.tensor(np.asarray(arg)).to(device)
            out.append(leaf.requires_grad_() if leaf.dtype.kind == "f" else leaf)
        else:
            out.append(arg)
    return out


def _kwargs(kwargs: dict, device: str) -> dict:
    """Array keyword arguments (weights) as tensors on ``device``."""
    return {k: cr.tensor(v).to(device) if isinstance(v, np.ndarray) else v
            for k, v in kwargs.items()}


def _run(row: Row, device: str) -> tuple:
    """The row's result and the gradient of sum(result * c) for each input (None: no gradient),
    c a fixed cotangent of the result's shape, so every element's gradient counts."""
    leaves = _leaves(row.args, device)
    out = row.fn(*leaves, **_kwargs(row.kwargs, device))
    if out.dtype.kind != "f" or not out.requires_grad:
        return out, []
    cotangent = cr.tensor(_uniform(out.shape, seed=9).astype(out.dtype)).to(device)
    cr.sum(out * cotangent).backward()
    return out, [x.grad for x in leaves if isinstance(x, cr.Tensor) and x.requires_grad]


def test_every_public_function_has_a_row():
    """Here, or as an op-info row (tests/backends/test_opinfo_matrix.py runs every op-info row on
    the strict backend: issue 12's activations are checked there)."""
    from chainrule.testing.opinfo import OPINFO

    covered = {row.fn.__name__ for row in ROWS} | {info.name for info in OPINFO}
    covered |= {name for info in OPINFO for name in info.primitives}
    public = {name for module in MODULES for name in module.__all__}
    assert public - covered == set()


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_strict_backend_matches_numpy(row: Row):
    expected, expected_grads = _run(row, "cpu")
    out, grads = _run(row, STRICT)
    assert out.backend == STRICT
    assert (out.shape, out.dtype) == (expected.shape, expected.dtype)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), **TOLERANCE)
    assert len(grads) == len(expected_grads)
    for grad, expected_grad in zip(grads, expected_grads):
        assert (grad is None) == (expected_grad is None)
        if grad is not None:
            assert grad.backend == STRICT
            np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), **TOLERANCE)


# ------------------------------------------------------------------ abstract_eval of each primitive
SCE_PARAMS = {"target": CLASSES_2D, "sample_weight": np.ones((2, 2))}

# fmt: off
ABSTRACT_ROWS = [  # (primitive name, inputs, params)
    ("normal_cdf", (A,), {}),
    ("add", (A, B), {}), ("add", (INTS, INTS.astype(np.int32)), {}),
    ("sub", (A, B), {}), ("mul", (A.astype(np.float32), B.astype(np.float32)), {}),
    ("div", (A, B), {}), ("div", (INTS, np.abs(INTS) + 1), {}),
    ("neg", (INTS,), {}), ("pow", (POS, B), {}),
    ("exp", (A,), {}), ("log", (POS.astype(np.float32),), {}), ("log1p", (POS,), {}),
    ("expm1", (A,), {}), ("sqrt", (POS,), {}), ("sin", (A,), {}), ("cos", (A,), {}),
    ("tanh", (A.astype(np.float32),), {}), ("abs", (INTS,), {}),
    ("clip", (A,), {"lo": -0.5, "hi": None}),
    ("maximum", (A, B), {}), ("minimum", (INTS, INTS), {}),
    ("where", (CONDITION, A, B.astype(np.float32)), {}), ("astype", (A,), {"dtype": np.float32}),
    ("relu", (INTS,), {}), ("heaviside", (A,), {"value_at_zero": 0.5, "surrogate_slope": None}),
    ("sign", (A,), {"surrogate_slope": None}), ("sigmoid", (A.astype(np.float32),), {}),
    ("softplus", (A,), {}), ("softmax", (LOGITS_2D,), {"axis": 1}),
    ("log_softmax", (A.astype(np.float32),), {"axis": 0}),
    ("binary_cross_entropy", (PROB, TARGET), {}),
    ("softmax_cross_entropy", (LOGITS_2D,), SCE_PARAMS),
]
# fmt: on


def _primitives() -> dict:
    return {v.name: v for m in MODULES for v in vars(m).values() if isinstance(v, Primitive)}


def test_every_primitive_has_an_abstract_row():
    assert set(_primitives()) == {name for name, _, _ in ABSTRACT_ROWS}


@pytest.mark.parametrize("name, inputs, params", ABSTRACT_ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ABSTRACT_ROWS)])
def test_abstract_eval_gives_the_numpy_result_shape_and_dtype(name, inputs, params):
    prim = _primitives()[name]
    tensors = [cr.tensor(x) for x in inputs]
    real = prim.bind(*tensors, **params)
    aval = prim.rules["abstract_eval"](*[ShapeDtype(t.shape, t.dtype) for t in tensors], **params)
    assert (tuple(aval.shape), np.dtype(aval.dtype)) == (real.shape, real.dtype)


#: the standard divides floating arrays only (chainrule's div makes integers float32 first)
GENERIC_ROWS = [r for r in ABSTRACT_ROWS if not (r[0] == "div" and r[1][0].dtype.kind == "i")]


@pytest.mark.parametrize("name, inputs, params", GENERIC_ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(GENERIC_ROWS)])
def test_generic_kernel_gives_the_numpy_kernel_result(name, inputs, params):
    """Each primitive bound on strict arrays (its generic kernel) agrees with NumPy's kernel."""
    prim = _primitives()[name]
    real = prim.bind(*[cr.tensor(x) for x in inputs], **params)
    strict_params = {k: cr.tensor(v).to(STRICT).data if isinstance(v, np.ndarray) else v
                     for k, v in params.items()}
    out = prim.bind(*[cr.tensor(x).to(STRICT) for x in inputs], **strict_params)
    assert out.backend == STRICT and (out.shape, out.dtype) == (real.shape, real.dtype)
    np.testing.assert_allclose(out.numpy(), real.numpy(), **TOLERANCE)


# ------------------------------------------------------------------ validation on every backend
# fmt: off
ERROR_ROWS = [  # (call, exception, the message's start)
    (lambda d: cr.cross_entropy(_on(LOGITS, d), _on(np.array([0, 4, 1, 2, 3]), d)), ValueError,
     "cross_entropy/nll_loss: target holds class 4, outside 0..3"),
    (lambda d: cr.nll_loss(_on(LOG_PROBS, d), _on(np.array([0, -1, 1, 2, 3]), d)), ValueError,
     "cross_entropy/nll_loss: target holds class -1"),
    (lambda d: cr.nll_loss(_on(LOG_PROBS, d), [0, 1, 9, 2, 3]), ValueError,
     "cross_entropy/nll_loss: target holds class 9"),
    (lambda d: cr.cross_entropy(_on(LOGITS, d), _on(CLASSES.astype(np.float32)[:4], d)),
     cr.ShapeError, "cross_entropy: probability target must have"),
    (lambda d: cr.nll_loss(_on(LOG_PROBS, d), _on(CLASSES[:3], d)), cr.ShapeError,
     "nll_loss: input (5, 4) needs target of shape (5,)"),
    (lambda d: cr.binary_cross_entropy(_on(np.array([0.2, 1.5]), d), _on(np.array([0.0, 1.0]), d)),
     ValueError, "binary_cross_entropy: all elements of input should be between 0 and 1 "
     "(input must hold probabilities in [0, 1], found 1.5)"),
    (lambda d: cr.binary_cross_entropy(_on(np.array([0.2, 0.5]), d), _on(np.array([np.nan, 1]), d)),
     ValueError, "binary_cross_entropy: all elements of target should be between 0 and 1 "
     "(target must hold probabilities in [0, 1], found nan)"),
    (lambda d: cr.clip(_on(A, d), 1.0, 0.0), ValueError, "clip: min (1.0) must not exceed max"),
    (lambda d: cr.add(_on(A, d), _on(POS[:, :3], d)), cr.ShapeError,
     "add: shapes (3, 4) and (3, 3) do not broadcast"),
    (lambda d: cr.less(_on(A, d), _on(POS[:, :3], d)), cr.ShapeError,
     "less: shapes (3, 4) and (3, 3) do not broadcast"),
]
# fmt: on


def _on(array: np.ndarray, device: str) -> cr.Tensor:
    return cr.tensor(array).to(device)


@pytest.mark.parametrize("call, error, message", ERROR_ROWS, ids=range(len(ERROR_ROWS)))
@pytest.mark.parametrize("device", ["cpu", STRICT])
def test_validation_raises_the_same_error(call, error, message, device):
    with pytest.raises(error) as raised:
        call(device)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("fn", [cr.add, cr.less, cr.where])
def test_two_backends_in_one_call_are_refused(fn):
    x, y = cr.tensor(A), cr.tensor(A).to(STRICT)
    args = (CONDITION.astype(bool), x, y) if fn is cr.where else (x, y)
    with pytest.raises(cr.BackendMismatchError):
        fn(*args)

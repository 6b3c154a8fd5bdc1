"""The function transforms on every backend equal the same transforms on NumPy.

grad, value_and_grad, elementwise_grad, jacobian, hessian, hvp, vjp and jvp of a few functions
(polynomial and trigonometric, a matrix product through tanh, a log-softmax pairing), with
every argument, constant, cotangent and tangent on the backend (``backend`` fixture). Each
result leaf must be on the backend and equal NumPy's within float64 round-off.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.transforms import tree_flatten

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 3))
HOST = {"x": RNG.standard_normal(3), "y": RNG.standard_normal(4), "v": RNG.standard_normal(3),
        "u": RNG.standard_normal(4), "t": RNG.standard_normal(3)}


def _functions(device):
    """The test functions with their constant ``W`` on ``device``."""
    w = cr.tensor(W, device=device)
    return SimpleNamespace(
        cubic=lambda x: cr.sum(x ** 3) + cr.sum(cr.sin(x)),  # f(x) = sum x^3 + sin x
        pairing=lambda x, y: cr.sum(cr.tanh(w @ x) * y),  # f(x, y) = <tanh(W x), y>
        log_softmax=lambda x, y: cr.sum(cr.log_softmax(w @ x * y[0], axis=0) * y),
        vector=lambda x: cr.tanh(w @ x) * 2,  # R^3 -> R^4
    )


def _vjp(F, a):
    out, pull_back = cr.vjp(F.vector, a.x)
    return out, pull_back(a.u)


TRANSFORMS = {
    "grad": lambda F, a: cr.grad(F.cubic)(a.x),
    "grad_argnums": lambda F, a: cr.grad(F.pairing, argnums=(0, 1))(a.x, a.y),
    "value_and_grad": lambda F, a: cr.value_and_grad(F.log_softmax, argnums=(0, 1))(a.x, a.y),
    "elementwise_grad": lambda F, a: cr.elementwise_grad(cr.tanh)(a.x),
    "grad_of_grad": lambda F, a: cr.grad(lambda x: cr.sum(cr.grad(F.cubic)(x) * a.v))(a.x),
    "jacobian": lambda F, a: cr.jacobian(F.vector)(a.x),
    "jacobian_argnums": lambda F, a: cr.jacobian(lambda x, y: F.vector(x) * y,
                                                 argnums=(0, 1))(a.x, a.y),
    "hessian": lambda F, a: cr.hessian(F.cubic)(a.x),
    "hessian_argnums": lambda F, a: cr.hessian(F.pairing, argnums=(0, 1))(a.x, a.y),
    "hvp": lambda F, a: cr.hvp(F.log_softmax)(a.x, a.y, a.v),
    "vjp": _vjp,
    "jvp": lambda F, a: cr.jvp(F.vector, (a.x,), (a.t,)),
}


def _run(name, device) -> list:
    """The result leaves of transform ``name`` with everything on ``device``."""
    args = SimpleNamespace(**{k: cr.tensor(v, device=device) for k, v in HOST.items()})
    leaves, _ = tree_flatten(TRANSFORMS[name](_functions(device), args))
    return leaves


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transform_equals_numpy(backend, name):
    got, want = _run(name, backend), _run(name, "cpu")
    assert len(got) == len(want)
    for mine, reference in zip(got, want):
        assert mine.device.type == backend
        assert mine.shape == reference.shape and mine.dtype == reference.dtype
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-10, atol=1e-12)

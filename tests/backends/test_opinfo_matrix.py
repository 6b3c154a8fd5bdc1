"""Every row of the op-info table on every backend, against the same row on NumPy.

The inputs of each sample are moved to the backend (``backend`` fixture: "cpu",
"array_api_strict", "cuda"); the result must stay there and equal NumPy's within the row's
tolerance (atol, rtol): the forward value, the first derivatives (one backward pass with a random
projection p: the gradient of <f(x), p>) and, for rows of order 2, the second derivatives (the
gradient of <grad <f(x), p>, q>, i.e. a Hessian-vector product). NumPy is the oracle here; the
NumPy results themselves are checked against independent references in tests/ops/test_opinfo.py.
"""

import functools
import operator

import numpy as np
import pytest

import chainrule as cr
from chainrule.testing.opinfo import OPINFO

#: rows whose result leaves the input's backend by design (a round trip ending on the host)
ENDS_ON_HOST = {"to_device"}


def _cases(order: int = 1, per_row: int = 0) -> list:
    """(row, sample) pairs of the rows of at least ``order``; ``per_row`` > 0 keeps that many
    samples of each row (second order is slow on array_api_strict)."""
    cases = []
    for info in OPINFO:
        if info.order < order:
            continue
        samples = info.samples(np.random.default_rng(0))
        for k, sample in enumerate(samples[:per_row] if per_row else samples):
            cases.append(pytest.param(info, sample, id=f"{info.name}-{k}"))
    return cases


def _on(value, device):
    """A sample input on ``device`` (ndarrays become tensors there; other values stay)."""
    return cr.tensor(value, device=device) if isinstance(value, np.ndarray) else value


def _wanted(info, sample) -> tuple:
    return info.differentiable or tuple(range(len(sample)))


def _bound(info, sample, device):
    """(f, leaves): f of the differentiable inputs with the others held fixed on ``device``, and
    leaf tensors (requires_grad) for the differentiable inputs there."""
    f, _ = info.bind([_on(x, device) for x in sample])
    leaves = [cr.tensor(sample[i], device=device, requires_grad=True)
              for i in _wanted(info, sample)]
    return f, leaves


def _expected_device(info, device) -> str:
    return "cpu" if info.name in ENDS_ON_HOST else device


def _check_on(tensors, device) -> None:
    for t in tensors:
        assert t.device.type == device, f"result on {t.device}, expected on {device}"


def _assert_close(got, want, info) -> None:
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=info.rtol, atol=info.atol)


def _projections(info, sample, seed: int) -> list:
    """A random host array shaped like the row's output on ``sample``."""
    out = info.fn(*[_on(x, "cpu") for x in sample])
    return np.random.default_rng(seed).standard_normal(out.shape)


def _first_order(info, sample, device, projection) -> list:
    """d<f(x), p>/dx for every differentiable input, by backward()."""
    f, leaves = _bound(info, sample, device)
    out = f(*leaves)
    cr.sum(out * cr.tensor(projection, device=_expected_device(info, device))).backward()
    return [cr.zeros_like(x) if x.grad is None else x.grad for x in leaves]


def _second_order(info, sample, device, projection, directions) -> list:
    """d<grad <f(x), p>, q>/dx for every differentiable input, by nested cr.grad."""
    f, leaves = _bound(info, sample, device)
    argnums = tuple(range(len(leaves)))
    p = cr.tensor(projection, device=_expected_device(info, device))
    qs = [cr.tensor(q, device=device) for q in directions]

    def inner(*variables):
        return cr.sum(f(*variables) * p)

    def pairing(*variables):
        grads = cr.grad(inner, argnums=argnums)(*variables)
        return functools.reduce(operator.add, [cr.sum(g * q) for g, q in zip(grads, qs)])

    return list(cr.grad(pairing, argnums=argnums)(*leaves))


@pytest.mark.parametrize("info, sample", _cases())
def test_forward_equals_numpy(backend, info, sample):
    out = info.fn(*[_on(x, backend) for x in sample])
    _check_on([out], _expected_device(info, backend))
    _assert_close(out, info.fn(*[_on(x, "cpu") for x in sample]), info)


@pytest.mark.parametrize("info, sample", _cases())
def test_gradient_equals_numpy(backend, info, sample):
    projection = _projections(info, sample, seed=7)
    grads = _first_order(info, sample, backend, projection)
    _check_on(grads, backend)
    for got, want in zip(grads, _first_order(info, sample, "cpu", projection)):
        _assert_close(got, want, info)


@pytest.mark.parametrize("info, sample", _cases(order=2))
def test_second_derivative_equals_numpy(backend, info, sample):
    projection = _projections(info, sample, seed=7)
    rng = np.random.default_rng(8)
    directions = [rng.standard_normal(np.shape(sample[i])) for i in _wanted(info, sample)]
    grads = _second_order(info, sample, backend, projection, directions)
    _check_on(grads, backend)
    for got, want in zip(grads, _second_order(info, sample, "cpu", projection, directions)):
        _assert_close(got, want, info)

"""Every op of the op-info table (src/chainrule/opinfo.py), checked four ways.

forward against an independent NumPy/SciPy reference; back-propagated gradients against central
finite differences and against torch.autograd; second derivatives against finite differences of
the gradient. A new op is one row in the table, not a new test here.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.gradcheck import gradgradcheck
from chainrule.ops import REGISTRY
from chainrule.testing.opinfo import OPINFO, covered_primitives

try:
    import torch
except ImportError:  # the oracle is optional: the other checks still run
    torch = None


def _cases(order=1, with_torch=False) -> list:
    cases = []
    for info in OPINFO:
        if order == 2 and info.order < 2:
            continue
        if with_torch and info.torch is None:
            continue
        for k, sample in enumerate(info.samples(np.random.default_rng(0))):
            cases.append(pytest.param(info, sample, id=f"{info.name}-{k}"))
    return cases


def test_every_primitive_has_a_row():
    assert set(REGISTRY) <= covered_primitives()


def test_every_row_has_a_reference():
    assert all(info.reference is not None or info.torch is not None for info in OPINFO)


@pytest.mark.parametrize("info, sample", _cases())
def test_forward_matches_reference(info, sample):
    out = info.fn(*[cr.tensor(x) if isinstance(x, np.ndarray) else x for x in sample])
    # PyTorch is the reference of this row (checked with its gradients below)
    if info.reference is None:
        if torch is None:
            pytest.skip("this row's reference is torch, which is not installed")
        expected = info.torch(torch, *[torch.tensor(x) if isinstance(x, np.ndarray) else x
                                       for x in sample]).numpy()
    else:
        expected = np.asarray(info.reference(*sample))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6,
                               atol=1e-7 if info.name != "astype" else 1e-6)


@pytest.mark.parametrize("info, sample", _cases())
def test_forward_keeps_float32(info, sample):
    args = [cr.tensor(x.astype(np.float32))
            if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x
            for x in sample]
    out = info.fn(*args)
    if info.name != "astype":
        assert out.dtype == np.float32


@pytest.mark.parametrize("info, sample", _cases())
def test_gradient_matches_finite_differences(info, sample):
    f, variables = info.bind(sample)
    assert cr.gradcheck(f, variables, eps=info.eps, atol=info.atol, rtol=info.rtol)


@pytest.mark.parametrize("info, sample", _cases(order=2))
def test_second_derivative_matches_finite_differences(info, sample):
    f, variables = info.bind(sample)
    assert gradgradcheck(f, variables, eps=info.eps, atol=info.atol, rtol=info.rtol)


@pytest.mark.skipif(torch is None, reason="torch is the oracle here")
@pytest.mark.parametrize("info, sample", _cases(with_torch=True))
def test_gradient_matches_torch(info, sample):
    f, variables = info.bind(sample)
    ours = [cr.tensor(v, requires_grad=True) for v in variables]
    out = f(*ours)
    projection = np.random.default_rng(7).standard_normal(out.shape)
    if out.size:
        cr.sum(out * projection).backward()

    theirs = [torch.tensor(v, requires_grad=True) for v in variables]
    args = list(torch.tensor(x) if isinstance(x, np.ndarray) else x for x in sample)
    wanted = info.differentiable or tuple(range(len(sample)))
    for i, t in zip(wanted, theirs):
        args[i] = t
    expected = info.torch(torch, *args)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-7)
    if out.size:
        (expected * torch.tensor(projection)).sum().backward()
    for mine, reference in zip(ours, theirs):
        want = np.zeros(mine.shape) if reference.grad is None else reference.grad.numpy()
        got = np.zeros(mine.shape) if mine.grad is None else mine.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)

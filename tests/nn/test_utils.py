"""chainrule.nn.utils against torch.nn.utils: clipping and parameter vectors."""

import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn


def _pair(seed: int, dtype=np.float64):
    """Two parameter lists (chainrule, torch) with the same values and gradients."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) * 3 for s in shapes]
    ours = [nn.Parameter(cr.tensor(v)) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(v)) for v in values]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = cr.tensor(g), torch.tensor(g)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _pair(0)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
    clipped = max_norm < expected.item()
    assert clipped == (max_norm == 0.5)  # one case scales, the other leaves the norm as it was


def test_clip_grad_norm_float32_single_tensor_and_no_grads():
    ours, theirs = _pair(1, np.float32)
    total = nn.utils.clip_grad_norm_(ours[0], 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 1.0)
    assert total.dtype == np.float32
    np.testing.assert_allclose(ours[0].grad.numpy(), theirs[0].grad.numpy(), rtol=1e-6)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert nn.utils.clip_grad_norm_([nn.Parameter(cr.tensor([1.0]))], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    ours, _ = _pair(2)
    ours[1].grad = cr.tensor([np.inf, 0.0, 1.0, 2.0])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="norm_type"):
        nn.utils.clip_grad_norm_(ours, 1.0, norm_type=0)
    with pytest.raises(TypeError, match="max_norm"):
        nn.utils.clip_grad_norm_(ours, "1")


def test_clip_grad_value_matches_torch():
    ours, theirs = _pair(3)
    nn.utils.clip_grad_value_(ours, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert max(np.abs(p.grad.numpy()).max() for p in ours) == 0.7
    with pytest.raises(ValueError, match="clip_value"):
        nn.utils.clip_grad_value_(ours, -1)


def test_parameters_to_vector_and_back():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    vector = nn.utils.parameters_to_vector(model.parameters())
    assert vector.shape == (3 * 4 + 4 + 4 * 2 + 2,)
    reference = torch.nn.utils.parameters_to_vector(
        [torch.tensor(p.numpy()) for p in model.parameters()])
    np.testing.assert_array_equal(vector.numpy(), reference.numpy())
    cr.sum(vector * cr.arange(vector.size).astype(vector.dtype)).backward()  # differentiable
    np.testing.assert_array_equal(model[0].weight.grad.numpy().ravel(), np.arange(12))
    nn.utils.vector_to_parameters(vector * 0 + 1, model.parameters())
    assert all((p.numpy() == 1).all() for p in model.parameters())
    with pytest.raises(ValueError, match="entries"):
        nn.utils.vector_to_parameters(cr.ones(3), model.parameters())

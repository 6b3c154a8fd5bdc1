"""matmul of a stack of matrices by one matrix runs as one GEMM over the stacked rows (forward and
the weight's gradient): the same numbers as the batched product, contiguous or not."""

import numpy as np
import pytest

import chainrule as cr


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 1, 3, 4), (5, 4)])
@pytest.mark.parametrize("transposed", [False, True])
def test_stack_times_matrix_matches_numpy_and_its_gradients(shape, transposed):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    if transposed:  # a non-contiguous stack (a view with its first two axes swapped)
        a = np.swapaxes(rng.standard_normal((shape[1], shape[0]) + shape[2:]), 0, 1)
    b = rng.standard_normal((4, 6))
    ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    out = cr.matmul(ta, tb)
    np.testing.assert_allclose(out.numpy(), np.matmul(a, b), rtol=1e-13)
    g = rng.standard_normal(out.shape)
    (out * cr.tensor(g)).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), np.matmul(g, b.T), rtol=1e-12)
    expected_b = sum(np.matmul(a_s.T, g_s) for a_s, g_s in zip(a.reshape(-1, *a.shape[-2:]),
                                                                g.reshape(-1, *g.shape[-2:])))
    np.testing.assert_allclose(tb.grad.numpy(), expected_b, rtol=1e-12)
    assert tb.grad.shape == (4, 6)

"""Property-based tests (hypothesis): shapes, axes and values drawn at random."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr

SETTINGS = settings(max_examples=40, deadline=None)
finite = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    a = draw(hnp.arrays(np.float64, shapes.input_shapes[0], elements=finite))
    b = draw(hnp.arrays(np.float64, shapes.input_shapes[1], elements=finite))
    return a, b


@st.composite
def array_and_axis(draw):
    x = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                        elements=finite))
    axes = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1),
                          st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim,
                                   unique=True).map(tuple)))
    return x, axes, draw(st.booleans())


@SETTINGS
@given(broadcastable_pair())
def test_mul_gradients_sum_over_broadcast_axes(pair):
    a, b = pair
    ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    out = ta * tb
    np.testing.assert_array_equal(out.numpy(), a * b)
    out.backward(gradient=np.ones(out.shape))
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    # d/da sum(a * b) = b summed over the axes a was broadcast along; compare with an einsum-free
    # route
    np.testing.assert_allclose(ta.grad.numpy().sum(), np.broadcast_to(b, out.shape).sum(),
                               atol=1e-9)
    np.testing.assert_allclose(tb.grad.numpy().sum(), np.broadcast_to(a, out.shape).sum(),
                               atol=1e-9)


@SETTINGS
@given(array_and_axis())
def test_reductions_match_numpy(case):
    x, axis, keepdims = case
    t = cr.tensor(x, requires_grad=True)
    for ours, theirs in ((cr.sum, np.sum), (cr.mean, np.mean), (cr.max, np.max), (cr.min, np.min)):
        np.testing.assert_allclose(ours(t, axis=axis, keepdims=keepdims).numpy(),
                                   theirs(x, axis=axis, keepdims=keepdims), rtol=1e-12, atol=1e-12)
    out = cr.sum(t, axis=axis, keepdims=keepdims)
    out.backward(gradient=np.ones(out.shape))
    np.testing.assert_array_equal(t.grad.numpy(), np.ones(x.shape))


@SETTINGS
@given(array_and_axis())
def test_max_gradient_sums_to_one_per_slice(case):
    x, axis, keepdims = case
    t = cr.tensor(np.round(x), requires_grad=True)  # rounding makes ties common
    out = cr.max(t, axis=axis, keepdims=keepdims)
    out.backward(gradient=np.ones(out.shape))
    np.testing.assert_allclose(np.sum(t.grad.numpy(), axis=axis), 1.0)
    assert np.all(t.grad.numpy()[t.data < np.max(t.data, axis=axis, keepdims=True)] == 0)


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                  elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_softmax_is_a_distribution_and_shift_invariant(x):
    s = cr.softmax(cr.tensor(x)).numpy()
    assert np.all(s >= 0) and np.allclose(s.sum(axis=-1), 1.0)
    np.testing.assert_allclose(cr.softmax(cr.tensor(x + 3.5)).numpy(), s, atol=1e-12)
    np.testing.assert_allclose(cr.log_softmax(cr.tensor(x)).numpy(),
                               x - cr.logsumexp(cr.tensor(x), axis=-1, keepdims=True).numpy(),
                               atol=1e-9)


@SETTINGS
@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-5, 5)), st.integers(0, 5))
def test_getitem_gradient_counts_picks(x, seed):
    picks = np.random.default_rng(seed).integers(0, len(x), 8)
    t = cr.tensor(x, requires_grad=True)
    t[picks].sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.bincount(picks, minlength=len(x)))

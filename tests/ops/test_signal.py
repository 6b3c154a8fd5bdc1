"""convolve / correlate against scipy.signal and numpy, their gradients, and their errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import signal

import chainrule as cr
from chainrule.engine.errors import ShapeError
from chainrule.engine.gradcheck import gradgradcheck
from chainrule.ops.signal import convolve, correlate, correlate_valid_p

SETTINGS = settings(max_examples=50, deadline=None)
MODES = ("full", "valid", "same")
FUNCTIONS = ((convolve, signal.convolve), (correlate, signal.correlate))
finite = st.floats(-10, 10, allow_nan=False, width=64)


@st.composite
def signal_pair(draw, valid=False, ndims=(1, 2, 3)):
    """(x, k) of equal ndim; with ``valid``, one as large as the other in every axis, either way."""
    ndim = draw(st.sampled_from(ndims))
    x_shape = draw(st.tuples(*[st.integers(1, 6)] * ndim))
    k_shape = draw(st.tuples(*[st.integers(1, 6)] * ndim))
    if valid:
        small, large = np.minimum(x_shape, k_shape), np.maximum(x_shape, k_shape)
        x_shape, k_shape = (large, small) if draw(st.booleans()) else (small, large)
    x = draw(hnp.arrays(np.float64, tuple(int(n) for n in x_shape), elements=finite))
    k = draw(hnp.arrays(np.float64, tuple(int(n) for n in k_shape), elements=finite))
    return x, k


def _comparable(a_shape, b_shape) -> bool:
    """Whether 'valid' is defined: one shape at least as large as the other in every axis."""
    return all(np.greater_equal(a_shape, b_shape)) or all(np.less_equal(a_shape, b_shape))


def _close(actual, expected, tol=1e-10):
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def _check(x, k, mode):
    for ours, theirs in FUNCTIONS:
        for a, b in ((x, k), (k, x)):  # both argument orders: the kernel smaller and larger than x
            if mode == "valid" and not _comparable(a.shape, b.shape):
                continue
            out = ours(cr.tensor(a), cr.tensor(b), mode=mode)
            expected = theirs(a, b, mode=mode, method="direct")
            assert out.shape == expected.shape, (ours.__name__, mode, a.shape, b.shape)
            _close(out.numpy(), expected, 1e-9)


# ------------------------------------------------------------------ forward
def test_the_documented_example():
    x, k = [1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 2.0]
    np.testing.assert_array_equal(convolve(x, k).numpy(), [1, 2, 5, 8, 6, 8])
    np.testing.assert_array_equal(convolve(x, k, mode="valid").numpy(), [5, 8])
    np.testing.assert_array_equal(convolve(x, k, mode="same").numpy(), [2, 5, 8, 6])
    np.testing.assert_array_equal(correlate(x, k).numpy(), [2, 4, 7, 10, 3, 4])
    np.testing.assert_array_equal(correlate(x, k, mode="valid").numpy(), [7, 10])
    np.testing.assert_array_equal(correlate(x, k, mode="same").numpy(), [4, 7, 10, 3])


@SETTINGS
@given(signal_pair(), st.sampled_from(("full", "same")))
def test_full_and_same_match_scipy(pair, mode):
    _check(*pair, mode)


@SETTINGS
@given(signal_pair(valid=True))
def test_valid_matches_scipy_including_the_swap(pair):
    _check(*pair, "valid")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", [((4,), (3,)), ((2, 5), (3, 2)), ((3, 2, 4), (2, 2, 2)),
                                    ((2, 2, 2), (3, 4, 3))])
def test_fixed_shapes_match_scipy(rng, mode, shapes):
    _check(rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]), mode)


def test_zero_dimensional_inputs_multiply():
    for mode in MODES:
        for ours, theirs in FUNCTIONS:
            out = ours(cr.tensor(2.0), cr.tensor(3.0), mode=mode)
            expected = theirs(np.array(2.0), np.array(3.0), mode=mode)
            assert out.shape == () and out.item() == expected == 6.0


@SETTINGS
@given(signal_pair(ndims=(1,)), st.sampled_from(MODES))
def test_1d_matches_numpy(pair, mode):
    x, k = pair
    if mode == "same" and len(k) > len(x):  # numpy's 'same' has length max(N, M), scipy's (ours) N
        return
    _close(convolve(x, k, mode).numpy(), np.convolve(x, k, mode), 1e-9)
    _close(correlate(x, k, mode).numpy(), np.correlate(x, k, mode), 1e-9)


def test_convolve_is_correlate_with_the_flipped_kernel(rng):
    x, k = rng.standard_normal((5, 4, 3)), rng.standard_normal((2, 3, 2))
    for mode in MODES:
        _close(convolve(x, k, mode).numpy(), correlate(x, k[::-1, ::-1, ::-1], mode).numpy(), 1e-12)


def test_float32_stays_float32(rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    k = rng.standard_normal((2, 3)).astype(np.float32)
    for ours, theirs in FUNCTIONS:
        for mode in MODES:
            tx, tk = cr.tensor(x, requires_grad=True), cr.tensor(k, requires_grad=True)
            out = ours(tx, tk, mode)
            assert out.dtype == np.float32
            _close(out.numpy(), theirs(x.astype(np.float64), k.astype(np.float64), mode), 1e-5)
            cr.sum(out * out).backward()
            assert tx.grad.dtype == np.float32 and tk.grad.dtype == np.float32


def test_python_scalars_and_lists_take_the_tensor_dtype():
    x = cr.tensor(np.ones(4, np.float32))
    assert convolve(x, [1.0, 2.0]).dtype == np.float32
    assert correlate([1.0, 2.0, 3.0], cr.tensor(np.ones(2, np.float32))).dtype == np.float32


# ------------------------------------------------------------------ gradients
GRAD_SHAPES = [((6,), (3,)), ((3,), (4,)), ((4, 3), (2, 2)), ((2, 3), (3, 4)), ((3, 2), (2, 3)),
               ((3, 3, 2), (2, 2, 2)), ((2, 1, 2), (2, 3, 2))]


def _grad_cases():
    for fn in (convolve, correlate):
        for mode in MODES:
            for xs, ks in GRAD_SHAPES:
                if mode == "valid" and not _comparable(xs, ks):
                    continue
                yield pytest.param(fn, mode, xs, ks, id=f"{fn.__name__}-{mode}-{xs}-{ks}")


@pytest.mark.parametrize("fn, mode, x_shape, k_shape", list(_grad_cases()))
def test_gradients_match_finite_differences(rng, fn, mode, x_shape, k_shape):
    x, k = rng.standard_normal(x_shape), rng.standard_normal(k_shape)
    f = lambda a, b: fn(a, b, mode)  # noqa: E731
    assert cr.gradcheck(f, [x, k])
    assert gradgradcheck(f, [x, k])


def test_primitive_rules_are_a_full_convolution_and_a_valid_correlation(rng):
    """d/dx correlate_valid(x, k) = full convolution of g with k; d/dk = correlate_valid(x, g)."""
    x, k = rng.standard_normal((5, 6, 4)), rng.standard_normal((2, 3, 3))
    tx, tk = cr.tensor(x, requires_grad=True), cr.tensor(k, requires_grad=True)
    out = correlate_valid_p.bind(tx, tk)
    _close(out.numpy(), signal.correlate(x, k, "valid"), 1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(gradient=g)
    _close(tx.grad.numpy(), signal.convolve(g, k, "full"), 1e-12)
    _close(tk.grad.numpy(), signal.correlate(x, g, "valid"), 1e-12)


def test_gradient_for_one_argument_only(rng):
    x = cr.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    k = cr.tensor(rng.standard_normal((2, 3)))
    cr.sum(convolve(x, k, "same")).backward()
    # d/dx[i] of the sum over the 'same' window W of the full convolution: sum_{n in W} k[n - i]
    window = np.zeros((5, 7))
    window[0:4, 1:6] = 1  # starts (M - 1) // 2 = (0, 1)
    _close(x.grad.numpy(), signal.correlate(window, k.numpy(), "valid"), 1e-12)
    assert k.grad is None


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("fn", [convolve, correlate])
def test_mismatched_ndim(fn):
    with pytest.raises(ShapeError, match="same number of dimensions"):
        fn(np.ones((3, 3)), np.ones(2))


@pytest.mark.parametrize("fn", [convolve, correlate])
def test_bad_mode_names_the_valid_ones(fn):
    with pytest.raises(ValueError, match="'full', 'valid', 'same'"):
        fn(np.ones(3), np.ones(2), mode="circular")


@pytest.mark.parametrize("fn", [convolve, correlate])
@pytest.mark.parametrize("shapes", [((0,), (2,)), ((3,), (0,)), ((2, 0), (1, 1))])
def test_empty_inputs(fn, shapes):
    with pytest.raises(ShapeError, match="empty"):
        fn(np.ones(shapes[0]), np.ones(shapes[1]))


@pytest.mark.parametrize("fn", [convolve, correlate])
def test_valid_with_neither_argument_larger(fn):
    with pytest.raises(ShapeError, match="'valid'"):
        fn(np.ones((3, 2)), np.ones((2, 3)), mode="valid")
    with pytest.raises(ValueError):  # scipy refuses it too
        signal.convolve(np.ones((3, 2)), np.ones((2, 3)), mode="valid")
    assert fn(np.ones((3, 2)), np.ones((2, 3)), mode="full").shape == (4, 4)

"""Scans and the new reductions beyond their op-info rows: prod and cumprod at zeros (gradients of
first and second order), logcumsumexp's stability, cummax/cummin indices and ties (PyTorch's),
dtypes, any/all, std's ddof, errors, the generic kernels on array_api_strict, Tensor methods."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.engine.gradcheck import gradcheck, gradgradcheck
from chainrule.ops import scans
from chainrule.ops.abstract import eval_shape

torch = pytest.importorskip("torch")
STRICT = "array_api_strict"
FAST = settings(max_examples=25, deadline=None)


def _with_zeros(draw_values, zero_mask):
    return np.where(zero_mask, 0.0, draw_values)


#: float64 arrays of shape (2..3, 1..5) whose entries are often exactly 0
arrays_with_zeros = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5),
    elements=st.sampled_from([0.0, 0.0, -1.5, -0.5, 0.5, 1.25, 2.0]))


def _torch_grad(fn, x, weights):
    t = torch.tensor(x, requires_grad=True)
    (fn(t) * torch.tensor(weights)).sum().backward()
    return t.grad.numpy()


def _our_grad(fn, x, weights):
    t = cr.tensor(x, requires_grad=True)
    cr.sum(fn(t) * cr.tensor(weights)).backward()
    return t.grad.numpy()


# ------------------------------------------------------------------ prod
@pytest.mark.parametrize("zeros", [0, 1, 2, 3])
def test_prod_gradient_with_zeros_matches_torch(zeros):
    x = np.array([[1.5, -2.0, 0.5, 3.0], [2.0, 0.25, -1.0, 4.0]])
    x.reshape(-1)[[1, 6, 3][:zeros]] = 0.0
    w = np.array([0.7, -1.3])
    np.testing.assert_allclose(_our_grad(lambda t: cr.prod(t, axis=1), x, w),
                               _torch_grad(lambda t: t.prod(dim=1), x, w), rtol=1e-12)
    assert _our_grad(lambda t: cr.prod(t), x, np.array(1.0)).tolist() == \
        _torch_grad(lambda t: t.prod(), x, np.array(1.0)).tolist()


def test_prod_gradient_at_one_zero_is_the_product_of_the_others():
    x = cr.tensor(np.array([2.0, 0.0, 3.0, -4.0]), requires_grad=True)
    cr.prod(x).backward()
    assert x.grad.numpy().tolist() == [0.0, -24.0, 0.0, 0.0]


@given(arrays_with_zeros)
@FAST
def test_prod_gradient_matches_torch_for_any_zeros(x):
    w = np.linspace(-1, 1, x.shape[0])
    np.testing.assert_allclose(_our_grad(lambda t: cr.prod(t, axis=1), x, w),
                               _torch_grad(lambda t: t.prod(dim=1), x, w), rtol=1e-12,
                               atol=1e-12)


def test_prod_second_derivative_with_two_zeros_matches_finite_differences():
    x = cr.tensor(np.array([[0.0, 1.5, 0.0, -2.0], [0.5, 0.0, 1.0, 3.0]]), requires_grad=True)
    assert gradgradcheck(lambda t: cr.prod(t, axis=1), [x])
    assert gradgradcheck(lambda t: cr.prod(t), [x])


def test_prod_dtypes_and_empty():
    assert cr.prod(cr.tensor(np.array([2, 3], np.int32))).dtype == np.int64
    assert cr.prod(cr.tensor(np.array([True, False]))).dtype == np.int64
    assert float(cr.prod(cr.zeros((0, 3)))) == 1.0
    assert cr.prod(cr.zeros((0, 3)), axis=1).shape == (0,)
    assert cr.prod(cr.ones((2, 3, 4)), axis=(0, 2), keepdims=True).shape == (1, 3, 1)


# ------------------------------------------------------------------ cumsum, cumprod
@given(arrays_with_zeros, st.sampled_from([0, 1, -1]))
@FAST
def test_cumprod_gradient_matches_torch_for_any_zeros(x, axis):
    w = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_allclose(_our_grad(lambda t: cr.cumprod(t, axis), x, w),
                               _torch_grad(lambda t: t.cumprod(dim=axis), x, w), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("x", [[0.0, 2.0, 0.0, 3.0], [1.5, 0.0, 0.0, 0.0], [2.0, -1.0, 0.0],
                               [0.0]])
def test_cumprod_derivatives_with_zeros_to_second_order(x):
    t = cr.tensor(np.array(x), requires_grad=True)
    assert gradcheck(lambda v: cr.cumprod(v, 0), [t])
    assert gradgradcheck(lambda v: cr.cumprod(v, 0), [t])


def test_cumprod_derivatives_with_a_zero_to_third_order_match_torch():
    x = np.array([0.5, 0.0, 2.0, -1.5, 0.0])

    def first(v):
        return cr.sum(cr.cumprod(v, 0) ** 2)

    def second(v):
        return cr.sum(cr.grad(first)(v) ** 2)

    def third(v):
        return cr.sum(cr.grad(second)(v) ** 2)

    t = cr.tensor(x, requires_grad=True)
    ours = [cr.grad(f)(t).numpy() for f in (first, second, third)]
    tt = torch.tensor(x, requires_grad=True)
    value, theirs = (tt.cumprod(0) ** 2).sum(), []
    for _ in range(3):
        (g,) = torch.autograd.grad(value, tt, create_graph=True)
        theirs.append(g.detach().numpy())
        value = (g ** 2).sum()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert np.any(theirs[2] != 0)


@pytest.mark.parametrize("fn", [cr.cumsum, cr.cumprod])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.bool_])
def test_integer_and_bool_scans_give_int64_as_torch(fn, dtype):
    x = np.array([[1, 0, 1], [1, 1, 0]], dtype=dtype)
    out = fn(cr.tensor(x), 1)
    expected = getattr(torch.tensor(x), fn.__name__)(dim=1)
    assert out.dtype == np.int64 and expected.dtype == torch.int64
    assert out.numpy().tolist() == expected.tolist()


def test_scan_axis_none_flattens_and_0d_stays_0d():
    x = np.arange(6.0).reshape(2, 3)
    assert cr.cumsum(cr.tensor(x)).numpy().tolist() == np.cumsum(x).tolist()
    assert cr.cumprod(cr.tensor(x + 1)).shape == (6,)
    for fn in (cr.cumsum, cr.cumprod, cr.logcumsumexp):
        assert fn(cr.tensor(2.0), 0).shape == ()
    assert cr.cummax(cr.tensor(2.0), -1).values.shape == ()
    assert cr.cumsum(cr.zeros((2, 0)), 1).shape == (2, 0)


def test_cumsum_gradient_is_the_reverse_cumulative_sum():
    x = cr.tensor(np.zeros(4), requires_grad=True)
    cr.sum(cr.cumsum(x, 0) * cr.tensor(np.array([1.0, 2.0, 3.0, 4.0]))).backward()
    assert x.grad.numpy().tolist() == [10.0, 9.0, 7.0, 4.0]


# ------------------------------------------------------------------ logcumsumexp
def test_logcumsumexp_is_stable_where_the_naive_formula_fails():
    x = np.array([-1000.0, -999.0, 0.0, 800.0, 800.0])
    t = torch.tensor(x, requires_grad=True)
    expected = t.logcumsumexp(0)
    ours = cr.tensor(x, requires_grad=True)
    out = cr.logcumsumexp(ours, 0)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    w = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    cr.sum(out * cr.tensor(w)).backward()
    expected.backward(torch.tensor(w))
    assert np.all(np.isfinite(ours.grad.numpy()))
    np.testing.assert_allclose(ours.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-300)


def test_logcumsumexp_with_minus_infinity():
    x = cr.tensor(np.array([-np.inf, -np.inf, 0.0, 1.0]), requires_grad=True)
    out = cr.logcumsumexp(x, 0)
    assert out.numpy()[:2].tolist() == [-np.inf, -np.inf]
    np.testing.assert_allclose(out.numpy()[2:], [0.0, np.logaddexp(0.0, 1.0)])
    cr.sum(out[2:]).backward()
    assert np.all(np.isfinite(x.grad.numpy())) and x.grad.numpy()[:2].tolist() == [0.0, 0.0]


def test_logcumsumexp_of_integers_is_float32():
    assert cr.logcumsumexp(cr.tensor(np.array([1, 2, 3])), 0).dtype == np.float32


# ------------------------------------------------------------------ cummax, cummin
small_ints = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
                        elements=st.integers(-2, 2).map(float))


@given(small_ints, st.sampled_from(["cummax", "cummin"]))
@FAST
def test_cummax_cummin_values_indices_and_gradient_match_torch_with_ties(x, name):
    axis = x.ndim - 1
    ours = getattr(cr, name)(cr.tensor(x), axis)
    theirs = getattr(torch.tensor(x), name)(dim=axis)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    assert ours.indices.dtype == np.int64
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()
    w = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_allclose(
        _our_grad(lambda t: getattr(cr, name)(t, axis).values, x, w),
        _torch_grad(lambda t: getattr(t, name)(dim=axis).values, x, w), rtol=1e-12)


def test_cummax_returns_a_named_pair_and_indices_have_no_gradient():
    x = cr.tensor(np.array([1.0, 3.0, 2.0]), requires_grad=True)
    values, indices = cr.cummax(x, 0)
    assert values is cr.cummax(x, 0)[0] or values.numpy().tolist() == [1.0, 3.0, 3.0]
    assert values.requires_grad and not indices.requires_grad
    assert indices.numpy().tolist() == [0, 1, 1]


def test_cummax_needs_an_axis():
    with pytest.raises(TypeError, match="axis"):
        cr.cummax(cr.ones(3), None)
    with pytest.raises(cr.AxisError):
        cr.cumsum(cr.ones((2, 3)), 2)
    with pytest.raises(TypeError, match="axis must be an int"):
        cr.cumsum(cr.ones(3), 1.0)


# ------------------------------------------------------------------ std, any, all
def test_std_ddof_matches_torch_corrections():
    x = np.random.default_rng(0).standard_normal((4, 3))
    t = torch.tensor(x)
    np.testing.assert_allclose(cr.std(cr.tensor(x), axis=0, ddof=1).numpy(), t.std(dim=0))
    np.testing.assert_allclose(cr.std(cr.tensor(x)).numpy(), t.std(correction=0))
    assert np.isnan(float(cr.std(cr.ones(1), ddof=1)))


@pytest.mark.parametrize("name", ["any", "all"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), ((0, 2), True)])
def test_any_all_are_bool_and_match_numpy(name, axis, keepdims):
    x = np.array([[[0.0, 1.0], [0.0, 0.0]], [[2.0, 3.0], [1.0, 0.5]]])
    out = getattr(cr, name)(cr.tensor(x, requires_grad=True), axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.dtype == np.bool_ and not out.requires_grad
    assert out.numpy().tolist() == expected.tolist()


def test_any_all_of_empty():
    assert not bool(cr.any(cr.zeros((0, 2))))
    assert bool(cr.all(cr.zeros((0, 2))))


# ------------------------------------------------------------------ Tensor methods
def test_tensor_methods():
    x = cr.tensor(np.array([[1.0, 3.0], [2.0, 0.5]]))
    assert x.prod().item() == 3.0
    assert x.std(ddof=1).item() == pytest.approx(np.std(x.numpy(), ddof=1))
    assert x.any().item() and x.all().item()
    assert x.cumsum(0).numpy().tolist() == [[1.0, 3.0], [3.0, 3.5]]
    assert x.cumprod(1).numpy().tolist() == [[1.0, 3.0], [2.0, 1.0]]
    np.testing.assert_allclose(x.logcumsumexp(1).numpy(),
                               np.logaddexp.accumulate(x.numpy(), axis=1))
    assert x.cummax(0).indices.numpy().tolist() == [[0, 0], [1, 0]]
    assert x.cummin(0).values.numpy().tolist() == [[1.0, 3.0], [1.0, 0.5]]


# ------------------------------------------------------------------ other backends, shapes
@pytest.mark.parametrize("fn", [lambda t: cr.prod(t, axis=0), lambda t: cr.cumprod(t, 1),
                                lambda t: cr.cumsum(t, 0), lambda t: cr.logcumsumexp(t, 1),
                                lambda t: cr.cummax(t, 1).values, lambda t: cr.cummin(t, 0).values])
def test_strict_backend_matches_numpy_values_and_gradients(fn):
    pytest.importorskip("array_api_strict")
    x = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -2.0], [1.5, 0.0, 0.25]])
    results = []
    for device in ("cpu", STRICT):
        t = cr.tensor(x, device=device, requires_grad=True)
        out = fn(t)
        cr.sum(out * out).backward()
        results.append((out.to("cpu").numpy(), t.grad.to("cpu").numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


def test_generic_scan_fallbacks_match_numpy():
    """The loop kernels for namespaces without cumulative_prod (and logcumsumexp's, cummax's)."""
    xp = pytest.importorskip("array_api_strict")
    x = np.array([[0.5, -1.0, 2.0, 2.0], [0.0, 3.0, 3.0, -2.0]])
    a = xp.asarray(x)
    np.testing.assert_allclose(np.asarray(scans._loop_scan(xp, a, 1, lambda u, v: u * v)),
                               np.cumprod(x, axis=1))
    np.testing.assert_allclose(np.asarray(scans._logcumsumexp_generic(xp, a, axis=0)),
                               np.logaddexp.accumulate(x, axis=0))
    for largest in (True, False):
        assert np.asarray(scans._cum_extreme_generic(xp, a, axis=1, largest=largest)).tolist() \
            == scans._cum_extreme_numpy(x, axis=1, largest=largest).tolist()


def test_eval_shape_of_scans():
    x = cr.ones((3, 4), dtype=np.float32)
    for fn, shape, dtype in [(lambda t: cr.cumsum(t, 1), (3, 4), np.float32),
                             (lambda t: cr.cummax(t, 0).indices, (3, 4), np.int64),
                             (lambda t: cr.prod(t, axis=0), (4,), np.float32),
                             (lambda t: cr.logcumsumexp(t), (12,), np.float32)]:
        aval = eval_shape(fn, x)
        assert (tuple(aval.shape), np.dtype(aval.dtype)) == (shape, np.dtype(dtype))


@pytest.mark.parametrize("device", ["cpu", STRICT])
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_propagate_nan_as_torch(name, device):
    if device == STRICT:
        pytest.importorskip("array_api_strict")
    x = np.array([[1.0, np.nan, 2.0, np.nan, -1.0], [3.0, 2.0, np.nan, 4.0, 0.0]])
    ours = getattr(cr, name)(cr.tensor(x, device=device), 1)
    theirs = getattr(torch.tensor(x), name)(dim=1)
    np.testing.assert_array_equal(ours.values.to("cpu").numpy(), theirs.values.numpy())
    assert ours.indices.to("cpu").numpy().tolist() == theirs.indices.tolist()

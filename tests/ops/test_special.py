"""Special functions and math (issue 12) beyond the op-info rows: the standard-only erf/erfinv
kernels' accuracy, dtype rules, rounding and remainder semantics and errors, values and
gradients at edge points, Tensor methods and operators -- against SciPy, NumPy and PyTorch."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special as sp

import chainrule as cr
from chainrule.engine.autograd import grad
from chainrule.ops import special


def _relative_error(got, want):
    return np.abs(got - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)


# ------------------------------------------------------------------ erf, erfinv generic kernels
def test_generic_erf_reaches_float64_precision_over_a_wide_range():
    x = np.concatenate([np.linspace(-9, 9, 40001), np.logspace(-300, 1.2, 2000),
                        -np.logspace(-300, 1.2, 2000), [0.0, -0.0, 2.5, -2.5]])
    got = special._erf(np, x)
    assert _relative_error(got, sp.erf(x)).max() < 1e-14
    np.testing.assert_array_equal(np.signbit(special._erf(np, np.array([-0.0]))), [True])


def test_generic_erf_edges_and_float32():
    got = special._erf(np, np.array([np.inf, -np.inf, np.nan, 30.0]))
    np.testing.assert_array_equal(got, [1.0, -1.0, np.nan, 1.0])
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    got32 = special._erf(np, x)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, sp.erf(x.astype(np.float64)), rtol=2e-6, atol=1e-7)


def test_generic_erfinv_is_accurate_into_the_far_tails():
    x = np.concatenate([np.linspace(-1, 1, 40001)[1:-1], 1 - np.logspace(-16, -1, 2000),
                        -np.logspace(-300, -1, 2000), [0.0, np.nextafter(1.0, 0.0)]])
    got = special._erfinv(np, x)
    err = _relative_error(got, sp.erfinv(x))
    assert err.max() < 1e-12  # the conditioning limit near |x| = 1 (1/erf' ~ 1e15)
    assert err[np.abs(x) < 0.99].max() < 1e-14
    edges = special._erfinv(np, np.array([1.0, -1.0, 1.5, -2.0, np.nan]))
    np.testing.assert_array_equal(edges, [np.inf, -np.inf, np.nan, np.nan, np.nan])


def test_erf_erfinv_on_the_array_api_backend_use_the_generic_kernels():
    pytest.importorskip("array_api_strict")
    x = np.linspace(-4, 4, 33)
    got = cr.erf(cr.tensor(x, device="array_api_strict"))
    assert got.device.type == "array_api_strict"
    np.testing.assert_allclose(got.numpy(), sp.erf(x), rtol=1e-14, atol=0)
    p = np.array([-1.0, -0.999, -0.3, 0.0, 0.5, 0.99999, 1.0])
    inv = cr.erfinv(cr.tensor(p, device="array_api_strict")).numpy()
    np.testing.assert_allclose(inv, sp.erfinv(p), rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_erfinv_keep_the_floating_dtype(dtype):
    x = cr.tensor(np.array([-0.5, 0.25], dtype=dtype))
    for fn, ref in [(cr.erf, sp.erf), (cr.erfinv, sp.erfinv)]:
        out = fn(x)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref(x.numpy().astype(np.float64)),
                                   rtol=float(np.finfo(dtype).eps) * 4)


def test_importing_chainrule_does_not_import_scipy():
    code = "import sys, chainrule; sys.exit('scipy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_erf_erfinv_gradients_match_torch_including_the_edges():
    x = np.array([-3.0, -0.5, 0.0, 0.7, 2.0])
    for fn, tfn, values in [(cr.erf, torch.erf, x), (cr.erfinv, torch.erfinv, x / 4),
                            (cr.erfinv, torch.erfinv, np.array([-1.0, 1.0]))]:
        ours = cr.tensor(values, requires_grad=True)
        with np.errstate(all="ignore"):  # erfinv(+-1) = +-inf
            fn(ours).sum().backward()
        theirs = torch.tensor(values, requires_grad=True)
        tfn(theirs).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", ["erf", "erfinv", "tan", "arcsin", "arctan", "sinh", "cosh",
                                  "arcsinh", "arctanh", "log2", "log10", "exp2", "rsqrt",
                                  "reciprocal", "sinc", "arccos"])
def test_floating_functions_of_integers_are_float32_as_torch(name):
    ints = np.array([0, 1, 2])
    with np.errstate(all="ignore"):  # log2(0), arcsin(2) ...: inf and nan, as torch's
        got = getattr(cr, name)(cr.tensor(ints))
    torch_name = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
                  "arctanh": "atanh"}.get(name, name)
    want = getattr(torch, torch_name)(torch.tensor(ints))
    assert got.dtype == np.float32 and want.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)


def test_binary_floating_functions_of_integers_are_float32():
    i, j = cr.tensor(np.array([3, -4])), cr.tensor(np.array([4, 3]))
    for fn in [cr.arctan2, cr.logaddexp, cr.hypot]:
        assert fn(i, j).dtype == np.float32
    np.testing.assert_allclose(cr.hypot(i, j).numpy(), [5.0, 5.0])
    assert cr.arctan2(i, cr.tensor(np.array([4.0, 3.0]))).dtype == np.float64


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "square"])
def test_integer_tensors_stay_integers(name):
    ints = np.array([-3, 0, 7], dtype=np.int32)
    got = getattr(cr, name)(cr.tensor(ints))
    want = getattr(torch, name)(torch.tensor(ints)).numpy()
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.numpy(), want)


# ------------------------------------------------------------------ rounding
def test_round_halves_to_even_as_torch_and_numpy():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999999999999994])
    got = cr.round(cr.tensor(x)).numpy()
    np.testing.assert_array_equal(got, torch.round(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(got, [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0, 0.0])


@pytest.mark.parametrize("decimals", [-2, -1, 1, 3])
def test_round_to_decimals_as_torch(decimals):
    x = np.random.default_rng(0).uniform(-500, 500, 50)
    got = cr.round(cr.tensor(x), decimals=decimals).numpy()
    want = torch.round(torch.tensor(x), decimals=decimals).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-15)
    np.testing.assert_allclose(cr.tensor(x).round(decimals=decimals).numpy(), want, rtol=1e-15)


def test_round_refuses_a_non_integer_decimals():
    with pytest.raises(TypeError, match="decimals"):
        cr.round(cr.tensor([1.0]), decimals=1.5)


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, 6, elements=st.floats(-1e6, 1e6) | st.sampled_from(
    [0.5, -0.5, 2.0, np.inf, -np.inf, np.nan])))
def test_rounding_functions_match_torch_and_have_zero_gradient(x):
    for name in ["floor", "ceil", "round", "trunc"]:
        ours = cr.tensor(x, requires_grad=True)
        out = getattr(cr, name)(ours)
        theirs = torch.tensor(x, requires_grad=True)
        expected = getattr(torch, name)(theirs)
        np.testing.assert_array_equal(out.numpy(), expected.detach().numpy(), err_msg=name)
        with np.errstate(all="ignore"):  # sums of inf and nan values
            (out * 3.0).sum().backward()
        expected.sum().backward()
        got = np.zeros_like(x) if ours.grad is None else ours.grad.numpy()
        np.testing.assert_array_equal(got, theirs.grad.numpy(), err_msg=name)


# ------------------------------------------------------------------ remainders
_DIVIDEND = np.array([7.0, -7.0, 7.0, -7.0, 0.5, 6.0, -0.0])
_DIVISOR = np.array([3.0, 3.0, -3.0, -3.0, 0.2, 3.0, 2.0])


@pytest.mark.parametrize("ours, theirs", [(cr.mod, torch.remainder), (cr.fmod, torch.fmod),
                                          (cr.floor_divide, torch.floor_divide)])
def test_remainders_follow_torch_in_every_sign_combination(ours, theirs):
    got = ours(cr.tensor(_DIVIDEND), cr.tensor(_DIVISOR)).numpy()
    np.testing.assert_array_equal(got, theirs(torch.tensor(_DIVIDEND),
                                              torch.tensor(_DIVISOR)).numpy())
    ints = (_DIVIDEND * 2).astype(np.int64), (_DIVISOR * 5).astype(np.int64)
    got_int = ours(cr.tensor(ints[0]), cr.tensor(ints[1]))
    assert got_int.dtype == np.int64
    np.testing.assert_array_equal(got_int.numpy(),
                                  theirs(torch.tensor(ints[0]), torch.tensor(ints[1])).numpy())


def test_mod_has_the_sign_of_the_divisor_and_fmod_of_the_dividend():
    np.testing.assert_array_equal(cr.mod(cr.tensor(np.array([-7, 7])), 3).numpy(), [2, 1])
    np.testing.assert_array_equal(cr.fmod(cr.tensor(np.array([-7, 7])), 3).numpy(), [-1, 1])
    np.testing.assert_array_equal(cr.remainder(cr.tensor(np.array([7.0])), -3).numpy(), [-2.0])


def test_fmod_generic_kernel_matches_numpy():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(500) * 10, rng.standard_normal(500)
    x[:4], y[:4] = [-0.0, 5.0, np.inf, 3.0], [2.0, np.inf, 1.0, -np.inf]
    with np.errstate(invalid="ignore"):  # fmod(inf, 1) = nan
        got, want = special._fmod(np, x, y), np.fmod(x, y)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[0])
    i, j = rng.integers(-50, 50, 200), rng.choice([-7, -2, 3, 5], 200)
    np.testing.assert_array_equal(special._fmod(np, i, j), np.fmod(i, j))


@pytest.mark.parametrize("fn", [cr.mod, cr.fmod, cr.floor_divide])
def test_integer_division_by_zero_raises_but_floats_give_torchs_values(fn):
    with pytest.raises(ZeroDivisionError, match="divisor"):
        fn(cr.tensor(np.array([5, 6])), cr.tensor(np.array([2, 0])))
    with pytest.raises(ZeroDivisionError):
        fn(cr.tensor(np.array([5])), 0)
    x = np.array([5.0, -5.0, 0.0])
    torch_fn = {cr.mod: torch.remainder, cr.fmod: torch.fmod}.get(fn, torch.floor_divide)
    with np.errstate(all="ignore"):
        got = fn(cr.tensor(x), cr.tensor(np.zeros(3))).numpy()
    np.testing.assert_array_equal(got, torch_fn(torch.tensor(x), torch.zeros(3,
                                                dtype=torch.float64)).numpy())


def test_remainder_gradients_match_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(8) * 4
    y = rng.uniform(0.5, 2, 8) * rng.choice([-1, 1], 8)
    for ours, theirs in [(cr.mod, torch.remainder), (cr.fmod, torch.fmod)]:
        a, b = cr.tensor(x, requires_grad=True), cr.tensor(y, requires_grad=True)
        ours(a, b).sum().backward()
        ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        theirs(ta, tb).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
        np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())
    a, b = cr.tensor(x, requires_grad=True), cr.tensor(y, requires_grad=True)
    cr.floor_divide(a, b).sum().backward()
    for gradient in (a.grad, b.grad):
        assert gradient is None or not np.any(gradient.numpy())


def test_operators_mod_and_floordiv_as_python():
    x = cr.tensor(np.array([7.0, -7.0]))
    np.testing.assert_array_equal((x % 3).numpy(), [1.0, 2.0])
    np.testing.assert_array_equal((x // 3).numpy(), [2.0, -3.0])
    np.testing.assert_array_equal((10 % cr.tensor(np.array([3, -3]))).numpy(), [1, -2])
    np.testing.assert_array_equal((10 // cr.tensor(np.array([3, -3]))).numpy(), [3, -4])


# ------------------------------------------------------------------ edge points
def _grad(fn, values, *others):
    leaf = cr.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
    out = fn(leaf, *others)
    out.sum().backward()
    return out.numpy(), leaf.grad.numpy()


def _torch_grad(fn, values, *others):
    leaf = torch.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)
    out = fn(leaf, *others)
    out.sum().backward()
    return out.detach().numpy(), leaf.grad.numpy()


@pytest.mark.parametrize("ours, theirs, values", [
    (cr.sinc, torch.sinc, [0.0, 1.0, -2.0, 0.5]),
    (cr.arcsin, torch.asin, [-1.0, 1.0, 0.0]),
    (cr.arccos, torch.acos, [-1.0, 1.0]),
    (cr.arccosh, torch.acosh, [1.0, 2.0]),
    (cr.arctanh, torch.atanh, [-1.0, 1.0, 0.5]),
    (cr.rsqrt, torch.rsqrt, [0.0, 4.0]),
    (cr.reciprocal, torch.reciprocal, [0.0, -0.0, 2.0]),
    (cr.log2, torch.log2, [0.0, 8.0]),
    (cr.log10, torch.log10, [0.0, 100.0]),
    (cr.tan, torch.tan, [0.0, 1.5]),
    (cr.exp2, torch.exp2, [-1074.0, 0.0, 10.0, 1024.0]),
])
def test_values_and_gradients_at_edge_points_match_torch(ours, theirs, values):
    with np.errstate(all="ignore"):
        got = _grad(ours, values)
    want = _torch_grad(theirs, values)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_binary_functions_at_the_origin_and_infinities_match_torch():
    zero = np.zeros(1)
    for ours, theirs in [(cr.hypot, torch.hypot), (cr.arctan2, torch.atan2)]:
        a, b = cr.tensor(zero, requires_grad=True), cr.tensor(zero, requires_grad=True)
        with np.errstate(all="ignore"):
            ours(a, b).sum().backward()
        ta, tb = torch.tensor(zero, requires_grad=True), torch.tensor(zero, requires_grad=True)
        theirs(ta, tb).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())
        np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())
    big = np.array([1000.0, -np.inf, 5.0])
    other = np.array([1000.0, 3.0, np.inf])
    np.testing.assert_array_equal(cr.logaddexp(cr.tensor(big), cr.tensor(other)).numpy(),
                                  torch.logaddexp(torch.tensor(big), torch.tensor(other)).numpy())
    huge = cr.tensor(np.array([1e300]))  # sqrt(x^2 + y^2) would overflow
    np.testing.assert_allclose(cr.hypot(huge, huge).numpy(), [np.sqrt(2) * 1e300], rtol=1e-15)


def test_sinc_second_derivative_is_exact_away_from_zero():
    x = cr.tensor(np.array([0.3, -1.7]), requires_grad=True)
    (g,) = grad(cr.sinc(x).sum(), [x], create_graph=True)
    (h,) = grad(g.sum(), [x])
    t = torch.tensor(np.array([0.3, -1.7]), requires_grad=True)
    (tg,) = torch.autograd.grad(torch.sinc(t).sum(), [t], create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), [t])
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-12)


def test_lerp_with_tensor_and_number_weights_and_methods():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -2.0])
    w = np.array([0.25, 1.0])
    np.testing.assert_allclose(cr.lerp(cr.tensor(a), cr.tensor(b), cr.tensor(w)).numpy(),
                               [1.5, -2.0])
    np.testing.assert_allclose(cr.tensor(a).lerp(cr.tensor(b), 0.5).numpy(), [2.0, 0.0])
    np.testing.assert_allclose(cr.lerp(cr.tensor(a), cr.tensor(b), w).numpy(), [1.5, -2.0])
    assert cr.lerp(cr.tensor(a.astype(np.float32)), cr.tensor(b.astype(np.float32)),
                   0.5).dtype == np.float32


def test_tensor_methods_and_torch_aliases():
    x = cr.tensor(np.array([0.2, 0.4]))
    for name in ["asin", "acos", "atan", "asinh", "atanh", "erf", "erfinv", "sinc", "square",
                 "rsqrt", "reciprocal", "exp2", "log2", "log10", "tan", "sinh", "cosh", "floor",
                 "ceil", "trunc", "round"]:
        want = getattr(torch.tensor(np.array([0.2, 0.4])), name)().numpy()
        np.testing.assert_allclose(getattr(x, name)().numpy(), want, rtol=1e-12, err_msg=name)
    y = cr.tensor(np.array([1.5, 0.3]))
    for name in ["atan2", "arctan2", "hypot", "logaddexp", "remainder", "fmod", "floor_divide"]:
        torch_name = {"arctan2": "atan2"}.get(name, name)
        want = getattr(torch.tensor(np.array([0.2, 0.4])), torch_name)(torch.tensor(
            np.array([1.5, 0.3]))).numpy()
        np.testing.assert_allclose(getattr(x, name)(y).numpy(), want, rtol=1e-12, err_msg=name)


def test_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(cr.ShapeError, match="hypot"):
        cr.hypot(cr.tensor(np.ones(2)), cr.tensor(np.ones(3)))
    with pytest.raises(cr.ShapeError, match="mod"):
        cr.mod(cr.tensor(np.ones(2)), cr.tensor(np.ones(3)))

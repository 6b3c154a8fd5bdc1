"""Issue 12's activations beyond the op-info rows: gradients AT the kinks against PyTorch, the
normal CDF's standard-only kernel against mpmath, extreme inputs, errors and edge cases."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.engine import autograd
from chainrule.ops.activations import _normal_cdf_generic

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (name, chainrule function, torch function, the kinks and their neighbours)
# fmt: off
KINKED = [
    ("hardtanh", lambda x: cr.hardtanh(x, -0.5, 1.2), lambda x: F.hardtanh(x, -0.5, 1.2),
     [-0.5, 1.2, -0.7, 0.0, 1.5]),
    ("hardtanh_default", cr.hardtanh, F.hardtanh, [-1.0, 1.0, 0.0]),
    ("relu6", cr.relu6, F.relu6, [0.0, 6.0, -1.0, 3.0, 7.0]),
    ("hardsigmoid", cr.hardsigmoid, F.hardsigmoid, [-3.0, 3.0, -4.0, 0.0, 4.0]),
    ("hardswish", cr.hardswish, F.hardswish, [-3.0, 3.0, -4.0, 0.0, 1.0, 4.0]),
    ("elu", cr.elu, F.elu, [0.0, -1.0, 1.0]),
    ("elu_alpha", lambda x: cr.elu(x, 0.3), lambda x: F.elu(x, 0.3), [0.0, -1.0, 1.0]),
    ("selu", cr.selu, F.selu, [0.0, -1.0, 1.0]),
    ("celu", lambda x: cr.celu(x, 2.5), lambda x: F.celu(x, 2.5), [0.0, -1.0, 1.0]),
    ("softsign", cr.softsign, F.softsign, [0.0, -1.0, 1.0]),
    ("softplus_threshold", lambda x: cr.softplus(x, 2.0, 3.0), lambda x: F.softplus(x, 2.0, 3.0),
     [1.5, 1.5 - 1e-12, 1.5 + 1e-12, 0.0]),
    ("relu", cr.relu, F.relu, [0.0]),
]
# fmt: on


@pytest.mark.parametrize("name, ours, theirs, points", KINKED, ids=[k[0] for k in KINKED])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_value_and_gradient_at_the_kinks_match_torch(name, ours, theirs, points, dtype):
    x = np.array(points, dtype=dtype)
    mine = cr.tensor(x, requires_grad=True)
    out = ours(mine)
    out.sum().backward()
    t = torch.tensor(x, requires_grad=True)
    expected = theirs(t)
    expected.sum().backward()
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-7)
    # exactly the same subgradient choice at the kink (values differ by rounding only)
    np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_kink_conventions_are_the_documented_numbers():
    at = {
        "hardtanh": (cr.hardtanh, [-1.0, 1.0], [0.0, 0.0]),
        "relu6": (cr.relu6, [0.0, 6.0], [0.0, 0.0]),
        "hardsigmoid": (cr.hardsigmoid, [-3.0, 3.0], [0.0, 0.0]),
        "hardswish": (cr.hardswish, [-3.0, 3.0], [0.0, 1.0]),
        "elu(0.3)": (lambda x: cr.elu(x, 0.3), [0.0], [0.3]),
        "celu(2.5)": (lambda x: cr.celu(x, 2.5), [0.0], [1.0]),
        "selu": (cr.selu, [0.0], [1.0507009873554805 * 1.6732632423543772]),
    }
    for name, (f, points, slopes) in at.items():
        x = cr.tensor(np.array(points), requires_grad=True)
        f(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), slopes, rtol=1e-12, err_msg=name)


# ------------------------------------------------------------------ the normal CDF behind gelu
def test_normal_cdf_generic_kernel_is_accurate_to_1e_14_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    x = np.concatenate([np.linspace(-37.0, 8.5, 1201), np.linspace(-2.5, 2.5, 301),
                        [-2.0, 2.0, -1e-300, 0.0, 1e-8]])
    expected = np.array([float(mpmath.ncdf(mpmath.mpf(float(v)))) for v in x])
    got = _normal_cdf_generic(np, x)
    normal = expected > 1e-300  # relative precision means nothing among subnormal numbers
    relative = np.abs(got - expected)[normal] / expected[normal]
    assert relative.max() < 2e-14, (relative.max(), x[normal][relative.argmax()])


def test_normal_cdf_generic_kernel_at_infinities_nan_and_float32():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -40.0, 40.0])
    got = _normal_cdf_generic(np, x)
    assert got[0] == 1.0 and got[1] == 0.0 and np.isnan(got[2]) and got[3] == 0.5
    assert got[4] == 0.0 and got[5] == 1.0
    x32 = np.linspace(-6, 6, 49, dtype=np.float32)
    got32 = _normal_cdf_generic(np, x32)
    assert got32.dtype == np.float32
    from scipy.special import ndtr

    np.testing.assert_allclose(got32, ndtr(x32.astype(np.float64)), rtol=2e-6, atol=1e-7)


def test_importing_chainrule_does_not_import_scipy():
    code = "import sys, chainrule; print('scipy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_gelu_on_the_array_api_strict_backend_matches_numpy():
    pytest.importorskip("array_api_strict")
    x = np.array([-30.0, -8.0, -2.5, -1.0, -1e-3, 0.0, 0.7, 2.0, 5.0, 30.0])
    host = cr.tensor(x, requires_grad=True)
    out = cr.gelu(host)
    out.sum().backward()
    other = cr.to_device(cr.tensor(x), "array_api_strict")
    other.requires_grad = True
    out_other = cr.gelu(other)
    out_other.sum().backward()
    np.testing.assert_allclose(out_other.to("cpu").numpy(), out.numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(other.grad.to("cpu").numpy(), host.grad.numpy(), rtol=1e-13,
                               atol=1e-300)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_second_derivative_matches_torch(approximate):
    x = np.array([-4.0, -1.0, -0.1, 0.0, 0.3, 2.0, 6.0])
    mine = cr.tensor(x, requires_grad=True)
    (first,) = autograd.grad(cr.gelu(mine, approximate).sum(), mine, create_graph=True)
    (second,) = autograd.grad(first.sum(), mine)
    t = torch.tensor(x, requires_grad=True)
    (tfirst,) = torch.autograd.grad(F.gelu(t, approximate=approximate).sum(), t,
                                    create_graph=True)
    (tsecond,) = torch.autograd.grad(tfirst.sum(), t)
    np.testing.assert_allclose(first.numpy(), tfirst.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(second.numpy(), tsecond.numpy(), rtol=1e-10, atol=1e-13)
    if approximate == "none":  # d2/dx2 x Phi(x) = phi(x) (2 - x^2)
        phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        np.testing.assert_allclose(second.numpy(), phi * (2 - x * x), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ against torch, any input
_ELEMENTWISE = [
    ("gelu", cr.gelu, F.gelu),
    ("gelu_tanh", lambda x: cr.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ("silu", cr.silu, F.silu),
    ("elu", lambda x: cr.elu(x, 0.8), lambda x: F.elu(x, 0.8)),
    ("selu", cr.selu, F.selu),
    ("celu", lambda x: cr.celu(x, 0.5), lambda x: F.celu(x, 0.5)),  # 1/alpha exact in float32
    ("mish", cr.mish, F.mish),
    ("hardswish", cr.hardswish, F.hardswish),
    ("hardsigmoid", cr.hardsigmoid, F.hardsigmoid),
    ("hardtanh", lambda x: cr.hardtanh(x, -2.0, 0.5), lambda x: F.hardtanh(x, -2.0, 0.5)),
    ("relu6", cr.relu6, F.relu6),
    ("softsign", cr.softsign, F.softsign),
    ("softplus", lambda x: cr.softplus(x, 1.5, 10.0), lambda x: F.softplus(x, 1.5, 10.0)),
]


@pytest.mark.parametrize("name, ours, theirs", _ELEMENTWISE, ids=[e[0] for e in _ELEMENTWISE])
@settings(max_examples=15, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4),
                    elements=st.floats(-1e3, 1e3) | st.sampled_from([-3.0, 0.0, 3.0, 6.0])))
def test_elementwise_values_and_gradients_match_torch(name, ours, theirs, x):
    mine = cr.tensor(x, requires_grad=True)
    out = ours(mine)
    out.sum().backward()
    t = torch.tensor(x, requires_grad=True)
    expected = theirs(t)
    expected.sum().backward()
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    # 1e-6: PyTorch rounds some coefficients to float32 in its float64 kernels (hardsigmoid's
    # 1/6, celu's 1/alpha: hence alpha = 0.5 above); ours are the float64 values
    np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-12)


EXTREMES = np.array([-1e4, -745.0, -40.0, -10.0, 10.0, 40.0, 745.0, 1e4])
HUGE = np.array([-1e300, -1e30, 1e30, 1e300])


@pytest.mark.parametrize("name, ours, theirs", _ELEMENTWISE, ids=[e[0] for e in _ELEMENTWISE])
def test_extreme_inputs_give_torch_finite_values_and_gradients(name, ours, theirs):
    mine = cr.tensor(EXTREMES, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # none of these inside
        out = ours(mine)
        out.sum().backward()
    t = torch.tensor(EXTREMES, requires_grad=True)
    expected = theirs(t)
    expected.sum().backward()
    assert np.all(np.isfinite(out.numpy())) and np.all(np.isfinite(mine.grad.numpy()))
    # atol: in the far left tails PyTorch rounds to 0 where the exact value is below 1e-20
    # (gelu(-10) = -7.6e-23 is 0 there: 1 + erf(-7.07) cancels; see the test below)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_gelu_left_tail_keeps_its_relative_precision():
    from scipy.special import ndtr

    x = np.array([-37.0, -30.0, -20.0, -10.0, -5.0])
    np.testing.assert_allclose(cr.gelu(x).numpy(), x * ndtr(x), rtol=1e-13)
    assert np.all(cr.gelu(x).numpy() < 0)


@pytest.mark.parametrize("name, ours, theirs", _ELEMENTWISE, ids=[e[0] for e in _ELEMENTWISE])
def test_huge_inputs_give_what_torch_gives(name, ours, theirs):
    """Up to 1e300: the same values and gradients (gelu's tanh form has nan gradients at 1e300
    in both: x^3 overflows)."""
    mine = cr.tensor(HUGE, requires_grad=True)
    with np.errstate(all="ignore"):
        out = ours(mine)
        out.sum().backward()
    t = torch.tensor(HUGE, requires_grad=True)
    expected = theirs(t)
    expected.sum().backward()
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_float32_and_integer_inputs():
    for f in (cr.gelu, cr.silu, cr.elu, cr.selu, cr.celu, cr.mish, cr.hardswish, cr.hardsigmoid,
              cr.hardtanh, cr.relu6, cr.softsign, cr.softmin, cr.glu, cr.normalize):
        assert f(cr.ones((2, 4), dtype=np.float32)).dtype == np.float32, f.__name__
        assert f(cr.tensor(np.ones((2, 4), dtype=np.int64))).dtype == np.float32, f.__name__


# ------------------------------------------------------------------ softplus's new arguments
def test_softplus_default_is_still_the_exact_function():
    x = np.array([-50.0, -1.0, 0.0, 19.0, 21.0, 35.0])
    np.testing.assert_array_equal(cr.softplus(x).numpy(), np.logaddexp(0.0, x))
    mine = cr.tensor(x, requires_grad=True)
    cr.softplus(mine).sum().backward()
    assert mine.grad.numpy()[4] < 1.0  # sigmoid(21), not the linear branch's 1


def test_softplus_torch_defaults_switch_to_x_above_the_threshold():
    x = np.array([19.0, 20.0, 20.5, 50.0])
    mine = cr.tensor(x, requires_grad=True)
    out = cr.softplus(mine, 1.0, 20.0)
    out.sum().backward()
    t = torch.tensor(x, requires_grad=True)
    F.softplus(t).sum().backward()
    np.testing.assert_array_equal(out.numpy()[2:], x[2:])
    np.testing.assert_allclose(out.numpy(), F.softplus(torch.tensor(x)).numpy(), rtol=1e-15)
    np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-15)


# ------------------------------------------------------------------ glu, softmin, normalize
def test_glu_halves_along_the_axis():
    x = np.arange(12.0).reshape(2, 6) / 10
    a, b = x[:, :3], x[:, 3:]
    np.testing.assert_allclose(cr.glu(x).numpy(), a / (1 + np.exp(-b)), rtol=1e-14)
    y = np.arange(8.0).reshape(4, 2) / 10
    np.testing.assert_allclose(cr.glu(y, axis=0).numpy(), y[:2] / (1 + np.exp(-y[2:])),
                               rtol=1e-14)


def test_softmin_is_softmax_of_minus_x_and_sums_to_one():
    x = np.random.default_rng(0).standard_normal((3, 5))
    out = cr.softmin(x, axis=0).numpy()
    np.testing.assert_allclose(out.sum(axis=0), np.ones(5), rtol=1e-14)
    np.testing.assert_allclose(out, F.softmin(torch.tensor(x), dim=0).numpy(), rtol=1e-14)
    assert cr.softmin(np.zeros((0, 3)), axis=1).shape == (0, 3)


def test_normalize_zero_vector_and_tiny_norms_match_torch():
    x = np.array([[0.0, 0.0, 0.0], [1e-13, -2e-13, 0.0], [3.0, 4.0, 0.0]])
    for p in (1.0, 2.0, 3.0, math.inf):
        mine = cr.tensor(x, requires_grad=True)
        out = cr.normalize(mine, p=p)
        (out * np.arange(9.0).reshape(3, 3)).sum().backward()
        t = torch.tensor(x, requires_grad=True)
        expected = F.normalize(t, p=p)
        (expected * torch.arange(9.0, dtype=torch.float64).reshape(3, 3)).sum().backward()
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=0)
        assert np.all(np.isfinite(mine.grad.numpy())), p
        np.testing.assert_allclose(mine.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cr.normalize(x).numpy()[2], [0.6, 0.8, 0.0], rtol=1e-15)


def test_normalize_eps_and_axes():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(cr.normalize(x, axis=axis, eps=0.5).numpy(),
                                   F.normalize(torch.tensor(x), dim=axis, eps=0.5).numpy(),
                                   rtol=1e-13)
    np.testing.assert_allclose(cr.normalize(np.array([3.0, 4.0]), axis=0).numpy(), [0.6, 0.8])


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("call, error, match", [
    (lambda: cr.gelu(cr.ones(3), approximate="erf"), ValueError, "approximate"),
    (lambda: cr.elu(cr.ones(3), alpha="1"), TypeError, "alpha"),
    (lambda: cr.celu(cr.ones(3), alpha=0.0), ValueError, "alpha"),
    (lambda: cr.hardtanh(cr.ones(3), 1.0, -1.0), ValueError, "min_val"),
    (lambda: cr.hardtanh(cr.ones(3), None, 1.0), TypeError, "min_val"),
    (lambda: cr.softplus(cr.ones(3), beta=0), ValueError, "beta"),
    (lambda: cr.softplus(cr.ones(3), threshold="20"), TypeError, "threshold"),
    (lambda: cr.glu(cr.ones((2, 3))), cr.ShapeError, "even"),
    (lambda: cr.glu(cr.ones(())), cr.ShapeError, "0-d"),
    (lambda: cr.glu(cr.ones((2, 4)), axis=2), cr.AxisError, "axis"),
    (lambda: cr.softmin(cr.ones((2, 4)), axis=3), cr.AxisError, "axis"),
    (lambda: cr.normalize(cr.ones((2, 4)), p=0.5), ValueError, "p must be >= 1"),
    (lambda: cr.normalize(cr.ones((2, 4)), eps=-1.0), ValueError, "eps"),
    (lambda: cr.normalize(cr.ones(())), cr.ShapeError, "0-d"),
    (lambda: cr.normalize(cr.ones(4)), cr.AxisError, "axis"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()

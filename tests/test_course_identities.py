"""Identities from a neural-network course, checked numerically with chainrule (float64 throughout).

Every value or gradient below is computed by the library (forward ops, ``cr.grad``, ``cr.jacobian``,
``backward``) and compared with an independent closed form (NumPy / SciPy), with finite
differences (``cr.gradcheck``) or with a second chainrule expression of the same identity.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

import chainrule as cr

F64 = np.float64
FAST = settings(max_examples=25, deadline=None)


def t64(values, requires_grad: bool = False) -> cr.Tensor:
    return cr.tensor(np.asarray(values, dtype=F64), requires_grad=requires_grad)


def vectors(min_size: int = 1, max_size: int = 6, bound: float = 20.0):
    return st.lists(
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
        min_size=min_size, max_size=max_size,
    ).map(lambda xs: np.array(xs, dtype=F64))


def elementwise_grad(f, x: np.ndarray) -> np.ndarray:
    """d f(x)_i / d x_i for an elementwise f, as the gradient of sum(f(x))."""
    g = cr.grad(lambda t: cr.sum(f(t)))(t64(x))
    assert g.dtype == F64
    return g.numpy()


# ----------------------------------------------------------------------------------------------
# Jacobians of softmax and sigmoid
# ----------------------------------------------------------------------------------------------


@FAST
@given(vectors(min_size=1, max_size=7))
def test_softmax_jacobian_is_diag_s_minus_s_sT(x):
    J = cr.jacobian(cr.softmax)(t64(x)).numpy()
    S = cr.softmax(t64(x)).numpy()
    assert J.shape == (x.size, x.size)
    np.testing.assert_allclose(J, np.diag(S) - np.outer(S, S), rtol=0, atol=1e-14)
    # consequences: symmetric, and every row sums to 0 (softmax stays on the simplex)
    np.testing.assert_allclose(J, J.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, rtol=0, atol=1e-14)


def test_softmax_jacobian_known_values():
    x = np.array([1.0, 2.0, 3.0])
    e = np.exp(x)
    S = e / e.sum()
    J = cr.jacobian(cr.softmax)(t64(x)).numpy()
    np.testing.assert_allclose(J, np.diag(S) - np.outer(S, S), rtol=1e-13, atol=1e-15)
    assert cr.gradcheck(cr.softmax, [x])


@FAST
@given(vectors(min_size=1, max_size=7))
def test_sigmoid_jacobian_is_diag_s_times_one_minus_s(x):
    J = cr.jacobian(cr.sigmoid)(t64(x)).numpy()
    s = special.expit(x)
    assert J.shape == (x.size, x.size)
    np.testing.assert_allclose(J, np.diag(s * (1 - s)), rtol=1e-13, atol=1e-300)
    off_diagonal = J[~np.eye(x.size, dtype=bool)]
    assert np.all(off_diagonal == 0.0)


# ----------------------------------------------------------------------------------------------
# softplus, log_sigmoid, tanh
# ----------------------------------------------------------------------------------------------


@FAST
@given(vectors(bound=40.0))
def test_softplus_minus_softplus_of_minus_x_is_x(x):
    t = t64(x)
    diff = (cr.softplus(t) - cr.softplus(-t)).numpy()
    assert np.all(np.abs(diff - x) <= 1e-14 * (1 + np.abs(x))), (diff, x)
    # and softplus itself is log(1 + e^x)
    np.testing.assert_allclose(cr.softplus(t).numpy(), np.logaddexp(0.0, x), rtol=1e-14, atol=0)


@FAST
@given(vectors(bound=30.0))
def test_log_sigmoid_is_minus_softplus_of_minus_x(x):
    t = t64(x)
    ls = cr.log_sigmoid(t).numpy()
    np.testing.assert_allclose(ls, -cr.softplus(-t).numpy(), rtol=1e-14, atol=0)
    # an independent reference: log(expit(x)) from SciPy
    np.testing.assert_allclose(ls, special.log_expit(x), rtol=1e-12, atol=1e-300)
    # d/dx log s(x) = 1 - s(x) = s(-x)
    g = elementwise_grad(cr.log_sigmoid, x)
    np.testing.assert_allclose(g, special.expit(-x), rtol=1e-12, atol=1e-300)


@FAST
@given(vectors(bound=40.0))
def test_softplus_derivative_is_sigmoid(x):
    # via cr.grad ...
    g = elementwise_grad(cr.softplus, x)
    np.testing.assert_allclose(g, special.expit(x), rtol=1e-14, atol=1e-300)
    # ... and via backward
    t = t64(x, requires_grad=True)
    cr.sum(cr.softplus(t)).backward()
    np.testing.assert_allclose(t.grad.numpy(), cr.sigmoid(t64(x)).numpy(), rtol=1e-14, atol=1e-300)


def test_softplus_gradcheck():
    assert cr.gradcheck(cr.softplus, [np.linspace(-6.0, 6.0, 13)])


@FAST
@given(vectors(bound=20.0))
def test_tanh_is_twice_sigmoid_of_twice_x_minus_one(x):
    t = t64(x)
    lhs = cr.tanh(t).numpy()
    rhs = (2 * cr.sigmoid(2 * t) - 1).numpy()
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lhs, np.tanh(x), rtol=0, atol=1e-15)
    # the derivatives agree too: 1 - tanh^2 = 4 s(2x)(1 - s(2x))
    np.testing.assert_allclose(
        elementwise_grad(cr.tanh, x),
        elementwise_grad(lambda u: 2 * cr.sigmoid(2 * u) - 1, x),
        rtol=0, atol=1e-15,
    )


# ----------------------------------------------------------------------------------------------
# softmax: shift invariance, temperature, 2 classes
# ----------------------------------------------------------------------------------------------


@FAST
@given(vectors(min_size=1, max_size=6), st.floats(-500.0, 500.0))
def test_softmax_is_shift_invariant(x, c):
    shifted, plain = cr.softmax(t64(x + c)).numpy(), cr.softmax(t64(x)).numpy()
    np.testing.assert_allclose(shifted, plain, rtol=1e-9, atol=1e-15)


@FAST
@given(vectors(min_size=2, max_size=6))
def test_softmax_of_x_equals_softmax_of_differences_to_x1(x):
    reduced = np.concatenate([[0.0], x[1:] - x[0]])
    S_reduced, S = cr.softmax(t64(reduced)).numpy(), cr.softmax(t64(x)).numpy()
    np.testing.assert_allclose(S_reduced, S, rtol=1e-12, atol=1e-15)


def test_softmax_does_not_overflow_for_huge_inputs():
    S = cr.softmax(t64([1000.0, 1001.0, 999.0])).numpy()
    e = np.exp(np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(S, e / e.sum(), rtol=1e-14)


@st.composite
def distinct_scores(draw):
    """Scores whose largest entry beats every other one by at least 0.05 (a unique argmax)."""
    gaps = draw(st.lists(st.floats(0.05, 3.0), min_size=1, max_size=5))
    start = draw(st.floats(-10.0, 10.0))
    ordered = start + np.concatenate([[0.0], np.cumsum(gaps)])
    order = draw(st.permutations(range(ordered.size)))
    return ordered[np.array(order)]


@FAST
@given(distinct_scores())
def test_softmax_with_temperature_goes_from_uniform_to_one_hot(x):
    K = x.size
    uniform = cr.softmax(t64(0.0 * x)).numpy()
    np.testing.assert_allclose(uniform, np.full(K, 1.0 / K), rtol=1e-15)

    one_hot = np.eye(K)[np.argmax(x)]
    distances = []
    for c in (1.0, 10.0, 100.0, 1000.0):
        S = cr.softmax(t64(c * x)).numpy()
        assert np.argmax(S) == np.argmax(x)
        distances.append(np.max(np.abs(S - one_hot)))
    assert distances[0] > distances[1]  # 1 - S_max shrinks like e^{-c * gap}
    assert all(a >= b for a, b in zip(distances, distances[1:]))
    assert distances[-1] < 1e-20


@FAST
@given(st.floats(-30.0, 30.0), st.floats(-30.0, 30.0))
def test_two_class_softmax_is_sigmoid_of_the_difference(x1, x2):
    S = cr.softmax(t64([x1, x2])).numpy()
    d = t64(x1 - x2)
    expected = np.array([cr.sigmoid(d).item(), 1 - cr.sigmoid(d).item()])
    np.testing.assert_allclose(S, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(S[1], special.expit(x2 - x1), rtol=1e-12, atol=1e-300)


def test_two_class_softmax_gradient_matches_sigmoid_gradient():
    # d S_1 / d x1 = s'(x1 - x2), d S_1 / d x2 = -s'(x1 - x2)
    x = np.array([0.7, -1.9])
    g = cr.grad(lambda t: cr.softmax(t)[0])(t64(x)).numpy()
    s = special.expit(x[0] - x[1])
    np.testing.assert_allclose(g, [s * (1 - s), -s * (1 - s)], rtol=1e-13)


# ----------------------------------------------------------------------------------------------
# sigmoid(kx) -> H(x); relu = x H(x); the distributional derivative of H
# ----------------------------------------------------------------------------------------------


@FAST
@given(st.floats(1e-3, 50.0), st.booleans())
def test_steep_sigmoid_tends_to_heaviside_away_from_zero(magnitude, negative):
    x = -magnitude if negative else magnitude
    H = cr.heaviside(t64(x)).item()
    assert H == (0.0 if negative else 1.0)
    errors = []
    for k in (1.0, 10.0, 100.0, 1000.0, 1e5):
        err = abs(cr.sigmoid(t64(k * x)).item() - H)
        # the same error computed independently with SciPy (1 - s(kx) rounds to 0 once s(kx)
        # rounds to 1, so a few ulps of 1 are allowed); it is at most the exact tail s(-k|x|)
        # plus that rounding
        np.testing.assert_allclose(err, abs(special.expit(k * x) - H), rtol=1e-9, atol=4.5e-16)
        assert err <= special.expit(-k * magnitude) * (1 + 1e-9) + 2.3e-16
        errors.append(err)
    # strictly shrinking with k until it reaches 0, then staying at 0
    for before, after in zip(errors, errors[1:]):
        assert after < before or before == after == 0.0
    assert errors[-1] < 1e-40


@pytest.mark.parametrize("k", [1.0, 10.0, 100.0, 1000.0, 1e8])
def test_steep_sigmoid_at_zero_stays_one_half(k):
    assert cr.sigmoid(t64(k * 0.0)).item() == 0.5
    assert cr.heaviside(t64(0.0), value_at_zero=0.5).item() == 0.5


@FAST
@given(vectors(bound=10.0))
def test_relu_is_x_times_heaviside(x):
    t = t64(x)
    np.testing.assert_array_equal(cr.relu(t).numpy(), (t * cr.heaviside(t)).numpy())
    np.testing.assert_array_equal(cr.relu(t).numpy(), np.maximum(x, 0.0))
    nonzero = x[x != 0]
    if nonzero.size:
        # away from 0 both have derivative H(x) (product rule: H(x) + x * H'(x), H' = 0)
        g_relu = elementwise_grad(cr.relu, nonzero)
        g_prod = elementwise_grad(lambda u: u * cr.heaviside(u), nonzero)
        np.testing.assert_array_equal(g_relu, (nonzero > 0).astype(F64))
        np.testing.assert_array_equal(g_prod, g_relu)


def test_relu_at_zero():
    assert cr.relu(t64(0.0)).item() == 0.0
    assert (t64(0.0) * cr.heaviside(t64(0.0))).item() == 0.0


def bump(u: cr.Tensor) -> cr.Tensor:
    """phi(u) = exp(-1 / (1 - u^2)) on (-1, 1), 0 outside: smooth, written with chainrule ops."""
    inside = cr.less(cr.abs(u), 1.0)
    u_safe = cr.where(inside, u, 0.0)  # keeps 1 / (1 - u^2) finite, so no nan reaches the gradient
    return cr.where(inside, cr.exp(-1.0 / (1.0 - u_safe * u_safe)), 0.0)


def make_phi(centre: float, width: float, amplitude: float):
    return lambda x: amplitude * bump((x - centre) / width)


def phi_prime(phi, x: np.ndarray) -> np.ndarray:
    return elementwise_grad(phi, np.asarray(x, dtype=F64))


BUMPS = [
    (0.0, 1.0, 1.0),
    (0.3, 1.0, 1.0),
    (-0.5, 2.0, 3.0),
    (0.9, 1.5, 0.5),
    (0.2, 0.4, 2.0),
    (2.0, 1.0, 1.0),  # support (1, 3) misses 0: phi(0) = 0
    (-3.0, 0.5, 1.0),  # support (-3.5, -2.5) misses 0
]


@pytest.mark.parametrize("centre,width,amplitude", BUMPS)
def test_distributional_derivative_of_heaviside_is_dirac_trapezoid(centre, width, amplitude):
    phi = make_phi(centre, width, amplitude)
    phi0 = phi(t64(0.0)).item()
    u0 = -centre / width
    expected_phi0 = amplitude * np.exp(-1.0 / (1.0 - u0**2)) if abs(u0) < 1 else 0.0
    np.testing.assert_allclose(phi0, expected_phi0, rtol=1e-14)
    # -∫ H(x) phi'(x) dx over a fine uniform grid covering the support (and beyond it).
    # The grid is h * integers, so 0 is a node; with H(0) = 1/2 there the O(h) errors of the
    # two panels next to the jump cancel and the trapezoid rule stays O(h^2).
    h = 2.4 * width / 200_000
    x = h * np.arange(np.floor((centre - 1.2 * width) / h), np.ceil((centre + 1.2 * width) / h) + 1)
    dphi = phi_prime(phi, x)
    assert np.all(np.isfinite(dphi))
    assert np.all(dphi[np.abs(x - centre) >= width] == 0.0)
    H = cr.heaviside(t64(x)).numpy()
    value = -np.trapezoid(H * dphi, x)
    np.testing.assert_allclose(value, phi0, rtol=0, atol=1e-8 * amplitude)


@pytest.mark.parametrize("centre,width,amplitude", BUMPS[:4])
def test_distributional_derivative_of_heaviside_is_dirac_quad(centre, width, amplitude):
    phi = make_phi(centre, width, amplitude)
    phi0 = phi(t64(0.0)).item()
    assert phi0 > 0

    def integrand(x: float) -> float:
        return cr.heaviside(t64(x)).item() * cr.grad(phi)(t64(x)).item()

    lo, hi = centre - width, centre + width
    value, _ = integrate.quad(integrand, lo, hi, points=[0.0], epsabs=1e-12, epsrel=1e-12,
                              limit=200)
    np.testing.assert_allclose(-value, phi0, rtol=1e-9, atol=1e-12)
    # sanity: the same quadrature without H integrates phi' over the whole support, giving 0
    total, _ = integrate.quad(lambda x: cr.grad(phi)(t64(x)).item(), lo, hi, points=[centre],
                              epsabs=1e-12, limit=200)
    assert abs(total) < 1e-9


def test_bump_derivative_matches_closed_form_and_finite_differences():
    # phi'(u) = phi(u) * (-2u / (1 - u^2)^2) on (-1, 1)
    u = np.linspace(-0.95, 0.95, 39)
    expected = np.exp(-1.0 / (1.0 - u**2)) * (-2.0 * u / (1.0 - u**2) ** 2)
    np.testing.assert_allclose(phi_prime(bump, u), expected, rtol=1e-12, atol=1e-300)
    assert cr.gradcheck(bump, [u[5:-5]])


# ----------------------------------------------------------------------------------------------
# A hand-derived gradient: L = max(sigmoid(W[0] @ x), sigmoid(W[1] @ x))
# ----------------------------------------------------------------------------------------------
#
# W = [[1, 2], [-2, 3]], x = [2, -3].
#   z0 = W[0] @ x = 1*2 + 2*(-3) = 2 - 6 = -4
#   z1 = W[1] @ x = (-2)*2 + 3*(-3) = -4 - 9 = -13
#   s(z0) = 1 / (1 + e^4)  ~= 0.0179862   (e^4 ~= 54.598)
#   s(z1) = 1 / (1 + e^13) ~= 2.2603e-6   (e^13 ~= 442413.4)
# s(-4) > s(-13) (sigmoid is increasing), so the max picks branch 0: L = s(-4) ~= 0.0179862.
#   dL/dz = [s'(z0), 0] with s'(z0) = s(z0)(1 - s(z0)) ~= 0.0179862 * 0.9820138 ~= 0.0176627
# z = W x, so dL/dW = outer(dL/dz, x) = [[2 s'(z0), -3 s'(z0)], [0, 0]]
#                                     ~= [[0.0353254, -0.0529881], [0, 0]]
#   and dL/dx = W^T dL/dz = s'(z0) * W[0] = [s'(z0), 2 s'(z0)] ~= [0.0176627, 0.0353254].
# (The losing branch gets no gradient: row 1 of dL/dW is zero and W[1] does not enter dL/dx.)

W_HAND = np.array([[1.0, 2.0], [-2.0, 3.0]], dtype=F64)
X_HAND = np.array([2.0, -3.0], dtype=F64)


def max_of_two_sigmoid_units(W, x):
    return cr.max(cr.stack([cr.sigmoid(W[0] @ x), cr.sigmoid(W[1] @ x)]))


def hand_gradients(W: np.ndarray, x: np.ndarray):
    z = W @ x
    s = special.expit(z)
    win = int(np.argmax(s))
    dL_dz = np.zeros(2)
    dL_dz[win] = s[win] * (1 - s[win])
    return s[win], np.outer(dL_dz, x), W.T @ dL_dz, z


def test_hand_derived_max_of_sigmoids_forward_and_gradients():
    L_hand, dW_hand, dx_hand, z = hand_gradients(W_HAND, X_HAND)
    np.testing.assert_array_equal(z, [-4.0, -13.0])
    # the worked numbers of the comment above (computed, not copied)
    sp = special.expit(-4.0) * (1 - special.expit(-4.0))
    np.testing.assert_allclose(sp, 0.0176627062, rtol=1e-8)
    np.testing.assert_allclose(dW_hand, [[2 * sp, -3 * sp], [0.0, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(dx_hand, [sp, 2 * sp], rtol=1e-15)

    # forward value
    L = max_of_two_sigmoid_units(t64(W_HAND), t64(X_HAND))
    assert L.dtype == F64
    np.testing.assert_allclose(L.item(), 1.0 / (1.0 + np.exp(4.0)), rtol=1e-15)
    np.testing.assert_allclose(L.item(), L_hand, rtol=1e-15)

    # gradients with cr.grad ...
    dW, dx = cr.grad(max_of_two_sigmoid_units, argnums=(0, 1))(t64(W_HAND), t64(X_HAND))
    np.testing.assert_allclose(dW.numpy(), dW_hand, rtol=1e-14, atol=0)
    np.testing.assert_allclose(dx.numpy(), dx_hand, rtol=1e-14, atol=0)
    assert np.all(dW.numpy()[1] == 0.0)

    # ... and with backward
    Wt, xt = t64(W_HAND, requires_grad=True), t64(X_HAND, requires_grad=True)
    max_of_two_sigmoid_units(Wt, xt).backward()
    np.testing.assert_allclose(Wt.grad.numpy(), dW_hand, rtol=1e-14, atol=0)
    np.testing.assert_allclose(xt.grad.numpy(), dx_hand, rtol=1e-14, atol=0)


def test_hand_derived_max_of_sigmoids_finite_differences():
    assert cr.gradcheck(max_of_two_sigmoid_units, [W_HAND, X_HAND], atol=1e-8, rtol=1e-6)


def fd_gradient(f, arrays, index, eps=1e-6):
    """Central differences of scalar f w.r.t. arrays[index], evaluated in NumPy float64."""
    base = [np.array(a, dtype=F64) for a in arrays]
    out = np.zeros_like(base[index])
    for j in np.ndindex(out.shape):
        plus = [a.copy() for a in base]
        minus = [a.copy() for a in base]
        plus[index][j] += eps
        minus[index][j] -= eps
        out[j] = (f(*plus) - f(*minus)) / (2 * eps)
    return out


def test_hand_derived_max_of_sigmoids_explicit_central_differences():
    def numpy_loss(W, x):
        return float(np.max(special.expit(W @ x)))

    dW, dx = cr.grad(max_of_two_sigmoid_units, argnums=(0, 1))(t64(W_HAND), t64(X_HAND))
    fd_W = fd_gradient(numpy_loss, [W_HAND, X_HAND], 0)
    fd_x = fd_gradient(numpy_loss, [W_HAND, X_HAND], 1)
    np.testing.assert_allclose(dW.numpy(), fd_W, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dx.numpy(), fd_x, rtol=1e-7, atol=1e-10)


@FAST
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4),
    st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=2),
)
def test_max_of_sigmoid_units_hand_formula_random(w, x):
    W = np.array(w, dtype=F64).reshape(2, 2)
    x = np.array(x, dtype=F64)
    s = special.expit(W @ x)
    if abs(s[0] - s[1]) < 1e-9:  # a tie: the max is not differentiable there
        return
    L_hand, dW_hand, dx_hand, _ = hand_gradients(W, x)
    value, (dW, dx) = cr.value_and_grad(max_of_two_sigmoid_units, argnums=(0, 1))(t64(W), t64(x))
    np.testing.assert_allclose(value.item(), L_hand, rtol=1e-14)
    np.testing.assert_allclose(dW.numpy(), dW_hand, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(dx.numpy(), dx_hand, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# heaviside / step / sign conventions and surrogate gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_at_zero", [0.0, 0.5, 1.0, 0.25])
def test_heaviside_value_at_zero(value_at_zero):
    out = cr.heaviside(t64([-2.0, -1e-300, 0.0, 1e-300, 3.0]), value_at_zero=value_at_zero).numpy()
    np.testing.assert_array_equal(out, [0.0, 0.0, value_at_zero, 1.0, 1.0])


def test_heaviside_default_is_one_half_as_numpy():
    x = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(cr.heaviside(t64(x)).numpy(), np.heaviside(x, 0.5))


def test_step_and_sign_conventions():
    x = np.array([-2.0, -1e-300, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(cr.step(t64(x)).numpy(), [0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(cr.sign(t64(x)).numpy(), [-1.0, -1.0, 0.0, 1.0, 1.0])
    # sign(x) = H(x) - H(-x) with either value at 0
    for v0 in (0.0, 0.5, 1.0):
        t = t64(x)
        difference = cr.heaviside(t, value_at_zero=v0) - cr.heaviside(-t, value_at_zero=v0)
        np.testing.assert_array_equal(cr.sign(t).numpy(), difference.numpy())


@pytest.mark.parametrize("fn", [cr.heaviside, cr.step, cr.sign], ids=["heaviside", "step", "sign"])
def test_threshold_gradients_are_zero_without_surrogate(fn):
    x = np.array([-3.0, -0.1, 0.0, 0.1, 3.0])
    g = elementwise_grad(fn, x)
    np.testing.assert_array_equal(g, np.zeros_like(x))
    t = t64(x, requires_grad=True)
    cr.sum(fn(t) * t64([1.0, 2.0, 3.0, 4.0, 5.0])).backward()
    assert t.grad is None or np.all(t.grad.numpy() == 0.0)


@pytest.mark.parametrize("k", [0.5, 1.0, 4.0, 25.0])
@pytest.mark.parametrize("fn,scale", [(cr.heaviside, 1.0), (cr.step, 1.0), (cr.sign, 2.0)],
                         ids=["heaviside", "step", "sign"])
def test_surrogate_gradient_is_scaled_sigmoid_derivative(fn, scale, k):
    x = np.array([-3.0, -0.4, 0.0, 0.2, 1.5])
    s = special.expit(k * x)
    g = elementwise_grad(lambda u: fn(u, surrogate_slope=k), x)
    np.testing.assert_allclose(g, scale * k * s * (1 - s), rtol=1e-13, atol=1e-300)
    # the surrogate changes only the backward pass, never the forward value
    np.testing.assert_array_equal(fn(t64(x), surrogate_slope=k).numpy(), fn(t64(x)).numpy())
    # and the surrogate of sign is the derivative of 2 sigmoid(kx) - 1 (of heaviside: sigmoid(kx))
    smooth = elementwise_grad(lambda u: scale * cr.sigmoid(k * u), x)
    np.testing.assert_allclose(g, smooth, rtol=1e-13, atol=1e-300)


def _train_threshold_unit(surrogate_slope, steps=200, lr=0.5):
    """Fit y = step(w.x + b) to separable data with a squared loss; returns (w, b, accuracy)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(64, 2))
    y = (X @ np.array([1.5, -1.0]) + 0.2 > 0).astype(F64)
    w = np.array([-0.3, 0.4])  # starts wrong
    b = np.array(0.0)

    def loss_fn(w_, b_):
        prediction = cr.step(t64(X) @ w_ + b_, surrogate_slope=surrogate_slope)
        return cr.mean((prediction - t64(y)) ** 2)

    for _ in range(steps):
        gw, gb = cr.grad(loss_fn, argnums=(0, 1))(t64(w), t64(b))
        w = w - lr * gw.numpy()
        b = b - lr * gb.numpy()
    accuracy = float(np.mean(((X @ w + b) >= 0) == (y == 1)))
    return w, b, accuracy


def test_threshold_unit_trains_only_with_a_surrogate():
    w0, b0, acc0 = _train_threshold_unit(None, steps=5)
    np.testing.assert_array_equal(w0, [-0.3, 0.4])  # zero gradient: nothing moves
    assert b0 == 0.0
    w, b, acc = _train_threshold_unit(4.0)
    assert acc >= 0.95 > acc0


# ----------------------------------------------------------------------------------------------
# tanh vs sigmoid hidden units: out = v^T tanh(W x + b) + c = (2v)^T s(2Wx + 2b) + c - sum(v)
# ----------------------------------------------------------------------------------------------


def tanh_net(X, W, b, v, c):
    return cr.tanh(X @ W.T + b) @ v + c


def sigmoid_net(X, W, b, v, c):
    return cr.sigmoid(X @ W.T + b) @ v + c


@FAST
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_tanh_network_equals_rescaled_sigmoid_network(n_in, n_hidden, batch, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, n_in))
    W = rng.normal(size=(n_hidden, n_in))
    b = rng.normal(size=n_hidden)
    v = rng.normal(size=n_hidden)
    c = rng.normal()

    out_tanh = tanh_net(t64(X), t64(W), t64(b), t64(v), t64(c)).numpy()
    # tanh(a) = 2 s(2a) - 1  =>  v^T tanh(a) = (2v)^T s(2a) - sum(v)
    out_sigmoid = sigmoid_net(t64(X), t64(2 * W), t64(2 * b), t64(2 * v), t64(c - v.sum())).numpy()
    assert out_tanh.shape == (batch,)
    np.testing.assert_allclose(out_tanh, out_sigmoid, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_tanh, np.tanh(X @ W.T + b) @ v + c, rtol=0, atol=1e-12)

    # the two nets are the same function of X, so their input gradients agree as well
    g_tanh = cr.grad(lambda x: cr.sum(tanh_net(x, t64(W), t64(b), t64(v), t64(c))))(t64(X)).numpy()
    sig_params = (t64(2 * W), t64(2 * b), t64(2 * v), t64(c - v.sum()))
    g_sig = cr.grad(lambda x: cr.sum(sigmoid_net(x, *sig_params)))(t64(X)).numpy()
    np.testing.assert_allclose(g_tanh, g_sig, rtol=0, atol=1e-12)


def test_tanh_sigmoid_equivalence_needs_the_offset():
    # without "- sum(v)" (or without doubling) the nets differ: the identity is not vacuous
    rng = np.random.default_rng(1)
    X, W = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    b, v = rng.normal(size=4), rng.normal(size=4)
    c = 0.3
    out_tanh = tanh_net(t64(X), t64(W), t64(b), t64(v), t64(c)).numpy()
    no_offset = sigmoid_net(t64(X), t64(2 * W), t64(2 * b), t64(2 * v), t64(c)).numpy()
    not_doubled = sigmoid_net(t64(X), t64(W), t64(b), t64(2 * v), t64(c - v.sum())).numpy()
    assert np.max(np.abs(out_tanh - no_offset)) > 1e-3
    assert np.max(np.abs(out_tanh - not_doubled)) > 1e-3

"""grad, value_and_grad, vjp, jvp, jacobian, hessian: against closed forms and each other."""

import numpy as np
import pytest

import chainrule as cr


def cubic(x):
    return cr.sum(x ** 3) + cr.sum(cr.sin(x))


X = np.array([0.3, -1.2, 2.0])


def test_grad_and_value_and_grad():
    np.testing.assert_allclose(cr.grad(cubic)(X).numpy(), 3 * X**2 + np.cos(X))
    value, g = cr.value_and_grad(cubic)(X)
    assert value.item() == pytest.approx(np.sum(X**3 + np.sin(X)))
    np.testing.assert_allclose(g.numpy(), 3 * X**2 + np.cos(X))


def test_grad_of_grad():
    f = lambda x: cr.sin(x) * x  # noqa: E731
    x = np.array(0.5)
    assert cr.grad(cr.grad(f))(x).item() == pytest.approx(2 * np.cos(0.5) - 0.5 * np.sin(0.5))
    assert cr.grad(cr.grad(cr.grad(f)))(x).item() == pytest.approx(
        -3 * np.sin(0.5) - 0.5 * np.cos(0.5))


def test_jacobian_of_grad_is_hessian():
    expected = np.diag(6 * X - np.sin(X))
    np.testing.assert_allclose(cr.hessian(cubic)(X).numpy(), expected)
    np.testing.assert_allclose(cr.jacobian(cr.grad(cubic))(X).numpy(), expected)


def test_hessian_of_quadratic_form():
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    f = lambda x: x @ (cr.tensor(a) @ x)  # noqa: E731
    np.testing.assert_allclose(cr.hessian(f)(np.array([1.0, -1.0])).numpy(), a + a.T)


def test_argnums_and_has_aux():
    f = lambda x, y: (cr.sum(x * y), "aux")  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (gx, gy), aux = cr.grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert gx.tolist() == [3.0, 4.0] and gy.tolist() == [1.0, 2.0] and aux == "aux"
    gy_only = cr.grad(lambda x, y: cr.sum(x * y), argnums=1)(x, y)
    assert gy_only.tolist() == [1.0, 2.0]


def test_grad_needs_scalar_output():
    with pytest.raises(TypeError, match="scalar"):
        cr.grad(lambda x: x * 2)(X)


def test_jacobian_shape_is_out_plus_in():
    f = lambda x: cr.reshape(cr.tanh(x), (2, 3)) * 2  # noqa: E731
    x = np.linspace(-1, 1, 6).reshape(3, 2)
    j = cr.jacobian(f)(x)
    assert j.shape == (2, 3, 3, 2)
    np.testing.assert_allclose(j.numpy().reshape(6, 6), np.diag(2 * (1 - np.tanh(x.ravel()) ** 2)))


def test_vjp_and_jvp_agree_with_jacobian(rng):
    w = rng.standard_normal((4, 3))
    f = lambda x: cr.tanh(cr.tensor(w) @ x)  # noqa: E731
    x = rng.standard_normal(3)
    j = cr.jacobian(f)(x).numpy()
    out, pullback = cr.vjp(f, x)
    u = rng.standard_normal(4)
    (vj,) = pullback(u)
    np.testing.assert_allclose(vj.numpy(), u @ j)
    t = rng.standard_normal(3)
    out2, jt = cr.jvp(f, (x,), (t,))
    np.testing.assert_allclose(jt.numpy(), j @ t)
    np.testing.assert_allclose(out.numpy(), out2.numpy())


def test_jvp_of_function_with_zero_derivative():
    out, tangent = cr.jvp(lambda x: cr.sign(x), (np.array([1.0, -2.0]),), (np.array([1.0, 1.0]),))
    assert tangent.tolist() == [0.0, 0.0]


def test_transforms_leave_caller_tensors_alone():
    x = cr.tensor([1.0, 2.0])
    cr.grad(lambda t: cr.sum(t * t))(x)
    assert not x.requires_grad and x.grad is None


def test_transforms_work_inside_no_grad():
    with cr.no_grad():
        assert cr.grad(lambda t: cr.sum(t * t))(np.array([3.0])).tolist() == [6.0]

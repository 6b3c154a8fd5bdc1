"""Transforms nest as JAX's: closures, other arguments, perturbation confusion, jvp tangents,
argnums tuples, pytrees, hvp, elementwise_grad, a MAML step -- against torch and closed forms."""

import numpy as np
import pytest
import torch

import chainrule as cr

F64 = dict(rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the cases users reported
@pytest.mark.parametrize("f, x, expected", [
    # closure: d/dx [x * d/dy (x y)] = d/dx x^2 = 2x
    (lambda x: x * cr.grad(lambda y: x * y)(2.0), 1.0, 2.0),
    # another argument: d/dx [d/dy (x y)] = d/dx x = 1
    (lambda x: cr.grad(lambda x, y: x * y, argnums=1)(x, 2.0), 3.0, 1.0),
    # perturbation confusion: d/dx [x * d/dy (x + y)] = d/dx x = 1
    (lambda x: x * cr.grad(lambda y: x + y)(x), 1.0, 1.0),
    # the inner variable is distinct even when it is the outer one: d/dx [x * d/dx' x'^2] = 4x
    (lambda x: x * cr.grad(lambda y: y * y)(x), 1.5, 6.0),
])
def test_nested_grad_cases(f, x, expected):
    assert cr.grad(f)(np.float64(x)).item() == pytest.approx(expected, rel=1e-12)


def test_jvp_is_differentiable_with_respect_to_its_tangent():
    x, v = np.array([0.3, -1.2, 2.0]), np.array([1.0, 2.0, -0.5])
    g = cr.grad(lambda v: cr.sum(cr.jvp(cr.sin, (x,), (v,))[1]))(v)
    np.testing.assert_allclose(g.numpy(), np.cos(x), **F64)
    assert g.grad_fn is None  # the outer level is the outermost: plain numbers


def test_jvp_is_differentiable_with_respect_to_its_primal():
    x, v = np.array([0.3, -1.2]), np.array([1.0, 2.0])
    g = cr.grad(lambda x: cr.sum(cr.jvp(cr.sin, (x,), (v,))[1]))(x)
    np.testing.assert_allclose(g.numpy(), -np.sin(x) * v, **F64)


def _torch_penalty_grad(f_torch, x, w):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    (dx,) = torch.autograd.grad(f_torch(xt, wt), xt, create_graph=True)
    (dw,) = torch.autograd.grad((dx ** 2).sum(), wt)
    return dw.numpy()


PENALTY_CASES = {
    "tanh-matmul": (lambda x, w: cr.sum(cr.tanh(x @ w)),
                    lambda x, w: torch.tanh(x @ w).sum(), (3, 4), (4, 2)),
    "conv2d": (lambda x, w: cr.sum(cr.tanh(cr.conv2d(x, w, padding=1))),
               lambda x, w: torch.tanh(torch.nn.functional.conv2d(x, w, padding=1)).sum(),
               (2, 2, 5, 5), (3, 2, 3, 3)),
    "sigmoid-mul": (lambda x, w: cr.sum(cr.sigmoid(x * w) * x),
                    lambda x, w: (torch.sigmoid(x * w) * x).sum(), (5,), (5,)),
}


@pytest.mark.parametrize("case", list(PENALTY_CASES))
def test_gradient_penalty_matches_torch(case):
    f, f_torch, x_shape, w_shape = PENALTY_CASES[case]
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)

    def penalty(x, w):
        return cr.sum(cr.grad(f, argnums=0)(x, w) ** 2)

    got = cr.grad(penalty, argnums=1)(x, w)
    expected = _torch_penalty_grad(f_torch, x, w)
    assert np.abs(expected).max() > 1e-3  # not the zeros of before
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- higher orders
def test_third_order_of_a_closure_against_torch():
    """d^3/dx^3 of x * g(x) with g(x) = d/dy [sin(x y)] at y = 2 (= x cos(2x))."""
    def f(x):
        return x * cr.grad(lambda y: cr.sin(x * y))(np.float64(2.0))

    x0 = 0.7
    xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (gy,) = torch.autograd.grad(torch.sin(xt * yt), yt, create_graph=True)
    value = xt * gy
    derivs = []
    for _ in range(3):
        (value,) = torch.autograd.grad(value, xt, create_graph=True)
        derivs.append(value.item())
    got = [cr.grad(f)(np.float64(x0)).item(), cr.grad(cr.grad(f))(np.float64(x0)).item(),
           cr.grad(cr.grad(cr.grad(f)))(np.float64(x0)).item()]
    np.testing.assert_allclose(got, derivs, rtol=1e-10)


def test_hessian_with_argnums_tuple_nests_blocks_as_jax():
    def f(a, b):
        return cr.sum(cr.sin(a)) * cr.sum(b ** 3) + cr.sum(a) ** 2 * b[0]

    def f_torch(a, b):
        return torch.sin(a).sum() * (b ** 3).sum() + a.sum() ** 2 * b[0]

    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0, -1.0])
    H = cr.hessian(f, argnums=(0, 1))(a, b)
    assert [[block.shape for block in row] for row in H] == [[(2, 2), (2, 3)], [(3, 2), (3, 3)]]
    expected = torch.autograd.functional.hessian(f_torch, (torch.tensor(a), torch.tensor(b)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j].numpy(), expected[i][j].numpy(), **F64)


def test_jacobian_with_argnums_tuple_and_pytree_output():
    def f(x, y):
        return {"sum": x * y, "sin": (cr.sin(x), cr.sum(y))}

    x, y = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    J = cr.jacobian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(J["sum"][0].numpy(), np.diag(y))
    np.testing.assert_allclose(J["sum"][1].numpy(), np.diag(x))
    np.testing.assert_allclose(J["sin"][0][0].numpy(), np.diag(np.cos(x)))
    np.testing.assert_allclose(J["sin"][0][1].numpy(), np.zeros((2, 2)))
    np.testing.assert_allclose(J["sin"][1][1].numpy(), [1.0, 1.0])
    assert J["sin"][1][0].shape == (2,)


# ---------------------------------------------------------------- pytrees
def test_grad_of_a_dict_of_parameters_keeps_its_structure():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": [np.array([0.5, -0.5]), 2.0]}
    x = np.array([1.0, -1.0])

    def loss(p):
        return cr.sum(cr.tanh(p["w"] @ x + p["b"][0]) ** 2) * p["b"][1]

    g = cr.grad(loss)(params)
    assert set(g) == {"w", "b"} and isinstance(g["b"], list) and len(g["b"]) == 2
    w = torch.tensor(params["w"], requires_grad=True)
    b0 = torch.tensor(params["b"][0], requires_grad=True)
    b1 = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (torch.tanh(w @ torch.tensor(x) + b0) ** 2).sum().mul(b1).backward()
    np.testing.assert_allclose(g["w"].numpy(), w.grad.numpy(), **F64)
    np.testing.assert_allclose(g["b"][0].numpy(), b0.grad.numpy(), **F64)
    assert g["b"][1].item() == pytest.approx(b1.grad.item(), rel=1e-6)  # a Python float: float32


def test_value_and_grad_with_tuple_argnums_of_trees():
    def f(a, bc):
        return cr.sum(a * bc[0]) + cr.sum(bc[1] ** 2)

    a, bc = np.array([1.0, 2.0]), (np.array([3.0, 4.0]), np.array([5.0]))
    value, (ga, gbc) = cr.value_and_grad(f, argnums=(0, 1))(a, bc)
    assert value.item() == 36.0
    assert ga.tolist() == [3.0, 4.0]
    assert isinstance(gbc, tuple) and gbc[0].tolist() == [1.0, 2.0] and gbc[1].tolist() == [10.0]


def test_vjp_and_jvp_with_pytrees():
    def f(p):
        return (p["a"] * p["b"], cr.sum(p["a"]))

    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 5.0])}
    out, vjp_fn = cr.vjp(f, p)
    (g,) = vjp_fn((np.array([1.0, 1.0]), np.float64(2.0)))
    assert g["a"].tolist() == [5.0, 7.0] and g["b"].tolist() == [1.0, 2.0]
    _, tangent = cr.jvp(f, (p,), ({"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])},))
    assert tangent[0].tolist() == [3.0, 2.0] and tangent[1].item() == 1.0


# ---------------------------------------------------------------- hvp, elementwise_grad
def test_hvp_equals_hessian_times_vector():
    def f(x):
        return cr.sum(cr.sin(x) * x ** 2) + cr.sum(x) ** 3

    x, v = np.array([0.3, -0.8, 1.1]), np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(cr.hvp(f)(x, v).numpy(), cr.hessian(f)(x).numpy() @ v, **F64)
    xt = torch.tensor(x)
    _, hv = torch.autograd.functional.hvp(
        lambda x: (torch.sin(x) * x ** 2).sum() + x.sum() ** 3, xt, torch.tensor(v))
    np.testing.assert_allclose(cr.hvp(f)(x, v).numpy(), hv.numpy(), **F64)


def test_hvp_of_a_second_argument_and_a_dict():
    def f(scale, p):
        return scale * cr.sum(p["w"] ** 3)

    p, v = {"w": np.array([1.0, 2.0])}, {"w": np.array([1.0, 1.0])}
    hv = cr.hvp(f, argnums=1)(np.float64(2.0), p, v)
    assert hv["w"].tolist() == [12.0, 24.0]


def test_elementwise_grad():
    x = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(cr.elementwise_grad(cr.tanh)(x).numpy(), 1 - np.tanh(x) ** 2, **F64)
    second = cr.elementwise_grad(cr.elementwise_grad(cr.tanh))(x)
    np.testing.assert_allclose(second.numpy(), -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), **F64)


# ---------------------------------------------------------------- MAML
def test_maml_inner_step_differentiated_with_respect_to_the_initial_weights():
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(3, 2)), rng.normal(size=(2,))
    x_tr, y_tr = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    x_te, y_te = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    lr = 0.3

    def loss(p, x, y):
        return cr.mean((cr.tanh(x @ p["w"] + p["b"]) - y) ** 2)

    def meta_loss(p):
        g = cr.grad(loss)(p, x_tr, y_tr)
        adapted = {k: p[k] - lr * g[k] for k in p}
        return loss(adapted, x_te, y_te)

    got = cr.grad(meta_loss)({"w": w0, "b": b0})

    def loss_t(w, b, x, y):
        return ((torch.tanh(torch.tensor(x) @ w + b) - torch.tensor(y)) ** 2).mean()

    w, b = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    gw, gb = torch.autograd.grad(loss_t(w, b, x_tr, y_tr), (w, b), create_graph=True)
    loss_t(w - lr * gw, b - lr * gb, x_te, y_te).backward()
    np.testing.assert_allclose(got["w"].numpy(), w.grad.numpy(), **F64)
    np.testing.assert_allclose(got["b"].numpy(), b.grad.numpy(), **F64)
    # first-order MAML (the inner gradient taken as a constant) differs: the second-order part
    # of the exact result is really there
    adapted = [(w - lr * gw).detach().requires_grad_(), (b - lr * gb).detach().requires_grad_()]
    first_order = torch.autograd.grad(loss_t(*adapted, x_te, y_te), adapted)
    assert np.abs(first_order[0].numpy() - got["w"].numpy()).max() > 1e-4


def test_parameter_closure_at_top_level_keeps_history():
    """A transform over x whose f closes over a parameter returns a result differentiable in it."""
    w = cr.tensor(np.array([1.0, -2.0]), requires_grad=True)
    g = cr.grad(lambda x: cr.sum(cr.sin(w * x)))(np.array([0.5, 0.25]))
    cr.sum(g).backward()
    x = np.array([0.5, 0.25])
    # g = w cos(w x); d/dw sum(g) = cos(w x) - w x sin(w x)
    expected = np.cos(w.data * x) - w.data * x * np.sin(w.data * x)
    np.testing.assert_allclose(w.grad.numpy(), expected, **F64)


def test_top_level_results_have_no_history():
    g = cr.grad(lambda x: cr.sum(x ** 3))(np.array([1.0, 2.0]))
    assert g.grad_fn is None and not g.requires_grad
    H = cr.hessian(lambda x: cr.sum(x ** 3))(np.array([1.0, 2.0]))
    assert H.grad_fn is None and H.tolist() == [[6.0, 0.0], [0.0, 12.0]]

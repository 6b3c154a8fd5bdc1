"""The engine: traversal, gradient table, accumulation, freeing, higher order, grad mode."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.autograd import topological_order


def test_deep_chain_has_no_recursion_limit():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_topological_order_puts_outputs_first():
    x = cr.tensor(2.0, requires_grad=True)
    a = x * 3
    b = a + x
    c = b * a
    order = topological_order([c])
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        if t.grad_fn is not None:
            for parent in t.grad_fn.inputs:
                if parent.requires_grad:
                    assert position[id(t)] < position[id(parent)]
    assert len(order) == 4 and order[0] is c and order[-1] is x


def test_diamond_accumulates_in_the_gradient_table():
    x = cr.tensor(3.0, dtype="float64", requires_grad=True)
    a = x * x  # used twice below
    y = a * a + a  # x^4 + x^2
    y.backward()
    assert x.grad.item() == pytest.approx(4 * 27 + 6)


def test_leaf_grad_accumulates_across_calls():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [3 + 2, 3 + 4]


def test_second_backward_through_freed_graph_raises():
    x = cr.tensor(2.0, requires_grad=True)
    y = cr.exp(x) * x
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = cr.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8.0


def test_backward_frees_saved_inputs():
    x = cr.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward()
    assert y.grad_fn.inputs is None


def test_non_scalar_output_needs_gradient():
    x = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(gradient=cr.tensor([1.0, 0.0, 2.0]))
    assert x.grad.tolist() == [2.0, 0.0, 4.0]


def test_gradient_shape_must_match():
    x = cr.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(gradient=cr.ones(2))


def test_backward_of_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.ones(2).sum().backward()


@pytest.mark.parametrize("shape_a, shape_b", [
    ((3, 1), (1, 4)),
    ((4,), (2, 3, 4)),
    ((), (2, 2)),
    ((2, 1, 3), (5, 1)),
])
def test_broadcast_gradients_sum_back(shape_a, shape_b, rng):
    a = cr.tensor(rng.standard_normal(shape_a), requires_grad=True)
    b = cr.tensor(rng.standard_normal(shape_b), requires_grad=True)
    (a * b).sum().backward()
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    expected_a = np.broadcast_to(b.data, out_shape)
    expected_b = np.broadcast_to(a.data, out_shape)
    lead_a = len(out_shape) - len(shape_a)
    axes_a = tuple(range(lead_a)) + tuple(lead_a + i for i, n in enumerate(shape_a) if n == 1)
    np.testing.assert_allclose(a.grad.numpy(), expected_a.sum(axis=axes_a).reshape(shape_a))
    lead_b = len(out_shape) - len(shape_b)
    axes_b = tuple(range(lead_b)) + tuple(lead_b + i for i, n in enumerate(shape_b) if n == 1)
    np.testing.assert_allclose(b.grad.numpy(), expected_b.sum(axis=axes_b).reshape(shape_b))


def test_gradient_takes_the_leaf_dtype():
    x = cr.ones(2, requires_grad=True)  # float32
    y = cr.tensor(np.ones(2), requires_grad=True)  # float64
    (x * y).sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64


def test_grads_never_share_memory():
    x = cr.ones(3, requires_grad=True)
    y = cr.ones(3, requires_grad=True)
    (x + y).sum().backward()
    x.grad.data[0] = 100
    assert y.grad.data[0] == 1


def test_create_graph_gives_higher_derivatives():
    x = cr.tensor(0.7, dtype="float64", requires_grad=True)
    y = cr.sin(x) * x
    (dy,) = cr.autograd_grad(y, x, create_graph=True)
    (d2y,) = cr.autograd_grad(dy, x, create_graph=True)
    (d3y,) = cr.autograd_grad(d2y, x)
    v = 0.7
    assert dy.item() == pytest.approx(np.cos(v) * v + np.sin(v))
    assert d2y.item() == pytest.approx(-np.sin(v) * v + 2 * np.cos(v))
    assert d3y.item() == pytest.approx(-np.cos(v) * v - 3 * np.sin(v))


def test_backward_with_create_graph_leaves_differentiable_grad():
    x = cr.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    (d2,) = cr.autograd_grad(g.sum(), x)
    assert d2.tolist() == [6.0, 12.0]


def test_autograd_grad_does_not_touch_dot_grad_and_reports_unused():
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(1.0, requires_grad=True)
    y = x * x
    (g,) = cr.autograd_grad(y, x, retain_graph=True)
    assert g.item() == 4.0 and x.grad is None
    with pytest.raises(RuntimeError, match="not used"):
        cr.autograd_grad(y, [x, z], retain_graph=True)
    assert cr.autograd_grad(y, [x, z], allow_unused=True)[1] is None


def test_no_grad_and_enable_grad():
    x = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        y = x * 2
        with cr.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    assert cr.is_grad_enabled()


def test_grad_mode_as_decorator_and_restored_on_error():
    @cr.no_grad()
    def double(t):
        return t * 2

    x = cr.ones(2, requires_grad=True)
    assert not double(x).requires_grad
    with pytest.raises(ZeroDivisionError):
        with cr.no_grad():
            _ = 1 / 0
    assert cr.is_grad_enabled()


def test_max_splits_gradient_among_ties():
    x = cr.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    cr.max(x).backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5, 0.0]
    y = cr.tensor([[2.0, 2.0, 2.0], [1.0, 0.0, 1.0]], requires_grad=True)
    cr.min(y, axis=1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [[1 / 3, 1 / 3, 1 / 3], [0, 1, 0]])


def test_maximum_ties_split_in_halves_and_relu_at_zero_is_zero():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([1.0, 1.0], requires_grad=True)
    cr.maximum(x, y).sum().backward()
    assert x.grad.tolist() == [0.5, 1.0] and y.grad.tolist() == [0.5, 0.0]
    z = cr.tensor([0.0, 1.0], requires_grad=True)
    cr.relu(z).sum().backward()
    assert z.grad.tolist() == [0.0, 1.0]


def _hooked_grads(lib, x0):
    """The same hooked computation in chainrule or torch: gradients and what the hooks saw."""
    x = lib.tensor(x0, requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(np.array(g.detach().numpy())))  # observe, return None
    y.register_hook(lambda g: g * 3)  # replace: scales everything upstream of y
    z = (y * x).sum() + y.sum()
    x.register_hook(lambda g: g + 1)  # a leaf's hook runs before .grad is written
    z.backward()
    return x.grad.numpy(), seen


def test_tensor_hooks_match_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([0.5, -1.0, 2.0])
    ours, ours_seen = _hooked_grads(cr, x0)
    theirs, theirs_seen = _hooked_grads(torch, x0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(ours_seen[0], theirs_seen[0], rtol=1e-12)
    np.testing.assert_allclose(ours, 3 * 2 * x0 * (x0 + 1) + x0**2 + 1)  # and by hand


def test_hook_removal_autograd_grad_and_create_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    handle.remove()  # harmless
    (x * x).sum().backward()
    assert calls == []
    x.register_hook(lambda g: g * 0.5)
    (gx,) = cr.autograd_grad((x ** 3).sum(), x, create_graph=True)  # hooks apply to grad() too
    np.testing.assert_allclose(gx.data, 0.5 * 3 * np.array([1.0, 4.0]))
    (gxx,) = cr.autograd_grad(gx.sum(), x)  # the hooked gradient keeps its history
    np.testing.assert_allclose(gxx.data, 0.5 * 0.5 * 6 * np.array([1.0, 2.0]))


def test_hook_errors_are_clear():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).register_hook(lambda g: None)
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="hook must be callable"):
        x.register_hook("not a function")

    def wrong_shape(g):
        return g.sum()

    x.register_hook(wrong_shape)
    with pytest.raises(TypeError, match=r"hook 'wrong_shape' must return None or a Tensor "
                                        r"of the gradient's shape \(2,\)"):
        (x * x).sum().backward()


def test_a_stale_handle_does_not_remove_a_newer_hook():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    first = x.register_hook(lambda g: g * 2)
    first.remove()
    x.register_hook(lambda g: g * 3)
    first.remove()  # must not unregister the hook registered after it
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * 2 * np.array([1.0, 2.0]))

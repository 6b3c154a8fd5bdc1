"""Version counters: an in-place change to a tensor that a node saved makes backward raise."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import inplace


def _leaf(values):
    return cr.tensor(np.asarray(values, dtype="float64"), requires_grad=True)


def test_in_place_change_of_a_saved_leaf_raises_naming_the_op():
    w = _leaf([1.0, 2.0, 3.0])
    y = cr.sum(w * w)
    inplace.add_(w, 10.0)
    with pytest.raises(cr.InplaceModifiedError,
                       match=r"mulBackward.*version 1; expected version 0"):
        y.backward()


def test_optimizer_step_between_two_backwards_raises():
    """y1.backward(); opt.step(); y2.backward() used to give the wrong sign; now it raises."""
    layer = cr.nn.Linear(3, 2)
    opt = cr.optim.SGD(layer.parameters(), lr=0.5)
    x = cr.tensor(np.ones((4, 3), "float32"))
    y1, y2 = cr.sum(layer(x) ** 2), cr.sum(layer(x) ** 3)
    y1.backward()
    opt.step()
    with pytest.raises(cr.InplaceModifiedError, match="matmulBackward.*expected version 1 instead"):
        y2.backward()  # Linear's init changed the weight once (version 1), the step once more


def test_the_counter_is_shared_with_views_and_detach():
    w = _leaf([[1.0, 2.0], [3.0, 4.0]])
    x = cr.tensor(np.array([1.0, -1.0]))
    y = cr.sum((x @ w.T) ** 2)  # matmul saved w.T, a NumPy view of w
    inplace.mul_(w, 2.0)
    with pytest.raises(cr.InplaceModifiedError):
        y.backward()
    z = _leaf([1.0, 2.0])
    u = cr.sum(z * z)
    inplace.add_(z.detach(), 1.0)  # the same memory: the same counter, as torch's detach()
    assert z.version == 1
    with pytest.raises(cr.InplaceModifiedError):
        u.backward()


def test_linear_maps_do_not_save_their_inputs():
    """add and sum read no input values in backward: changing b in place is harmless (as torch)."""
    w, b = _leaf([1.0, 2.0]), _leaf([0.5, 0.5])
    y = cr.sum(w * 3.0 + b)
    inplace.add_(b, 1.0)
    y.backward()
    assert w.grad.tolist() == [3.0, 3.0] and b.grad.tolist() == [1.0, 1.0]


def test_output_saved_by_its_rule_is_protected():
    x = _leaf([0.0, 1.0])
    y = cr.exp(x)  # exp's VJP reads its output
    z = cr.sum(y)  # sum reads nothing; exp reads its output
    inplace.add_(y.detach(), 1.0)
    with pytest.raises(cr.InplaceModifiedError, match="expBackward"):
        z.backward()


def test_writing_into_data_is_the_escape_hatch_and_unchanged_tensors_pass():
    w = _leaf([1.0, 2.0])
    y = cr.sum(w * w)
    w.data[...] = [3.0, 4.0]  # not counted: documented escape hatch
    y.backward()
    assert w.grad.tolist() == [6.0, 8.0]
    assert w.version == 0


def test_init_and_load_state_dict_bump_the_version():
    layer = cr.nn.Linear(2, 2)
    before = layer.weight.version
    cr.nn.init.zeros_(layer.weight)
    layer.load_state_dict(layer.state_dict())
    assert layer.weight.version == before + 2


def test_every_in_place_function_bumps():
    t = cr.tensor(np.ones(3))
    m, v = cr.tensor(np.zeros(3)), cr.tensor(np.zeros(3))
    calls = [
        lambda: inplace.add_(t, 1.0), lambda: inplace.mul_(t, 1.0), lambda: inplace.div_(t, 1.0),
        lambda: inplace.addcmul_(t, t, t), lambda: inplace.addcdiv_(t, t, t),
        lambda: inplace.lerp_(t, t, 0.5), lambda: inplace.maximum_(t, 0.0),
        lambda: inplace.sqrt_(t), lambda: inplace.copy_(t, 1.0), lambda: inplace.fill_(t, 1.0),
        lambda: inplace.zero_(t),
    ]
    for k, call in enumerate(calls, start=1):
        call()
        assert t.version == k
    grad = cr.tensor(np.ones(3))
    inplace.adam_(t, grad, m, v, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, step=1)
    assert (t.version, m.version, v.version, grad.version) == (len(calls) + 1, 1, 1, 0)


def test_a_refused_update_does_not_bump():
    t = cr.tensor(np.ones(3))
    with pytest.raises(cr.ShapeError):
        inplace.add_(t, np.ones(4))
    assert t.version == 0

"""Tensor.register_post_accumulate_grad_hook and autograd.queue_callback (torch's semantics)."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.engine.autograd import queue_callback

A0, B0 = [1.0, -2.0, 3.0], [0.5, 4.0, -1.0]


def leaves():
    return (cr.tensor(np.array(A0), requires_grad=True),
            cr.tensor(np.array(B0), requires_grad=True))


def loss_of(a, b):
    """(a * b).sum() + (a ** 2).sum(): d/da = b + 2a, d/db = a; a is reached by two paths."""
    return (a * b).sum() + (a * a).sum()


def recorder(seen, name):
    """A post-accumulate hook that records a copy of the .grad it sees."""
    def hook(tensor):
        seen.append((name, np.array(tensor.grad.data, copy=True)))
    return hook


# ---------------------------------------------------------------- the hook


def test_hook_sees_the_accumulated_grad_once_per_backward_as_torch():
    a, b = leaves()
    seen = []
    a.register_post_accumulate_grad_hook(recorder(seen, "a"))
    b.register_post_accumulate_grad_hook(recorder(seen, "b"))
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (A0, B0))
    seen_torch = []
    for name, t in (("a", ta), ("b", tb)):
        t.register_post_accumulate_grad_hook(
            lambda t, name=name: seen_torch.append((name, t.grad.detach().numpy().copy())))
    for _ in range(2):  # the second pass accumulates: the hook sees the sum of both
        loss_of(a, b).backward()
        loss_of(ta, tb).backward()
    assert sorted(n for n, _ in seen) == sorted(n for n, _ in seen_torch) == ["a", "a", "b", "b"]
    for name in "ab":
        ours = [g for n, g in seen if n == name]
        theirs = [g for n, g in seen_torch if n == name]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    want_a = np.array(B0) + 2 * np.array(A0)
    np.testing.assert_allclose([g for n, g in seen if n == "a"], [want_a, 2 * want_a])
    np.testing.assert_allclose([g for n, g in seen if n == "b"], [A0, 2 * np.array(A0)])


def test_hook_receives_the_leaf_itself_and_its_return_value_is_ignored():
    a, b = leaves()
    got = []
    a.register_post_accumulate_grad_hook(lambda t: got.append(t) or cr.zeros(3))
    loss_of(a, b).backward()
    assert len(got) == 1 and got[0] is a
    np.testing.assert_allclose(a.grad.data, np.array(B0) + 2 * np.array(A0))


def test_hooks_run_in_registration_order():
    a, b = leaves()
    order = []
    for k in range(3):
        a.register_post_accumulate_grad_hook(lambda t, k=k: order.append(k))
    loss_of(a, b).backward()
    assert order == [0, 1, 2]


def test_hook_does_not_run_for_a_leaf_that_gets_no_gradient():
    a, b = leaves()
    unused = cr.tensor([1.0], requires_grad=True)
    seen = []
    unused.register_post_accumulate_grad_hook(recorder(seen, "unused"))
    loss_of(a, b).backward()
    assert seen == [] and unused.grad is None


def test_hook_does_not_run_without_accumulation():
    a, b = leaves()
    seen = []
    a.register_post_accumulate_grad_hook(recorder(seen, "a"))
    (ga,) = cr.autograd_grad(loss_of(a, b), a)
    np.testing.assert_allclose(ga.data, np.array(B0) + 2 * np.array(A0))
    cr.grad(lambda x: loss_of(x, b))(a)
    assert seen == [] and a.grad is None


def test_removed_hook_stops_running():
    a, b = leaves()
    seen = []
    handle = a.register_post_accumulate_grad_hook(recorder(seen, "a"))
    kept = a.register_post_accumulate_grad_hook(recorder(seen, "kept"))
    loss_of(a, b).backward()
    handle.remove()
    loss_of(a, b).backward()
    assert [n for n, _ in seen] == ["a", "kept", "kept"]
    kept.remove()
    loss_of(a, b).backward()
    assert len(seen) == 3


def test_registering_needs_a_leaf_that_requires_grad():
    a, b = leaves()
    with pytest.raises(RuntimeError, match="leaf"):
        (a * b).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="leaf"):
        cr.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="callable"):
        a.register_post_accumulate_grad_hook(42)


# ---------------------------------------------------------------- queue_callback


def test_queue_callback_outside_backward_raises():
    with pytest.raises(RuntimeError, match="backward"):
        queue_callback(lambda: None)


def test_callbacks_run_once_after_every_leaf_is_accumulated_in_queue_order():
    a, b = leaves()
    c = cr.tensor([2.0], requires_grad=True)
    events = []

    def check_all_grads(tag):
        def callback():
            events.append((tag, [t.grad is not None for t in (a, b, c)]))
        return callback

    def first_hook(tensor):  # the first leaf accumulated queues both callbacks
        if not events:
            events.append(("hook", None))
            queue_callback(check_all_grads(1))
            queue_callback(check_all_grads(2))

    for t in (a, b, c):
        t.register_post_accumulate_grad_hook(first_hook)
    (loss_of(a, b) * c).sum().backward()
    assert events == [("hook", None), (1, [True, True, True]), (2, [True, True, True])]
    events.clear()
    (loss_of(a, b) * c).sum().backward()  # a new pass: a new queue (nothing left from the last)
    assert [tag for tag, _ in events] == ["hook", 1, 2]


def test_callback_sees_the_final_grads_of_this_pass():
    a, b = leaves()
    finals = []

    def hook(tensor):
        queue_callback(lambda: finals.append(np.array(a.grad.data, copy=True)))

    b.register_post_accumulate_grad_hook(hook)
    loss_of(a, b).backward()
    np.testing.assert_allclose(finals, [np.array(B0) + 2 * np.array(A0)])


def test_queue_callback_from_a_gradient_hook_also_works_for_autograd_grad():
    a, b = leaves()
    ran = []
    a.register_hook(lambda g: queue_callback(lambda: ran.append("done")))
    cr.autograd_grad(loss_of(a, b), [a, b])
    assert ran == ["done"]


def test_a_nested_backward_keeps_its_own_queue():
    outer_a, outer_b = leaves()
    inner = cr.tensor([3.0], requires_grad=True)
    events = []
    inner.register_post_accumulate_grad_hook(
        lambda t: queue_callback(lambda: events.append("inner callback")))

    def outer_hook(tensor):
        queue_callback(lambda: events.append("outer callback"))
        events.append("inner backward starts")
        with cr.enable_grad():  # hooks run with grad mode off (on only with create_graph)
            (inner * inner).sum().backward()
        events.append("inner backward returned")

    outer_a.register_post_accumulate_grad_hook(outer_hook)
    loss_of(outer_a, outer_b).backward()
    assert events == ["inner backward starts", "inner callback", "inner backward returned",
                      "outer callback"]
    np.testing.assert_allclose(inner.grad.data, [6.0])


def test_an_error_in_backward_leaves_no_queue_behind():
    a, b = leaves()
    ran = []

    def hook(tensor):
        queue_callback(lambda: ran.append(True))
        raise KeyError("boom")

    a.register_post_accumulate_grad_hook(hook)
    with pytest.raises(KeyError, match="boom"):
        loss_of(a, b).backward()
    assert ran == []
    with pytest.raises(RuntimeError, match="backward"):
        queue_callback(lambda: None)  # the failed pass's queue is gone


def test_a_callback_may_queue_another_which_runs_in_the_same_pass():
    """As torch: callbacks queued by a callback run at the end of the same backward pass."""
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    ran = []

    def second() -> None:
        ran.append("cb2")

    def first() -> None:
        ran.append("cb1")
        queue_callback(second)

    a.register_post_accumulate_grad_hook(lambda t: queue_callback(first))
    cr.sum(a * a).backward()
    assert ran == ["cb1", "cb2"]
    with pytest.raises(RuntimeError, match="no backward pass"):
        queue_callback(second)  # the pass is over: no queue is left behind

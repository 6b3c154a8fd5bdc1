"""Per-thread grad mode (as torch.no_grad) and anomaly mode (detect_anomaly)."""

import threading

import numpy as np
import pytest

import chainrule as cr


# ---------------------------------------------------------------- grad mode is per thread
def test_no_grad_in_one_thread_leaves_another_threads_graph_intact():
    inside, done = threading.Event(), threading.Event()

    def quiet():
        with cr.no_grad():
            inside.set()
            done.wait(5)

    thread = threading.Thread(target=quiet)
    thread.start()
    assert inside.wait(5)
    try:
        x = cr.tensor([1.0, 2.0], requires_grad=True)
        y = cr.sum(x * x)  # recorded while the other thread is inside no_grad
        assert cr.is_grad_enabled() and y.requires_grad
        y.backward()
        assert x.grad.tolist() == [2.0, 4.0]
    finally:
        done.set()
        thread.join()


def test_a_new_thread_starts_with_recording_on_and_anomaly_off():
    seen = {}

    def probe():
        seen["grad"], seen["anomaly"] = cr.is_grad_enabled(), cr.is_anomaly_enabled()

    with cr.no_grad(), cr.detect_anomaly():
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
    assert seen == {"grad": True, "anomaly": False}


def test_set_grad_enabled_as_a_call_a_context_and_a_decorator():
    cr.set_grad_enabled(False)
    try:
        assert not cr.is_grad_enabled()
    finally:
        cr.set_grad_enabled(True)
    assert cr.is_grad_enabled()
    with cr.set_grad_enabled(False):
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()

    @cr.set_grad_enabled(False)
    def f():
        return cr.is_grad_enabled()

    assert cr.is_grad_enabled() and f() is False and cr.is_grad_enabled()


# ---------------------------------------------------------------- anomaly mode
def test_forward_anomaly_names_the_op_shapes_and_the_user_line():
    x = cr.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with cr.detect_anomaly():
        with pytest.raises(cr.AnomalyError) as info:
            cr.log(x)  # the line the message must name
    message = str(info.value)
    assert "log produced NaN or inf from finite inputs (float64[2])" in message
    assert "test_modes.py" in message and "cr.log(x)  # the line the message must name" in message


def test_backward_anomaly_names_the_vjp_and_where_the_node_was_created():
    x = cr.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with cr.detect_anomaly():
        y = cr.sum(cr.sqrt(x))  # finite forward, infinite derivative at 0
        with pytest.raises(cr.AnomalyError) as info:
            y.backward()
    message = str(info.value)
    assert message.startswith("the VJP of sqrt returned NaN or inf for input 0")
    assert "y = cr.sum(cr.sqrt(x))" in message


def test_anomalies_pass_silently_when_off_and_nan_inputs_do_not_count():
    x = cr.tensor(np.array([0.0, 4.0]), requires_grad=True)
    y = cr.sum(cr.sqrt(x))
    y.backward()
    assert np.isinf(x.grad.data[0])
    with cr.detect_anomaly():
        nan = cr.tensor(np.array([np.nan, 1.0]))
        assert np.isnan(cr.exp(nan).data[0])  # NaN in, NaN out: not an anomaly of exp


def test_set_detect_anomaly_as_a_call():
    cr.set_detect_anomaly(True)
    try:
        assert cr.is_anomaly_enabled()
        with pytest.raises(cr.AnomalyError):
            cr.div(cr.tensor([1.0]), cr.tensor([0.0]))
    finally:
        cr.set_detect_anomaly(False)
    assert not cr.is_anomaly_enabled()

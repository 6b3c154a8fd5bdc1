"""ops.recurrent: the LSTM recurrence as one primitive with a joint VJP.

The op-info row checks values, gradients and second derivatives on small float64 cases; here:
float32 accuracy and saturation, the joint rule running once per node, create_graph through
nn.LSTM against torch, and the argument checks."""

import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.engine.errors import ShapeError
from chainrule.ops import recurrent
from chainrule.ops.recurrent import lstm_scan, lstm_scan_p, lstm_scan_reference


def _inputs(rng, length=6, batch=3, hidden=5, scale=1.0, dtype=np.float64):
    shapes = [(length, batch, 4 * hidden), (batch, hidden), (batch, hidden), (4 * hidden, hidden)]
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0, 1000.0])
def test_float32_kernel_is_as_close_to_float64_as_the_composite(scale):
    arrays = _inputs(np.random.default_rng(0), scale=scale)
    exact = lstm_scan_reference(*map(cr.tensor, arrays)).numpy()
    as32 = [cr.tensor(a.astype(np.float32)) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # saturated gates: exp overflows silently to 0 or -1
        fast = lstm_scan_p.bind(*as32).numpy()
    composite = lstm_scan_reference(*as32).numpy()
    assert fast.dtype == np.float32 and np.isfinite(fast).all()
    err_fast, err_composite = np.abs(fast - exact).max(), np.abs(composite - exact).max()
    assert err_fast <= max(2 * err_composite, 1e-6)


def test_joint_rule_runs_the_backward_kernel_once_per_node(monkeypatch):
    calls = []
    kernel = recurrent._lstm_scan_backward_numpy

    def counting(*arrays):
        calls.append(1)
        return kernel(*arrays)

    monkeypatch.setitem(recurrent.lstm_scan_backward_p.kernels, "numpy", counting)
    recurrent.lstm_scan_backward_p._resolved.clear()
    try:
        xw, h0, c0, w = (cr.tensor(a, requires_grad=True)
                         for a in _inputs(np.random.default_rng(1)))
        hs, h_n, c_n = lstm_scan(xw, h0, c0, w)
        (hs.sum() + (c_n * c_n).sum()).backward()
    finally:
        recurrent.lstm_scan_backward_p._resolved.clear()
    assert len(calls) == 1
    assert all(t.grad is not None for t in (xw, h0, c0, w))


def test_only_the_inputs_that_need_a_gradient_get_one():
    xw, h0, c0, w = _inputs(np.random.default_rng(2))
    w_t = cr.tensor(w, requires_grad=True)
    hs, _, _ = lstm_scan(cr.tensor(xw), cr.tensor(h0), cr.tensor(c0), w_t)
    hs.sum().backward()
    reference = cr.tensor(w, requires_grad=True)
    lstm_scan_reference(cr.tensor(xw), cr.tensor(h0), cr.tensor(c0), reference)[:, 0].sum() \
        .backward()
    np.testing.assert_allclose(w_t.grad.numpy(), reference.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_create_graph_through_nn_lstm_matches_torch():
    """A gradient penalty: d/dW of |d loss / d x|^2, through the LSTM twice (float64)."""
    ours = nn.LSTM(3, 4, num_layers=2)
    theirs = torch.nn.LSTM(3, 4, num_layers=2).double()
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    ours.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((5, 2, 3))
    cx, tx = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gx,) = cr.autograd_grad(cr.sum(ours(cx)[0] ** 2), [cx], create_graph=True)
    cr.sum(gx * gx).backward()
    (tgx,) = torch.autograd.grad((theirs(tx)[0] ** 2).sum(), [tx], create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-10, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


def test_explain_counts_the_joint_rule_as_a_gradient():
    from chainrule.course.explain import _no_gradient_inputs

    xw, h0, c0, w = (cr.tensor(a, requires_grad=True) for a in _inputs(np.random.default_rng(4)))
    packed = lstm_scan_p.bind(xw, h0, c0, w)
    assert _no_gradient_inputs(packed) == set()


@pytest.mark.parametrize("shapes, word", [
    (((4, 2, 8), (2, 2), (2, 2), (8, 3)), "w_hh"),       # 4H != 4 * hidden
    (((4, 2, 8), (3, 2), (2, 2), (8, 2)), "h0"),
    (((4, 2, 8), (2, 2), (2, 3), (8, 2)), "c0"),
    (((0, 2, 8), (2, 2), (2, 2), (8, 2)), "L >= 1"),
])
def test_bad_shapes_name_the_argument(shapes, word):
    with pytest.raises(ShapeError, match=word):
        lstm_scan(*(cr.zeros(*s) for s in shapes))

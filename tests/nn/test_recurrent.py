"""RNN, LSTM, GRU and their cells against torch.nn with torch's state_dict loaded as it is:
outputs, final states and every gradient (inputs, initial states, all parameters), float64."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn


def _load(ours: nn.Module, theirs: torch.nn.Module) -> None:
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    missing, unexpected = ours.load_state_dict(
        {k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert not missing and not unexpected


def _flat(value):
    return list(value) if isinstance(value, tuple) else [value]


def _check(ours, theirs, x, hx=None, rtol=1e-10):
    theirs = theirs.double()
    _load(ours, theirs)
    rng = np.random.default_rng(1)
    cx = cr.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    chx = None if hx is None else tuple(cr.tensor(h, requires_grad=True) for h in hx)
    thx = None if hx is None else tuple(torch.tensor(h, requires_grad=True) for h in hx)
    unpack = (lambda h: h) if hx is None or len(hx) == 2 else (lambda h: h[0])
    out = ours(cx, None if chx is None else unpack(chx))
    expected = theirs(tx, None if thx is None else unpack(thx))
    ours_flat, theirs_flat = [], []
    for a, b in zip(_flat(out), _flat(expected)):
        ours_flat += _flat(a)
        theirs_flat += _flat(b)
    loss_ours, loss_theirs = 0, 0
    for a, b in zip(ours_flat, theirs_flat):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=1e-12)
        w = rng.standard_normal(a.shape)
        loss_ours = loss_ours + cr.sum(a * cr.tensor(w))
        loss_theirs = loss_theirs + (b * torch.tensor(w)).sum()
    loss_ours.backward()
    loss_theirs.backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-12)
    for a, b in zip(chx or (), thx or ()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=rtol,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("layers,bidirectional,batch_first",
                         [(1, False, False), (2, True, True), (2, False, False)])
def test_layers_match_torch(kind, layers, bidirectional, batch_first):
    args = dict(input_size=3, hidden_size=4, num_layers=layers, bidirectional=bidirectional,
                batch_first=batch_first)
    ours, theirs = getattr(nn, kind)(**args), getattr(torch.nn, kind)(**args)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    states = layers * (2 if bidirectional else 1)
    hx = [rng.standard_normal((states, 2, 4))]
    if kind == "LSTM":
        hx.append(rng.standard_normal((states, 2, 4)))
    _check(ours, theirs, x, tuple(hx) if kind == "LSTM" else (hx[0],))
    _check(getattr(nn, kind)(**args), getattr(torch.nn, kind)(**args), x)  # zero initial state


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_unbatched_and_relu_and_no_bias(kind):
    extra = dict(nonlinearity="relu") if kind == "RNN" else {}
    ours = getattr(nn, kind)(3, 4, bias=False, **extra)
    theirs = getattr(torch.nn, kind)(3, 4, bias=False, **extra)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    _check(ours, theirs, np.random.default_rng(2).standard_normal((6, 3)))


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(kind, batched):
    ours, theirs = getattr(nn, kind)(3, 5), getattr(torch.nn, kind)(3, 5)
    rng = np.random.default_rng(3)
    lead = (4,) if batched else ()
    x = rng.standard_normal(lead + (3,))
    if kind == "LSTMCell":
        _check(ours, theirs, x, (rng.standard_normal(lead + (5,)),
                                 rng.standard_normal(lead + (5,))))
    else:
        _check(ours, theirs, x, (rng.standard_normal(lead + (5,)),))


def test_dropout_between_layers_only_in_training():
    cr.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = cr.tensor(np.random.default_rng(4).standard_normal((5, 2, 3)))
    lstm.eval()
    first, second = lstm(x)[0].numpy(), lstm(x)[0].numpy()
    assert np.array_equal(first, second)
    lstm.train()
    assert not np.array_equal(lstm(x)[0].numpy(), first)


def test_bad_arguments_name_what_is_wrong():
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"expected input \(L, N, 3\)"):
        nn.LSTM(3, 4)(cr.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="initial state"):
        nn.GRU(3, 4)(cr.zeros(5, 2, 3), cr.zeros(2, 2, 4))

"""scaled_dot_product_attention, MultiheadAttention, TransformerEncoderLayer/Encoder against torch
with torch's state_dict loaded as it is: outputs, attention weights and every gradient (float64)."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn

RNG = np.random.default_rng(0)


def _load(ours, theirs):
    for p in [*ours.parameters(), *ours.buffers()]:
        p.data = p.data.astype(np.float64)
    theirs.double()
    missing, unexpected = ours.load_state_dict(
        {k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert not missing and not unexpected


def _grads_match(ours, theirs, out, expected, inputs, tinputs):
    w = RNG.standard_normal(out.shape)
    cr.sum(out * cr.tensor(w)).backward()
    (expected * torch.tensor(w)).sum().backward()
    for a, b in zip(inputs, tinputs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("mask", ["none", "causal", "bool", "float"])
def test_scaled_dot_product_attention_matches_torch(mask):
    q, k, v = RNG.standard_normal((3, 2, 3, 5, 4))
    kwargs, tkwargs = {}, {}
    if mask == "causal":
        kwargs = tkwargs = {"is_causal": True}
    elif mask == "bool":
        m = RNG.random((5, 5)) > 0.4
        np.fill_diagonal(m, True)
        kwargs, tkwargs = {"attn_mask": m}, {"attn_mask": torch.tensor(m)}
    elif mask == "float":
        m = RNG.standard_normal((5, 5))
        kwargs, tkwargs = {"attn_mask": m}, {"attn_mask": torch.tensor(m)}
    xs = [cr.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = cr.scaled_dot_product_attention(*xs, **kwargs)
    expected = torch.nn.functional.scaled_dot_product_attention(*ts, **tkwargs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    _grads_match(nn.Module(), torch.nn.Module(), out, expected, xs, ts)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "padding+causal", "float"])
def test_multihead_attention_matches_torch(batch_first, masks):
    ours = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    _load(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    shape_q, shape_kv = ((3, 4, 8), (3, 6, 8)) if batch_first else ((4, 3, 8), (6, 3, 8))
    q, k, v = RNG.standard_normal(shape_q), *RNG.standard_normal((2,) + shape_kv)
    kwargs, tkwargs = {}, {}
    if masks == "padding+causal":
        padding = np.zeros((3, 6), dtype=bool)
        padding[0, 4:] = True
        causal = np.triu(np.ones((4, 6), dtype=bool), 1)
        kwargs = {"key_padding_mask": padding, "attn_mask": causal}
        tkwargs = {"key_padding_mask": torch.tensor(padding), "attn_mask": torch.tensor(causal)}
    elif masks == "float":
        m = RNG.standard_normal((6, 4, 6))  # (N * heads, L, S)
        kwargs, tkwargs = {"attn_mask": m}, {"attn_mask": torch.tensor(m)}
    xs = [cr.tensor(a, requires_grad=True) for a in (q, k, v)]
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out, weights = ours(*xs, **kwargs)
    expected, expected_weights = theirs(*ts, **tkwargs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    _grads_match(ours, theirs, out, expected, xs, ts)


def test_multihead_attention_unbatched_and_per_head_weights():
    ours, theirs = nn.MultiheadAttention(6, 3), torch.nn.MultiheadAttention(6, 3)
    _load(ours, theirs)
    x = RNG.standard_normal((5, 6))
    out, w = ours(cr.tensor(x), cr.tensor(x), cr.tensor(x), average_attn_weights=False)
    t = torch.tensor(x)
    expected, expected_w = theirs(t, t, t, average_attn_weights=False)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), expected_w.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert ours(cr.tensor(x), cr.tensor(x), cr.tensor(x), need_weights=False)[1] is None


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_matches_torch(norm_first, activation):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       activation=activation, norm_first=norm_first,
                                       batch_first=True)
    ours = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    tlayer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                              activation=activation, norm_first=norm_first,
                                              batch_first=True)
    theirs = torch.nn.TransformerEncoder(tlayer, 2, norm=torch.nn.LayerNorm(8),
                                         enable_nested_tensor=False)
    _load(ours, theirs)
    x = RNG.standard_normal((3, 5, 8))
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, 3:] = True
    xs, ts = [cr.tensor(x, requires_grad=True)], [torch.tensor(x, requires_grad=True)]
    out = ours(xs[0], src_key_padding_mask=padding)
    expected = theirs(ts[0], src_key_padding_mask=torch.tensor(padding))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    _grads_match(ours, theirs, out, expected, xs, ts)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dim=8"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
    with pytest.raises(ValueError, match="query"):
        cr.scaled_dot_product_attention(cr.zeros(2, 3), cr.zeros(2, 4), cr.zeros(2, 4))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_matches_torch(norm_first):
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       norm_first=norm_first, batch_first=True)
    ours = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8))
    tlayer = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                              norm_first=norm_first, batch_first=True)
    theirs = torch.nn.TransformerDecoder(tlayer, 2, norm=torch.nn.LayerNorm(8))
    _load(ours, theirs)
    tgt, memory = RNG.standard_normal((3, 4, 8)), RNG.standard_normal((3, 6, 8))
    padding = np.zeros((3, 6), dtype=bool)
    padding[2, 4:] = True
    xs = [cr.tensor(tgt, requires_grad=True), cr.tensor(memory, requires_grad=True)]
    ts = [torch.tensor(tgt, requires_grad=True), torch.tensor(memory, requires_grad=True)]
    causal = np.triu(np.ones((4, 4), dtype=bool), 1)
    out = ours(*xs, tgt_mask=causal, memory_key_padding_mask=padding)
    expected = theirs(*ts, tgt_mask=torch.tensor(causal),
                      memory_key_padding_mask=torch.tensor(padding))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-12)
    _grads_match(ours, theirs, out, expected, xs, ts)


def test_bilinear_matches_torch():
    ours, theirs = nn.Bilinear(3, 4, 5), torch.nn.Bilinear(3, 4, 5)
    _load(ours, theirs)
    a, b = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 4))
    xs = [cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)]
    ts = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    out, expected = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10)
    _grads_match(ours, theirs, out, expected, xs, ts)

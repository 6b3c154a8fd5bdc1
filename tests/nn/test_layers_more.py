"""Embedding, GroupNorm, InstanceNorm, Dropout2d, Unflatten, CosineSimilarity, PairwiseDistance,
ModuleDict, ParameterList, ParameterDict: against torch.nn with copied weights (outputs and every
gradient)."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn


def _copy_weights(ours: nn.Module, theirs: torch.nn.Module) -> None:
    state = {k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


def _compare(ours, theirs, *inputs, grad_inputs=True, rtol=1e-10):
    """Forward on float64 inputs; backward of sum(out * fixed weights); compare everything."""
    rng = np.random.default_rng(0)
    xs = [cr.tensor(x, requires_grad=grad_inputs and x.dtype.kind == "f") for x in inputs]
    ts = [torch.tensor(x, requires_grad=grad_inputs and x.dtype.kind == "f") for x in inputs]
    out, expected = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=1e-12)
    weights = rng.standard_normal(out.shape)
    cr.sum(out * cr.tensor(weights)).backward()
    (expected * torch.tensor(weights)).sum().backward()
    for x, t in zip(xs, ts):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=rtol,
                                   atol=1e-12, err_msg=name)


def _double(module):
    for t in [*module.parameters(), *module.buffers()]:
        t.data = t.data.astype(np.float64)
    return module


def test_embedding_with_padding_idx_matches_torch():
    cr.manual_seed(0)
    ours = _double(nn.Embedding(6, 4, padding_idx=2))
    assert (ours.weight.numpy()[2] == 0).all()
    theirs = torch.nn.Embedding(6, 4, padding_idx=2).double()
    _copy_weights(ours, theirs)
    _compare(ours, theirs, np.array([[0, 2, 5], [2, 2, 1]]))
    assert (ours.weight.grad.numpy()[2] == 0).all()  # the padding row learns nothing
    with pytest.raises(IndexError, match="indices must be in"):
        ours(cr.tensor([6]))
    with pytest.raises(TypeError, match="integers"):
        ours(cr.tensor([1.0]))


@pytest.mark.parametrize("shape", [(3, 6, 5), (2, 6, 3, 4)])
def test_group_norm_matches_torch(shape):
    ours = _double(nn.GroupNorm(3, 6))
    theirs = torch.nn.GroupNorm(3, 6).double()
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours.load_state_dict({k: cr.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    _compare(ours, theirs, np.random.default_rng(1).standard_normal(shape))
    with pytest.raises(ValueError, match="divide"):
        nn.GroupNorm(4, 6)


@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (3, 4, 7)),
                                       ("InstanceNorm2d", (2, 4, 3, 5))])
@pytest.mark.parametrize("affine,track", [(False, False), (True, True)])
def test_instance_norm_matches_torch_in_training_and_eval(cls, shape, affine, track):
    ours = _double(getattr(nn, cls)(4, affine=affine, track_running_stats=track))
    theirs = getattr(torch.nn, cls)(4, affine=affine, track_running_stats=track).double()
    if affine:
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
    ours.load_state_dict({k: cr.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(2).standard_normal(shape) * 3 + 1
    _compare(ours, theirs, x)
    for name in ("running_mean", "running_var", "num_batches_tracked") if track else ():
        np.testing.assert_allclose(getattr(ours, name).numpy(),
                                   getattr(theirs, name).numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(cr.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    layer = nn.Dropout2d(0.5)
    x = cr.ones(8, 16, 3, 3)
    y = layer(x).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # whole channels
    assert 0.3 < (per_channel[:, :, 0] == 0).mean() < 0.7
    layer.eval()
    assert layer(x) is x


def test_unflatten_cosine_similarity_pairwise_distance():
    x = np.random.default_rng(3).standard_normal((2, 12))
    _compare(nn.Unflatten(1, (3, 4)), torch.nn.Unflatten(1, (3, 4)), x)
    a, b = np.random.default_rng(4).standard_normal((2, 5, 6))
    _compare(nn.CosineSimilarity(dim=1), torch.nn.CosineSimilarity(dim=1), a, b)
    _compare(nn.PairwiseDistance(p=1.5, keepdim=True),
             torch.nn.PairwiseDistance(p=1.5, keepdim=True), a, b)
    inf = cr.pairwise_distance(cr.tensor(a), cr.tensor(b), p=float("inf"))
    np.testing.assert_allclose(inf.numpy(), torch.nn.functional.pairwise_distance(
        torch.tensor(a), torch.tensor(b), p=float("inf")).numpy(), rtol=1e-12)


def test_containers_register_like_torch():
    ours = nn.ModuleDict({"enc": nn.Linear(2, 3), "dec": nn.Linear(3, 2)})
    theirs = torch.nn.ModuleDict({"enc": torch.nn.Linear(2, 3), "dec": torch.nn.Linear(3, 2)})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "enc" in ours and len(ours) == 2 and list(ours) == ["enc", "dec"]
    plist = nn.ParameterList([cr.ones(2), nn.Parameter(cr.zeros(3))])
    tlist = torch.nn.ParameterList([torch.ones(2), torch.nn.Parameter(torch.zeros(3))])
    assert list(plist.state_dict()) == list(tlist.state_dict()) == ["0", "1"]
    assert all(p.requires_grad for p in plist.parameters())
    pdict = nn.ParameterDict({"scale": cr.ones(1)})
    assert [name for name, _ in pdict.named_parameters()] == ["scale"]
    with pytest.raises(TypeError, match="str -> Module"):
        ours["x"] = 3


@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation",
                         [(1, 0, 0, 1, 1), (2, 1, 1, 2, 1), (3, 2, 0, 1, 2)])
def test_conv_transpose1d_matches_torch(stride, padding, output_padding, groups, dilation):
    args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                dilation=dilation)
    ours = _double(nn.ConvTranspose1d(4, 6, 3, **args))
    theirs = torch.nn.ConvTranspose1d(4, 6, 3, **args).double()
    _copy_weights(ours, theirs)
    _compare(ours, theirs, np.random.default_rng(5).standard_normal((2, 4, 7)))


@pytest.mark.parametrize("args", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=(2, 3), stride=(1, 2))])
def test_max_pool_indices_and_max_unpool_match_torch(args):
    x = np.random.default_rng(6).standard_normal((2, 3, 7, 6))
    x[0, 0, :2, :2] = 5.0  # a tie: the first maximum's index, as torch
    pooled, indices = nn.MaxPool2d(return_indices=True, **args)(cr.tensor(x))
    tpooled, tindices = torch.nn.MaxPool2d(return_indices=True, **args)(torch.tensor(x))
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    assert indices.dtype == np.int64
    values = cr.tensor(pooled.numpy(), requires_grad=True)
    tvalues = torch.tensor(pooled.numpy(), requires_grad=True)
    out = nn.MaxUnpool2d(**args)(values, indices, output_size=(7, 6))
    expected = torch.nn.MaxUnpool2d(**args)(tvalues, tindices, output_size=(7, 6))
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    weights = np.random.default_rng(7).standard_normal(out.shape)
    cr.sum(out * cr.tensor(weights)).backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(values.grad.numpy(), tvalues.grad.numpy(), rtol=1e-12)
    _, strict_indices = cr.max_pool2d(cr.tensor(x).to("array_api_strict"), return_indices=True,
                                      **args)
    np.testing.assert_array_equal(strict_indices.numpy(), tindices.numpy())  # generic kernel
    with pytest.raises(cr.ShapeError, match="indices"):
        cr.max_unpool2d(pooled, indices[:1], **args)


@pytest.mark.parametrize("kind,args", [
    ("Conv3d", dict(in_channels=4, out_channels=6, kernel_size=(3, 2, 3), stride=(2, 1, 1),
                    padding=1, dilation=(1, 2, 1), groups=2)),
    ("ConvTranspose3d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                             output_padding=1, groups=2)),
    ("MaxPool3d", dict(kernel_size=2, stride=(1, 2, 2))),
    ("AvgPool3d", dict(kernel_size=(2, 3, 2), padding=1, count_include_pad=False)),
])
def test_3d_layers_match_torch(kind, args):
    ours, theirs = getattr(nn, kind)(**args), getattr(torch.nn, kind)(**args).double()
    _double(ours)
    if list(ours.parameters()):
        _copy_weights(ours, theirs)
    _compare(ours, theirs, np.random.default_rng(8).standard_normal((2, 4, 5, 6, 5)))

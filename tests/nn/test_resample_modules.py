"""The resampling modules against torch.nn: same input, same outputs and input gradients."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

# (name, chainrule module, torch module, input shape)
# fmt: off
MODULES = [
    ("Upsample_nearest",  lambda: nn.Upsample(scale_factor=2), lambda: tnn.Upsample(scale_factor=2),
                          (1, 2, 3, 2)),
    ("Upsample_size",     lambda: nn.Upsample(size=(5, 3), mode="nearest-exact"),
                          lambda: tnn.Upsample(size=(5, 3), mode="nearest-exact"), (1, 2, 3, 4)),
    ("Upsample_bilinear", lambda: nn.Upsample(scale_factor=(1.5, 2.5), mode="bilinear"),
                          lambda: tnn.Upsample(scale_factor=(1.5, 2.5), mode="bilinear"),
                          (2, 1, 3, 2)),
    ("Upsample_corners",  lambda: nn.Upsample(size=7, mode="linear", align_corners=True),
                          lambda: tnn.Upsample(size=7, mode="linear", align_corners=True),
                          (2, 3, 4)),
    ("Upsample_bicubic",  lambda: nn.Upsample(size=(4, 6), mode="bicubic"),
                          lambda: tnn.Upsample(size=(4, 6), mode="bicubic"), (1, 1, 3, 3)),
    ("Upsample_trilinear", lambda: nn.Upsample(scale_factor=1.5, mode="trilinear"),
                          lambda: tnn.Upsample(scale_factor=1.5, mode="trilinear"),
                          (1, 1, 2, 3, 2)),
    ("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(size=(4, 5)),
                          lambda: tnn.UpsamplingNearest2d(size=(4, 5)), (1, 2, 3, 3)),
    ("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2),
                          lambda: tnn.UpsamplingBilinear2d(scale_factor=2), (1, 2, 3, 3)),
    ("Unfold",            lambda: nn.Unfold((2, 3), dilation=(2, 1), padding=1, stride=2),
                          lambda: tnn.Unfold((2, 3), dilation=(2, 1), padding=1, stride=2),
                          (2, 2, 5, 4)),
    ("Unfold_unbatched",  lambda: nn.Unfold(2), lambda: tnn.Unfold(2), (3, 3, 4)),
    ("Fold",              lambda: nn.Fold((4, 5), 2, stride=(1, 2), padding=(0, 1)),
                          lambda: tnn.Fold((4, 5), 2, stride=(1, 2), padding=(0, 1)),
                          (2, 12, 9)),
    ("ZeroPad2d",         lambda: nn.ZeroPad2d((1, 2, 0, 3)), lambda: tnn.ZeroPad2d((1, 2, 0, 3)),
                          (1, 2, 3, 3)),
    ("ZeroPad2d_int",     lambda: nn.ZeroPad2d(1), lambda: tnn.ZeroPad2d(1), (2, 3, 2)),
    ("ZeroPad1d",         lambda: nn.ZeroPad1d((2, 0)), lambda: tnn.ZeroPad1d((2, 0)), (2, 3)),
    ("ConstantPad3d",     lambda: nn.ConstantPad3d(1, 2.5), lambda: tnn.ConstantPad3d(1, 2.5),
                          (1, 1, 2, 2, 2)),
    ("ReflectionPad2d",   lambda: nn.ReflectionPad2d((2, 1, 0, 2)),
                          lambda: tnn.ReflectionPad2d((2, 1, 0, 2)), (1, 2, 3, 4)),
    ("ReflectionPad2d_int", lambda: nn.ReflectionPad2d(2), lambda: tnn.ReflectionPad2d(2),
                          (2, 3, 4)),
    ("ReflectionPad1d",   lambda: nn.ReflectionPad1d((1, 2)), lambda: tnn.ReflectionPad1d((1, 2)),
                          (2, 2, 4)),
    ("ReflectionPad3d",   lambda: nn.ReflectionPad3d(1), lambda: tnn.ReflectionPad3d(1),
                          (1, 1, 2, 3, 2)),
    ("ReplicationPad2d",  lambda: nn.ReplicationPad2d((3, 0, 1, 2)),
                          lambda: tnn.ReplicationPad2d((3, 0, 1, 2)), (1, 2, 3, 2)),
    ("ReplicationPad1d",  lambda: nn.ReplicationPad1d(2), lambda: tnn.ReplicationPad1d(2),
                          (2, 3)),
    ("ReplicationPad3d",  lambda: nn.ReplicationPad3d((1, 0, 0, 1, 2, 0)),
                          lambda: tnn.ReplicationPad3d((1, 0, 0, 1, 2, 0)), (1, 1, 2, 2, 3)),
    ("CircularPad2d",     lambda: nn.CircularPad2d((1, 3, 2, 0)),
                          lambda: tnn.CircularPad2d((1, 3, 2, 0)), (1, 2, 3, 4)),
    ("CircularPad1d",     lambda: nn.CircularPad1d(2), lambda: tnn.CircularPad1d(2), (1, 2, 3)),
    ("CircularPad3d",     lambda: nn.CircularPad3d(1), lambda: tnn.CircularPad3d(1),
                          (1, 1, 2, 2, 2)),
]
# fmt: on


@pytest.mark.parametrize("name, make_ours, make_theirs, shape", MODULES,
                         ids=[row[0] for row in MODULES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_module_matches_torch(name, make_ours, make_theirs, shape, dtype):
    ours, theirs = make_ours(), make_theirs()
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    x_ours, x_theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(x_ours), theirs(x_theirs)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    tight = dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(),
                               rtol=1e-12 if tight else 1e-5, atol=1e-13 if tight else 1e-6)
    projection = np.random.default_rng(2).standard_normal(expected.shape).astype(dtype)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(),
                               rtol=1e-12 if tight else 1e-5, atol=1e-13 if tight else 1e-6)


def test_modules_have_no_parameters_and_show_their_arguments():
    assert repr(nn.Upsample(scale_factor=2, mode="bilinear")) == \
        "Upsample(scale_factor=2.0, mode='bilinear')"
    assert repr(nn.Upsample(size=(3, 4))) == "Upsample(size=(3, 4), mode='nearest')"
    assert repr(nn.ReflectionPad2d(1)) == "ReflectionPad2d(padding=(1, 1, 1, 1))"
    assert repr(nn.ConstantPad1d((1, 2), 0.5)) == "ConstantPad1d(padding=(1, 2), value=0.5)"
    assert repr(nn.Unfold(2)) == "Unfold(kernel_size=2, dilation=1, padding=0, stride=1)"
    for module in (nn.Upsample(size=2), nn.Unfold(2), nn.Fold(3, 2), nn.ZeroPad2d(1),
                   nn.CircularPad3d(1)):
        assert list(module.parameters()) == []


def test_padding_modules_check_their_widths():
    with pytest.raises(ValueError, match="4 ints"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="2 ints"):
        nn.ZeroPad1d((1, 2, 3))
    with pytest.raises(ValueError, match="less than the length 2"):
        nn.ReflectionPad2d(2)(cr.tensor(np.zeros((1, 1, 2, 4))))


def test_upsample_in_a_network_trains():
    # Upsample + Unfold/Fold inside a Sequential: gradients reach the conv weights
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Upsample(scale_factor=2,
                                                                   mode="bilinear"),
                        nn.ReflectionPad2d(1))
    x = cr.tensor(np.random.default_rng(0).standard_normal((2, 1, 3, 3)))
    out = net(x)
    assert out.shape == (2, 2, 8, 8)
    cr.sum(out * out).backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0
               for p in net.parameters())

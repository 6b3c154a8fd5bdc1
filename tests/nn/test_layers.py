"""Every layer's forward and gradients against torch.nn with copied weights (float64)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

# (name, chainrule module, torch module, input shape); weights are copied from ours into torch's
# fmt: off
LAYERS = [
    ("Linear",           lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    ("Linear_nobias_3d", lambda: nn.Linear(5, 3, bias=False),
                         lambda: tnn.Linear(5, 3, bias=False), (2, 4, 5)),
    ("Conv1d",           lambda: nn.Conv1d(2, 4, 3, stride=2, padding=1),
                         lambda: tnn.Conv1d(2, 4, 3, stride=2, padding=1), (2, 2, 9)),
    ("Conv2d",           lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
                         lambda: tnn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 6, 5)),
    ("Conv2d_dilated",   lambda: nn.Conv2d(2, 3, (2, 3), stride=(2, 1), dilation=2),
                         lambda: tnn.Conv2d(2, 3, (2, 3), stride=(2, 1), dilation=2), (1, 2, 9, 8)),
    ("ConvTranspose2d",
     lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
     lambda: tnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
     (2, 4, 3, 4)),
    ("MaxPool1d",        lambda: nn.MaxPool1d(2), lambda: tnn.MaxPool1d(2), (2, 3, 8)),
    ("MaxPool2d",        lambda: nn.MaxPool2d(3, stride=2, padding=1),
                         lambda: tnn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    ("AvgPool1d",        lambda: nn.AvgPool1d(3, stride=2),
                         lambda: tnn.AvgPool1d(3, stride=2), (2, 3, 9)),
    ("AvgPool2d",        lambda: nn.AvgPool2d(2, ceil_mode=True),
                         lambda: tnn.AvgPool2d(2, ceil_mode=True), (2, 3, 5, 5)),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(1),
                          lambda: tnn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    ("Flatten",          lambda: nn.Flatten(), lambda: tnn.Flatten(), (2, 3, 2, 2)),
    ("BatchNorm1d",      lambda: nn.BatchNorm1d(3), lambda: tnn.BatchNorm1d(3), (5, 3)),
    ("BatchNorm1d_3d",   lambda: nn.BatchNorm1d(3), lambda: tnn.BatchNorm1d(3), (4, 3, 6)),
    ("BatchNorm2d",      lambda: nn.BatchNorm2d(3, momentum=0.3),
                         lambda: tnn.BatchNorm2d(3, momentum=0.3), (4, 3, 5, 5)),
    ("LayerNorm",        lambda: nn.LayerNorm((3, 4)), lambda: tnn.LayerNorm((3, 4)), (2, 3, 4)),
    ("ReLU",             lambda: nn.ReLU(), lambda: tnn.ReLU(), (3, 4)),
    ("LeakyReLU",        lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), (3, 4)),
    ("PReLU",            lambda: nn.PReLU(), lambda: tnn.PReLU(), (3, 4)),
    ("PReLU_channels",   lambda: nn.PReLU(3, init=0.1), lambda: tnn.PReLU(3, init=0.1), (2, 3, 4)),
    ("Sigmoid",          lambda: nn.Sigmoid(), lambda: tnn.Sigmoid(), (3, 4)),
    ("Tanh",             lambda: nn.Tanh(), lambda: tnn.Tanh(), (3, 4)),
    ("Softplus",         lambda: nn.Softplus(), lambda: tnn.Softplus(), (3, 4)),
    ("LogSigmoid",       lambda: nn.LogSigmoid(), lambda: tnn.LogSigmoid(), (3, 4)),
    ("Softmax",          lambda: nn.Softmax(dim=1), lambda: tnn.Softmax(dim=1), (3, 4)),
    ("LogSoftmax",       lambda: nn.LogSoftmax(dim=-1), lambda: tnn.LogSoftmax(dim=-1), (3, 4)),
    ("Sequential",       lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)),
                         lambda: tnn.Sequential(tnn.Linear(4, 6), tnn.Tanh(), tnn.Linear(6, 2)),
                         (5, 4)),
]
# fmt: on


def _copy_weights(ours: nn.Module, theirs) -> None:
    state = {k: torch.tensor(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


@pytest.mark.parametrize("name, make_ours, make_theirs, shape", LAYERS,
                         ids=[row[0] for row in LAYERS])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_matches_torch(name, make_ours, make_theirs, shape, mode):
    cr.manual_seed(0)
    ours, theirs = make_ours(), make_theirs().double()
    _copy_weights(ours, theirs)
    getattr(ours, mode)()
    getattr(theirs, mode)()
    x = np.random.default_rng(1).standard_normal(shape)
    x_ours, x_theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = _to_float64(ours)
    out, expected = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    projection = np.random.default_rng(2).standard_normal(expected.shape)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), rtol=1e-9, atol=1e-12)
    their_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), their_params[pname].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=pname)
    their_buffers = dict(theirs.named_buffers())
    for bname, b in ours.named_buffers():  # running statistics after one training step
        np.testing.assert_allclose(b.numpy(), their_buffers[bname].numpy(), rtol=1e-10,
                                   err_msg=bname)


def _to_float64(module: nn.Module) -> nn.Module:
    for p in list(module.parameters()) + list(module.buffers()):
        p.data = p.data.astype(np.float64)
    return module


def test_low_rank_linear_is_u_v_product():
    layer = nn.LowRankLinear(6, 4, rank=2)
    assert sum(p.size for p in layer.parameters()) == (6 + 4) * 2 + 4
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    w = layer.U.numpy() @ layer.V.numpy()
    np.testing.assert_allclose(layer(cr.tensor(x)).numpy(), x @ w.T + layer.bias.numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rank"):
        nn.LowRankLinear(3, 2, rank=3)


def test_residual_adds_the_input():
    f = nn.Linear(3, 3)
    block = nn.Residual(f)
    x = cr.randn(2, 3)
    np.testing.assert_allclose(block(x).numpy(), x.numpy() + f(x).numpy(), rtol=1e-6)


def test_maxout_abs_threshold_modules():
    x = cr.tensor([[1.0, -2.0, 3.0, 0.0]])
    assert nn.Maxout(2)(x).tolist() == [[1.0, 3.0]]
    assert nn.Abs()(x).tolist() == [[1.0, 2.0, 3.0, 0.0]]
    assert nn.Step()(x).tolist() == [[1.0, 0.0, 1.0, 1.0]]
    assert nn.Heaviside()(x).tolist() == [[1.0, 0.0, 1.0, 0.5]]
    assert nn.Sign()(x).tolist() == [[1.0, -1.0, 1.0, 0.0]]
    y = cr.tensor([0.5], requires_grad=True)
    nn.Step(surrogate_slope=4.0)(y).sum().backward()
    s = 1 / (1 + np.exp(-2.0))
    assert y.grad.item() == pytest.approx(4 * s * (1 - s), rel=1e-6)


def test_dropout_train_and_eval():
    layer = nn.Dropout(0.25)
    x = cr.ones(200, 100)
    cr.manual_seed(0)
    y = layer(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert layer.eval()(x) is x


# (chainrule loss, torch loss, input, target)
LOSSES = [
    ("MSELoss", nn.MSELoss(), tnn.MSELoss(), (4, 3), "float"),
    ("MSELoss_sum", nn.MSELoss(reduction="sum"), tnn.MSELoss(reduction="sum"), (4, 3), "float"),
    ("BCELoss", nn.BCELoss(), tnn.BCELoss(), (4, 3), "prob"),
    ("BCEWithLogitsLoss", nn.BCEWithLogitsLoss(pos_weight=cr.tensor(np.array([1.0, 2.0, 0.5]))),
     tnn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)),
     (4, 3), "prob"),
    ("CrossEntropyLoss", nn.CrossEntropyLoss(label_smoothing=0.1),
     tnn.CrossEntropyLoss(label_smoothing=0.1), (5, 4), "class"),
    ("CrossEntropyLoss_none", nn.CrossEntropyLoss(reduction="none"),
     tnn.CrossEntropyLoss(reduction="none"), (5, 4), "class"),
    ("NLLLoss", nn.NLLLoss(), tnn.NLLLoss(), (5, 4), "class"),
]


@pytest.mark.parametrize("name, ours, theirs, shape, kind", LOSSES, ids=[row[0] for row in LOSSES])
def test_loss_modules_match_torch(name, ours, theirs, shape, kind):
    rng = np.random.default_rng(4)
    x = rng.uniform(0.05, 0.95, shape) if name == "BCELoss" else rng.standard_normal(shape)
    target = {"float": rng.standard_normal(shape), "prob": rng.uniform(0, 1, shape),
              "class": rng.integers(0, shape[1], shape[0])}[kind]
    x_ours, x_theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(x_ours, target), theirs(x_theirs, torch.tensor(target))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10)
    cr.sum(out).backward()
    expected.sum().backward()
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(50, 30), 50),
    (lambda: nn.Conv2d(4, 8, 3), 36),
    (lambda: nn.ConvTranspose2d(4, 6, 3), 54),
])
def test_default_initialisation_is_pytorchs(make, fan_in):
    layer = make()
    bound = 1 / np.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.numpy()).max() <= bound + 1e-7
    assert np.abs(layer.weight.numpy()).max() > 0.9 * bound  # fills the range, not a constant
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad


def test_init_functions_have_the_documented_spread():
    cr.manual_seed(5)
    w = nn.Parameter(cr.zeros(400, 300).data)
    nn.init.xavier_uniform_(w)
    assert abs(w.numpy().std() - np.sqrt(2 / 700)) < 0.02 * np.sqrt(2 / 700) * 5
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.02 * np.sqrt(2 / 300) * 5
    nn.init.constant_(w, 0.3)
    assert np.all(w.numpy() == np.float32(0.3))
    for name in ("linear", "tanh", "relu", "sigmoid"):
        assert nn.init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))

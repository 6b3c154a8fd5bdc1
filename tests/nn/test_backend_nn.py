"""Modules and optimizers on every backend: ``Module.to`` moves parameters in place, layers made
with ``device=`` start from the same values as on NumPy, a small MLP trains on array_api_strict
(and CuPy where it runs) exactly as on NumPy, optimizer state lives on the parameters' device, and
state dicts cross devices."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim

DEVICES = ["array_api_strict"] + (["cuda"] if "cupy" in cr.backends.available() else [])
TOL = 1e-6

RNG = np.random.default_rng(3)
INPUTS = RNG.standard_normal((8, 4)).astype(np.float32)
TARGETS = RNG.standard_normal((8, 2)).astype(np.float32)

#: name -> optimizer factory; the state entries that must live on the parameters' device
OPTIMIZERS = {
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), ("momentum_buffer",)),
    "adam":         (lambda ps: optim.Adam(ps, lr=0.01),             ("exp_avg", "exp_avg_sq")),
}


def same_type(device) -> str:
    return cr.backends.Device(device).type


def mlp(seed: int = 0, device=None) -> nn.Module:
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16, device=device), nn.ReLU(),
                         nn.Linear(16, 2, device=device))


def host_values(module: nn.Module) -> dict:
    return {name: np.array(t.numpy()) for name, t in module.state_dict().items()}


def assert_same_values(a: nn.Module, b: nn.Module, tol: float = 0.0) -> None:
    values_a, values_b = host_values(a), host_values(b)
    assert values_a.keys() == values_b.keys()
    for name in values_a:
        np.testing.assert_allclose(values_a[name], values_b[name], rtol=tol, atol=tol,
                                   err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_to_moves_every_parameter_buffer_and_grad_keeping_identity(device):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    before = host_values(model)
    params, buffers = list(model.parameters()), list(model.buffers())
    for p in params:
        p.grad = cr.ones_like(p)
    assert model.to(device) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert [id(b) for b in model.buffers()] == [id(b) for b in buffers]
    for t in (*params, *buffers, *(p.grad for p in params)):
        assert t.device.type == same_type(device)
    assert all(p.requires_grad and p.is_leaf for p in params)
    np.testing.assert_equal(host_values(model), before)
    assert model.cpu() is model
    assert all(t.device == "cpu" for t in (*model.parameters(), *model.buffers()))
    np.testing.assert_equal(host_values(model), before)


@pytest.mark.parametrize("device", DEVICES)
def test_device_argument_and_default_device_give_the_numpy_initial_values(device):
    on_numpy = mlp(seed=5)
    by_argument = mlp(seed=5, device=device)
    with cr.backends.default_device(device):
        by_default = mlp(seed=5)
    for model in (by_argument, by_default):
        assert all(p.device.type == same_type(device) for p in model.parameters())
        assert_same_values(model, on_numpy)
    assert all(p.device == "cpu" for p in mlp(seed=5, device="cpu").parameters())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layer", [
    lambda d: nn.Conv1d(2, 3, 3, device=d),
    lambda d: nn.Conv2d(2, 3, 3, device=d),
    lambda d: nn.ConvTranspose2d(2, 3, 3, device=d),
    lambda d: nn.BatchNorm1d(3, device=d),
    lambda d: nn.BatchNorm2d(3, device=d),
    lambda d: nn.LayerNorm(3, device=d),
    lambda d: nn.LowRankLinear(4, 3, rank=2, device=d),
    lambda d: nn.PReLU(3, device=d),
], ids=["conv1d", "conv2d", "conv_transpose2d", "batchnorm1d", "batchnorm2d", "layernorm",
        "lowrank", "prelu"])
def test_layers_with_a_device_argument(device, layer):
    cr.manual_seed(1)
    on_numpy = layer("cpu")
    cr.manual_seed(1)
    on_device = layer(device)
    assert all(t.device.type == same_type(device) for t in on_device.state_dict().values())
    assert_same_values(on_device, on_numpy)


def train(device: str, make_optimizer, steps: int = 5) -> tuple:
    """(model, optimizer, losses) after ``steps`` steps of MSE regression on ``device``."""
    model = mlp(seed=0).to(device)
    optimizer = make_optimizer(list(model.parameters()))
    x, y = cr.tensor(INPUTS, device=device), cr.tensor(TARGETS, device=device)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = cr.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, optimizer, losses


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_on_the_device_equals_numpy(device, name):
    make, state_keys = OPTIMIZERS[name]
    model, optimizer, losses = train(device, make)
    model_np, _, losses_np = train("cpu", make)
    np.testing.assert_allclose(losses, losses_np, rtol=TOL, atol=TOL)
    assert_same_values(model, model_np, TOL)
    for p in model.parameters():
        assert p.device.type == same_type(device)
        for key in state_keys:
            assert optimizer.state[p][key].device == p.device, key


@pytest.mark.parametrize("device", DEVICES)
def test_zero_grad_in_place_keeps_the_device(device):
    model, optimizer, _ = train(device, OPTIMIZERS["sgd_momentum"][0], steps=1)
    optimizer.zero_grad(set_to_none=False)
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad.device == p.device
        np.testing.assert_equal(p.grad.numpy(), 0)


@pytest.mark.parametrize("device", DEVICES)
def test_module_state_dict_round_trip_across_devices(device):
    source = mlp(seed=1, device=device)
    state = source.state_dict()
    assert all(t.device.type == same_type(device) for t in state.values())
    on_numpy = mlp(seed=2)
    on_numpy.load_state_dict(state)
    assert all(p.device == "cpu" for p in on_numpy.parameters())
    assert_same_values(on_numpy, source)
    back = mlp(seed=3, device=device)
    params = list(back.parameters())
    back.load_state_dict(on_numpy.state_dict())
    assert [id(p) for p in back.parameters()] == [id(p) for p in params]
    assert all(p.device.type == same_type(device) for p in back.parameters())
    assert_same_values(back, source)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_state_dict_loads_onto_the_parameters_device(device, name):
    make, state_keys = OPTIMIZERS[name]
    model, optimizer, _ = train(device, make, steps=2)
    model_np, optimizer_np, _ = train("cpu", make, steps=2)
    saved = optimizer.state_dict()  # state on the device ...
    fresh_np = make(list(model_np.parameters()))
    fresh_np.load_state_dict(saved)  # ... loaded next to NumPy parameters
    for p, p_np in zip(model.parameters(), model_np.parameters()):
        for key in state_keys:
            assert fresh_np.state[p_np][key].device == "cpu"
            np.testing.assert_allclose(fresh_np.state[p_np][key].numpy(),
                                       optimizer.state[p][key].numpy(), rtol=TOL, atol=TOL)
    fresh = make(list(model.parameters()))
    fresh.load_state_dict(optimizer_np.state_dict())  # and back onto the device
    for p in model.parameters():
        for key in state_keys:
            assert fresh.state[p][key].device == p.device

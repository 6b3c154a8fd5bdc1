"""nn and optim on every backend: the same training steps give NumPy's parameters.

A small CNN (Conv2d, ReLU, MaxPool2d, Flatten, Linear) and an MLP, initialised alike from one seed
in float64, are moved to the backend (``Module.to``), trained a few steps with SGD (momentum,
weight decay) and with Adam on batches there, and compared with the same run on NumPy: every
parameter within 1e-5 relative. Then ``training.fit`` runs one epoch on a few hundred digits
(``DataLoader(device=)`` moves each batch): the same loss and accuracy as on NumPy.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset, load_digits
from chainrule.training.fit import fit

STEPS = 3
OPTIMIZERS = {
    "sgd": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": lambda params: optim.Adam(params, lr=0.01),
}


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


MODELS = {"cnn": _cnn, "mlp": _mlp}


def _model(name: str, device: str, seed: int = 0) -> nn.Module:
    """Model ``name`` initialised from ``seed``, in float64, on ``device``."""
    cr.manual_seed(seed)
    model = MODELS[name]()
    for p in model.parameters():  # float64 on the host, so backends agree to round-off
        p.data = p.data.astype(np.float64)
    return model.to(device)


def _batches(n_batches: int = STEPS, batch: int = 8) -> list:
    """Host batches (images (batch, 1, 8, 8) float64, labels (batch,) int64)."""
    rng = np.random.default_rng(5)
    return [(rng.standard_normal((batch, 1, 8, 8)), rng.integers(0, 10, batch))
            for _ in range(n_batches)]


def _train_steps(model_name: str, optimizer_name: str, device: str) -> dict:
    """Parameters (host arrays by name) after STEPS optimizer steps on ``device``."""
    model = _model(model_name, device)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())
    for images, labels in _batches():
        optimizer.zero_grad()
        output = model(cr.tensor(images, device=device))
        loss = cr.cross_entropy(output, cr.tensor(labels, device=device))
        loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert p.device.type == device, f"{name} is on {p.device}, expected {device}"
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_training_steps_equal_numpy(backend, model_name, optimizer_name):
    got = _train_steps(model_name, optimizer_name, backend)
    want = _train_steps(model_name, optimizer_name, "cpu")
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == np.float64
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-12, err_msg=name)


def _fit_digits(device: str) -> dict:
    """One epoch of ``fit`` on 300 digits (validation: the next 100) with batches on
    ``device``; the epoch's metrics."""
    images, labels = load_digits()
    images = cr.astype(images, np.float64)
    train = TensorDataset(images[:300], labels[:300])
    val = TensorDataset(images[300:400], labels[300:400])
    model = _model("cnn", device, seed=1)
    history = fit(
        model, cr.cross_entropy, optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        DataLoader(train, batch_size=32, device=device), epochs=1,
        val_loader=DataLoader(val, batch_size=50, device=device), progress=False)
    return history[0]


def test_fit_on_digits_equals_numpy(backend):
    got, want = _fit_digits(backend), _fit_digits("cpu")
    assert got["train_accuracy"] == want["train_accuracy"]
    assert got["val_accuracy"] == want["val_accuracy"]
    assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
    assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-6)

"""Devices in PyTorch's spelling, moving tensors, DataLoader(device=), checkpoints across devices
and ``chainrule train --device``: checked on the CPU with array_api_strict standing in for a GPU."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.data import DataLoader, TensorDataset
from chainrule.training.checkpoint import load_model, load_tensors, save_model, save_tensors

STRICT = "array_api_strict"


@pytest.mark.parametrize("spec, text, kind", [
    ("cpu", "cpu", "cpu"), ("cuda", "cuda:0", "cuda"), ("cuda:1", "cuda:1", "cuda"),
    ("array_api_strict", "array_api_strict:CPU_DEVICE", "array_api_strict"),
])
def test_device_strings(spec, text, kind):
    device = cr.device(spec)
    assert str(device) == text and device.type == kind and device == spec and device == text


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "", 3])
def test_bad_device_names_the_valid_ones(spec):
    with pytest.raises((ValueError, TypeError), match="cpu"):
        cr.device(spec)


def test_available_lists_what_works_here():
    assert cr.backends.available()[:1] == ["numpy"]
    assert STRICT in cr.backends.available()


def test_to_and_back_is_differentiable_and_keeps_values():
    x = cr.tensor([1.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    y = x.to(STRICT)
    assert y.backend == STRICT and y.device == STRICT and y.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), [1.0, -2.0, 3.0])
    (y.cpu() * cr.tensor([1.0, 2.0, 3.0], dtype="float64")).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0])
    assert x.grad.backend == "numpy"


def test_tensor_device_argument_and_same_device_is_a_no_op():
    t = cr.tensor([[1, 2], [3, 4]], device=STRICT)
    assert t.backend == STRICT and t.dtype == np.int64
    assert t.to(STRICT) is t and cr.tensor([1.0]).to("cpu").backend == "numpy"


def test_mixing_devices_names_both():
    a, b = cr.tensor([1.0]), cr.tensor([1.0], device=STRICT)
    with pytest.raises(cr.BackendMismatchError, match=r"cpu \(numpy\).*array_api_strict"):
        cr.add(a, b)
    with pytest.raises(cr.BackendMismatchError, match="device1"):
        cr.add(b, cr.tensor([1.0], device="array_api_strict:device1"))


def test_python_scalars_follow_the_tensor():
    t = cr.tensor([1.0, 2.0], device=STRICT)
    out = t * 2.0 + 1
    assert out.backend == STRICT and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [3.0, 5.0])


def test_dataloader_moves_batches_and_keeps_the_dataset_on_the_host():
    images = cr.tensor(np.arange(24.0).reshape(6, 4))
    labels = cr.tensor(np.arange(6))
    loader = DataLoader(TensorDataset(images, labels), batch_size=4, device=STRICT)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 4), (2, 4)]
    assert all(x.backend == STRICT and y.backend == STRICT for x, y in batches)
    np.testing.assert_array_equal(batches[1][0].numpy(), images.numpy()[4:])
    assert images.backend == "numpy"


def test_dataloader_refuses_an_unknown_device():
    with pytest.raises(ValueError, match="DataLoader: device"):
        DataLoader(TensorDataset(cr.zeros(3)), device="tpu")


def test_checkpoints_are_written_from_host_memory_and_load_anywhere(tmp_path):
    t = cr.tensor(np.arange(6.0).reshape(2, 3), device=STRICT)
    save_tensors({"t": t}, tmp_path / "t.safetensors")
    host, _ = load_tensors(tmp_path / "t.safetensors")
    assert type(host["t"]) is np.ndarray
    np.testing.assert_array_equal(host["t"], t.numpy())
    placed, _ = load_tensors(tmp_path / "t.safetensors", map_location=STRICT)
    assert placed["t"].backend == STRICT
    np.testing.assert_array_equal(placed["t"].numpy(), t.numpy())


def test_a_model_saved_on_one_device_loads_onto_another(tmp_path):
    cr.manual_seed(0)
    model = nn.Linear(3, 2)
    save_model(model, tmp_path / "m.safetensors")
    other = nn.Linear(3, 2).to(STRICT)
    load_model(other, tmp_path / "m.safetensors")
    assert all(p.backend == STRICT for p in other.parameters())
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("device, message", [
    ("gpu", "unknown device 'gpu'"),
    ("cuda", "the cupy backend is not usable here"),
])
def test_train_device_errors_are_one_line(tmp_path, device, message):
    if device == "cuda" and "cupy" in cr.backends.available():
        pytest.skip("a GPU is present: --device cuda works here")
    result = subprocess.run([sys.executable, "-m", "chainrule", "train", "--epochs", "1",
                             "--device", device, "--out", str(tmp_path / "run"), "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]

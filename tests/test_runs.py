"""Training end to end: fit/evaluate, `chainrule train`'s run folder, exact resume, checkpoints."""

import csv
import json
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.cli import main
from chainrule.data import DataLoader, TensorDataset, load_digits, write_idx
from chainrule.training.checkpoint import (
    CheckpointError,
    load_model,
    load_optimizer,
    load_tensors,
    save_model,
    save_optimizer,
    save_tensors,
)
from chainrule.training.fit import evaluate, fit
from chainrule.training.runs import RunConfig, train_run

RUN_FILES = {"model.safetensors", "optimizer.safetensors", "config.json", "metrics.csv",
             "curves.png", "confusion.png"}


@pytest.fixture(scope="module")
def tiny_idx(tmp_path_factory):
    """200 digits written as IDX files (8x8 images as uint8 0..255)."""
    folder = tmp_path_factory.mktemp("idx")
    images, labels = load_digits()
    write_idx(folder / "images.idx.gz", (images.numpy()[:200, 0] * 255).round().astype(np.uint8))
    write_idx(folder / "labels.idx", labels.numpy()[:200].astype(np.uint8))
    return f"idx:{folder / 'images.idx.gz'},{folder / 'labels.idx'}"


def test_fit_learns_xor_and_evaluate_reports_it():
    x = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 8)
    y = cr.tensor([0, 1, 1, 0] * 8)
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=cr.Generator(0))
    seen = []
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), loader,
                  epochs=60, val_loader=loader, callbacks=[seen.append], progress=False)
    assert len(history) == 60 and seen == history
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10
    assert set(history[0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                               "lr", "seconds"}
    result = evaluate(model, loader, nn.CrossEntropyLoss())
    assert result["accuracy"] == 1.0 and result["loss"] < 0.05


def test_cli_train_writes_every_file_of_the_run_folder(tiny_idx, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", tiny_idx, "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1" in printed and "test accuracy" in printed
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 1 and config["dataset"] == tiny_idx and config["model"] == "mlp"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and float(rows[0]["train_loss"]) > 0
    for picture in ("curves.png", "confusion.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    arrays, metadata = load_tensors(out / "model.safetensors")
    assert metadata["epoch"] == "1" and "1.weight" in arrays
    assert main(["evaluate", str(out)]) == 0
    assert "precision" in capsys.readouterr().out


def test_same_seed_same_numbers(tiny_idx, tmp_path):
    config = dict(dataset=tiny_idx, epochs=2, model="cnn")
    a = train_run(RunConfig(**config), tmp_path / "a", progress=False, log=lambda *_: None)
    b = train_run(RunConfig(**config), tmp_path / "b", progress=False, log=lambda *_: None)
    assert a["test_accuracy"] == b["test_accuracy"]
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]


@pytest.mark.parametrize("model, optimizer", [("mlp", "adam"), ("cnn", "sgd")])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tiny_idx, tmp_path, model, optimizer):
    quiet = dict(progress=False, log=lambda *_: None)
    settings = dict(dataset=tiny_idx, model=model, optimizer=optimizer, lr=0.01)
    train_run(RunConfig(epochs=3, **settings), tmp_path / "straight", **quiet)
    train_run(RunConfig(epochs=1, **settings), tmp_path / "resumed", **quiet)
    result = train_run(RunConfig.load(tmp_path / "resumed"), tmp_path / "resumed", resume=True,
                       epochs=3, **quiet)
    straight, _ = load_tensors(tmp_path / "straight" / "model.safetensors")
    resumed, _ = load_tensors(tmp_path / "resumed" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]


def test_cli_resume_and_its_errors(tiny_idx, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", tiny_idx, "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert len(list(csv.DictReader((out / "metrics.csv").open()))) == 2
    assert main(["train", "--resume", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_corrupt_checkpoint_is_refused_with_a_clear_message(tiny_idx, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", tiny_idx, "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    assert main(["evaluate", str(out)]) == 2
    error = capsys.readouterr().err  # the commit record's SHA-256 catches it before parsing
    assert "model.safetensors is damaged" in error and error.count("\n") == 1
    (out / "model.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(nn.Linear(2, 2), out / "model.safetensors")


def test_a_bfloat16_checkpoint_is_refused_by_name(tmp_path):
    # torch writes bfloat16 safetensors files; NumPy has no such dtype: say so, with the tensor
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file({"weight": torch.ones(2, 2, dtype=torch.bfloat16),
                                 "bias": torch.ones(2)}, str(path))
    with pytest.raises(CheckpointError, match="tensor 'weight' is BF16.*F32"):
        load_model(nn.Linear(2, 2), path)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    save_model(nn.Linear(3, 2), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_model(nn.Linear(4, 2), tmp_path / "m.safetensors")


def test_a_crash_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_tensors({"w": np.arange(3.0)}, path)

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_tensors({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    arrays, _ = load_tensors(path)
    assert arrays["w"].tolist() == [0.0, 1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_optimizer_checkpoint_round_trip(tmp_path):
    cr.manual_seed(1)
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    x = cr.randn(4, 3)
    for _ in range(3):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    save_optimizer(opt, tmp_path / "o.safetensors")
    fresh = optim.Adam(model.parameters(), lr=0.5, amsgrad=True)
    load_optimizer(fresh, tmp_path / "o.safetensors")
    assert fresh.param_groups[0]["lr"] == 0.01 and fresh.param_groups[0]["betas"] == (0.9, 0.999)
    for p in model.parameters():
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_array_equal(np.asarray(fresh.state[p][key].data),
                                          np.asarray(opt.state[p][key].data))
        assert fresh.state[p]["step"] == opt.state[p]["step"] == 3


def _idx_dataset(folder, name, images, labels):
    write_idx(folder / f"{name}-images", images.astype(np.uint8))
    write_idx(folder / f"{name}-labels", labels.astype(np.uint8))
    return f"idx:{folder / f'{name}-images'},{folder / f'{name}-labels'}"


@pytest.mark.parametrize("n", range(6))
def test_datasets_too_small_to_split_are_refused(tmp_path, capsys, n):
    dataset = _idx_dataset(tmp_path, "few", np.zeros((n, 8, 8)), np.arange(n) % 2)
    assert main(["train", "--dataset", dataset, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"the dataset has {n} samples: too few" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("shape, model, message", [
    ((10, 1, 1), "cnn", "images of 1x1 pixels are too small for the cnn"),
    ((10, 1, 9), "cnn", "images of 1x9 pixels are too small for the cnn"),
    ((10, 300, 700), "mlp", "would need a mlp of 53,826,562 parameters, more than the 50,000,000"),
])
def test_images_the_network_cannot_take_are_refused(tmp_path, capsys, shape, model, message):
    dataset = _idx_dataset(tmp_path, "odd", np.zeros(shape), np.arange(shape[0]) % 2)
    argv = ["train", "--dataset", dataset, "--model", model, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_log_format_json_prints_one_object_per_line_with_the_csv_rows(tiny_idx, tmp_path,
                                                                      capsys):
    """--log-format json: stdout is one JSON object per line (events epoch, test; resume), the
    epoch objects carry metrics.csv's row (the csv keeps 6 significant digits)."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", tiny_idx, "--epochs", "2", "--log-format", "json",
                 "--out", str(out)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["epoch", "epoch", "test"]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    for event, row in zip(events, rows):
        assert set(row) <= set(event)
        for key, value in row.items():
            assert float(value) == pytest.approx(event[key], rel=1e-5)
    test = events[-1]
    assert 0 <= test["accuracy"] <= 1 and test["samples"] > 0 and test["folder"] == str(out)
    assert main(["train", "--resume", str(out), "--epochs", "3", "--log-format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["resume", "epoch", "test"]
    assert events[0]["after_epoch"] == 2 and events[1]["epoch"] == 3


def test_in_a_log_there_is_no_progress_bar_and_a_line_per_epoch(tiny_idx, tmp_path):
    """Without a terminal (a pipe, a log file, CI) tqdm draws nothing: no carriage returns."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "train", "--dataset",
                             tiny_idx, "--epochs", "2", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, check=True)
    assert "\r" not in result.stderr and "\r" not in result.stdout
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1"], ["epoch", "2"]]
    assert len(lines) == 3 and lines[2].startswith("test accuracy")
    bad = subprocess.run([sys.executable, "-m", "chainrule.cli", "train", "--log-format", "yaml"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--log-format" in bad.stderr and "'json'" in bad.stderr

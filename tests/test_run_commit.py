"""Run folders never lose or corrupt a run: the commit protocol of `chainrule train` (runs.py).

A failure is injected at every durable step of a run (each os.replace: the atomic writes and the
moves out of staging/), and the run is resumed: it must end with the very bytes of an
uninterrupted run. A subprocess killed with SIGKILL must resume the same way.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.data import load_digits, write_idx
from chainrule.training import runs
from chainrule.training.checkpoint import atomic_write, load_tensors, save_tensors
from chainrule.training.runs import RunConfig, RunError, committed_epoch, evaluate_run, train_run

QUIET = dict(progress=False, log=lambda *_: None)
STATE = ("model.safetensors", "optimizer.safetensors")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """40 digits as IDX files: one batch per epoch, so an epoch takes milliseconds."""
    folder = tmp_path_factory.mktemp("tiny")
    images, labels = load_digits()
    write_idx(folder / "images.idx", (images.numpy()[:40, 0] * 255).round().astype(np.uint8))
    write_idx(folder / "labels.idx", labels.numpy()[:40].astype(np.uint8))
    return f"idx:{folder / 'images.idx'},{folder / 'labels.idx'}"


def fake_plot(data, path, title=""):
    atomic_write(path, b"png")


@pytest.fixture
def cheap_plots(monkeypatch):
    """The pictures are no part of a commit: write a few bytes (atomically, as the real ones)."""
    monkeypatch.setattr(runs, "plot_curves", fake_plot)
    monkeypatch.setattr(runs, "plot_confusion", fake_plot)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_bytes(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in STATE}


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no `except Exception` of the code stops it."""


def kill_at(monkeypatch, k: int) -> list:
    """Make the k-th os.replace (1-based) raise Killed; returns the list of calls seen."""
    calls = []
    real = os.replace

    def replace(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == k:
            raise Killed(f"killed before replace #{k} ({Path(dst).name})")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def litter(folder: Path) -> None:
    """What a real kill may leave that an exception does not: half-written temporaries."""
    for where in (folder, folder / runs.STAGING):
        if where.is_dir():
            (where / ".model.safetensors.x1y2z3.tmp").write_bytes(b"half a checkpoint")


def test_a_failure_at_every_step_resumes_to_the_bytes_of_an_uninterrupted_run(
        tiny, tmp_path, monkeypatch, cheap_plots):
    config = dict(dataset=tiny, epochs=2, lr=0.01)
    with monkeypatch.context() as patch:
        steps = kill_at(patch, 0)  # k = 0: no kill, only the list of steps
        train_run(RunConfig(**config), tmp_path / "straight", **QUIET)
    expected = state_bytes(tmp_path / "straight")
    # config.json, then per epoch 3 staged files + commit.json + 3 moves, then the 2 pictures
    assert steps[:1] == ["config.json"] and steps.count("commit.json") == 2 and len(steps) == 17
    for k in range(1, len(steps) + 1):
        folder = tmp_path / f"killed-at-{k}"
        with monkeypatch.context() as patch:
            kill_at(patch, k)
            with pytest.raises(Killed):
                train_run(RunConfig(**config), folder, **QUIET)
        litter(folder)
        done = steps[:k - 1].count("commit.json")  # commits that completed before the kill
        if not (folder / "config.json").exists():  # killed before the run existed: start it again
            with pytest.raises(RunError, match="not a run folder"):
                train_run(RunConfig(**config), folder, resume=True, **QUIET)
            train_run(RunConfig(**config), folder, **QUIET)
        else:
            assert committed_epoch(folder) == done, steps[k - 1]
            if done:  # evaluate reads the committed model, even while its move is unfinished
                lines = []
                evaluate_run(folder, log=lines.append)
                assert f"after epoch {done}" in lines[0]
            result = train_run(RunConfig.load(folder), folder, resume=True, **QUIET)
            assert [row["epoch"] for row in result["history"]] == [1, 2]
        assert state_bytes(folder) == expected, f"killed at step {k} ({steps[k - 1]})"
        assert committed_epoch(folder) == 2
        assert not list((folder / runs.STAGING).iterdir()) and not list(folder.glob(".*.tmp"))


def test_sigkill_at_any_moment_resumes_to_the_same_sha256(tiny, tmp_path):
    config = dict(dataset=tiny, epochs=12, lr=0.01)
    train_run(RunConfig(**config), tmp_path / "straight", **QUIET)
    expected = sha256(tmp_path / "straight" / "model.safetensors")
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "chainrule.cli", "train", "--dataset", tiny, "--epochs", "12",
               "--lr", "0.01", "--quiet", "--out", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while committed_epoch(folder) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # inside (folder, commit.json) may be half-way through anything: fine
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 2 <= committed_epoch(folder) < 12
    assert main(["train", "--resume", str(folder), "--quiet"]) == 0
    assert sha256(folder / "model.safetensors") == expected


def test_a_kill_before_epoch_one_resumes_from_scratch(tiny, tmp_path, cheap_plots, monkeypatch):
    folder = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_at(patch, 2)  # config.json written, then killed in epoch 1's first staged write
        with pytest.raises(Killed):
            train_run(RunConfig(dataset=tiny, epochs=1), folder, **QUIET)
    assert committed_epoch(folder) == 0 and not (folder / "model.safetensors").exists()
    with pytest.raises(RunError, match="no epoch is committed yet"):
        evaluate_run(folder, log=lambda *_: None)
    lines = []
    train_run(RunConfig.load(folder), folder, resume=True, progress=False, log=lines.append)
    assert lines[0].startswith(f"resuming {folder} after epoch 0 of 1")
    assert committed_epoch(folder) == 1


def test_identical_runs_write_byte_identical_checkpoints(tiny, tmp_path, cheap_plots):
    for name in ("a", "b"):
        train_run(RunConfig(dataset=tiny, epochs=2, optimizer="adam"), tmp_path / name, **QUIET)
    assert state_bytes(tmp_path / "a") == state_bytes(tmp_path / "b")


def test_checkpoint_bytes_do_not_depend_on_the_order_of_the_metadata(tmp_path):
    keys = [f"key{i}" for i in range(8)]
    w, b = np.arange(3.0), np.ones(2, np.float32)
    save_tensors({"w": w, "b": b}, tmp_path / "a", {k: k for k in keys})
    save_tensors({"b": b, "w": w}, tmp_path / "b", {k: k for k in reversed(keys)})
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    arrays, metadata = load_tensors(tmp_path / "a")  # still a file the safetensors library reads
    assert arrays["w"].tolist() == [0.0, 1.0, 2.0] and metadata == {k: k for k in keys}


# ------------------------------------------------------------------------ a non-finite loss
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_epoch(tiny, tmp_path, capsys,
                                                                 monkeypatch):
    folder = tmp_path / "run"
    models, build, start = [], runs.build_model, runs._EpochSeeds.on_epoch_start

    def build_model(*args):
        models.append(build(*args))
        return models[-1]

    def on_epoch_start(self, epoch):
        start(self, epoch)
        if epoch == 2:  # as the third epoch starts, a weight turns NaN (as a too large step would)
            next(iter(models[-1].parameters())).data[0, 0] = np.nan

    monkeypatch.setattr(runs, "build_model", build_model)
    monkeypatch.setattr(runs._EpochSeeds, "on_epoch_start", on_epoch_start)
    code = main(["train", "--dataset", tiny, "--epochs", "4", "--quiet", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "epoch 3: the training loss became nan" in err and "the run stays at epoch 2" in err
    assert committed_epoch(folder) == 2
    arrays, metadata = load_tensors(folder / "model.safetensors")
    assert metadata["epoch"] == "2" and all(np.isfinite(a).all() for a in arrays.values())


def test_non_finite_weights_are_never_committed(tmp_path):
    model = cr.nn.Linear(2, 2)
    model.weight.data[0, 0] = np.inf
    commit = runs._CommitEachEpoch(tmp_path, model, None, [], report=runs._reporter(print, "text"))
    with pytest.raises(RunError,
                       match="epoch 1: the parameter weight became non-finite.*at epoch 0"):
        commit.on_epoch_end({"epoch": 1, "train_loss": 0.5})
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_learning_rate_exits_2_naming_the_epoch(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", tiny, "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3",
            "--quiet", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    done = committed_epoch(out)
    assert err.count("\n") == 1 and f"epoch {done + 1}: the training loss became nan" in err
    assert f"the run stays at epoch {done}" in err and done < 3


# ------------------------------------------------------------------------ folders and settings
def test_out_holding_a_run_is_refused_unless_force(tiny, tmp_path, capsys, cheap_plots):
    out = str(tmp_path / "run")
    base = ["train", "--dataset", tiny, "--epochs", "1", "--quiet"]
    assert main(base + ["--out", out]) == 0
    first = (tmp_path / "run" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(base + ["--out", out, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "use --resume or --force" in err
    assert err.count("\n") == 1
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == first  # untouched
    assert main(base + ["--out", out, "--seed", "1", "--force"]) == 0
    assert (tmp_path / "run" / "model.safetensors").read_bytes() != first
    assert RunConfig.load(tmp_path / "run").seed == 1
    capsys.readouterr()
    for argv, message in ((base + ["--out", ""], "run folder is empty"),
                          (["train", "--resume", out, "--out", out], "--resume DIR continues"),
                          (["train", "--resume", out, "--force"], "--resume DIR continues")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("option, value, message", [
    ("--lr", "nan", "lr=nan"), ("--lr", "inf", "lr=inf"), ("--lr=-inf", None, "lr=-inf"),
    ("--lr", "0", "lr=0.0"), ("--lr", "-0.1", "lr=-0.1"),
    ("--weight-decay", "-1", "weight_decay=-1.0"),
    ("--weight-decay", "nan", "weight_decay=nan"), ("--epochs", "0", "epochs=0"),
    ("--epochs", "10000000", "epochs=10000000"), ("--seed", "-1", "seed=-1"),
    ("--batch-size", "0", "batch_size=0"),
])
def test_settings_are_validated(option, value, message, tmp_path, capsys):
    assert main(["train", option, *([value] if value else []), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule train: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_resume_refuses_fewer_epochs_and_conflicting_settings(tiny, tmp_path, capsys, cheap_plots):
    out = str(tmp_path / "run")
    assert main(["train", "--dataset", tiny, "--epochs", "2", "--quiet", "--out", out]) == 0
    before = (tmp_path / "run" / "config.json").read_bytes()
    capsys.readouterr()
    for extra, message in (
            (["--epochs", "1"], "epochs=1 is below the 2 epochs the run has completed"),
            (["--model", "cnn"], "model='cnn' conflicts with the run's model='mlp'"),
            (["--optimizer", "sgd"], "optimizer='sgd' conflicts with the run's optimizer='adam'"),
            (["--lr", "0.5"], "lr=0.5 conflicts with the run's lr=0.001"),
            (["--lr", "nan"], "lr=nan: the learning rate must be")):
        assert main(["train", "--resume", out, "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert (tmp_path / "run" / "config.json").read_bytes() == before  # nothing rewritten
    agreeing = ["--lr", "0.001", "--epochs", "2"]
    assert main(["train", "--resume", out, "--quiet", *agreeing]) == 0


# ------------------------------------------------------------------------ malformed run files
def recommit(folder: Path) -> None:
    """Make commit.json name the files as they are now (to reach the parsers behind the SHA-256)."""
    record = json.loads((folder / "commit.json").read_text())
    record["files"] = {name: sha256(folder / name) for name in record["files"]}
    (folder / "commit.json").write_text(json.dumps(record))


def rewrite_metadata(path: Path, **changes) -> None:
    arrays, metadata = load_tensors(path)
    save_tensors(arrays, path, {**metadata, **changes})


def copy_run(source: Path, folder: Path) -> Path:
    folder.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished") / "run"
    train_run(RunConfig(dataset=tiny, epochs=1), folder, **QUIET)
    return folder


def edit(name: str, old: str, new: str):
    """A damage: replace ``old`` by ``new`` in the run's file ``name``."""
    return lambda f: (f / name).write_text((f / name).read_text().replace(old, new))


def put(name: str, data: bytes, rehash: bool = False):
    """A damage: the run's file ``name`` holds ``data`` (and commit.json names it, if rehash)."""
    def damage(folder):
        (folder / name).write_bytes(data)
        if rehash:
            recommit(folder)
    return damage


def metadata(name: str, rehash: bool = True, **changes):
    def damage(folder):
        rewrite_metadata(folder / name, **changes)
        if rehash:
            recommit(folder)
    return damage


@pytest.mark.parametrize("damage, message", [
    (put("config.json", b"[1, 2]"), "expected a JSON object of settings, got a list"),
    (edit("config.json", '"lr": 0.001', '"lr": "0.001"'), "lr='0.001': must be a number"),
    (edit("config.json", '"epochs": 1', '"epochs": true'), "epochs=True: must be an integer"),
    (put("config.json", b'{"lr": "\xff\xfe"}'), "config.json: not UTF-8 text"),
    (put("config.json", b"{" * 100_000), "config.json: not valid JSON"),
    (put("config.json", b'{"lr": 1}'), "settings dataset, model, epochs"),
    (put("commit.json", b'{"epoch": "1"}'), "commit.json: not a commit record"),
    (put("commit.json", b"\xff"), "commit.json: not UTF-8"),
    (put("model.safetensors", bytes(100)), "model.safetensors is damaged"),
    (put("model.safetensors", b"\x08" + bytes(7) + b'{"a": 1}', rehash=True),
     "model.safetensors is corrupt or truncated"),
])
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_malformed_run_files_are_one_line_errors(finished_run, tmp_path, capsys, damage, message,
                                                 command):
    folder = copy_run(finished_run, tmp_path / "run")
    damage(folder)
    argv = ["train", "--resume", str(folder), "--quiet"] if command == "train" else ["evaluate"]
    assert main(argv if command == "train" else [*argv, str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chainrule {command}: error: ") and err.count("\n") == 1
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("damage, message", [
    (put("metrics.csv", b"garbage\n1,2\n"), "metrics.csv is damaged"),
    (put("metrics.csv", b"garbage\n1,2\n", rehash=True), "metrics.csv: not a metrics file"),
    (put("metrics.csv", b"\xff\xfe\x00", rehash=True), "metrics.csv: not UTF-8"),
    (lambda f: (edit("metrics.csv", "\n1,", "\nabc,")(f), recommit(f)), "not a metrics file"),
    (lambda f: (edit("metrics.csv", "\n1,", "\n1,1,")(f), recommit(f)), "not a metrics file"),
    (lambda f: (edit("metrics.csv", "seconds\n", "seconds\n2,1,1,1,1,1,1\n")(f), recommit(f)),
     "expected the rows of epochs 1 to 1"),
    (metadata("optimizer.safetensors", param_groups='"abc"'), "does not fit this optimizer"),
    (metadata("optimizer.safetensors", scalars='{"0.step": "x"}'), "does not fit this optimizer"),
    (metadata("model.safetensors", epoch="abc"), "model.safetensors says epoch 'abc', commit.json"),
])
def test_malformed_state_files_are_one_line_errors_on_resume(finished_run, tmp_path, capsys, damage,
                                                             message):
    folder = copy_run(finished_run, tmp_path / "run")
    damage(folder)
    assert main(["train", "--resume", str(folder), "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule train: error: ") and err.count("\n") == 1
    assert message in err, err

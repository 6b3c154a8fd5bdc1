"""chainrule.distributed across real processes: ``mpirun -n 2`` (Open MPI or MPICH), from pytest.

Skipped, with the reason, only when the ``[mpi]`` extra (mpi4py and an MPI with ``mpirun``) is not
installed. Every launch runs under a timeout, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("mpi_worker.py")
LIMIT = 120  # seconds for any one mpirun


def _mpirun() -> str | None:
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else shutil.which("mpirun")


MPIRUN = _mpirun()
pytestmark = pytest.mark.skipif(
    MPIRUN is None or importlib.util.find_spec("mpi4py") is None,
    reason="the [mpi] extra is not installed (mpi4py and mpirun): pip install -e '.[mpi]'")


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",  # CI runs as root
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",  # one core per rank
               PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    return env


def mpirun(n: int, *command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``mpirun -n n command`` (oversubscribe: CI machines may have fewer cores than ranks)."""
    return subprocess.run([MPIRUN, "-n", str(n), "--oversubscribe", *command],  # type: ignore[list-item]
                          capture_output=True, text=True, timeout=LIMIT, env=_env(), cwd=cwd)


def worker(n: int, *args: str) -> subprocess.CompletedProcess:
    return mpirun(n, sys.executable, str(WORKER), *args)


def single(*args: str) -> subprocess.CompletedProcess:
    """The same worker as one plain process (no launcher: the one-process world)."""
    return subprocess.run([sys.executable, str(WORKER), *args], capture_output=True, text=True,
                          timeout=LIMIT, env=_env())


def _ok(result: subprocess.CompletedProcess, scenario: str, ranks: int) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    for r in range(ranks):
        assert f"OK {scenario} rank {r} of {ranks}" in result.stdout, result.stdout


def test_collectives_two_ranks():
    _ok(worker(2, "collectives"), "collectives", 2)


def test_collectives_three_ranks_oversubscribed():
    _ok(worker(3, "collectives"), "collectives", 3)


def test_ddp_buckets_overlap_no_sync_unused_parameters_and_buffers():
    _ok(worker(2, "ddp"), "ddp", 2)


def test_two_ranks_reproduce_one_process_float64_30_epochs(tmp_path):
    """Global batch 32 over 2 ranks (16 each) == one process with batch 32, after 30 epochs of
    Adam on the digits MLP (1,710 steps): equal to float64 round-off."""
    reference, parallel = tmp_path / "one.npz", tmp_path / "two.npz"
    _ok(single("train", "--plain", "--out", str(reference)), "train", 1)
    _ok(worker(2, "train", "--out", str(parallel)), "train", 2)
    one, two = np.load(reference), np.load(parallel)
    assert sorted(one) == sorted(two) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for name in one:
        assert one[name].dtype == np.float64
        scale = np.abs(one[name]).max()
        difference = np.abs(one[name] - two[name]).max()
        assert difference <= 1e-12 * scale, (name, difference, scale)
    # it is not trivially equal: the weights moved far from their start in 30 epochs
    assert np.abs(one["0.weight"]).max() > 0.3


def test_averaged_gradient_of_one_step_float32(tmp_path):
    """One backward on 64 samples: the mean of 2 ranks' gradients (32 each) equals one process's
    gradient of the 64 to float32 tolerance."""
    reference, parallel = tmp_path / "one.npz", tmp_path / "two.npz"
    _ok(single("gradient", "--dtype", "float32", "--batch", "64", "--out", str(reference)),
        "gradient", 1)
    _ok(worker(2, "gradient", "--dtype", "float32", "--batch", "64", "--out", str(parallel)),
        "gradient", 2)
    one, two = np.load(reference), np.load(parallel)
    for name in one:
        assert two[name].dtype == np.float32
        np.testing.assert_allclose(two[name], one[name], rtol=2e-6,
                                   atol=2e-7 * np.abs(one[name]).max(), err_msg=name)
    assert np.abs(one["0.weight"]).max() > 1e-3  # a real gradient


def test_a_failing_rank_ends_the_job_with_its_message():
    started = time.monotonic()
    result = worker(2, "fail", "--step", "3")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "rank 1 fails on purpose at step 3" in result.stderr
    assert "not reached" not in result.stdout
    assert elapsed < 30, elapsed


def test_a_collective_that_never_completes_times_out():
    started = time.monotonic()
    result = worker(2, "timeout", "--timeout", "2")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "CollectiveTimeoutError" in result.stderr and "barrier" in result.stderr
    assert "within 2 s" in result.stderr
    assert elapsed < 30, elapsed  # rank 1 would sleep 60 s: the abort ended it


# ------------------------------------------------------------------ chainrule train
def _train(n: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return mpirun(n, sys.executable, "-m", "chainrule", "train", "--epochs", "2", *args, cwd=cwd)


def test_train_under_mpirun_matches_one_process_and_resumes(tmp_path):
    one = subprocess.run([sys.executable, "-m", "chainrule", "train", "--epochs", "2", "--out",
                          "one"], capture_output=True, text=True, timeout=LIMIT, env=_env(),
                         cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = _train(2, "--out", "two", cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    # only rank 0 prints: each line once, and the same figures as one process
    assert two.stdout.count("test accuracy") == 1
    lines = [line.rsplit("(", 1)[0] for line in two.stdout.splitlines() if "epoch" in line]
    expected = [line.rsplit("(", 1)[0] for line in one.stdout.splitlines() if "epoch" in line]
    assert lines == expected and len(lines) == 2
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2 and config["batch_size"] == 32
    weights_one = (tmp_path / "one" / "model.safetensors").stat().st_size
    assert (tmp_path / "two" / "model.safetensors").stat().st_size == weights_one
    # resume the 2-rank run for a third epoch on 2 ranks, and a fourth on one process
    resumed = mpirun(2, sys.executable, "-m", "chainrule", "train", "--resume", "two",
                     "--epochs", "3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("resuming two after epoch 2 of 3") == 1
    alone = subprocess.run([sys.executable, "-m", "chainrule", "train", "--resume", "two",
                            "--epochs", "4", "--quiet"], capture_output=True, text=True,
                           timeout=LIMIT, env=_env(), cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 1 and config["epochs"] == 4
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3", "4"]


def test_train_errors_under_mpirun_are_one_line_and_end_the_job(tmp_path):
    started = time.monotonic()
    odd = _train(2, "--out", "odd", "--batch-size", "33", cwd=tmp_path)
    assert odd.returncode != 0
    assert "batch_size=33 is the global batch: it must be divisible by the 2 ranks" in odd.stderr
    assert "Traceback" not in odd.stderr
    assert not (tmp_path / "odd" / "config.json").exists()
    assert time.monotonic() - started < 30

"""Hostile command lines: every row exits 2 with exactly one line on stderr and no traceback.

Each row runs in its own process. Starting Python and importing chainrule costs about 2 s of CPU,
so most rows are forked from one server process that imported chainrule once (the child runs
``sys.exit(main(argv))`` as the entry point does, with its own stdout and stderr); a few rows go
through the real ``python -m chainrule.cli`` as well. Rows run in parallel, each with a timeout.
"""

import gzip
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import load_digits, write_idx
from chainrule.training.runs import RunConfig, train_run

ROW_TIMEOUT = 30  # seconds; a row that hangs (reads /dev/zero, inflates a bomb) fails here

SERVER = r"""
import json, os, sys, time, traceback
from chainrule.cli import main
import chainrule.training.runs, chainrule.course.calculator  # imported once
import chainrule.course.explain, chainrule.testing.opinfo

def child(argv, out, err):
    os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    try:
        code = main(argv)
    except SystemExit as exit:  # what the interpreter does with sys.exit(main())
        code = exit.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)

rows, folder, timeout, parallel = json.load(sys.stdin)
results, running, todo = [None] * len(rows), {}, list(range(len(rows)))
while todo or running:
    while todo and len(running) < parallel:
        i = todo.pop(0)
        paths = (f"{folder}/{i}.out", f"{folder}/{i}.err")
        pid = os.fork()
        if pid == 0:
            child(rows[i], *paths)
        running[pid] = (i, time.monotonic(), paths)
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        for pid, (i, started, _) in running.items():
            if time.monotonic() - started > timeout:
                os.kill(pid, 9)
        time.sleep(0.005)
        continue
    i, started, (out, err) = running.pop(pid)
    results[i] = {"rc": os.waitstatus_to_exitcode(status),
                  "seconds": round(time.monotonic() - started, 2),
                  "err": open(err, errors="replace").read(100_000)}
json.dump(results, sys.stdout)
"""


def product(leaves: int) -> str:
    """A short expression whose results, all kept, would take gigabytes."""
    if leaves == 1:
        return "ones(10**6)"
    return f"({product(leaves // 2)}*{product(leaves - leaves // 2)})"


def idx_pair(folder: Path, name: str, images: np.ndarray, labels: np.ndarray) -> str:
    write_idx(folder / f"{name}-images", images.astype(np.uint8))
    write_idx(folder / f"{name}-labels", labels.astype(np.uint8))
    return f"idx:{folder / f'{name}-images'},{folder / f'{name}-labels'}"


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """The files and folders the rows refer to, as {name} placeholders."""
    tmp = tmp_path_factory.mktemp("fuzz")
    images, labels = load_digits()
    pixels = (images.numpy()[:40, 0] * 255).round()
    digits = labels.numpy()[:40]
    p = {"tmp": str(tmp), "tiny": idx_pair(tmp, "tiny", pixels, digits)}
    for n in range(6):
        p[f"n{n}"] = idx_pair(tmp, f"n{n}", pixels[:n], digits[:n])
    p["pixel"] = idx_pair(tmp, "pixel", pixels[:, :1, :1], digits)
    p["wide"] = idx_pair(tmp, "wide", np.zeros((10, 300, 700)), digits[:10])
    bomb = gzip.compress(bytes(16 << 20))
    one_image = bytes.fromhex("00000803" "00000001" "00000008" "00000008") + bytes(64)
    (tmp / "bomb").write_bytes(gzip.compress(one_image) + bomb * 64)  # inflates to 1 GiB
    p["bomb"] = f"idx:{tmp / 'bomb'},{tmp / 'n5-labels'}"
    huge = bytes.fromhex("00000803" "0000ea60" "0000ea60" "0000ea60")  # 60,000^3 pixels
    (tmp / "huge").write_bytes(huge + bytes(10))
    p["huge"] = f"idx:{tmp / 'huge'},{tmp / 'n5-labels'}"
    run = tmp / "run"
    train_run(RunConfig(dataset=p["tiny"], epochs=2), run, progress=False, log=lambda *_: None)
    p["run"] = str(run)
    good = (run / "config.json").read_bytes()
    for name, config in (("listconfig", b"[1, 2, 3]"), ("badutf8", b'{"lr": "\xff"}'),
                         ("strlr", good.replace(b'"lr": 0.001', b'"lr": "x"'))):
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_bytes(config)
        p[name] = str(tmp / name)
    (tmp / "uncommitted").mkdir()
    (tmp / "uncommitted" / "config.json").write_bytes((run / "config.json").read_bytes())
    p["uncommitted"] = str(tmp / "uncommitted")
    return p


NINES = "9" * 40
ROWS = [
    # train: bad, non-finite, negative and huge numbers; unknown names
    ["train", "--lr", "nan"], ["train", "--lr", "inf"], ["train", "--lr=-inf"],
    ["train", "--lr", "0"], ["train", "--lr", "-1"], ["train", "--lr", "1e999"],
    ["train", "--lr", "abc"], ["train", "--lr", ""],
    ["train", "--weight-decay=-1e-3"], ["train", "--weight-decay", "nan"],
    ["train", "--weight-decay", "inf"],
    ["train", "--epochs", "0"], ["train", "--epochs", "-3"], ["train", "--epochs", NINES],
    ["train", "--epochs", "1.5"], ["train", "--batch-size", "0"], ["train", "--batch-size", NINES],
    ["train", "--seed", "-1"], ["train", "--seed", NINES], ["train", "--seed", "x"],
    ["train", "--model", "resnet"], ["train", "--optimizer", "lbfgs"], ["train", "--bogus"],
    # train: datasets
    ["train", "--dataset", "mnist"], ["train", "--dataset", "idx:"],
    ["train", "--dataset", "idx:one"], ["train", "--dataset", "idx:,"],
    ["train", "--dataset", "idx:/dev/zero,/dev/zero", "--out", "{tmp}/o1"],
    ["train", "--dataset", "idx:{tmp}/missing,{tmp}/missing", "--out", "{tmp}/o2"],
    ["train", "--dataset", "idx:{tmp},{tmp}", "--out", "{tmp}/o3"],
    ["train", "--dataset", "{bomb}", "--out", "{tmp}/o4"],
    ["train", "--dataset", "{huge}", "--out", "{tmp}/o5"],
    *[["train", "--dataset", f"{{n{n}}}", "--out", f"{{tmp}}/few{n}"] for n in range(6)],
    ["train", "--dataset", "{pixel}", "--model", "cnn", "--out", "{tmp}/o6"],
    ["train", "--dataset", "{wide}", "--out", "{tmp}/o7"],
    ["train", "--dataset", "{tiny}", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "2",
     "--out", "{tmp}/o8"],
    # train: folders
    ["train", "--out", ""], ["train", "--dataset", "{tiny}", "--out", "{run}"],
    ["train", "--dataset", "{tiny}", "--out", "/dev/null/x"],
    ["train", "--dataset", "{tiny}", "--out", "/dev/null"],
    ["train", "--resume", "{tmp}/nowhere"], ["train", "--resume", ""],
    ["train", "--resume", "/dev/null"],
    ["train", "--resume", "{run}", "--lr", "0.5"], ["train", "--resume", "{run}", "--model", "cnn"],
    ["train", "--resume", "{run}", "--epochs", "1"],
    ["train", "--resume", "{run}", "--epochs", "0"],
    ["train", "--resume", "{run}", "--out", "{tmp}/o9"], ["train", "--resume", "{listconfig}"],
    ["train", "--resume", "{badutf8}"], ["train", "--resume", "{strlr}"],
    # evaluate
    ["evaluate"], ["evaluate", "{tmp}/nowhere"], ["evaluate", ""], ["evaluate", "/dev/null"],
    ["evaluate", "/dev/zero"], ["evaluate", "{listconfig}"], ["evaluate", "{badutf8}"],
    ["evaluate", "{strlr}"], ["evaluate", "{uncommitted}"], ["evaluate", "{run}", "extra"],
    # check
    ["check", "NOPE"], ["check", "--tolerance", "nan"], ["check", "--tolerance", "inf"],
    ["check", "--tolerance=-1"], ["check", "--tolerance", "0"], ["check", "--tolerance", "1e999"],
    ["check", "--seed=-5", "add"], ["check", "--seed", "1.5"],
    # shapes
    ["shapes"], ["shapes", "solve"], ["shapes", "solve", "64", "32", "--max-kernel", NINES],
    ["shapes", "solve", "64", "32", "--max-stride", "10000", "--max-kernel", "10000"],
    ["shapes", "solve", "64", "32", "--max-padding=-1"], ["shapes", "solve", "nan", "32"],
    ["shapes", "solve", "64", "inf"], ["shapes", "solve", "64", "32", "--kernel", "0"],
    ["shapes", "3xnanx4", "conv:3"], ["shapes", "3x" + "9" * 5000, "flatten"],
    ["shapes", "3x32x32", "conv:inf,k=3"], ["shapes", "3x32x32", "conv:3,k=-1"],
    ["shapes", "3x32x32", "bogus:3"], ["shapes", "-1x3x3", "flatten"],
    ["shapes", "3x32x32", "linear:" + "9" * 5000], ["shapes", "3x\u00b2x3", "flatten"],
    # graph
    ["graph"], ["graph", "__import__('os').system('true')"], ["graph", "sum(x)", "--let", "x=nan"],
    ["graph", "sum(x)", "--let", "x=[1,2"], ["graph", "sum(ones(10**9))"], ["graph", "x" * 3000],
    ["graph", "sum(x)", "--let", "x=[1]", "--out", "/nonexistent/dir/g.svg"],
    ["graph", f"sum{product(128)}"],
    # no such command or option
    ["frobnicate"], ["--bogus"],
]
# these rows also run through the real entry point, one interpreter each
ENTRY_POINT_ROWS = [["train", "--lr", "nan"], ["evaluate", "{badutf8}"]]


def fill(row: list, places: dict) -> list:
    return [arg.format(**places) if "{" in arg and len(arg) < 200 else arg for arg in row]


def check(row: list, rc: int, err: str) -> str:
    """'' when the row behaved, else what went wrong."""
    lines = err.splitlines()
    if rc == 2 and len(lines) == 1 and lines[0].startswith("chainrule") and "Traceback" not in err:
        return ""
    shown = [arg if len(arg) < 80 else arg[:77] + "..." for arg in row[:6]]
    return f"{shown} -> exit {rc}, stderr {err[-600:]!r}"


def test_hostile_command_lines_exit_2_with_one_line_on_stderr(places, tmp_path):
    rows = [fill(row, places) for row in ROWS]
    job = json.dumps([rows, str(tmp_path), ROW_TIMEOUT, 4])
    server = subprocess.run([sys.executable, "-c", SERVER], input=job, capture_output=True,
                            text=True, timeout=240, cwd=tmp_path)
    assert server.returncode == 0, server.stderr[-3000:]
    results = json.loads(server.stdout)
    failures = [problem for row, result in zip(rows, results)
                if (problem := check(row, result["rc"], result["err"]))]
    assert failures == [], "\n".join(failures)
    assert not (tmp_path / "runs").exists()  # no row trained into the default folder


def test_hostile_command_lines_through_the_entry_point(places, tmp_path):
    def run(row):
        done = subprocess.run([sys.executable, "-m", "chainrule.cli", *row], capture_output=True,
                              text=True, timeout=ROW_TIMEOUT, cwd=tmp_path)
        return check(row, done.returncode, done.stderr)

    with ThreadPoolExecutor(len(ENTRY_POINT_ROWS)) as pool:
        rows = [fill(row, places) for row in ENTRY_POINT_ROWS]
        failures = [problem for problem in pool.map(run, rows) if problem]
    assert failures == [], "\n".join(failures)

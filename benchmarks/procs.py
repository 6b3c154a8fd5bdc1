"""Benchmark harness with one fresh process per library and measurement (issue 13).

Why: in one process, OpenBLAS's worker threads keep spinning for milliseconds after chainrule's
last GEMM and take the second core from torch's next call, so torch is measured slow (a conv2d
case: 8-10 ms alone, 16-20 ms interleaved with chainrule). Here the two libraries never share a
process.

A benchmark script lists its cases (:class:`Case`: a name, a label, a target and one builder per
library that returns a zero-argument ``step``) and calls :func:`main`. The driver then, for each
round, starts ``python SCRIPT --worker LIBRARY CASE`` for both libraries (the order alternating
from round to round), each in a fresh process with the same environment:

* ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed (they select a slower OpenBLAS kernel
  on these machines; the tests keep them), ``OMP/OPENBLAS/MKL_NUM_THREADS`` = ``--threads``
  (default 2) and ``torch.set_num_threads`` alike;
* the worker imports only its own library, builds the case, runs ``--warmup`` untimed steps
  and then times steps until it has at least ``--steps`` of them and ``--min-time`` seconds,
  and prints their median (and an optional check value, e.g. a loss, which the driver compares
  between the libraries);
* before each process the driver waits until other programs keep fewer than ``--max-load``
  CPUs busy (a 0.5 s sample of /proc/stat), at most ``--max-wait`` seconds, and records it.

The table gives, per case: each library's median over rounds of the per-process medians (with
their min-max), the ratio of those medians, the **paired ratio** (median over rounds of the
per-round chainrule / torch ratio, robust to slow drift of a noisy machine) and its min-max over
rounds, and the target. A target counts as met when both the ratio of medians and the paired
ratio are within it. The machine (CPU model and flags, each library's BLAS) is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

MARK = "BENCH_JSON "
LIBRARIES = ("chainrule", "torch")
DROPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Case:
    """One measurement: ``build[library](library)`` returns ``(step, check)``: a zero-argument
    step and a float both libraries should agree on (or None). A step's time is reported in
    ``unit`` after multiplying by ``scale`` (1e6 / 1000 for microseconds per op of the chain);
    ``target`` is the largest chainrule / torch time ratio that meets it (None: no target);
    ``samples`` > 0 adds a samples/s column (samples per step)."""

    name: str
    label: str
    build: dict = field(default_factory=dict)
    target: Optional[float] = None
    unit: str = "ms"
    scale: float = 1e3
    samples: int = 0
    check_rtol: float = 1e-4


# --------------------------------------------------------------------------- worker
def step_times(step, warmup: int, steps: int, min_time: float = 0.0) -> list[float]:
    """Seconds of each timed call of ``step``: ``warmup`` untimed calls first, then at least
    ``steps`` calls and ``min_time`` seconds."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < steps or time.perf_counter() - started < min_time:
        begin = time.perf_counter()
        step()
        times.append(time.perf_counter() - begin)
    return times


def worker(case: Case, library: str, warmup: int, steps: int, min_time: float,
           threads: int) -> None:
    """Build, warm up and time ``case`` for ``library``; print one JSON line."""
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
    step, check = case.build[library](library)
    times = step_times(step, warmup, steps, min_time)
    print(MARK + json.dumps({"median": statistics.median(times), "n": len(times),
                             "check": check}), flush=True)


# --------------------------------------------------------------------------- driver
def bench_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update({k: str(threads) for k in THREAD_ENV})
    return env


def cpu_busy(seconds: float = 0.5) -> float:
    """CPUs kept busy by other programs over ``seconds`` (/proc/stat; the driver sleeps)."""
    def read() -> list[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]

    try:
        before = read()
        time.sleep(seconds)
        after = read()
    except OSError:
        return os.getloadavg()[0]
    delta = [b - a for a, b in zip(before, after)]
    total, idle = sum(delta), delta[3] + delta[4]
    return (total - idle) / total * (os.cpu_count() or 1) if total else 0.0


def wait_quiet(max_load: float, max_wait: float) -> float:
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy >= max_load and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def run_worker(script: str, library: str, case: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, script, "--worker", library, case, "--warmup", str(args.warmup),
           "--steps", str(args.steps), "--min-time", str(args.min_time),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, env=bench_env(args.threads), capture_output=True, text=True,
                          timeout=1800)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{library} {case} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len(MARK):])


def machine_lines(threads: int) -> list[str]:
    """CPU model and the flags that matter for BLAS kernels; each library's BLAS."""
    script = (
        "import numpy, threadpoolctl\n"
        "print('NumPy', numpy.__version__)\n"
        "for i in threadpoolctl.threadpool_info():\n"
        "    print('NumPy BLAS:', i.get('internal_api'), i.get('version'), "
        "'kernel=' + str(i.get('architecture')), 'threads=' + str(i.get('num_threads')))\n"
        "import torch\n"
        f"torch.set_num_threads({threads})\n"
        "print('torch', torch.__version__, 'threads', torch.get_num_threads(), '| MKL', "
        "torch.backends.mkl.is_available(), '| oneDNN', torch.backends.mkldnn.is_available(), "
        "'| CPU capability', torch.backends.cpu.get_cpu_capability())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=bench_env(threads),
                         capture_output=True, text=True).stdout.strip().splitlines()
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "amx_tile")
    return [f"Python {platform.python_version()}, {platform.machine()}, {model}, "
            f"{os.cpu_count()} CPUs",
            "CPU flags: " + " ".join(f for f in wanted if f in flags)] + out


def _fmt(values: list[float], case: Case) -> str:
    scaled = [v * case.scale for v in values]
    return f"{statistics.median(scaled):.2f} ({min(scaled):.2f}-{max(scaled):.2f})"


def table(cases: list[Case], results: dict) -> list[str]:
    lines = ["| case | chainrule, median (range) | torch, median (range) | ratio of medians "
             "| paired ratio (range) | target | met |",
             "|---|---:|---:|---:|---:|---:|:---:|"]
    for case in cases:
        ours, theirs = results[case.name]["chainrule"], results[case.name]["torch"]
        if not ours or not theirs:
            continue
        ratio = statistics.median(ours) / statistics.median(theirs)
        paired = [a / b for a, b in zip(ours, theirs)]
        pr = statistics.median(paired)
        target = "-" if case.target is None else f"<= {case.target:g}x"
        met = "-" if case.target is None else (
            "met" if max(ratio, pr) <= case.target else "not met")
        label = f"{case.label} ({case.unit})"
        if case.samples:
            rates = [case.samples / statistics.median(t) for t in (ours, theirs)]
            label += f"; samples/s {rates[0]:,.0f} vs {rates[1]:,.0f}"
        lines.append(f"| {label} | {_fmt(ours, case)} | {_fmt(theirs, case)} | {ratio:.2f} "
                     f"| {pr:.2f} ({min(paired):.2f}-{max(paired):.2f}) | {target} | {met} |")
    return lines


def main(script: str, cases: list[Case], doc: str, argv: Optional[list[str]] = None,
         defaults: Optional[dict[str, Any]] = None) -> None:
    by_name = {c.name: c for c in cases}
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"))
    parser.add_argument("--cases", nargs="+", choices=list(by_name), default=list(by_name))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps, at least")
    parser.add_argument("--min-time", type=float, default=1.0, help="timed seconds, at least")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--max-wait", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="1 round, 2 warm-up, 3 steps")
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.steps, args.min_time = 1, 2, 3, 0.0
    if args.worker:
        library, name = args.worker
        worker(by_name[name], library, args.warmup, args.steps, args.min_time, args.threads)
        return
    selected = [by_name[n] for n in args.cases]
    for line in machine_lines(args.threads):
        print(f"- {line}")
    print(f"- one fresh process per (library, case, round): {args.rounds} rounds, library "
          f"order alternating; each process {args.warmup} warm-up steps, then at least "
          f"{args.steps} timed steps and {args.min_time:g} s, reporting its median; "
          f"{args.threads} threads per library; each process waits for other programs' load "
          f"< {args.max_load} CPUs (at most {args.max_wait:.0f} s)\n")
    results: dict = {c.name: {lib: [] for lib in LIBRARIES} for c in selected}
    checks: dict = {c.name: {lib: None for lib in LIBRARIES} for c in selected}
    loads: list[float] = []
    for r in range(args.rounds):
        order = LIBRARIES if r % 2 == 0 else LIBRARIES[::-1]
        for case in selected:
            for library in order:
                loads.append(wait_quiet(args.max_load, args.max_wait))
                got = run_worker(script, library, case.name, args)
                results[case.name][library].append(got["median"])
                checks[case.name][library] = got["check"]
                print(f"round {r + 1}: {library:9s} {case.name}: "
                      f"{got['median'] * case.scale:.3f} {case.unit} ({got['n']} steps; "
                      f"others' load {loads[-1]:.2f} CPUs)", file=sys.stderr, flush=True)
    for case in selected:
        a, b = checks[case.name]["chainrule"], checks[case.name]["torch"]
        if a is not None and b is not None:
            agree = abs(a - b) <= case.check_rtol * max(abs(a), abs(b), 1e-30)
            print(f"- check {case.name}: chainrule {a:.6g}, torch {b:.6g} -> "
                  f"{'agree' if agree else 'DISAGREE'}")
    print()
    print("\n".join(table(selected, results)))
    print(f"\nOther programs' load before each process: median {statistics.median(loads):.2f}, "
          f"max {max(loads):.2f} CPUs")

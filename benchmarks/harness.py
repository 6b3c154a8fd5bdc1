"""Shared harness of the benchmarks: chainrule and PyTorch timed in one process, same threads.

Method (see bench_engine.py's docstring for the reasons): warm-up, then rounds; each round times
every case for both libraries, the order of the two alternating from round to round. After each
switch of library SETTLE_S seconds of calls go untimed (the other library's worker threads spin
for a few ms and would be measured as contention). The table gives medians (IQR), the ratio of
medians, the paired ratio (median over rounds of the per-round ratio) and the ratio of 10th
percentiles; a target is "met" when all three are within it.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import chainrule as cr

SETTLE_S = 0.03  # untimed warm calls after each switch of library


# --------------------------------------------------------------------------- BLAS / threads
def _bundled_openblas():
    """NumPy's bundled scipy-openblas as a ctypes library, or None."""
    here = os.path.dirname(np.__file__)
    for pattern in ("*openblas*.so*", "*openblas*.dylib", "*openblas*.dll"):
        for path in sorted(glob.glob(os.path.join(here, "..", "numpy.libs", pattern))) + sorted(
            glob.glob(os.path.join(here, ".libs", pattern))
        ):
            try:
                return ctypes.CDLL(path), path
            except OSError:
                continue
    return None, None


def blas_info() -> tuple[int, list[str]]:
    """(threads NumPy's BLAS uses, lines describing it)."""
    lines = []
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        infos = threadpoolctl.threadpool_info()
        threads = None
        for info in infos:
            lines.append(
                f"threadpoolctl: {info.get('user_api')} {info.get('internal_api')} "
                f"{info.get('version')} arch={info.get('architecture')} "
                f"threads={info.get('num_threads')} ({os.path.basename(info.get('filepath', ''))})"
            )
            numpy_blas = info.get("user_api") == "blas" and "numpy" in info.get("filepath", "")
            if numpy_blas and threads is None:
                threads = info.get("num_threads")
        if threads is None:
            blas = [i for i in infos if i.get("user_api") == "blas"]
            threads = blas[0]["num_threads"] if blas else os.cpu_count()
        return int(threads or 1), lines

    lines.append("threadpoolctl is NOT installed: asking NumPy's bundled OpenBLAS directly "
                 "(ctypes)")
    lib, path = _bundled_openblas()
    if lib is not None:
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""),
                               ("openblas_", "64_"), ("openblas_", "")):
            get_threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if get_threads is None:
                continue
            corename = getattr(lib, f"{prefix}get_corename{suffix}", None)
            config = getattr(lib, f"{prefix}get_config{suffix}", None)
            threads = int(get_threads())
            desc = f"{os.path.basename(path)}: threads={threads}"
            if corename is not None:
                corename.restype = ctypes.c_char_p
                desc += f", kernel (core type)={corename().decode()}"
            lines.append(desc)
            if config is not None:
                config.restype = ctypes.c_char_p
                lines.append(f"config: {config().decode()}")
            return threads, lines
    threads = os.cpu_count() or 1
    lines.append(f"could not query NumPy's BLAS: using os.cpu_count() = {threads} threads")
    return threads, lines


# --------------------------------------------------------------------------- timing helpers
def _time(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _settle(fn):
    """Call ``fn`` untimed for SETTLE_S seconds (at least once)."""
    t_end = time.perf_counter() + SETTLE_S
    fn()
    while time.perf_counter() < t_end:
        fn()


def _q(values, q):
    return float(np.quantile(np.asarray(values), q))


def print_setup(title: str, script: str) -> int:
    """Print the environment (versions, BLAS kernel and threads).

    Gives torch NumPy's thread count.
    """
    print(f"# {title}\n")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"WARNING: {var}={os.environ[var]} is set; it slows NumPy here. Run with "
                  f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python {script}`.")
    threads, lines = blas_info()
    torch.set_num_threads(threads)
    print(f"- Python {platform.python_version()}, NumPy {np.__version__}, "
          f"torch {torch.__version__}, chainrule {cr.__version__}; {platform.machine()}, "
          f"os.cpu_count()={os.cpu_count()}")
    print("- NumPy BLAS:")
    for line in lines:
        print(f"  - {line}")
    print(f"- torch.set_num_threads({threads}) -> "
          f"torch.get_num_threads()={torch.get_num_threads()} "
          f"(interop {torch.get_num_interop_threads()}); torch BLAS: "
          f"{'MKL' if torch.backends.mkl.is_available() else 'other'}, "
          f"mkldnn={'on' if torch.backends.mkldnn.is_available() else 'off'}")
    return threads


@dataclass
class Case:
    """One benchmark: a chainrule and a torch callable doing the same work."""

    label: str
    run_cr: Callable[[], object]
    run_torch: Callable[[], object]
    reps: int  # timed calls per library per round
    rounds: int
    target: float  # chainrule / torch, at most
    scale: float = 1e3  # seconds -> unit
    unit: str = "ms"
    warmup: int = 5


def measure(cases: list[Case]) -> tuple[dict, float]:
    """Run the rounds.

    Return {label: {"cr": [[times] per round], "torch": [...]}} and the seconds taken.
    """
    # Objects alive now go to the permanent generation: the collector stays on, but a full
    # collection no longer walks torch's import-time objects (tens of ms, nobody's fault).
    gc.collect()
    gc.freeze()
    t_start = time.perf_counter()
    for case in cases:
        for _ in range(case.warmup):
            case.run_cr()
            case.run_torch()
    times: dict = {case.label: {"cr": [], "torch": []} for case in cases}
    for r in range(max(case.rounds for case in cases)):
        for case in cases:
            if r >= case.rounds:
                continue
            pair = (("cr", case.run_cr), ("torch", case.run_torch))
            for lib, fn in pair if r % 2 == 0 else pair[::-1]:
                gc.collect()
                _settle(fn)
                times[case.label][lib].append(_time(fn, case.reps))
    return times, time.perf_counter() - t_start


def print_table(cases: list[Case], times: dict, threads: int, elapsed: float) -> None:
    """The Markdown table of medians and ratios, ready for docs/benchmarks.md."""
    rows, noisy = [], []
    for case in cases:
        per_round_cr = [[t * case.scale for t in block] for block in times[case.label]["cr"]]
        per_round_t = [[t * case.scale for t in block] for block in times[case.label]["torch"]]
        cr_t = [t for block in per_round_cr for t in block]
        to_t = [t for block in per_round_t for t in block]
        m_cr, m_t = statistics.median(cr_t), statistics.median(to_t)
        ratio = m_cr / m_t
        # paired: each round's chainrule median over the same round's torch median (run seconds
        # apart, so slow machine-wide drift cancels), then the median over rounds
        paired = statistics.median(statistics.median(a) / statistics.median(b)
                                   for a, b in zip(per_round_cr, per_round_t))
        p10 = _q(cr_t, .10) / _q(to_t, .10)
        met = ("yes" if max(ratio, paired, p10) <= case.target else
               "**no**" if min(ratio, paired, p10) > case.target else "borderline")
        if max((_q(v, .75) - _q(v, .25)) / statistics.median(v) for v in (cr_t, to_t)) > 0.25:
            noisy.append(case.label)
        unit = case.unit
        rows.append((case.label, f"{m_cr:.2f} {unit} ({_q(cr_t, .25):.2f}-{_q(cr_t, .75):.2f})",
                     f"{m_t:.2f} {unit} ({_q(to_t, .25):.2f}-{_q(to_t, .75):.2f})",
                     f"**{ratio:.2f}x**", f"{paired:.2f}x", f"{p10:.2f}x",
                     f"<= {case.target:g}x", met))
    header = ("benchmark", "chainrule median (IQR)", "torch median (IQR)", "ratio of medians",
              "paired ratio", "ratio of p10", "target", "met")
    print(f"Results ({threads} thread(s) each, median of all timed repetitions; ratios are "
          f"chainrule / torch; 'paired ratio' is the median over rounds of the per-round ratio; "
          f"'ratio of p10' compares the fastest 10% (least disturbed) runs; 'met': yes if all "
          f"three ratios are within the target, no if none is, else borderline):\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * 5 + [":---:"] * 2) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n(timed section {elapsed:.0f} s)")
    if noisy:
        print(f"\nNOTE: the machine was noisy during this run (interquartile range over 25% of "
              f"the median for: {'; '.join(noisy)}); the paired and p10 ratios are the more "
              f"trustworthy ones, or run again.")

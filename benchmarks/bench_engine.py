"""chainrule vs PyTorch (CPU): per-op autograd overhead and one MLP training step.

Run (from the repository root):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_engine.py

Unset those two variables for benchmark runs only: they make NumPy's OpenBLAS pick a slower
kernel here. Options: ``--quick`` (few rounds, a smoke test), ``--rounds N`` (rounds of the MLP
benchmarks, default 100; the chain uses half as many, at least 15). The default run takes well
under a minute on 2 cores.

Both libraries run in ONE process with the same number of threads: torch.set_num_threads is set
to the number of threads NumPy's BLAS uses (threadpoolctl when installed; else the bundled
OpenBLAS is asked through ctypes; else os.cpu_count()). The script prints which BLAS kernel and
thread count NumPy uses.

Benchmarks (chainrule and torch run the same code text on the same data):

(a) per-op overhead: a chain of 1,000 cheap elementwise ops (x * 1.0001, x + 0.001,
    x * 0.9999, x - 0.001, repeated) on a float32 leaf of shape (10,), then .sum().backward().
    Reported as microseconds per op, forward + backward (total time / 1,000; the final sum and
    the backward call's fixed cost are spread over the 1,000 ops).
(b) one float32 SGD step of an MLP 784-256-256-10 with ReLU: x @ W + b layers, cross-entropy,
    backward, ``p.data -= lr * p.grad.data`` and ``p.grad = None``, at batch 128 and 32.
    Same initial weights (NumPy random, copied into both) and the same batch; the losses of
    the first two steps are checked to agree to 1e-4 before timing.

Method: warm-up, then rounds; each round times every benchmark for both libraries, the order of
the two libraries alternating from round to round (so slow drift of a noisy machine hits both).
After each switch of library 30 ms of calls go untimed (the other library's worker threads spin
for a few ms after its last call and would be measured as contention). Several timed repetitions
per round; the table reports medians (interquartile range as a noise indication) and chainrule /
torch ratios: the ratio of medians, the paired ratio (median over rounds of the per-round ratio,
robust to slow drift) and the ratio of 10th percentiles (the least disturbed runs). A target
counts as met when all three ratios are within it. The garbage collector stays on (users pay for
it) and is run between timed blocks, after gc.freeze() has moved the import-time objects out of
its way.

The table is Markdown, ready to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import glob
import os
import platform
import statistics
import sys
import time

import numpy as np

import chainrule as cr
import torch
import torch.nn.functional as F

CHAIN_LEN = 1000
CHAIN_SHAPE = (10,)
MLP_SIZES = (784, 256, 256, 10)
BATCHES = (128, 32)
LR = 0.01
TARGET_MLP = 1.1  # chainrule / torch, at most
TARGET_PER_OP = 2.0
SETTLE_S = 0.03  # untimed warm calls after each switch of library (see main)


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
            if info.get("user_api") == "blas" and "numpy" in info.get("filepath", "") and threads is None:
                threads = info.get("num_threads")
        if threads is None:
            blas = [i for i in infos if i.get("user_api") == "blas"]
            threads = blas[0]["num_threads"] if blas else os.cpu_count()
        return int(threads), lines

    lines.append("threadpoolctl is NOT installed: asking NumPy's bundled OpenBLAS directly (ctypes)")
    lib, path = _bundled_openblas()
    if lib is not None:
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "64_"),
                               ("openblas_", "")):
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


# --------------------------------------------------------------------------- (a) per-op chain
def chain_cr(x0):
    x = x0
    for _ in range(CHAIN_LEN // 4):
        x = x * 1.0001
        x = x + 0.001
        x = x * 0.9999
        x = x - 0.001
    x.sum().backward()
    x0.grad = None


def chain_torch(x0):
    x = x0
    for _ in range(CHAIN_LEN // 4):
        x = x * 1.0001
        x = x + 0.001
        x = x * 0.9999
        x = x - 0.001
    x.sum().backward()
    x0.grad = None


# --------------------------------------------------------------------------- (b) MLP step
def init_mlp(seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


def make_batch(batch, seed=1):
    rng = np.random.default_rng(seed + batch)
    x = rng.standard_normal((batch, MLP_SIZES[0])).astype(np.float32)
    y = rng.integers(0, MLP_SIZES[-1], size=batch).astype(np.int64)
    return x, y


def step_cr(params, x, y):
    w1, b1, w2, b2, w3, b3 = params
    h = cr.relu(x @ w1 + b1)
    h = cr.relu(h @ w2 + b2)
    logits = h @ w3 + b3
    loss = cr.cross_entropy(logits, y)
    loss.backward()
    for p in params:
        p.data -= LR * p.grad.data
        p.grad = None
    return loss


def step_torch(params, x, y):
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(x @ w1 + b1)
    h = torch.relu(h @ w2 + b2)
    logits = h @ w3 + b3
    loss = F.cross_entropy(logits, y)
    loss.backward()
    for p in params:
        p.data -= LR * p.grad.data
        p.grad = None
    return loss


def setup_mlp(batch):
    init = init_mlp()
    x, y = make_batch(batch)
    p_cr = [cr.tensor(a, requires_grad=True) for a in init]
    p_t = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    return (p_cr, cr.tensor(x), cr.tensor(y)), (p_t, torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))


def verify(batch) -> str:
    (p_cr, x_cr, y_cr), (p_t, x_t, y_t) = setup_mlp(batch)
    losses = []
    for _ in range(2):
        l_cr = float(step_cr(p_cr, x_cr, y_cr).item())
        l_t = float(step_torch(p_t, x_t, y_t).item())
        losses.append((l_cr, l_t))
    worst_loss = max(abs(a - b) for a, b in losses)
    worst_param = max(float(np.max(np.abs(pc.data - pt.detach().numpy()))) for pc, pt in zip(p_cr, p_t))
    ok = worst_loss <= 1e-4
    msg = (f"batch {batch}: loss step 1 chainrule {losses[0][0]:.6f} torch {losses[0][1]:.6f}; "
           f"after one step chainrule {losses[1][0]:.6f} torch {losses[1][1]:.6f}; "
           f"max |loss diff| {worst_loss:.2e}, max |param diff| {worst_param:.2e} -> "
           f"{'OK' if ok else 'MISMATCH'}")
    if not ok:
        raise SystemExit("verification failed: " + msg)
    return msg


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rounds (smoke test; numbers are noisy)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds for the MLP benchmarks (default 100; the chain gets half, at least 15)")
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")
    mlp_rounds = args.rounds if args.rounds is not None else (6 if args.quick else 100)
    # the chain: half the MLP's rounds, at least 15 (fewer only when asked for fewer in total)
    chain_rounds = 4 if args.quick and args.rounds is None else max(min(15, mlp_rounds), mlp_rounds // 2)
    mlp_reps = 3 if args.quick else 10  # timed steps per library per round
    chain_reps = 2 if args.quick else 5
    # Untimed calls after switching library in a round: the other library's worker threads
    # (torch's OpenMP pool, OpenBLAS's pool) keep spinning for a few ms after their last call
    # and, on 2 cores, slow the steps of the first ~8 ms after a switch 2-4x (measured). A
    # training loop never switches library, so the steps of the first SETTLE_S are not timed.

    print("# chainrule vs PyTorch (CPU) engine benchmark\n")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"WARNING: {var}={os.environ[var]} is set; it slows NumPy here. Run with "
                  f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_engine.py`.")
    threads, lines = blas_info()
    torch.set_num_threads(threads)
    print(f"- Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
          f"chainrule {cr.__version__}; {platform.machine()}, os.cpu_count()={os.cpu_count()}")
    print("- NumPy BLAS:")
    for line in lines:
        print(f"  - {line}")
    print(f"- torch.set_num_threads({threads}) -> torch.get_num_threads()={torch.get_num_threads()} "
          f"(interop {torch.get_num_interop_threads()}); torch BLAS: "
          f"{'MKL' if torch.backends.mkl.is_available() else 'other'}, "
          f"mkldnn={'on' if torch.backends.mkldnn.is_available() else 'off'}")
    print(f"- rounds: MLP {mlp_rounds} x {mlp_reps} timed steps, chain {chain_rounds} x {chain_reps} timed "
          f"runs, per library; order alternates per round; after each switch of library, untimed "
          f"calls for {SETTLE_S * 1e3:.0f} ms let the other library's spinning worker threads go idle\n")

    print("Equivalence check (one SGD step, same weights and data):")
    for b in BATCHES:
        print(f"- {verify(b)}")
    print()

    # benchmark states
    x_cr = cr.tensor(np.full(CHAIN_SHAPE, 0.5, np.float32), requires_grad=True)
    x_t = torch.full(CHAIN_SHAPE, 0.5, dtype=torch.float32, requires_grad=True)
    cases = {"chain": (lambda: chain_cr(x_cr), lambda: chain_torch(x_t), chain_reps, chain_rounds)}
    for b in BATCHES:
        (pc, xc, yc), (pt, xt, yt) = setup_mlp(b)
        cases[f"mlp{b}"] = (
            (lambda pc=pc, xc=xc, yc=yc: step_cr(pc, xc, yc)),
            (lambda pt=pt, xt=xt, yt=yt: step_torch(pt, xt, yt)),
            mlp_reps, mlp_rounds,
        )

    # Objects alive now (torch's and NumPy's import-time objects, the benchmark states) go to the
    # permanent generation: the collector stays on, but a full collection no longer walks them
    # (one would take tens of ms with torch loaded, an artefact neither library is to blame for).
    gc.collect()
    gc.freeze()

    # warm-up
    t_start = time.perf_counter()
    for name, (f_cr, f_t, _, _) in cases.items():
        for _ in range(3 if name == "chain" else 10):
            f_cr()
            f_t()

    # times[name][lib]: one list of timed repetitions per round
    times = {name: {"cr": [], "torch": []} for name in cases}
    n_rounds = max(c[3] for c in cases.values())
    for r in range(n_rounds):
        for name, (f_cr, f_t, reps, rounds) in cases.items():
            if r >= rounds:
                continue
            order = (("cr", f_cr), ("torch", f_t)) if r % 2 == 0 else (("torch", f_t), ("cr", f_cr))
            for lib, fn in order:
                gc.collect()
                _settle(fn)
                times[name][lib].append(_time(fn, reps))
    elapsed = time.perf_counter() - t_start

    # table
    rows = []
    noisy = []

    def row(label, name, scale, unit, target):
        per_round_cr = [[t * scale for t in block] for block in times[name]["cr"]]
        per_round_t = [[t * scale for t in block] for block in times[name]["torch"]]
        cr_t = [t for block in per_round_cr for t in block]
        to_t = [t for block in per_round_t for t in block]
        m_cr, m_t = statistics.median(cr_t), statistics.median(to_t)
        ratio = m_cr / m_t
        # paired: each round's chainrule median over the same round's torch median (the two ran
        # seconds apart, so slow machine-wide drift cancels), then the median over rounds
        paired = statistics.median(statistics.median(a) / statistics.median(b)
                                   for a, b in zip(per_round_cr, per_round_t))
        p10 = _q(cr_t, .10) / _q(to_t, .10)
        # judged conservatively: noise on 2 shared cores moves the ratio of medians by +-0.2
        met = ("yes" if max(ratio, paired, p10) <= target else
               "**no**" if min(ratio, paired, p10) > target else "borderline")
        spread = max((_q(v, .75) - _q(v, .25)) / statistics.median(v) for v in (cr_t, to_t))
        if spread > 0.25:
            noisy.append(label)
        rows.append((label, f"{m_cr:.2f} {unit} ({_q(cr_t, .25):.2f}-{_q(cr_t, .75):.2f})",
                     f"{m_t:.2f} {unit} ({_q(to_t, .25):.2f}-{_q(to_t, .75):.2f})",
                     f"**{ratio:.2f}x**", f"{paired:.2f}x", f"{p10:.2f}x",
                     f"<= {target:g}x", met))

    row(f"per-op overhead: {CHAIN_LEN}-op elementwise chain, shape {CHAIN_SHAPE}, fwd+bwd, per op",
        "chain", 1e6 / CHAIN_LEN, "us", TARGET_PER_OP)
    for b in BATCHES:
        row(f"MLP 784-256-256-10 SGD step, float32, batch {b}", f"mlp{b}", 1e3, "ms", TARGET_MLP)

    header = ("benchmark", "chainrule median (IQR)", "torch median (IQR)", "ratio of medians",
              "paired ratio", "ratio of p10", "target", "met")
    print(f"Results ({threads} thread(s) each, median of all timed repetitions; ratios are chainrule / torch; "
          f"'paired ratio' is the median over rounds of the per-round ratio; 'ratio of p10' compares "
          f"the fastest 10% (least disturbed) runs; 'met': yes if all three ratios are within the target, "
          f"no if none is, else borderline):\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * 5 + [":---:"] * 2) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\n(timed section {elapsed:.0f} s)")
    if noisy:
        print(f"\nNOTE: the machine was noisy during this run (interquartile range over 25% of the median "
              f"for: {'; '.join(noisy)}); the paired and p10 ratios are the more trustworthy ones, or run again.")


if __name__ == "__main__":
    sys.exit(main())

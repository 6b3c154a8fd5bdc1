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
import sys

import harness
import numpy as np
import torch
import torch.nn.functional as F

import chainrule as cr

CHAIN_LEN = 1000
CHAIN_SHAPE = (10,)
MLP_SIZES = (784, 256, 256, 10)
BATCHES = (128, 32)
LR = 0.01
TARGET_MLP = 1.1  # chainrule / torch, at most
TARGET_PER_OP = 2.0


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
    return ((p_cr, cr.tensor(x), cr.tensor(y)),
            (p_t, torch.from_numpy(x.copy()), torch.from_numpy(y.copy())))


def verify(batch) -> str:
    (p_cr, x_cr, y_cr), (p_t, x_t, y_t) = setup_mlp(batch)
    losses = []
    for _ in range(2):
        l_cr = float(step_cr(p_cr, x_cr, y_cr).item())
        l_t = float(step_torch(p_t, x_t, y_t).item())
        losses.append((l_cr, l_t))
    worst_loss = max(abs(a - b) for a, b in losses)
    worst_param = max(float(np.max(np.abs(pc.data - pt.detach().numpy())))
                      for pc, pt in zip(p_cr, p_t))
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
    ap.add_argument("--quick", action="store_true",
                    help="few rounds (smoke test; numbers are noisy)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds for the MLP benchmarks (default 100; the chain gets half, "
                         "at least 15)")
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")
    mlp_rounds = args.rounds if args.rounds is not None else (6 if args.quick else 100)
    # the chain: half the MLP's rounds, at least 15 (fewer only when asked for fewer in total)
    if args.quick and args.rounds is None:
        chain_rounds = 4
    else:
        chain_rounds = max(min(15, mlp_rounds), mlp_rounds // 2)
    mlp_reps = 3 if args.quick else 10  # timed steps per library per round
    chain_reps = 2 if args.quick else 5

    threads = harness.print_setup("chainrule vs PyTorch (CPU) engine benchmark",
                                  "benchmarks/bench_engine.py")
    print(f"- rounds: MLP {mlp_rounds} x {mlp_reps} timed steps, chain {chain_rounds} x "
          f"{chain_reps} timed runs, per library; order alternates per round; after each switch "
          f"of library, untimed calls for {harness.SETTLE_S * 1e3:.0f} ms let the other "
          f"library's spinning worker threads go idle\n")
    print("Equivalence check (one SGD step, same weights and data):")
    for b in BATCHES:
        print(f"- {verify(b)}")
    print()

    x_cr = cr.tensor(np.full(CHAIN_SHAPE, 0.5, np.float32), requires_grad=True)
    x_t = torch.full(CHAIN_SHAPE, 0.5, dtype=torch.float32, requires_grad=True)
    cases = [harness.Case(f"per-op overhead: {CHAIN_LEN}-op elementwise chain, "
                          f"shape {CHAIN_SHAPE}, fwd+bwd, per op",
                          lambda: chain_cr(x_cr), lambda: chain_torch(x_t),
                          chain_reps, chain_rounds,
                          TARGET_PER_OP, scale=1e6 / CHAIN_LEN, unit="us", warmup=3)]
    for b in BATCHES:
        (pc, xc, yc), (pt, xt, yt) = setup_mlp(b)
        cases.append(harness.Case(f"MLP 784-256-256-10 SGD step, float32, batch {b}",
                                  (lambda pc=pc, xc=xc, yc=yc: step_cr(pc, xc, yc)),
                                  (lambda pt=pt, xt=xt, yt=yt: step_torch(pt, xt, yt)),
                                  mlp_reps, mlp_rounds, TARGET_MLP, warmup=10))
    times, elapsed = harness.measure(cases)
    harness.print_table(cases, times, threads, elapsed)


if __name__ == "__main__":
    sys.exit(main())

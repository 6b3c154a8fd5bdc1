"""Sequence models, chainrule against PyTorch: LSTM, a transformer encoder layer, the char models.

Run (from the repository root; the script starts one process per library and measurement):

    python benchmarks/bench_sequence.py                  # the table of docs/benchmarks.md
    python benchmarks/bench_sequence.py --quick          # smoke run, a minute or two
    python benchmarks/bench_sequence.py --profile lstm   # cProfile top-10 of chainrule steps
                                                         # and the primitives bound per step

Workloads (float32, 2 threads per library, random inputs; the weights do not matter for time):

1. ``lstm``: ``chainrule.nn.LSTM(256, 256, num_layers=2)`` against ``torch.nn.LSTM(256, 256, 2)``
   on input (seq 64, batch 32, features 256), sequence first; a step is forward and backward of
   ``output.sum()`` (no optimizer), gradients set to None before each step.
2. ``encoder``: ``TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
   batch_first=True)`` (post-norm, relu) on (batch 32, seq 64, d 128); a training step is
   zero_grad, forward, MSE loss against a fixed random target, backward, Adam step (lr 1e-3).
3. ``char_lstm`` / ``char_transformer``: ``chainrule.training.language.CharLSTM`` and
   ``CharTransformer`` with a 65-character vocabulary, and torch models built the same way (the
   same layers, sizes, pre-norm, causal mask, dropout 0.1 in training mode), on (batch 32, seq 64)
   ids; a training step is zero_grad, forward, cross-entropy over (N, V, L) logits, backward,
   Adam step.

Method: every (library, workload) measurement is a fresh process (the two libraries' thread pools
never share a process); it runs ``--warmup`` untimed steps, then ``--steps`` timed ones, and
reports their median. Each measurement is repeated in ``--rounds`` processes, the library order
alternating from round to round; the table gives the median over processes (and their range) and
the ratio chainrule / torch of those medians. Before each process the driver waits until other
programs keep fewer than ``--max-load`` CPUs busy (sampled over 0.5 s from /proc/stat; the
1-minute load average would count the benchmark's own previous process), at most ``--max-wait``
s, and records that load. Environment of every process: ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed (they select a slower OpenBLAS kernel here; the tests keep them),
``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=2`` and ``torch.set_num_threads(2)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Callable

import numpy as np
from procs import machine_lines as procs_machine_lines
from procs import step_times, wait_quiet  # shared with procs.py's harness

MARK = "BENCH_SEQUENCE_JSON "  # the worker's result line
THREADS = 2
SEQ, BATCH = 64, 32
LSTM_SIZE, LSTM_LAYERS = 256, 2
D_MODEL, HEADS, FEED_FORWARD = 128, 4, 512
VOCAB = 65
LR = 1e-3
DROPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WORKLOADS = ("lstm", "encoder", "char_lstm", "char_transformer")
LABELS = {
    "lstm": "LSTM(256, 256, num_layers=2), (64, 32, 256): forward + backward of sum(output)",
    "encoder": "TransformerEncoderLayer(128, 4, 512, dropout 0), (32, 64, 128): Adam step",
    "char_lstm": "CharLSTM(65) (emb 64, 2x LSTM 128), (32, 64) ids: Adam step",
    "char_transformer": "CharTransformer(65) (2 pre-norm layers, d 128), (32, 64) ids: Adam step",
}
TARGET_RATIO = 1.5


# =========================================================================== chainrule steps
def chainrule_step(workload: str) -> Callable[[], None]:
    """A closure running one step of ``workload`` with chainrule."""
    import chainrule as cr
    import chainrule.nn as nn
    import chainrule.nn.functional as F

    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    if workload == "lstm":
        model = nn.LSTM(LSTM_SIZE, LSTM_SIZE, num_layers=LSTM_LAYERS)
        x = cr.tensor(rng.standard_normal((SEQ, BATCH, LSTM_SIZE)).astype(np.float32))

        def step() -> None:
            for p in model.parameters():
                p.grad = None
            out, _ = model(x)
            out.sum().backward()

        return step
    if workload == "encoder":
        model = nn.TransformerEncoderLayer(D_MODEL, HEADS, dim_feedforward=FEED_FORWARD,
                                           dropout=0.0, batch_first=True)
        x = cr.tensor(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
        target = cr.tensor(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
        return _training_step(model, cr.optim.Adam(model.parameters(), lr=LR),
                              lambda: F.mse_loss(model(x), target))
    from chainrule.training.language import CharLSTM, CharTransformer

    model = CharLSTM(VOCAB) if workload == "char_lstm" else CharTransformer(VOCAB)
    model.train()
    ids = cr.tensor(rng.integers(0, VOCAB, (BATCH, SEQ)).astype(np.int64))
    labels = cr.tensor(rng.integers(0, VOCAB, (BATCH, SEQ)).astype(np.int64))
    return _training_step(model, cr.optim.Adam(model.parameters(), lr=LR),
                          lambda: F.cross_entropy(model(ids), labels))


def _training_step(model: Any, opt: Any, loss: Callable[[], Any]) -> Callable[[], None]:
    """zero_grad, loss (forward), backward, optimizer step: the same for both libraries."""
    def step() -> None:
        opt.zero_grad()
        loss().backward()
        opt.step()

    return step


# =========================================================================== torch steps
def torch_step(workload: str) -> Callable[[], None]:
    """A closure running one step of ``workload`` with PyTorch."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if workload == "lstm":
        model = torch.nn.LSTM(LSTM_SIZE, LSTM_SIZE, LSTM_LAYERS)
        x = torch.from_numpy(rng.standard_normal((SEQ, BATCH, LSTM_SIZE)).astype(np.float32))

        def step() -> None:
            for p in model.parameters():
                p.grad = None
            out, _ = model(x)
            out.sum().backward()

        return step
    if workload == "encoder":
        model = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, dim_feedforward=FEED_FORWARD,
                                                 dropout=0.0, batch_first=True)
        x = torch.from_numpy(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
        target = torch.from_numpy(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
        return _training_step(model, torch.optim.Adam(model.parameters(), lr=LR),
                              lambda: F.mse_loss(model(x), target))
    model = TorchCharLSTM(VOCAB) if workload == "char_lstm" else TorchCharTransformer(VOCAB)
    model.train()
    ids = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, SEQ)).astype(np.int64))
    labels = torch.from_numpy(rng.integers(0, VOCAB, (BATCH, SEQ)).astype(np.int64))
    return _training_step(model, torch.optim.Adam(model.parameters(), lr=LR),
                          lambda: F.cross_entropy(model(ids), labels))


class TorchCharLSTM:
    """torch twin of ``CharLSTM``: Embedding(V, 64) -> LSTM(64, 128, 2) -> Linear(128, V),
    logits as (N, V, L). Built lazily so the chainrule worker never imports torch."""

    def __new__(cls, vocabulary: int, embedding: int = 64, hidden: int = 128, layers: int = 2):
        import torch

        class _CharLSTM(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embedding = torch.nn.Embedding(vocabulary, embedding)
                self.lstm = torch.nn.LSTM(embedding, hidden, layers, batch_first=True)
                self.head = torch.nn.Linear(hidden, vocabulary)

            def forward(self, ids: Any) -> Any:
                out, _ = self.lstm(self.embedding(ids))
                return self.head(out).transpose(1, 2)

        return _CharLSTM()


class TorchCharTransformer:
    """torch twin of ``CharTransformer``: token + position embeddings (d 128), 2 pre-norm
    layers (4 heads, feed-forward 256, dropout 0.1), causal mask, LayerNorm, Linear; (N, V, L)."""

    def __new__(cls, vocabulary: int, d_model: int = 128, heads: int = 4, layers: int = 2,
                feed_forward: int = 256, max_len: int = SEQ):
        import torch

        class _CharTransformer(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embedding = torch.nn.Embedding(vocabulary, d_model)
                self.position = torch.nn.Embedding(max_len, d_model)
                layer = torch.nn.TransformerEncoderLayer(d_model, heads, feed_forward,
                                                         dropout=0.1, batch_first=True,
                                                         norm_first=True)
                # nested tensors only serve padding masks in eval mode: off, as for a plain layer
                self.encoder = torch.nn.TransformerEncoder(
                    layer, layers, norm=torch.nn.LayerNorm(d_model), enable_nested_tensor=False)
                self.head = torch.nn.Linear(d_model, vocabulary)

            def forward(self, ids: Any) -> Any:
                length = ids.shape[1]
                h = self.embedding(ids) + self.position(torch.arange(length))
                mask = torch.nn.Transformer.generate_square_subsequent_mask(length)
                return self.head(self.encoder(h, mask=mask, is_causal=True)).transpose(1, 2)

        return _CharTransformer()


# =========================================================================== worker
def worker(library: str, workload: str, warmup: int, steps: int) -> None:
    """Time ``steps`` steps after ``warmup`` untimed ones; print the times as one JSON line."""
    if library == "torch":
        import torch

        torch.set_num_threads(THREADS)
        step = torch_step(workload)
    else:
        step = chainrule_step(workload)
    times = step_times(step, warmup, steps)
    print(MARK + json.dumps({"times": times}), flush=True)


def profile(workload: str, steps: int) -> None:
    """cProfile of ``steps`` chainrule steps (top 10 by own time) and the primitives bound."""
    import cProfile
    import pstats

    from chainrule.ops.primitive import Primitive

    step = chainrule_step(workload)
    for _ in range(3):
        step()
    counts: Counter = Counter()
    seconds: Counter = Counter()  # inclusive time in bind (kernel + dispatch), per primitive
    original = Primitive.bind

    def counting_bind(self: Any, *inputs: Any, **params: Any) -> Any:
        counts[self.name] += 1
        start = time.perf_counter()
        out = original(self, *inputs, **params)
        seconds[self.name] += time.perf_counter() - start
        return out

    Primitive.bind = counting_bind  # type: ignore[method-assign]
    try:
        step()
    finally:
        Primitive.bind = original  # type: ignore[method-assign]
    start = time.perf_counter()
    for _ in range(steps):
        step()
    plain_ms = (time.perf_counter() - start) / steps * 1e3
    total = sum(counts.values())
    print(f"# chainrule {workload}: {plain_ms:.1f} ms per step (unprofiled, mean of {steps}); "
          f"{total} primitive binds per step (forward, backward and optimizer), "
          f"{plain_ms * 1e3 / max(total, 1):.0f} us of step time per bind")
    print("binds per step by primitive (count, ms in bind during one counted step): "
          + ", ".join(f"{name} {counts[name]} ({t * 1e3:.1f} ms)"
                      for name, t in seconds.most_common()))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    print(f"\ncProfile of {steps} steps, top 10 by own time:")
    pstats.Stats(prof).sort_stats("tottime").print_stats(10)


# =========================================================================== driver
def bench_env() -> dict:
    """The environment of every benchmark process (see the module docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update({k: str(THREADS) for k in THREAD_ENV})
    return env


def run_job(library: str, workload: str, args: argparse.Namespace) -> float:
    """Median step time (s) of one fresh worker process."""
    cmd = [sys.executable, __file__, "--worker", library, workload,
           "--warmup", str(args.warmup), "--steps", str(args.steps)]
    done = subprocess.run(cmd, env=bench_env(), capture_output=True, text=True, timeout=900)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{library} {workload} failed:\n{done.stdout}\n{done.stderr}")
    return statistics.median(json.loads(lines[-1][len(MARK):])["times"])


def machine_lines() -> list[str]:
    """CPU model and flags, each library's BLAS (procs.py's description, at THREADS threads)."""
    return procs_machine_lines(THREADS)


def fmt_ms(values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return f"{statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "WORKLOAD"))
    parser.add_argument("--profile", choices=WORKLOADS)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true", help="1 round, 2 warm-up, 3 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.steps = 1, 2, 3
    if args.worker:
        worker(args.worker[0], args.worker[1], args.warmup, args.steps)
        return
    if args.profile:
        profile(args.profile, args.steps)
        return
    for line in machine_lines():
        print(f"- {line}")
    print(f"- {args.rounds} processes per (library, workload), {args.warmup} warm-up and "
          f"{args.steps} timed steps each; each waits for other programs' load "
          f"< {args.max_load} CPUs (at most {args.max_wait:.0f} s)\n")
    results: dict = {w: {"chainrule": [], "torch": []} for w in args.workloads}
    loads: list[float] = []
    for r in range(args.rounds):
        for workload in args.workloads:
            order = ("chainrule", "torch") if r % 2 == 0 else ("torch", "chainrule")
            for library in order:
                loads.append(wait_quiet(args.max_load, args.max_wait))
                results[workload][library].append(run_job(library, workload, args))
                print(f"round {r + 1}: {library} {workload} "
                      f"{results[workload][library][-1] * 1e3:.1f} ms (others' load "
                      f"{loads[-1]:.2f} CPUs)", file=sys.stderr, flush=True)
    print("| workload | chainrule, median ms (range) | torch, median ms (range) "
          "| chainrule / torch | target <= 1.5x |")
    print("|---|---:|---:|---:|:---:|")
    for workload in args.workloads:
        cr_t, th_t = results[workload]["chainrule"], results[workload]["torch"]
        ratio = statistics.median(cr_t) / statistics.median(th_t)
        print(f"| {LABELS[workload]} | {fmt_ms(cr_t)} | {fmt_ms(th_t)} | {ratio:.2f} "
              f"| {'met' if ratio <= TARGET_RATIO else 'not met'} |")
    print(f"\nCPUs busy with other programs just before each process (0.5 s of /proc/stat): "
          f"median {statistics.median(loads):.2f}, max {max(loads):.2f}; 1-min load average "
          f"at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

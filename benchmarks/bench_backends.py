"""chainrule on each available array backend, and torch on the same device: MLP and CNN steps.

Run (from the repository root):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_backends.py
    python benchmarks/bench_backends.py --quick          # smoke run, under a minute on a GPU

Libraries: chainrule on every backend of ``cr.backends.available()`` (``numpy``; ``cupy`` where a
GPU works; ``array_api_strict``, the array API test namespace), and torch as the peer on each
device: torch on the CPU always, torch on CUDA when ``torch.cuda.is_available()``. Each library on
each device runs in a process of its own (``--processes`` of them, alternating), so no library's
threads, allocator or caches disturb another's. torch gets as many threads as NumPy's BLAS.

Workloads, float32, same initial weights and data (NumPy's generator, seed 0) everywhere:

- MLP step: ``relu(x @ W1 + b1) @ W2 + b2`` for 784-256-10 at batch 64, cross-entropy,
  backward, SGD (``p.data -= lr * p.grad.data``);
- CNN step (the digits CNN's shape): 1x8x8 input, conv 16 3x3 padding 1, ReLU, max-pool 2,
  flatten, linear 256-10, cross-entropy, backward, SGD, at batch 32.

Every step is timed alone and, on a GPU, ends with a device synchronisation. A process reports
the median of its steps (``--rounds`` rounds of ``--reps`` steps, fewer when ``--max-seconds``
runs out); the table gives the median over processes and their range, and chainrule's time over
torch's on the same device. The loss of the first step of every library is checked against
chainrule-on-NumPy's (relative 1e-4): a backend that computes something else is reported, not
timed silently.

``array_api_strict`` wraps NumPy and checks every call against the standard: it proves that the
generic kernels are standard-only, and its time is the price of those checks and of the generic
(not NumPy-specific) kernels, not a speed any user would run at.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

LR = 0.01
MLP_SIZES, MLP_BATCH = (784, 256, 10), 64
CNN_BATCH, CNN_CHANNELS = 32, 16
LOSS_RTOL = 1e-4
STRICT_NOTE = "correctness namespace (NumPy + checks), not a speed figure"


# --------------------------------------------------------------------------- data (host)
def _uniform(rng: np.random.Generator, shape: tuple, fan_in: int) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def mlp_arrays() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(W1, b1, W2, b2), x (64, 784), labels (64,) int64."""
    rng = np.random.default_rng(0)
    d_in, hidden, d_out = MLP_SIZES
    params = [_uniform(rng, (d_in, hidden), d_in), _uniform(rng, (hidden,), d_in),
              _uniform(rng, (hidden, d_out), hidden), _uniform(rng, (d_out,), hidden)]
    x = rng.standard_normal((MLP_BATCH, d_in)).astype(np.float32)
    return params, x, rng.integers(0, d_out, MLP_BATCH).astype(np.int64)


def cnn_arrays() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(conv weight (16,1,3,3), conv bias, linear W (256, 10), b), x (32,1,8,8), labels."""
    rng = np.random.default_rng(0)
    flat = CNN_CHANNELS * 4 * 4
    params = [_uniform(rng, (CNN_CHANNELS, 1, 3, 3), 9), _uniform(rng, (CNN_CHANNELS,), 9),
              _uniform(rng, (flat, 10), flat), _uniform(rng, (10,), flat)]
    x = rng.standard_normal((CNN_BATCH, 1, 8, 8)).astype(np.float32)
    return params, x, rng.integers(0, 10, CNN_BATCH).astype(np.int64)


# --------------------------------------------------------------------------- one library
def chainrule_steps(device: str) -> dict[str, Callable[[], float]]:
    """{model: one step returning its loss}, chainrule with every array on ``device``."""
    import chainrule as cr

    def place(arrays: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple:
        params = [cr.tensor(a, device=device, requires_grad=True) for a in arrays]
        return params, cr.tensor(x, device=device), cr.tensor(y, device=device)

    def sgd(loss: Any, params: list) -> float:
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data  # in place on the backend's arrays, as bench_engine
            p.grad = None
        return float(loss.numpy())

    mlp_p, mlp_x, mlp_y = place(*mlp_arrays())
    cnn_p, cnn_x, cnn_y = place(*cnn_arrays())

    def mlp() -> float:
        w1, b1, w2, b2 = mlp_p
        return sgd(cr.cross_entropy(cr.relu(mlp_x @ w1 + b1) @ w2 + b2, mlp_y), mlp_p)

    def cnn() -> float:
        w, b, w_out, b_out = cnn_p
        h = cr.max_pool2d(cr.relu(cr.conv2d(cnn_x, w, b, padding=1)), 2)
        logits = cr.reshape(h, (CNN_BATCH, CNN_CHANNELS * 4 * 4)) @ w_out + b_out
        return sgd(cr.cross_entropy(logits, cnn_y), cnn_p)

    return {"mlp": mlp, "cnn": cnn}


def torch_steps(device: str, threads: int) -> dict[str, Callable[[], float]]:
    """The same two steps in torch on ``device``."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)

    def place(arrays: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple:
        params = [torch.tensor(a, device=device, requires_grad=True) for a in arrays]
        return params, torch.tensor(x, device=device), torch.tensor(y, device=device)

    def sgd(loss: Any, params: list) -> float:
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
        return float(loss.item())  # .item() also waits for the GPU

    mlp_p, mlp_x, mlp_y = place(*mlp_arrays())
    cnn_p, cnn_x, cnn_y = place(*cnn_arrays())

    def mlp() -> float:
        w1, b1, w2, b2 = mlp_p
        return sgd(F.cross_entropy(torch.relu(mlp_x @ w1 + b1) @ w2 + b2, mlp_y), mlp_p)

    def cnn() -> float:
        w, b, w_out, b_out = cnn_p
        h = F.max_pool2d(torch.relu(F.conv2d(cnn_x, w, b, padding=1)), 2)
        logits = h.reshape(CNN_BATCH, CNN_CHANNELS * 4 * 4) @ w_out + b_out
        return sgd(F.cross_entropy(logits, cnn_y), cnn_p)

    return {"mlp": mlp, "cnn": cnn}


def time_steps(step: Callable[[], float], args: argparse.Namespace) -> dict:
    """First loss, warm-up, then rounds of timed steps; each step's time in ms.

    Every step ends by reading the loss to the host, which waits for a GPU to finish.
    """
    first_loss = step()
    for _ in range(args.warmup):
        step()
    times: list[float] = []
    deadline = time.perf_counter() + args.max_seconds
    for _ in range(args.rounds):
        for _ in range(args.reps):
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1e3)
        if time.perf_counter() > deadline:
            break
    return {"loss": first_loss, "median_ms": statistics.median(times), "steps": len(times)}


def child(args: argparse.Namespace) -> None:
    """One library on one device: print {model: result or error} as JSON."""
    lib, device = args.child.split("@")
    out: dict[str, Any] = {}
    try:
        steps = (torch_steps(device, args.threads) if lib == "torch" else chainrule_steps(device))
    except Exception as exc:  # noqa: BLE001 -- reported in the table
        steps, out["error"] = {}, f"{type(exc).__name__}: {exc}"
    for model, step in steps.items():
        try:
            out[model] = time_steps(step, args)
        except Exception as exc:  # noqa: BLE001 -- a backend that cannot run a model is a result
            out[model] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    print(json.dumps(out))


# --------------------------------------------------------------------------- parent
def numpy_blas_threads() -> int:
    """Threads of NumPy's BLAS (threadpoolctl), else the CPU count: torch gets as many."""
    try:
        import threadpoolctl
    except ImportError:
        return os.cpu_count() or 1
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else os.cpu_count() or 1


def libraries(only: list[str] | None) -> list[tuple[str, str]]:
    """(library, device) pairs: chainrule's backends, then torch on each device they use."""
    import chainrule as cr

    pairs = [(name, str(cr.backends.get(name).default())) for name in cr.backends.available()]
    try:
        import torch
    except ImportError:  # chainrule's backends alone
        pass
    else:
        pairs.append(("torch", "cpu"))
        if torch.cuda.is_available():
            pairs.append(("torch", "cuda"))
    if only:
        pairs = [p for p in pairs if f"{p[0]}@{p[1]}" in only or p[0] in only]
    return pairs


def run_child(lib: str, device: str, args: argparse.Namespace, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", f"{lib}@{device}", "--threads", str(threads)]
    for name in ("rounds", "reps", "warmup", "max_seconds"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peer_device(device: str) -> str:
    """torch's device for a chainrule device: the GPU for cuda, else the CPU."""
    return "cuda" if device.startswith("cuda") else "cpu"


def step_medians(pairs: list[tuple[str, str]], results: dict) -> dict:
    """{(lib, device, model): median over processes of their median step, ms} (no failures)."""
    medians = {}
    for lib, device in pairs:
        for model in ("mlp", "cnn"):
            runs = [r.get(model, {}) for r in results[(lib, device)]]
            if runs and all("median_ms" in r for r in runs):
                medians[(lib, device, model)] = statistics.median(r["median_ms"] for r in runs)
    return medians


def print_table(pairs: list[tuple[str, str]], results: dict) -> None:
    medians = step_medians(pairs, results)
    print("| model | library (device) | step, median ms | range over processes "
          "| vs torch, same device | first loss | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    reference: dict[str, float] = {}
    for model in ("mlp", "cnn"):
        title = "MLP 784-256-10, b 64" if model == "mlp" else "CNN 1x8x8 c16-pool-fc, b 32"
        for lib, device in pairs:
            name = "torch" if lib == "torch" else f"chainrule {lib}"
            runs = [r.get(model, {"error": r.get("error", "?")}) for r in results[(lib, device)]]
            errors = [r["error"] for r in runs if "error" in r]
            if errors:
                print(f"| {title} | {name} ({device}) | - | - | - | - | failed: {errors[0]} |")
                continue
            median, loss = medians[(lib, device, model)], runs[0]["loss"]
            times = [r["median_ms"] for r in runs]
            reference.setdefault(model, loss)  # the first library listed: chainrule on NumPy
            peer = medians.get(("torch", peer_device(device), model))
            vs = "-" if lib == "torch" or peer is None else f"{median / peer:.2f}x"
            notes = [STRICT_NOTE] if lib == "array_api_strict" else []
            if abs(loss - reference[model]) > LOSS_RTOL * abs(reference[model]):
                notes.append(f"LOSS DIFFERS from {reference[model]:.6f}")
            print(f"| {title} | {name} ({device}) | {median:.3f} | {min(times):.3f}-"
                  f"{max(times):.3f} | {vs} | {loss:.6f} | {'; '.join(notes)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 process, 3 rounds of 5 steps per library")
    parser.add_argument("--processes", type=int, default=3, help="processes per library")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--reps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="stop a model's rounds after this long (slow backends)")
    parser.add_argument("--only", help="comma-separated libraries or lib@device, e.g. numpy,torch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.processes, args.rounds, args.reps, args.warmup = 1, 3, 5, 3
        args.max_seconds = min(args.max_seconds, 5.0)
    if args.child:
        child(args)
        return
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var} is removed from the benchmark processes' environment")
    threads = numpy_blas_threads()
    pairs = libraries(args.only.split(",") if args.only else None)
    print(f"- libraries (device): {', '.join(f'{lib} ({dev})' for lib, dev in pairs)}")
    print(f"- {args.processes} process(es) per library, alternating; each: {args.warmup} warm-up "
          f"steps, up to {args.rounds} x {args.reps} timed steps (at most {args.max_seconds:g} s "
          f"per model); torch threads = NumPy BLAS threads = {threads}\n")
    results: dict = {pair: [] for pair in pairs}
    for k in range(args.processes):
        for pair in pairs if k % 2 == 0 else pairs[::-1]:
            results[pair].append(run_child(*pair, args, threads))
    print_table(pairs, results)


if __name__ == "__main__":
    main()

"""Issue 13's targets, chainrule against PyTorch, each library in its own process (procs.py).

Run (from the repository root):

    python benchmarks/bench_targets.py                 # every case, 5 rounds
    python benchmarks/bench_targets.py --cases chain mlp_b128 --rounds 3
    python benchmarks/bench_targets.py --quick         # a smoke run

Cases (float32; the same data and initial weights in both libraries, drawn from NumPy seeds; the
worker's check value, a loss or an output sum, must agree between the libraries):

- ``chain``: 1,000 cheap elementwise ops (x * 1.0001, x + 0.001, x * 0.9999, x - 0.001, repeated)
  on a (10,) leaf, then ``sum().backward()``; reported per op (us). Target <= 0.7x.
- ``mlp_b128`` / ``mlp_b32``: one SGD step of an MLP 784-256-256-10 with ReLU written as
  ``x @ W + b``, cross-entropy, backward, ``p.data -= lr * p.grad.data``. Target <= 0.8x.
- ``conv_small``: conv2d x (64, 16, 28, 28), w (32, 16, 3, 3), bias, padding 1, forward and
  backward with a fixed output gradient. Target <= 1.5x.
- ``conv_wide``: conv2d x (32, 64, 32, 32), w (64, 64, 3, 3), padding 1, the same. Target <= 1.0x.
- ``lenet``: a LeNet-like CNN step at batch 64: conv 16 3x3, ReLU, max-pool 2, conv 32 3x3, ReLU,
  max-pool 2, flatten, linear 800-10 on 1x28x28 inputs; zero_grad, cross-entropy, backward, Adam
  (lr 1e-3). Target <= 1.3x.
- ``max_pool``: max_pool2d 2x2 on (64, 32, 28, 28), forward and backward. No target here
  (measured for the record).
- ``digits_mlp`` / ``digits_cnn``: one epoch of ``chainrule train``'s default MLP / CNN on the
  digits (1,294 training images, batch 32, each library's DataLoader shuffling, Adam); target:
  at least torch's samples/s, i.e. time ratio <= 1.0.
- ``--memory [ROUNDS]``: the LeNet step's peak memory instead of time. Each library, in its own
  process, builds the case, resets the peak RSS (``/proc/self/clear_refs``), runs 10 steps and
  reports the peak RSS (VmHWM) minus its RSS before the first step (for chainrule also
  tracemalloc's peak of NumPy's allocations). Target: chainrule's growth <= 1.5x torch's. Two
  rows: from before the first step (one-time loading included, such as numba's compiled kernels
  at chainrule's first conv), and steps 2-11 after a warm-up step (the steady state).
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402

CHAIN = 1000
MLP = (784, 256, 256, 10)
LR = 0.01


# --------------------------------------------------------------------------- libraries
def _lib(library: str):
    """(namespace, tensor(array, grad), functional) for the library, imported on demand."""
    if library == "torch":
        import torch
        import torch.nn.functional as F

        return torch, (lambda a, grad=False: torch.tensor(a, requires_grad=grad)), F
    import chainrule as cr
    import chainrule.nn.functional as F

    return cr, (lambda a, grad=False: cr.tensor(a, requires_grad=grad)), F


# --------------------------------------------------------------------------- cases
def chain(library: str):
    lib, tensor, _ = _lib(library)
    x0 = tensor(np.full((10,), 0.5, np.float32), True)

    def step():
        x = x0
        for _ in range(CHAIN // 4):
            x = x * 1.0001
            x = x + 0.001
            x = x * 0.9999
            x = x - 0.001
        x.sum().backward()
        x0.grad = None

    step()
    x = x0
    for _ in range(CHAIN // 4):
        x = ((x * 1.0001 + 0.001) * 0.9999) - 0.001
    return step, float(x.sum().item())


def mlp(batch: int):
    def build(library: str):
        lib, tensor, F = _lib(library)
        rng = np.random.default_rng(0)
        params = []
        for fan_in, fan_out in zip(MLP[:-1], MLP[1:]):
            bound = 1 / np.sqrt(fan_in)
            params.append(tensor(rng.uniform(-bound, bound, (fan_in, fan_out))
                                 .astype(np.float32), True))
            params.append(tensor(rng.uniform(-bound, bound, fan_out).astype(np.float32), True))
        data = np.random.default_rng(1 + batch)
        x = tensor(data.standard_normal((batch, MLP[0])).astype(np.float32))
        y = tensor(data.integers(0, MLP[-1], batch).astype(np.int64))
        relu = lib.relu

        def loss():
            w1, b1, w2, b2, w3, b3 = params
            h = relu(relu(x @ w1 + b1) @ w2 + b2)
            return F.cross_entropy(h @ w3 + b3, y)

        def step():
            value = loss()
            value.backward()
            for p in params:
                p.data -= LR * p.grad.data
                p.grad = None
            return value

        first = float(step().item())
        return step, first
    return build


def conv(x_shape: tuple, w_shape: tuple):
    def build(library: str):
        lib, tensor, F = _lib(library)
        rng = np.random.default_rng(0)
        x = tensor(rng.standard_normal(x_shape).astype(np.float32), True)
        w = tensor((rng.standard_normal(w_shape) * 0.1).astype(np.float32), True)
        b = tensor(rng.standard_normal(w_shape[0]).astype(np.float32), True)
        out_shape = (x_shape[0], w_shape[0]) + x_shape[2:]
        g = tensor(rng.standard_normal(out_shape).astype(np.float32))

        def step():
            for t in (x, w, b):
                t.grad = None
            F.conv2d(x, w, b, padding=1).backward(g)

        step()
        return step, float(w.grad.sum().item())
    return build


def max_pool(library: str):
    lib, tensor, F = _lib(library)
    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((64, 32, 28, 28)).astype(np.float32), True)
    g = tensor(rng.standard_normal((64, 32, 14, 14)).astype(np.float32))

    def step():
        x.grad = None
        F.max_pool2d(x, 2).backward(g)

    step()
    return step, float((x.grad * x).sum().item())


def lenet(library: str, first_step: bool = True):
    lib, tensor, F = _lib(library)
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 10))
    _seed_weights(lib, library, model)
    data = np.random.default_rng(1)
    x = tensor(data.standard_normal((64, 1, 28, 28)).astype(np.float32))
    y = tensor(data.integers(0, 10, 64).astype(np.int64))
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, (float(step().item()) if first_step else None)


def _digits(library: str, kind: str):
    """One epoch of ``chainrule train``'s default MLP or CNN on the digits' 1,294 training images
    (as its split), batch 32, shuffled by the library's own DataLoader, Adam (lr 1e-3),
    cross-entropy. The torch twin has the same layers and NumPy-seeded weights; no check value
    (the loaders shuffle differently)."""
    from sklearn.datasets import load_digits

    lib, tensor, F = _lib(library)
    nn = lib.nn
    images, labels = load_digits(return_X_y=True)
    x = (images[:1294] / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    y = labels[:1294].astype(np.int64)
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128),
                              nn.ReLU(), nn.Linear(128, 10))
    else:
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10))
    _seed_weights(lib, library, model)
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    if library == "torch":
        from torch.utils.data import DataLoader, TensorDataset
    else:
        from chainrule.data import DataLoader, TensorDataset
    loader = DataLoader(TensorDataset(tensor(x), tensor(y)), batch_size=32, shuffle=True)

    def epoch():
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    return epoch, None


def _seed_weights(lib, library: str, model) -> None:
    """The same U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights in both libraries, from one seed."""
    rng = np.random.default_rng(0)
    for p in model.parameters():
        shape = tuple(p.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        values = rng.uniform(-1, 1, shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
        p.data = values if library == "chainrule" else lib.from_numpy(values)


def _case(name: str, label: str, build, target, **kw) -> procs.Case:
    return procs.Case(name, label, {"chainrule": build, "torch": build}, target, **kw)


CASES = [
    _case("chain", f"{CHAIN}-op elementwise chain, (10,), fwd+bwd, per op", chain, 0.7,
          unit="us/op", scale=1e6 / CHAIN, check_rtol=1e-5),
    _case("mlp_b128", "MLP 784-256-256-10 SGD step, batch 128", mlp(128), 0.8),
    _case("mlp_b32", "MLP 784-256-256-10 SGD step, batch 32", mlp(32), 0.8),
    _case("conv_small", "conv2d fwd+bwd x(64,16,28,28) w(32,16,3,3) p1",
          conv((64, 16, 28, 28), (32, 16, 3, 3)), 1.5, check_rtol=1e-3),
    _case("conv_wide", "conv2d fwd+bwd x(32,64,32,32) w(64,64,3,3) p1",
          conv((32, 64, 32, 32), (64, 64, 3, 3)), 1.0, check_rtol=1e-3),
    _case("lenet", "LeNet-like CNN step, batch 64 (conv16-pool-conv32-pool-linear), Adam",
          lenet, 1.3, samples=64),
    _case("max_pool", "max_pool2d 2x2 fwd+bwd, (64,32,28,28)", max_pool, None),
    # throughput: a step is a whole epoch; the target is chainrule's time <= torch's
    _case("digits_mlp", "digits MLP 64-128-128-10 epoch, batch 32, with the DataLoader",
          lambda library: _digits(library, "mlp"), 1.0, samples=1294),
    _case("digits_cnn", "digits CNN (conv16-conv32-pool-64-10) epoch, batch 32, with the loader",
          lambda library: _digits(library, "cnn"), 1.0, samples=1294),
]

def memory_worker(library: str, warm: bool, steps: int = 10) -> None:
    """Peak-RSS growth of the LeNet step (see the docstring); one JSON line. ``warm``: one step
    runs before the baseline (what stays is the steady state of training steps; what goes is
    each library's one-time loading, e.g. numba's compiled kernels at chainrule's first conv)."""
    import json
    import tracemalloc

    if library == "torch":
        import torch

        torch.set_num_threads(2)
    tracemalloc.start()
    step, _ = lenet(library, first_step=warm)  # the model and the data (and a step if warm)

    def status_kib(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    tracemalloc.reset_peak()
    before = status_kib("VmRSS:")
    for _ in range(steps):
        step()
    peak = status_kib("VmHWM:")
    print(procs.MARK + json.dumps({"rss_growth_mib": (peak - before) / 1024,
                                   "tracemalloc_peak_mib": tracemalloc.get_traced_memory()[1]
                                   / 2**20}), flush=True)


def memory_table(rounds: int) -> None:
    for warm in (False, True):
        _memory_row(rounds, warm)


def _memory_row(rounds: int, warm: bool) -> None:
    import json
    import statistics
    import subprocess

    growth: dict = {"chainrule": [], "torch": []}
    traced = []
    for r in range(rounds):
        for library in procs.LIBRARIES if r % 2 == 0 else procs.LIBRARIES[::-1]:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-worker",
                                   library] + (["--warm"] if warm else []),
                                  env=procs.bench_env(2), capture_output=True, text=True,
                                  check=True)
            got = json.loads([ln for ln in done.stdout.splitlines()
                              if ln.startswith(procs.MARK)][-1][len(procs.MARK):])
            growth[library].append(got["rss_growth_mib"])
            if library == "chainrule":
                traced.append(got["tracemalloc_peak_mib"])
    ours, theirs = (statistics.median(growth[lib]) for lib in procs.LIBRARIES)
    when = "steps 2-11 (after a warm-up step)" if warm else "the first 10 steps"
    print(f"LeNet step b64, peak RSS growth over {when} (MiB, median of {rounds} processes): "
          f"chainrule {ours:.1f} (range {min(growth['chainrule']):.1f}-"
          f"{max(growth['chainrule']):.1f}), torch {theirs:.1f} (range "
          f"{min(growth['torch']):.1f}-{max(growth['torch']):.1f}); ratio {ours / theirs:.2f} "
          f"(target <= 1.5); chainrule's tracemalloc peak {statistics.median(traced):.1f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-worker"]:
        memory_worker(sys.argv[2], warm="--warm" in sys.argv[3:])
    elif sys.argv[1:2] == ["--memory"]:
        memory_table(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    else:
        procs.main(os.path.abspath(__file__), CASES, __doc__)

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


def lenet(library: str):
    lib, tensor, F = _lib(library)
    nn = lib.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 10))
    rng = np.random.default_rng(0)
    for p in model.parameters():  # the same weights in both libraries
        shape = tuple(p.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        values = rng.uniform(-1, 1, shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
        p.data = values if library == "chainrule" else lib.from_numpy(values)
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

    first = float(step().item())
    return step, first


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
]

if __name__ == "__main__":
    procs.main(os.path.abspath(__file__), CASES, __doc__)

"""Engine-bound workloads for instruction counts under valgrind (stable where wall clock is not).

Run one workload ``--warmup`` times untimed, then ``--repeat`` more times, in a process of its
own, under callgrind:

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/instr_count.py chain --repeat 3

The instructions of one repetition are (count with ``--repeat K``) - (count with ``--repeat 0``)
divided by K: the import, the set-up and the warm-up cancel. ``compare_before_after.py`` does this
for two source trees. The workloads use only the public API (``cr.*``) present before and after
issue 10, and never import torch:

- ``chain``: bench_engine's chain, a float32 (10,) leaf, 250 x (``*1.0001``, ``+0.001``,
  ``*0.9999``, ``-0.001``), ``sum().backward()``: 1,000 ops forward + backward;
- ``mlp``: bench_engine's SGD step, MLP 784-256-256-10, ReLU, cross-entropy, float32, batch 32;
- ``cnn``: bench_backends' CNN step, 1x8x8 input, conv 16 3x3 pad 1, ReLU, max-pool 2,
  linear 256-10, cross-entropy, SGD, float32, batch 32;
- ``pool``: max_pool2d 2x2 forward + backward on x (16, 32, 28, 28), float32 (bench_conv's pool at
  a quarter of its batch, to keep valgrind's run short).

One OpenBLAS thread keeps the BLAS part deterministic (valgrind serialises threads anyway).
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

import chainrule as cr

LR = 0.01


def chain_workload() -> Callable[[], None]:
    """Build the 1,000-op chain; return one forward + backward run."""
    leaf = cr.tensor(np.full((10,), 0.5, np.float32), requires_grad=True)

    def run() -> None:
        y = leaf
        for _ in range(250):
            y = y * 1.0001
            y = y + 0.001
            y = y * 0.9999
            y = y - 0.001
        y.sum().backward()
        leaf.grad = None

    return run


def _sgd(params: list) -> None:
    """p <- p - lr * dL/dp, in place on the arrays (bench_engine's update), then drop the grad."""
    for p in params:
        p.data -= LR * p.grad.data
        p.grad = None


def _uniform_params(shapes: list[tuple], rng: np.random.Generator) -> list:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) float32 leaves; fan_in = size / first dim (or dim)."""
    params = []
    for shape in shapes:
        fan_in = shape[1] * int(np.prod(shape[2:])) if len(shape) > 2 else shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        params.append(cr.tensor(rng.uniform(-bound, bound, shape).astype(np.float32),
                                requires_grad=True))
    return params


def mlp_workload(batch: int = 32) -> Callable[[], None]:
    """bench_engine's MLP step: relu(x @ W1 + b1) ... cross-entropy, backward, SGD."""
    rng = np.random.default_rng(0)
    sizes = (784, 256, 256, 10)
    shapes: list[tuple] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    params = _uniform_params(shapes, rng)
    x = cr.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = cr.tensor(rng.integers(0, sizes[-1], batch).astype(np.int64))

    def run() -> None:
        w1, b1, w2, b2, w3, b3 = params
        h = cr.relu(x @ w1 + b1)
        h = cr.relu(h @ w2 + b2)
        cr.cross_entropy(h @ w3 + b3, y).backward()
        _sgd(params)

    return run


def cnn_workload(batch: int = 32) -> Callable[[], None]:
    """conv 16 3x3 pad 1 -> ReLU -> max-pool 2 -> linear 256-10 -> cross-entropy, SGD."""
    rng = np.random.default_rng(0)
    params = _uniform_params([(16, 1, 3, 3), (16,), (16 * 4 * 4, 10), (10,)], rng)
    x = cr.tensor(rng.standard_normal((batch, 1, 8, 8)).astype(np.float32))
    y = cr.tensor(rng.integers(0, 10, batch).astype(np.int64))

    def run() -> None:
        w, b, w_out, b_out = params
        h = cr.max_pool2d(cr.relu(cr.conv2d(x, w, b, padding=1)), 2)
        logits = cr.reshape(h, (batch, 16 * 4 * 4)) @ w_out + b_out
        cr.cross_entropy(logits, y).backward()
        _sgd(params)

    return run


def pool_workload() -> Callable[[], None]:
    """max_pool2d(x, 2) forward + backward, x (16, 32, 28, 28) float32."""
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((16, 32, 28, 28)).astype(np.float32), requires_grad=True)

    def run() -> None:
        cr.max_pool2d(x, 2).sum().backward()
        x.grad = None

    return run


WORKLOADS = {"chain": chain_workload, "mlp": mlp_workload, "cnn": cnn_workload,
             "pool": pool_workload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs to count (default 3)")
    args = parser.parse_args()
    run = WORKLOADS[args.workload]()
    for _ in range(args.warmup + args.repeat):
        run()


if __name__ == "__main__":
    main()

"""The floor under the MLP target: the same SGD step written by hand in plain NumPy.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_mlp_floor.py 32 128

For each batch size, one process times (medians of 200 steps, twice) the MLP 784-256-256-10 step
of ``bench_targets.py`` in chainrule and the same arithmetic in NumPy with no framework: forward,
softmax cross-entropy, the six gradient GEMMs and reductions, the SGD update. What chainrule adds
over NumPy is the framework; what NumPy itself takes is the floor for any NumPy-based library.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_targets  # noqa: E402
import procs  # noqa: E402

LR = 0.01


def numpy_step(batch: int):
    """A step function doing the MLP's arithmetic in plain NumPy, on its own copies of the data."""
    rng = np.random.default_rng(0)
    weights = [(rng.standard_normal(shape) * 0.05).astype(np.float32)
               for shape in ((784, 256), (256, 256), (256, 10))]
    biases = [np.zeros(n, np.float32) for n in (256, 256, 10)]
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    rows = np.arange(batch)

    def step() -> None:
        (w1, w2, w3), (b1, b2, b3) = weights, biases
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        z = h2 @ w3 + b3
        z -= z.max(axis=1, keepdims=True)
        g = np.exp(z)
        g /= g.sum(axis=1, keepdims=True)
        g[rows, labels] -= 1
        g /= batch  # d(mean cross-entropy)/dz
        g2 = (g @ w3.T) * (h2 > 0)
        g1 = (g2 @ w2.T) * (h1 > 0)
        grads = [x.T @ g1, h1.T @ g2, h2.T @ g, g1.sum(0), g2.sum(0), g.sum(0)]
        for param, grad in zip(weights + biases, grads):
            param -= LR * grad

    return step


def median_ms(step, repeats: int = 200) -> float:
    return float(np.median(procs.step_times(step, 10, repeats))) * 1e3


if __name__ == "__main__":
    for batch in [int(a) for a in sys.argv[1:]] or [32, 128]:
        ours, _ = bench_targets.mlp(batch)("chainrule")
        floor = numpy_step(batch)
        for _ in range(2):
            print(f"batch {batch}: plain NumPy {median_ms(floor):.3f} ms, chainrule "
                  f"{median_ms(ours):.3f} ms")

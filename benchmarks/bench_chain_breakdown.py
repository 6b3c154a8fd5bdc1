"""Where a cheap op's time goes: a 1,000-op chain on a (10,) float32 tensor, per op.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_chain_breakdown.py

Prints NumPy's own time for the same arithmetic (the floor), then chainrule's forward without a
graph, the forward recording one, and forward + backward (medians of 30 chains, one process:
compare the figures of one run with each other, not across runs on a noisy machine).
"""

from __future__ import annotations

import os
import sys

import numpy as np

import chainrule as cr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procs  # noqa: E402

OPS = 1000
START = np.full(10, 0.5, np.float32)


def per_op_us(fn, repeats: int = 30) -> float:
    """Median time of ``fn`` over ``repeats`` calls, per op, in microseconds."""
    return float(np.median(procs.step_times(fn, 1, repeats))) / OPS * 1e6


def numpy_forward() -> None:
    x, up, step = START, np.float32(1.0001), np.float32(0.001)
    for _ in range(OPS // 4):
        x = ((x * up + step) * up) - step


def numpy_backward_arithmetic() -> None:
    """What the backward pass computes: one multiply per multiplication (adds pass g through)."""
    g, up = np.ones(10, np.float32), np.float32(1.0001)
    for _ in range(OPS // 2):
        g = g * up


LEAF = cr.tensor(START, requires_grad=True)


def chain() -> cr.Tensor:
    x = LEAF
    for _ in range(OPS // 4):
        x = ((x * 1.0001 + 0.001) * 0.9999) - 0.001
    return x


def forward_without_graph() -> None:
    with cr.no_grad():
        chain()


def forward_and_backward() -> None:
    chain().sum().backward()
    LEAF.grad = None


if __name__ == "__main__":
    recording, both = per_op_us(chain), per_op_us(forward_and_backward)
    print(f"NumPy: forward {per_op_us(numpy_forward):.2f} us/op, the backward's arithmetic "
          f"{per_op_us(numpy_backward_arithmetic) / 2:.2f} us/op")
    print(f"chainrule: forward without a graph {per_op_us(forward_without_graph):.2f} us/op, "
          f"recording {recording:.2f}, forward + backward {both:.2f} (backward "
          f"{both - recording:.2f})")

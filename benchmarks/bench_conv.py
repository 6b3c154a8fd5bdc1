"""chainrule vs PyTorch (CPU): conv2d and max_pool2d, forward + backward, float32.

Run (from the repository root):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py

(those two variables make NumPy's OpenBLAS pick a slower kernel here: unset them for benchmark
runs only). Options: ``--quick`` (a smoke test), ``--rounds N`` (default 30).

Cases (the same data in both libraries, outputs checked to agree first):
- conv2d: x (64, 16, 28, 28), w (32, 16, 3, 3), bias, padding 1; forward, then backward with a
  fixed output gradient (input, weight and bias gradients). Target: at most 1.5x PyTorch's time.
- max_pool2d 2x2 on (64, 32, 28, 28); forward and backward. Target: at most 1.5x.
Method and table: see harness.py.
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np
import torch
import torch.nn.functional as F

import chainrule as cr

TARGET = 1.5


def conv_states(seed: int = 0):
    rng = np.random.default_rng(seed)
    shapes = ((64, 16, 28, 28), (32, 16, 3, 3), (32,))
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grad_out = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return (ours, cr.tensor(grad_out)), (theirs, torch.tensor(grad_out))


def conv_cr(params, grad_out):
    x, w, b = params
    out = cr.conv2d(x, w, b, padding=1)
    out.backward(grad_out)
    for p in params:
        p.grad = None
    return out


def conv_torch(params, grad_out):
    x, w, b = params
    out = F.conv2d(x, w, b, padding=1)
    out.backward(grad_out)
    for p in params:
        p.grad = None
    return out


def pool_states(seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    grad_out = rng.standard_normal((64, 32, 14, 14)).astype(np.float32)
    return (
        (cr.tensor(x, requires_grad=True), cr.tensor(grad_out)),
        (torch.tensor(x, requires_grad=True), torch.tensor(grad_out)),
    )


def pool_cr(x, grad_out):
    out = cr.max_pool2d(x, 2)
    out.backward(grad_out)
    x.grad = None
    return out


def pool_torch(x, grad_out):
    out = F.max_pool2d(x, 2)
    out.backward(grad_out)
    x.grad = None
    return out


def verify() -> str:
    """Both libraries compute the same outputs and gradients (float32 tolerances)."""
    (ours, g_cr), (theirs, g_t) = conv_states()
    x, w, b = ours
    out = cr.conv2d(x, w, b, padding=1)
    out.backward(g_cr)
    xt, wt, bt = theirs
    expected = F.conv2d(xt, wt, bt, padding=1)
    expected.backward(g_t)
    worst = max(float(np.linalg.norm(a - e) / np.linalg.norm(e))  # float32 sums over 50,176 terms
                for a, e in [(out.numpy(), expected.detach().numpy())] +
                [(p.grad.numpy(), q.grad.numpy()) for p, q in zip(ours, theirs)])
    (xp, gp), (xpt, gpt) = pool_states()
    out_p = cr.max_pool2d(xp, 2)
    out_p.backward(gp)
    out_pt = F.max_pool2d(xpt, 2)
    out_pt.backward(gpt)
    pool_same = np.array_equal(out_p.numpy(), out_pt.detach().numpy()) and np.array_equal(
        xp.grad.numpy(), xpt.grad.numpy()
    )
    if worst > 1e-5 or not pool_same:
        raise SystemExit(
            f"verification failed: conv worst relative error {worst:.2e}, "
            f"pool identical {pool_same}"
        )
    return (
        f"conv2d outputs and gradients agree (worst relative norm error {worst:.1e}); "
        "max_pool2d identical"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="few rounds (smoke test; numbers are noisy)"
    )
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 30)")
    args = ap.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (4 if args.quick else 30)
    reps = 2 if args.quick else 5

    threads = harness.print_setup(
        "chainrule vs PyTorch (CPU) convolution benchmark", "benchmarks/bench_conv.py"
    )
    print(
        f"- rounds: {rounds} x {reps} timed calls per library and case; "
        "order alternates per round\n"
    )
    print(f"Equivalence check: {verify()}\n")
    (c_ours, c_g), (c_theirs, c_gt) = conv_states()
    (p_ours, p_g), (p_theirs, p_gt) = pool_states()
    cases = [
        harness.Case(
            "conv2d fwd+bwd, x (64,16,28,28), w (32,16,3,3), padding 1, float32",
            lambda: conv_cr(c_ours, c_g), lambda: conv_torch(c_theirs, c_gt),
            reps, rounds, TARGET,
        ),
        harness.Case(
            "max_pool2d 2x2 fwd+bwd, x (64,32,28,28), float32",
            lambda: pool_cr(p_ours, p_g), lambda: pool_torch(p_theirs, p_gt),
            reps, rounds, TARGET,
        ),
    ]
    times, elapsed = harness.measure(cases)
    harness.print_table(cases, times, threads, elapsed)


if __name__ == "__main__":
    sys.exit(main())

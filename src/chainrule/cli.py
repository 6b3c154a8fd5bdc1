"""The ``chainrule`` command: ``chainrule --version``, ``chainrule check``."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

from chainrule._version import __version__


def _check(args: argparse.Namespace) -> int:
    """gradcheck every op-info row (first order, and second where smooth); print one row per op."""
    from chainrule.gradcheck import max_gradient_error
    from chainrule.opinfo import OPINFO, covered_primitives
    from chainrule.ops import REGISTRY

    uncovered = sorted(set(REGISTRY) - covered_primitives())
    rng = np.random.default_rng(args.seed)
    rows, failed = [], 0
    for info in OPINFO:
        if args.op and not any(pattern in info.name for pattern in args.op):
            continue
        worst = {1: 0.0, 2: 0.0}
        for sample in info.samples(rng):
            f, variables = info.bind(sample)
            for order in range(1, info.order + 1):
                error = max_gradient_error(f, variables, eps=info.eps, order=order)
                worst[order] = max(worst[order], error)
        tolerance = max(args.tolerance, info.atol)
        ok = worst[1] <= tolerance and worst[2] <= tolerance
        failed += not ok
        second = f"{worst[2]:.1e}" if info.order == 2 else "-"
        rows.append((info.name, f"{worst[1]:.1e}", second, "pass" if ok else "FAIL"))
    header = ("op", "1st order", "2nd order", "result")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\n{len(rows)} ops checked against central differences (float64, worst relative error, "
          f"tolerance {args.tolerance:g} unless the op's row widens it): {len(rows) - failed} passed, {failed} failed")
    if uncovered:
        print(f"primitives with no op-info row: {', '.join(uncovered)}")
        return 1
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule", description="Exact, tested, explainable autodiff on NumPy.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check", help="gradcheck every primitive against finite differences")
    check.add_argument("op", nargs="*", help="only ops whose name contains one of these")
    check.add_argument("--tolerance", type=float, default=1e-5, help="largest |analytic - numeric| / (1 + |numeric|)")
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    check.set_defaults(run=_check)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

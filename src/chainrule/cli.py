"""The ``chainrule`` command: ``chainrule --version``, ``chainrule check``, ``chainrule shapes``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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


class _UsageError(Exception):
    """A bad ``chainrule shapes`` command line (reported as one line, exit status 2)."""


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and then printed as one line), not printed with usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> None:
    """Print ``rows`` under ``header`` and a rule, columns ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = (cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        print("  ".join(cells).rstrip())


def _plan_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="chainrule shapes", description="Output shape and parameters of each layer.")
    parser.add_argument("input", help="input shape CxHxW or CxL, like 3x256x256")
    parser.add_argument("layers", nargs="*", help="layer specs, like conv:64,k=3,s=2,p=same maxpool:k=2 "
                        "convT:32,k=4,s=2,p=1 avgpool:k=2,ceil=1 flatten linear:10")
    return parser


def _solve_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="chainrule shapes solve", description="Every convolution (k, s, p, d) "
                            "within the bounds that maps the input's spatial sizes to the output's.")
    parser.add_argument("input", help="input shape: CxHxW, CxL, or one size")
    parser.add_argument("output", help="output shape, same layout (channels are free)")
    for name, bound in (("kernel", 11), ("stride", 4), ("padding", None), ("dilation", 3)):
        parser.add_argument(f"--{name}", type=int, help=f"fix the {name}")
        limit = f"(default {bound})" if bound else "(default: effective kernel - 1)"
        parser.add_argument(f"--max-{name}", type=int, default=bound, help=f"largest {name} tried {limit}")
    return parser


def _spatial(shape: tuple) -> tuple:
    """CxHxW -> (H, W), CxL -> (L,), a lone size -> itself."""
    return shape[1:] if len(shape) > 1 else shape


def _print_plan(argv: Sequence[str]) -> int:
    from chainrule.shapes import parse_shape, plan

    options = _plan_parser().parse_args(argv)
    shape = parse_shape(options.input)
    rows = plan(shape, options.layers)
    cells = [(row.layer, _dims(row.shape), f"{row.weights:,}", f"{row.biases:,}") for row in rows]
    _table(("layer", "output shape", "weights", "biases"), [("input", _dims(shape), "-", "-"), *cells], right=(2, 3))
    weights, biases = sum(row.weights for row in rows), sum(row.biases for row in rows)
    print(f"\ntotal parameters: {weights + biases:,} ({weights:,} weights + {biases:,} biases)")
    return 0


def _dims(shape: Sequence[int]) -> str:
    return "x".join(f"{n:,}" for n in shape)


def _print_solutions(argv: Sequence[str]) -> int:
    from chainrule.shapes import effective_kernel, parse_shape, solve

    o = _solve_parser().parse_args(argv)
    shape_in, shape_out = parse_shape(o.input), parse_shape(o.output)
    if len(shape_in) != len(shape_out):
        raise _UsageError(f"input {o.input} and output {o.output} must have the same layout (CxHxW, CxL or one size)")
    found = solve(_spatial(shape_in), _spatial(shape_out), o.kernel, o.stride, o.padding, o.dilation,
                  max_kernel=o.max_kernel, max_stride=o.max_stride, max_padding=o.max_padding,
                  max_dilation=o.max_dilation)
    if not found:
        print(f"chainrule shapes solve: no convolution within the bounds maps {_dims(shape_in)} to "
              f"{_dims(shape_out)} (widen --max-kernel, --max-stride, --max-padding, --max-dilation)", file=sys.stderr)
        return 1
    rows = [(f"{c.k:,}", f"{c.s:,}", f"{c.p:,}", f"{c.d:,}", f"{effective_kernel(c.k, c.d):,}") for c in found]
    _table(("kernel", "stride", "padding", "dilation", "effective kernel"), rows, right=range(5))
    print(f"\n{len(found):,} solution{'s' * (len(found) != 1)} for {_dims(shape_in)} -> {_dims(shape_out)}")
    return 0


def _shapes(args: argparse.Namespace) -> int:
    """``chainrule shapes INPUT LAYER...`` (a table of layers) or ``chainrule shapes solve IN OUT``."""
    from chainrule.errors import ShapeError

    solving = bool(args.args) and args.args[0] == "solve"
    prog = "chainrule shapes solve" if solving else "chainrule shapes"
    try:
        if not args.args:
            raise _UsageError("give an input shape and layers (like 3x32x32 conv:16,k=3 flatten linear:10), "
                              "or solve INPUT OUTPUT; see chainrule shapes --help")
        return _print_solutions(args.args[1:]) if solving else _print_plan(args.args)
    except (ShapeError, _UsageError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; one line of metrics per epoch, then the test accuracy."""
    from chainrule.checkpoint import CheckpointError
    from chainrule.data import DatasetError
    from chainrule.runs import RunConfig, RunError, train_run

    try:
        if args.resume:
            config = RunConfig.load(Path(args.resume))
            train_run(config, args.resume, resume=True, progress=not args.quiet, epochs=args.epochs)
            return 0
        settings = {k: v for k, v in vars(args).items()
                    if k in ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "weight_decay", "seed")
                    and v is not None}
        config = RunConfig(**settings)
        folder = args.out or f"runs/{config.dataset.split(':')[0]}-{config.model}-seed{config.seed}"
        train_run(config, folder, progress=not args.quiet)
        return 0
    except (RunError, CheckpointError, DatasetError, OSError) as error:
        print(f"chainrule train: error: {error}", file=sys.stderr)
        return 2


def _evaluate(args: argparse.Namespace) -> int:
    from chainrule.checkpoint import CheckpointError
    from chainrule.data import DatasetError
    from chainrule.runs import RunError, evaluate_run

    try:
        evaluate_run(args.folder)
    except (RunError, CheckpointError, DatasetError, OSError) as error:
        print(f"chainrule evaluate: error: {error}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chainrule", description="Exact, tested, explainable autodiff on NumPy.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check", help="gradcheck every primitive against finite differences")
    check.add_argument("op", nargs="*", help="only ops whose name contains one of these")
    check.add_argument("--tolerance", type=float, default=1e-5, help="largest |analytic - numeric| / (1 + |numeric|)")
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    check.set_defaults(run=_check)
    shapes = commands.add_parser(
        "shapes", help="convolution shape arithmetic: a table of layers, or solve for (k, s, p, d)",
        description="chainrule shapes INPUT LAYER... prints each layer's output shape and parameters, "
                    "like: chainrule shapes 3x256x256 conv:64,k=8,s=2 maxpool:k=5 conv:128,k=4,p=1. "
                    "chainrule shapes solve INPUT OUTPUT [--kernel K] [--stride S] [--padding P] "
                    "[--dilation D] [--max-kernel ...] lists every convolution mapping INPUT to OUTPUT. "
                    "Layers: conv:OUT,k,s,p(int|same|valid|full),d,g,bias  convT:OUT,k,s,p,op,d,g,bias  "
                    "maxpool:k,s,p,d,ceil  avgpool:k,s,p,ceil  flatten  linear:N.")
    shapes.add_argument("args", nargs=argparse.REMAINDER, help="INPUT LAYER... or solve INPUT OUTPUT [options]")
    shapes.set_defaults(run=_shapes)
    train = commands.add_parser(
        "train", help="train an MLP or a CNN (default: MLP on the bundled 8x8 digits) and save the run",
        description="Train on the bundled digits (80/20 train/test split, 10%% of training held out for "
                    "validation, all seeded) or on IDX files, print one line of metrics per epoch and the "
                    "test accuracy, and write model.safetensors, optimizer.safetensors, config.json, "
                    "metrics.csv, curves.png and confusion.png to the run folder.")
    train.add_argument("--dataset", help="digits (default) or idx:IMAGES,LABELS (MNIST-style files, raw or .gz)")
    train.add_argument("--model", choices=("mlp", "cnn"), help="mlp (default) or cnn")
    train.add_argument("--epochs", type=int, help="number of epochs (default 30; with --resume: the new total)")
    train.add_argument("--batch-size", type=int, help="default 32")
    train.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="adam (default) or sgd (momentum 0.9)")
    train.add_argument("--weight-decay", type=float, help="L2 weight decay (default 0)")
    train.add_argument("--seed", type=int, help="seed of the split, the weights and the shuffling (default 0)")
    train.add_argument("--out", help="run folder (default runs/DATASET-MODEL-seedSEED)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last completed epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)
    evaluate = commands.add_parser("evaluate", help="reload a run and print its test accuracy per class")
    evaluate.add_argument("folder", help="a run folder written by chainrule train")
    evaluate.set_defaults(run=_evaluate)
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

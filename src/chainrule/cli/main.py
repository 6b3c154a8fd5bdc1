"""The ``chainrule`` command: ``chainrule --version``, ``check``, ``shapes``, ``train``,
``evaluate``, ``graph``."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from chainrule._version import __version__
from chainrule.engine.errors import ChainruleError

MAX_SOLVE_BOUND = 10_000  # the largest --max-kernel, --max-stride, --max-padding, --max-dilation


def _check(args: argparse.Namespace) -> int:
    """gradcheck every op-info row (first order, and second where smooth); print one row per op."""
    from chainrule.engine.gradcheck import max_gradient_error
    from chainrule.ops import REGISTRY
    from chainrule.testing.opinfo import OPINFO, covered_primitives

    _check_options(args, [info.name for info in OPINFO])
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
          f"tolerance {args.tolerance:g} unless the op's row widens it): "
          f"{len(rows) - failed} passed, {failed} failed")
    if uncovered:
        print(f"primitives with no op-info row: {', '.join(uncovered)}")
        return 1
    return 1 if failed else 0


def _check_options(args: argparse.Namespace, names: Sequence[str]) -> None:
    """``chainrule check``'s options: a usable tolerance and seed, op patterns that match an op."""
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise _UsageError(f"--tolerance {args.tolerance}: must be a finite number > 0")
    if args.seed < 0:
        raise _UsageError(f"--seed {args.seed}: must be >= 0")
    for pattern in args.op:
        if not any(pattern in name for name in names):
            close = difflib.get_close_matches(pattern, names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise _UsageError(f"no op name contains {pattern!r}; {hint}ops: "
                              f"{', '.join(names[:6])}, ... ({len(names)} in all: "
                              f"'chainrule check' lists them)")


class _UsageError(ChainruleError):
    """A bad command line (reported as one line, exit status 2); ``prog`` names the command."""

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and then printed as one line), not printed with
    usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message, self.prog)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> None:
    """Print ``rows`` under ``header`` and a rule, columns ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = (cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths)))
        print("  ".join(cells).rstrip())


def _plan_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="chainrule shapes",
                            description="Output shape and parameters of each layer.")
    parser.add_argument("input", help="input shape CxHxW or CxL, like 3x256x256")
    parser.add_argument("layers", nargs="*",
                        help="layer specs, like conv:64,k=3,s=2,p=same maxpool:k=2 "
                             "convT:32,k=4,s=2,p=1 avgpool:k=2,ceil=1 flatten linear:10")
    return parser


def _solve_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="chainrule shapes solve",
                            description="Every convolution (k, s, p, d) within the bounds that "
                                        "maps the input's spatial sizes to the output's.")
    parser.add_argument("input", help="input shape: CxHxW, CxL, or one size")
    parser.add_argument("output", help="output shape, same layout (channels are free)")
    for name, bound in (("kernel", 11), ("stride", 4), ("padding", None), ("dilation", 3)):
        parser.add_argument(f"--{name}", type=int, help=f"fix the {name}")
        limit = f"(default {bound})" if bound else "(default: effective kernel - 1)"
        parser.add_argument(f"--max-{name}", type=int, default=bound,
                            help=f"largest {name} tried {limit}")
    return parser


def _spatial(shape: tuple) -> tuple:
    """CxHxW -> (H, W), CxL -> (L,), a lone size -> itself."""
    return shape[1:] if len(shape) > 1 else shape


def _print_plan(argv: Sequence[str]) -> int:
    from chainrule.course.shapes import parse_shape, plan

    options = _plan_parser().parse_args(argv)
    shape = parse_shape(options.input)
    rows = plan(shape, options.layers)
    cells = [(row.layer, _dims(row.shape), f"{row.weights:,}", f"{row.biases:,}") for row in rows]
    _table(("layer", "output shape", "weights", "biases"),
           [("input", _dims(shape), "-", "-"), *cells], right=(2, 3))
    weights, biases = sum(row.weights for row in rows), sum(row.biases for row in rows)
    print(f"\ntotal parameters: {weights + biases:,} ({weights:,} weights + {biases:,} biases)")
    return 0


def _dims(shape: Sequence[int]) -> str:
    return "x".join(f"{n:,}" for n in shape)


def _print_solutions(argv: Sequence[str]) -> int:
    from chainrule.course.shapes import effective_kernel, parse_shape, solve

    o = _solve_parser().parse_args(argv)
    for name in ("kernel", "stride", "padding", "dilation"):
        bound = getattr(o, f"max_{name}")
        if bound is not None and bound > MAX_SOLVE_BOUND:
            raise _UsageError(f"--max-{name} {bound:,} is above the limit of {MAX_SOLVE_BOUND:,}")
    shape_in, shape_out = parse_shape(o.input), parse_shape(o.output)
    if len(shape_in) != len(shape_out):
        raise _UsageError(f"input {o.input} and output {o.output} must have the same layout "
                          f"(CxHxW, CxL or one size)")
    found = solve(_spatial(shape_in), _spatial(shape_out), o.kernel, o.stride, o.padding,
                  o.dilation, max_kernel=o.max_kernel, max_stride=o.max_stride,
                  max_padding=o.max_padding, max_dilation=o.max_dilation)
    if not found:
        print(f"chainrule shapes solve: no convolution within the bounds maps {_dims(shape_in)} to "
              f"{_dims(shape_out)} (widen --max-kernel, --max-stride, --max-padding, "
              f"--max-dilation)", file=sys.stderr)
        return 1
    rows = [(f"{c.k:,}", f"{c.s:,}", f"{c.p:,}", f"{c.d:,}", f"{effective_kernel(c.k, c.d):,}")
            for c in found]
    _table(("kernel", "stride", "padding", "dilation", "effective kernel"), rows, right=range(5))
    print(f"\n{len(found):,} solution{'s' * (len(found) != 1)} for "
          f"{_dims(shape_in)} -> {_dims(shape_out)}")
    return 0


def _shapes(args: argparse.Namespace) -> int:
    """``chainrule shapes INPUT LAYER...`` (a table of layers) or ``chainrule shapes solve IN
    OUT``."""
    if not args.args:
        raise _UsageError("give an input shape and layers (like 3x32x32 conv:16,k=3 flatten "
                          "linear:10), or solve INPUT OUTPUT; see chainrule shapes --help")
    return _print_solutions(args.args[1:]) if args.args[0] == "solve" else _print_plan(args.args)


_SETTINGS = ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "weight_decay", "seed")


def _train(args: argparse.Namespace) -> int:
    """Train (or resume) a run; one line of metrics per epoch, then the test accuracy.

    Under ``mpirun -n N`` (or srun, mpiexec) the N processes train one run together."""
    import dataclasses

    from chainrule import distributed
    from chainrule.training.runs import RunConfig, train_run

    distributed.init()  # MPI.COMM_WORLD under a launcher; else the one-process world

    settings = {k: getattr(args, k) for k in _SETTINGS if getattr(args, k) is not None}
    if args.resume is not None:
        if args.out is not None or args.force:
            raise _UsageError("--resume DIR continues the run in DIR: "
                              "give no --out or --force with it")
        # the given settings must agree with the run's (train_run names any conflict), but --epochs
        config = dataclasses.replace(RunConfig.load(args.resume), **settings)
        train_run(config, args.resume, resume=True, progress=not args.quiet, device=args.device,
                  log_format=args.log_format)
        return 0
    config = RunConfig(**settings)
    default = f"runs/{config.dataset.split(':')[0]}-{config.model}-seed{config.seed}"
    folder = args.out if args.out is not None else default
    train_run(config, folder, progress=not args.quiet, force=args.force, device=args.device,
              log_format=args.log_format)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from chainrule.training.runs import sample_run

    sample_run(args.folder, args.prompt, args.tokens, args.temperature, args.seed)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from chainrule.training.runs import evaluate_run

    evaluate_run(args.folder, device=args.device)
    return 0


def _export(args: argparse.Namespace) -> int:
    """``chainrule export RUN --onnx FILE``: the run's committed model as an ONNX file."""
    from chainrule.onnx import export_run

    _, written = export_run(args.folder, args.onnx, opset=args.opset,
                            dynamic_batch=not args.static_batch)
    print(written)
    return 0


_GRAPH_EXAMPLE = ('chainrule graph "max(sigmoid(W[0] @ x), sigmoid(W[1] @ x))" '
                  '--let "W=[[1,2],[-2,3]]" --let "x=[2,-3]"')
_GRAPH_USAGE = f"""usage: chainrule graph EXPR [--let NAME=VALUE ...] [--out FILE]

Evaluate EXPR, print the forward value of every node of its graph, the gradient of the output with
respect to every variable and every node, and draw the graph into graph.svg (--out FILE: .svg or
.png are drawn by Graphviz's dot program when it is installed, else by chainrule's own layout; .dot
or .gv hold the DOT source; dot's other formats, like .pdf, need dot). Every --let NAME=VALUE (a
number or nested lists of numbers) is a float64 variable that requires grad. EXPR uses numbers,
lists of numbers, the --let names, + - * / ** @, subscripts (x[0], x[:, 1]) and chainrule's
functions (sigmoid, exp, sum, mean, softmax, matmul, reshape, where, ...; max(a, b) and min(a, b) of
two tensors are maximum and minimum), with literal keyword arguments (axis=0). It is checked against
a whitelist and never passed to eval. The output must be a scalar (wrap it in sum(...)).

example: {_GRAPH_EXAMPLE}
"""


def _graph_options(argv: Sequence[str]) -> Optional[tuple]:
    """(expression, lets, out) from the arguments of ``chainrule graph``; None for --help."""
    expression, lets, out, i = None, [], None, 0
    only_positional = False
    while i < len(argv):
        arg = argv[i]
        option = None if only_positional else next(
            (name for name in ("--let", "--out") if arg == name or arg.startswith(name + "=")),
            None)
        if not only_positional and arg in ("-h", "--help"):
            return None
        if not only_positional and arg == "--":
            only_positional = True
        elif option is not None:
            if arg == option:
                if i + 1 >= len(argv):
                    raise _UsageError(f"{option} needs a value"
                                      + (" NAME=VALUE" if option == "--let" else " FILE"))
                value, i = argv[i + 1], i + 1
            else:
                value = arg[len(option) + 1:]
            if option == "--let":
                lets.append(value)
            else:
                out = value
        elif not only_positional and arg.startswith("--") and arg[2:3].isalpha():
            raise _UsageError(f"unknown option {arg} (options: --let NAME=VALUE, --out FILE)")
        elif expression is not None:
            raise _UsageError("give one expression "
                              "(quote it: chainrule graph \"sum(x * x)\" --let x=[1,2])")
        else:
            expression = arg
        i += 1
    if expression is None:
        raise _UsageError("give an expression, "
                          "like: chainrule graph \"sum(x * x)\" --let \"x=[1,2]\"")
    return expression, lets, out


def _write_graph(digraph, out: Optional[str]) -> str:
    """Write ``digraph`` (a draw_graph picture) to ``out`` (default graph.svg); returns what was
    written. .svg and .png: drawn by Graphviz's dot when it works, else by chainrule's own layout;
    .dot and .gv: the DOT source; another format of dot's (.pdf ...) needs dot. ``digraph``
    None: only check ``out`` (before any work)."""
    import shutil

    import graphviz

    from chainrule.course.graph_picture import FALLBACK_FORMATS, DotUnavailable
    from chainrule.data.files import atomic_write

    target = Path(out or "graph.svg")
    fmt = (target.suffix[1:] or "svg").lower()  # no suffix: svg, as before
    if fmt not in graphviz.FORMATS | {"dot", "gv"}:
        raise _UsageError(f"--out {target}: unknown picture format {fmt!r} (.svg and .png are "
                          "drawn with or without Graphviz's dot, .dot and .gv hold the DOT "
                          "source, dot also writes .pdf, .jpg, .eps, ...)")
    if fmt not in FALLBACK_FORMATS + ("dot", "gv") and shutil.which("dot") is None:
        raise _UsageError(f"--out {target}: {fmt} needs Graphviz's dot program, which was not "
                          "found (.svg and .png are drawn without it, .dot holds the source)")
    if not target.parent.is_dir():  # atomic_write would make the folder: a typo should not
        raise _UsageError(f"cannot write the graph: no folder {target.parent}")
    if digraph is None:
        return ""
    if fmt in ("dot", "gv"):
        atomic_write(target, digraph.source.encode("utf-8"))
        return f"wrote {target} (Graphviz DOT source)"
    try:
        picture = digraph.picture(fmt)
    except DotUnavailable as error:
        raise _UsageError(f"cannot write {target}: {error}") from None
    atomic_write(target, picture.data)
    if picture.drawn_by == "dot":
        return f"wrote {target} ({fmt.upper()}, drawn by Graphviz's dot)"
    return f"wrote {target} ({fmt.upper()}, drawn by chainrule's own layout: {picture.reason})"


def _graph(args: argparse.Namespace) -> int:
    """``chainrule graph EXPR --let NAME=VALUE ...``: values, gradients and a drawing of the
    graph."""
    from chainrule.course.calculator import calculate
    from chainrule.course.explain import draw_graph, format_array

    options = _graph_options(args.args)
    if options is None:
        print(_GRAPH_USAGE, end="")
        return 0
    expression, lets, out = options
    _write_graph(None, out)  # a bad --out is refused before any work
    result = calculate(expression, lets)
    labels = {id(t): name for name, t in result.variables.items()}
    rows = []
    for t in result.order:
        short = result.names[id(t)]
        node = t.grad_fn
        if node is not None:
            what = node.prim.name
            inputs = ", ".join(result.names[id(x)] for x in node.inputs)
        else:
            what = f"{labels[id(t)]} (variable)" if id(t) in labels else "constant"
            inputs = "-"
        gradient = result.node_gradients.get(short)
        if gradient is None:
            gradient_text = "0." if t.requires_grad else "- (no gradient)"
        else:
            gradient_text = format_array(gradient)
        shape = "(" + ", ".join(map(str, t.shape)) + ("," if t.ndim == 1 else "") + ")"
        rows.append((short, what, shape, inputs, format_array(t), gradient_text))
    _table(("node", "op", "shape", "inputs", "value", "d output / d node"), rows)
    output_name = result.names[id(result.output)]
    print(f"\noutput {output_name} = {result.output.item():.10g}")
    if result.gradients:
        print("\ngradient of the output with respect to each variable:")
        width = max(len(name) for name in result.gradients)
        for name, gradient in result.gradients.items():
            print(f"  d output / d {name.ljust(width)} = {format_array(gradient)}")
    try:
        print("\n" + _write_graph(draw_graph(result.output, names=result.variables), out))
    except OSError as error:
        raise _UsageError(f"cannot write the graph: {error}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    # _OneLineParser here and (inherited) in every subcommand: a usage error is one line too
    parser = _OneLineParser(prog="chainrule",
                            description="Exact, tested, explainable autodiff on NumPy.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check",
                                help="gradcheck every primitive against finite differences")
    check.add_argument("op", nargs="*", help="only ops whose name contains one of these")
    check.add_argument("--tolerance", type=float, default=1e-5,
                       help="largest |analytic - numeric| / (1 + |numeric|)")
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    check.set_defaults(run=_check)
    shapes = commands.add_parser(
        "shapes", help="convolution shape arithmetic: a table of layers, or solve for (k, s, p, d)",
        description="chainrule shapes INPUT LAYER... prints each layer's output shape and "
                    "parameters, like: chainrule shapes 3x256x256 conv:64,k=8,s=2 maxpool:k=5 "
                    "conv:128,k=4,p=1. "
                    "chainrule shapes solve INPUT OUTPUT [--kernel K] [--stride S] [--padding P] "
                    "[--dilation D] [--max-kernel ...] lists every convolution mapping INPUT to "
                    "OUTPUT. "
                    "Layers: conv:OUT,k,s,p(int|same|valid|full),d,g,bias  "
                    "convT:OUT,k,s,p,op,d,g,bias  "
                    "maxpool:k,s,p,d,ceil  avgpool:k,s,p,ceil  flatten  linear:N.")
    shapes.add_argument("args", nargs=argparse.REMAINDER,
                        help="INPUT LAYER... or solve INPUT OUTPUT [options]")
    shapes.set_defaults(run=_shapes)
    train = commands.add_parser(
        "train",
        help="train an MLP or a CNN (default: MLP on the bundled 8x8 digits) and save the run",
        description="Train on the bundled digits (80/20 train/test split, 10%% of training held "
                    "out for validation, all seeded) or on IDX files, print one line of metrics "
                    "per epoch and the test accuracy, and write model.safetensors, "
                    "optimizer.safetensors, config.json, "
                    "metrics.csv, curves.png and confusion.png to the run folder.")
    train.add_argument("--dataset", help="digits (default), idx:IMAGES,LABELS "
                                         "(MNIST-style files, raw or .gz), or, for lstm and "
                                         "transformer, text:FILE (a UTF-8 text) or text (the "
                                         "bundled documentation)")
    train.add_argument("--model", choices=("mlp", "cnn", "lstm", "transformer"),
                       help="mlp (default) or cnn for images; lstm or transformer: a "
                            "character-level language model of a text")
    train.add_argument("--epochs", type=int,
                       help="number of epochs (default 30; with --resume: the new total)")
    train.add_argument("--batch-size", type=int, help="default 32")
    train.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    train.add_argument("--optimizer", choices=("sgd", "adam"),
                       help="adam (default) or sgd (momentum 0.9)")
    train.add_argument("--weight-decay", type=float, help="L2 weight decay (default 0)")
    train.add_argument("--seed", type=int,
                       help="seed of the split, the weights and the shuffling (default 0)")
    train.add_argument("--out", help="run folder (default runs/DATASET-MODEL-seedSEED); "
                       "refused if it holds a run already, unless --force")
    train.add_argument("--force", action="store_true", help="overwrite the run that --out holds")
    train.add_argument("--resume", metavar="DIR",
                       help="continue the run in DIR from its last completed epoch "
                            "(other settings given must equal the run's)")
    train.add_argument("--quiet", action="store_true",
                       help="no progress bar (there is none anyway when stderr is not a terminal)")
    train.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="text (default): a line per epoch; json: one JSON object per line on "
                            "stdout (events resume, epoch, test), for tools")
    train.add_argument("--device", default="cpu",
                       help="where to train: cpu (default), cuda or cuda:N (CuPy and a GPU)")
    train.set_defaults(run=_train)
    evaluate = commands.add_parser("evaluate",
                                   help="reload a run and print its test accuracy per class")
    evaluate.add_argument("folder", help="a run folder written by chainrule train")
    evaluate.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    evaluate.set_defaults(run=_evaluate)
    export = commands.add_parser(
        "export", help="write a run's model as an ONNX file (checked by onnx's checker)",
        description="Rebuild the committed model of a run folder and write it as an ONNX file: "
                    "its forward in eval mode, axis 0 the symbolic batch. Needs the onnx "
                    "package: pip install 'chainrule[onnx]'.")
    export.add_argument("folder", help="a run folder written by chainrule train")
    export.add_argument("--onnx", required=True, metavar="FILE",
                        help="the ONNX file to write, like model.onnx")
    export.add_argument("--opset", type=int, default=17,
                        help="ONNX operator set, 17 (default) to 21")
    export.add_argument("--static-batch", action="store_true",
                        help="fix the batch size at 1 instead of a symbolic batch axis")
    export.set_defaults(run=_export)
    sample = commands.add_parser("sample", help="continue a prompt with a text run's model")
    sample.add_argument("folder", help="a run folder of chainrule train --model lstm|transformer")
    sample.add_argument("--prompt", default="", help="the text to continue (default: empty)")
    sample.add_argument("--tokens", type=int, default=200,
                        help="characters to generate (default 200)")
    sample.add_argument("--temperature", type=float, default=0.8,
                        help="softmax temperature; 0 takes the most likely character "
                             "(default 0.8)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    sample.set_defaults(run=_sample)
    graph = commands.add_parser(
        "graph", prefix_chars="+", add_help=False,  # '+': an expression like -x is not an option
        help="evaluate an expression, print every node's value and gradient, draw the graph")
    graph.add_argument("args", nargs=argparse.REMAINDER,
                       help="EXPR [--let NAME=VALUE ...] [--out FILE]")
    graph.set_defaults(run=_graph)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command. Every error a user can cause (chainrule's errors, files that cannot be
    read or written) is caught here, once: one line ``chainrule CMD: error: ...``, exit status 2."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = ("check", "shapes", "train", "evaluate", "graph", "sample", "export")
    prog = f"chainrule {argv[0]}" if argv and argv[0] in commands else "chainrule"
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.run(args)
    except (ChainruleError, OSError) as error:
        own_prog = getattr(error, "prog", None)
        if own_prog not in (None, "chainrule"):
            prog = own_prog  # a subcommand's own parser: more precise
        message = " ".join(str(error).split())
        group = _distributed_group()
        if group is None:
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 2
        # one rank failed: say which, then end every rank (the others may be waiting on it)
        print(f"{prog}: error: rank {group.rank} of {group.size}: {message}", file=sys.stderr)
        group.abort(2)
        return 2  # not reached


def _distributed_group():  # noqa: ANN202 -- a ProcessGroup, typed loosely to stay import-free
    """The MPI group of a multi-rank job, else None (without importing the distributed package)."""
    module = sys.modules.get("chainrule.distributed")
    if module is None or not module.is_initialized() or module.world_size() == 1:
        return None
    return module.get_group()


if __name__ == "__main__":
    sys.exit(main())

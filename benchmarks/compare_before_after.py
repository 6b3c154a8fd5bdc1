"""Before/after: the benchmark suite against two source trees, medians and ratios in one table.

Run from the repository root (the trees are ``src`` folders; make the old one with
``git worktree add --detach /tmp/before-e190888 e190888``):

    python benchmarks/compare_before_after.py --before /tmp/before-e190888/src --after src

Every benchmark runs in a fresh process with ``PYTHONPATH`` set to one tree, with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its environment (they select a slower
OpenBLAS kernel on the project's machines). The benchmark scripts are THIS folder's, for both
trees, so both run the same benchmark code. The trees alternate: run 1 does before then after,
run 2 after then before, and so on, so a slow drift of a shared machine hits both.

Wall clock (``--runs`` whole runs, default 3): bench_engine, bench_conv and bench_train (each
times chainrule against torch in one process; their chainrule medians are compared, and the
chainrule / torch ratio of each process, which cancels part of the machine's load), and
bench_modes' chain (``--child off``: CPU time, best of 5 per round). The table gives the median
over runs of each run's median, the after / before ratio of those, and the median over runs of the
chainrule / torch ratio for each tree.

Instruction counts (valgrind's callgrind, unless ``--no-instr``): the workloads of
``instr_count.py`` (chain, MLP step, CNN step), with one OpenBLAS thread and ``PYTHONHASHSEED=0``.
Each count is (process with 3 repetitions) - (process with 0) over 3; the imports are warmed first
(an import that compiles a ``.pyc`` would add millions of instructions to one process only). They
vary by about 0.1% between identical runs, wall clock by up to 2x on a 2-core VM.

``--quick`` passes ``--quick`` to every script and does one run (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_engine.py", "bench_conv.py", "bench_train.py")
WORKLOADS = {"chain": ("1000-op chain, per op", 1000), "mlp": ("MLP 784-256-256-10 step, b 32", 1),
             "cnn": ("CNN 1x8x8 conv16-pool-linear step, b 32", 1),
             "pool": ("max_pool2d fwd+bwd, x (16,32,28,28)", 1)}
INSTR_REPEAT = 3
# one row of harness.print_table: | label | 1.23 ms (iqr) | 4.56 ms (iqr) | ...
ROW = re.compile(r"^\| (.+?) \| ([\d.]+) (ms|us) \([^)]*\) \| ([\d.]+) (ms|us) \(")


def tree_env(src: Path, **extra: str) -> dict:
    """The environment of a benchmark process: PYTHONPATH = the tree, no OpenBLAS overrides."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONPATH"] = str(src)
    env.update(extra)
    return env


def run_python(src: Path, args: list[str], **extra: str) -> str:
    """stdout of ``python args`` against one tree; the process's stderr shown on failure."""
    done = subprocess.run([sys.executable, *args], env=tree_env(src, **extra), cwd=HERE,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} against {src} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def describe(src: Path) -> str:
    """Where chainrule imports from and the commit of its tree (+ 'dirty' with local changes)."""
    where = run_python(src, ["-c", "import chainrule; print(chainrule.__file__)"]).strip()
    git = ["git", "-C", str(src)]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "no git"
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "."], capture_output=True,
                           text=True).stdout.strip()
    return f"{where} (commit {head}{', with uncommitted changes' if dirty else ''})"


def wall_clock_once(src: Path, quick: bool, train_rounds: int | None, skip: set[str]) -> dict:
    """{benchmark: (chainrule median, torch median or None, unit)} from one pass of the suite."""
    found: dict = {}
    for script in [s for s in SCRIPTS if s[6:-3] not in skip]:
        args = [script] + (["--quick"] if quick else [])
        if script == "bench_train.py" and train_rounds:
            args += ["--rounds", str(train_rounds)]
        for line in run_python(src, args).splitlines():
            match = ROW.match(line)
            if match:
                label, ours, unit, theirs, _ = match.groups()
                found[f"{script[6:-3]}: {label}"] = (float(ours), float(theirs), unit)
    if "modes" in skip:
        return found
    rounds = "4" if quick else "15"
    chain = run_python(src, ["bench_modes.py", "--child", "off", "--rounds", rounds])
    found["modes: chain, anomaly off, CPU time per op"] = (float(chain), None, "us")
    return found


def callgrind_instructions(src: Path, workload: str, repeat: int) -> int:
    """Instructions of one process running ``instr_count.py workload --repeat repeat``."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           "instr_count.py", workload, "--repeat", str(repeat)]
    done = subprocess.run(cmd, env=tree_env(src, OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0"),
                          cwd=HERE, capture_output=True, text=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not match:
        raise SystemExit(f"callgrind {workload} against {src} failed:\n{done.stderr[-3000:]}")
    return int(match.group(1))


def instructions(src: Path, workload: str) -> float:
    """Instructions per repetition (per op for the chain): the difference of two processes."""
    run_python(src, ["instr_count.py", workload, "--repeat", "0"])  # warm the .pyc files
    base = callgrind_instructions(src, workload, 0)
    more = callgrind_instructions(src, workload, INSTR_REPEAT)
    return (more - base) / INSTR_REPEAT / WORKLOADS[workload][1]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def print_wall_clock(runs: dict) -> None:
    """Markdown: median over runs per tree, after / before, chainrule / torch per tree."""
    print("| benchmark | before, median (runs) | after, median (runs) | after / before "
          "| chainrule / torch, before | after |")
    print("|---|---:|---:|---:|---:|---:|")
    labels = [k for k in runs["before"][0] if all(k in r for t in runs.values() for r in t)]
    for label in labels:
        cells, medians, vs_torch = [], {}, {}
        for tree in ("before", "after"):
            ours = [r[label][0] for r in runs[tree]]
            unit = runs[tree][0][label][2]
            medians[tree] = statistics.median(ours)
            cells.append(f"{_fmt(medians[tree])} {unit} ({', '.join(_fmt(v) for v in ours)})")
            if runs[tree][0][label][1] is not None:
                vs_torch[tree] = statistics.median(r[label][0] / r[label][1] for r in runs[tree])
        torch_cells = [f"{vs_torch[t]:.2f}x" if t in vs_torch else "-" for t in ("before", "after")]
        change = medians["after"] / medians["before"]
        print(f"| {label} | {cells[0]} | {cells[1]} | **{change:.3f}** | {torch_cells[0]} "
              f"| {torch_cells[1]} |")


def print_instructions(counts: dict) -> None:
    print("| workload (callgrind, 1 BLAS thread) | before, instructions | after | after / before |")
    print("|---|---:|---:|---:|")
    for workload, (title, _) in WORKLOADS.items():
        before, after = counts["before"][workload], counts["after"][workload]
        print(f"| {title} | {before:,.0f} | {after:,.0f} | **{after / before:.3f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old tree's src folder")
    parser.add_argument("--after", type=Path, required=True, help="the new tree's src folder")
    parser.add_argument("--runs", type=int, default=3, help="whole runs per tree (default 3)")
    parser.add_argument("--train-rounds", type=int, default=None,
                        help="--rounds for bench_train (default: its own, 24)")
    parser.add_argument("--quick", action="store_true", help="smoke test: --quick, one run")
    parser.add_argument("--skip", default="", help="comma-separated wall-clock benchmarks to "
                        "leave out: engine, conv, train, modes (bench_train takes minutes)")
    parser.add_argument("--no-wall", action="store_true", help="instruction counts only")
    parser.add_argument("--no-instr", action="store_true", help="wall clock only")
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, src in trees.items():
        print(f"- {name}: chainrule from {describe(src)}")
    if not args.no_wall:
        runs: dict = {"before": [], "after": []}
        for k in range(1 if args.quick else args.runs):
            for name in ("before", "after") if k % 2 == 0 else ("after", "before"):
                print(f"  run {k + 1}: {name} ...", file=sys.stderr, flush=True)
                runs[name].append(wall_clock_once(trees[name], args.quick, args.train_rounds,
                                                  set(args.skip.split(","))))
        print("\nWall clock (chainrule medians; ratios after / before, below 1 = faster now):\n")
        print_wall_clock(runs)
    if not args.no_instr:
        if shutil.which("valgrind") is None:
            print("\nvalgrind is not installed: no instruction counts")
            return
        counts: dict = {name: {} for name in trees}
        for workload in WORKLOADS:
            for name, src in trees.items():
                print(f"  callgrind {workload}: {name} ...", file=sys.stderr, flush=True)
                counts[name][workload] = instructions(src, workload)
        print("\nInstructions per repetition (per op for the chain), after / before:\n")
        print_instructions(counts)


if __name__ == "__main__":
    main()

"""What the engine's modes cost per operation: anomaly mode off (the default) and on.

Run (from the repository root), each setting in a process of its own:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_modes.py [--rounds N]

To compare with an older commit, run the same file against that commit's sources:
``git worktree add /tmp/old <commit>`` then ``PYTHONPATH=/tmp/old/src python
benchmarks/bench_modes.py --child off`` beside ``PYTHONPATH=src python benchmarks/bench_modes.py
--child off``.

The workload is bench_engine's chain: 1,000 cheap elementwise ops on a float32 (10,) leaf, then
``sum().backward()``; reported in microseconds per op (forward + backward), the median of
``--rounds`` rounds of CPU time (``time.process_time``: less sensitive than wall time to the other
core's load on these 2-core machines), each round the best of 5 runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _chain_us_per_op(anomaly: bool, rounds: int) -> float:
    import numpy as np

    import chainrule as cr

    x = cr.tensor(np.ones(10, "float32"), requires_grad=True)

    def run() -> None:
        y = x
        for _ in range(250):
            y = y * 1.0001
            y = y + 0.001
            y = y * 0.9999
            y = y - 0.001
        cr.sum(y).backward()

    import contextlib

    mode = cr.set_detect_anomaly(True) if anomaly else contextlib.nullcontext()  # off: as before
    with mode:
        for _ in range(3):
            run()
        best_per_round = []
        for _ in range(rounds):
            times = []
            for _ in range(5):
                start = time.process_time()
                run()
                times.append(time.process_time() - start)
            best_per_round.append(min(times))
    return statistics.median(best_per_round) / 1000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--child", choices=["off", "on"],
                        help="measure one setting in this process")
    args = parser.parse_args()
    if args.child:
        print(f"{_chain_us_per_op(args.child == 'on', args.rounds):.3f}")
        return
    results: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(3):  # alternate the settings, a fresh process each time
        for setting in results:
            out = subprocess.run([sys.executable, __file__, "--child", setting, "--rounds",
                                  str(args.rounds)], capture_output=True, text=True, check=True)
            results[setting].append(float(out.stdout))
    print("| anomaly mode | us per op (fwd+bwd), median of 3 processes | runs |")
    print("| --- | --- | --- |")
    for setting, values in results.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {setting} | {statistics.median(values):.2f} | {runs} |")


if __name__ == "__main__":
    main()

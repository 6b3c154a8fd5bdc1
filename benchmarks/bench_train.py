"""chainrule vs PyTorch (CPU): training throughput (samples/s) of whole epochs, Adam, cross-entropy.

Run (from the repository root):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py

Unset those two variables for benchmark runs only: they make NumPy's OpenBLAS pick a slower
kernel here. Options: ``--quick`` (few rounds, a smoke test), ``--rounds N`` (rounds of the
digits cases, default 24; the LeNet case uses a third as many, at least 5), ``--no-steps-only``
(skip the second, loader-free measurement). The default run takes 95-110 s on one 2-core
machine, 180 s on a slower one.

Both libraries run in ONE process with the same number of threads (harness.print_setup gives
torch NumPy's BLAS thread count), the same model (chainrule's initial weights copied into the
torch model through ``state_dict``: the layer names and layouts are PyTorch's), the same data and
the same batches.

Cases:

(1) ``chainrule train``'s default MLP on the bundled digits (``runs.build_model('mlp', (1, 8, 8),
    10, 0)``: 64-128-128-10, ReLU), trained on the default training split (1,294 of the 1,797
    images: ``runs.load_splits(RunConfig())``), batch 32 (41 steps per epoch, the last of 14);
(2) ``chainrule train``'s default CNN (``build_model('cnn', ...)``: conv 16 3x3 pad 1, ReLU,
    conv 32 3x3 pad 1, ReLU, max-pool 2, flatten, linear 512-64, ReLU, linear 64-10), same data,
    batch 32;
(3) a LeNet-like CNN on 1x28x28 inputs: conv 16 3x3, ReLU, max-pool 2, conv 32 3x3, ReLU,
    max-pool 2, flatten, linear 800-10 (no padding: 28 -> 26 -> 13 -> 11 -> 5), on 4,096 random
    N(0, 1) float32 images with random labels in 0..9, batch 64 (64 steps per epoch).

Every step, in both libraries: ``optimizer.zero_grad()`` (set to None), forward,
``CrossEntropyLoss``, ``backward()``, ``optimizer.step()`` with Adam (lr 1e-3, default betas
and eps): chainrule.optim.Adam vs torch.optim.Adam (its default, for-each implementation).

Timed unit, main table: ONE EPOCH over the training set INCLUDING the data loading, as a user's
training loop runs it: chainrule's ``DataLoader(TensorDataset(X, y), batch_size, shuffle=True)`` vs
torch's ``DataLoader(TensorDataset(X, y), batch_size, sampler=...)`` (num_workers=0). Both
loaders visit the samples in the same order: the k-th epoch run by either library is shuffled by
``numpy.random.default_rng(1000 + k).permutation(n)`` (chainrule's loader draws exactly that from
a ``chainrule.Generator(1000 + k)``; torch's gets it from a small Sampler), so the batches are
identical. Throughput = samples per epoch / seconds per epoch.

Second table ("steps only"): the same steps over a pre-built list of batches (one epoch's worth,
already Tensors in each library), so no loader at all: it shows how much of each figure is the
loader (torch's DataLoader fetches and stacks the samples of a TensorDataset one by one;
chainrule's indexes the stored arrays once per batch).

Before timing, both libraries train 5 steps from the same weights on the same batches and the
losses must agree to 1e-3 relative (float32), else the script stops.

Method (harness.py): warm-up, then rounds; each round times every case for both libraries, the
order alternating from round to round, with untimed calls for 30 ms after each switch of library.
The harness reports times and chainrule / torch TIME ratios; this script also prints the
THROUGHPUT table: samples/s and the throughput ratio chainrule / torch (= torch time / chainrule
time, the inverse of the time ratio; above 1 means chainrule trains faster): ratio of medians,
paired (median over rounds of the per-round ratio) and ratio of the 90th throughput percentiles
(the fastest 10% of epochs). Targets (throughput ratio, at least): 0.9x for the MLP, 0.67x for the
CNNs; "met" when all three ratios reach it, "no" when none does, else "borderline".
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from typing import Callable

import harness
import numpy as np
import torch
from torch import nn as tnn
from torch.utils.data import DataLoader as TDataLoader
from torch.utils.data import Sampler
from torch.utils.data import TensorDataset as TTensorDataset

import chainrule as cr
from chainrule import nn as crnn
from chainrule import optim as croptim
from chainrule.data import DataLoader as CrDataLoader
from chainrule.data import TensorDataset as CrTensorDataset

try:
    from chainrule.training.runs import RunConfig, build_model, load_splits
except ImportError:  # trees before the restructure (ce90cbf), for before/after comparisons
    from chainrule.runs import RunConfig, build_model, load_splits

LR = 1e-3
SEED = 0
ORDER_SEED = 1000  # epoch k (counted per library) is shuffled by default_rng(ORDER_SEED + k)
CHECK_STEPS = 5
CHECK_RTOL = 1e-3
LENET_SAMPLES = 4096
TARGETS = {"mlp": 0.9, "cnn": 0.67, "lenet": 0.67}  # throughput chainrule / torch, at least


# --------------------------------------------------------------------------- models and data
def lenet_cr(seed: int = SEED) -> crnn.Module:
    cr.manual_seed(seed)
    return crnn.Sequential(crnn.Conv2d(1, 16, 3), crnn.ReLU(), crnn.MaxPool2d(2),
                           crnn.Conv2d(16, 32, 3), crnn.ReLU(), crnn.MaxPool2d(2),
                           crnn.Flatten(), crnn.Linear(32 * 5 * 5, 10))


def torch_twin(kind: str) -> tnn.Module:
    """The torch model with chainrule's layer names (Sequential indices) and layouts."""
    if kind == "mlp":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(64, 128), tnn.ReLU(),
                              tnn.Linear(128, 128), tnn.ReLU(), tnn.Linear(128, 10))
    if kind == "cnn":
        return tnn.Sequential(tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(),
                              tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Flatten(), tnn.Linear(32 * 4 * 4, 64), tnn.ReLU(),
                              tnn.Linear(64, 10))
    return tnn.Sequential(tnn.Conv2d(1, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(16, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Flatten(), tnn.Linear(32 * 5 * 5, 10))


def make_models(kind: str):
    """(chainrule model, torch model with the same initial weights)."""
    if kind == "lenet":
        model = lenet_cr()
    else:
        model = build_model(kind, (1, 8, 8), 10, SEED)
    twin = torch_twin(kind)
    state = {k: torch.from_numpy(np.array(v.data, copy=True))
             for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return model, twin


def digits_train_split() -> tuple[np.ndarray, np.ndarray]:
    """The training split of ``chainrule train``'s default run (seeded), as two arrays."""
    (train_set, _, _), _, _ = load_splits(RunConfig())
    index = np.asarray(train_set.indices)
    images, labels = (t.data for t in train_set.dataset.tensors)
    return np.ascontiguousarray(images[index]), np.ascontiguousarray(labels[index])


def lenet_data(n: int = LENET_SAMPLES, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 1, 28, 28)).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int64))


class EpochOrder(Sampler):
    """Torch sampler giving a permutation set by ``reseed``.

    The same permutation as chainrule's loader draws.
    """

    def __init__(self, n: int) -> None:
        self.n, self.rng = n, np.random.default_rng(0)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return iter(self.rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


# --------------------------------------------------------------------------- one training setup
@dataclass
class Trainer:
    """One library's model, optimizer, loss, loader and pre-built batches for one case."""

    epoch: Callable[[], object]  # one epoch through the DataLoader
    steps: Callable[[], object]  # the same number of steps over pre-built batches
    first_losses: Callable[[int], list]  # losses of the first k steps of epoch 1 (fresh state only)


def _trainer(model, opt, loss_fn, loader, prebuilt: list, reseed: Callable[[int], None]) -> Trainer:
    """The same training step and epochs for either library.

    ``reseed(k)`` fixes the loader's order.
    """
    count = [0]

    def step(inputs, target):
        opt.zero_grad()
        loss = loss_fn(model(inputs), target)
        loss.backward()
        opt.step()
        return loss

    def epoch():
        count[0] += 1
        reseed(ORDER_SEED + count[0])
        for inputs, target in loader:
            loss = step(inputs, target)
        return loss

    def steps():
        for inputs, target in prebuilt:
            loss = step(inputs, target)
        return loss

    def first_losses(k):
        reseed(ORDER_SEED)
        out = []
        for (inputs, target), _ in zip(loader, range(k)):
            out.append(float(step(inputs, target).item()))
        return out

    return Trainer(epoch, steps, first_losses)


def _prebuilt_batches(x: np.ndarray, y: np.ndarray, batch: int, to_tensor: Callable) -> list:
    """One epoch of batches in the order of ``ORDER_SEED``, already tensors of the library."""
    order = np.random.default_rng(ORDER_SEED).permutation(len(y))
    return [(to_tensor(x[order[i:i + batch]]), to_tensor(y[order[i:i + batch]]))
            for i in range(0, len(y), batch)]


def trainer_cr(model, x: np.ndarray, y: np.ndarray, batch: int) -> Trainer:
    gen = cr.Generator(0)
    loader = CrDataLoader(CrTensorDataset(cr.tensor(x), cr.tensor(y)), batch_size=batch,
                          shuffle=True, generator=gen)
    return _trainer(model, croptim.Adam(model.parameters(), lr=LR), crnn.CrossEntropyLoss(), loader,
                    _prebuilt_batches(x, y, batch, cr.tensor), gen.manual_seed)


def trainer_torch(model, x: np.ndarray, y: np.ndarray, batch: int) -> Trainer:
    sampler = EpochOrder(len(y))
    loader = TDataLoader(TTensorDataset(torch.from_numpy(x.copy()), torch.from_numpy(y.copy())),
                         batch_size=batch, sampler=sampler)
    return _trainer(model, torch.optim.Adam(model.parameters(), lr=LR), tnn.CrossEntropyLoss(),
                    loader, _prebuilt_batches(x, y, batch, torch.from_numpy), sampler.reseed)


@dataclass
class Spec:
    kind: str
    title: str
    batch: int
    data: Callable[[], tuple]


SPECS = [
    Spec("mlp", "default MLP 64-128-128-10 (chainrule train), digits", 32, digits_train_split),
    Spec("cnn", "default CNN (chainrule train), digits 1x8x8", 32, digits_train_split),
    Spec("lenet", "LeNet-like CNN, random 1x28x28", 64, lenet_data),
]


def verify(spec: Spec, x, y) -> str:
    model, twin = make_models(spec.kind)
    l_cr = trainer_cr(model, x, y, spec.batch).first_losses(CHECK_STEPS)
    l_t = trainer_torch(twin, x, y, spec.batch).first_losses(CHECK_STEPS)
    worst = max(abs(a - b) / abs(b) for a, b in zip(l_cr, l_t))
    worst_param = max(float(np.max(np.abs(p.data - q.detach().numpy())))
                      for p, q in zip(model.state_dict().values(), twin.state_dict().values()))
    msg = (f"{spec.kind}: losses of steps 1..{CHECK_STEPS}: "
           f"chainrule {', '.join(f'{v:.5f}' for v in l_cr)}; "
           f"torch {', '.join(f'{v:.5f}' for v in l_t)}; worst relative difference {worst:.1e}, "
           f"max |weight difference| after {CHECK_STEPS} steps {worst_param:.1e}")
    if not worst <= CHECK_RTOL:
        raise SystemExit(f"verification failed (tolerance {CHECK_RTOL:g} relative): {msg}")
    return msg + " -> OK"


# --------------------------------------------------------------------------- throughput table
def _q(values, q):
    return float(np.quantile(np.asarray(values), q))


def throughput_rows(cases: list, times: dict, samples: dict, targets: dict) -> list:
    rows = []
    for case in cases:
        per_cr, per_t = times[case.label]["cr"], times[case.label]["torch"]
        n = samples[case.label]
        all_cr = [t for block in per_cr for t in block]
        all_t = [t for block in per_t for t in block]
        thr_cr, thr_t = n / statistics.median(all_cr), n / statistics.median(all_t)
        ratio = thr_cr / thr_t
        paired = statistics.median(statistics.median(b) / statistics.median(a)
                                   for a, b in zip(per_cr, per_t))
        fast = _q(all_t, .10) / _q(all_cr, .10)  # fastest 10% of epochs of each library
        target = targets[case.label]
        met = ("yes" if min(ratio, paired, fast) >= target else
               "**no**" if max(ratio, paired, fast) < target else "borderline")
        rows.append({"label": case.label, "cr": thr_cr, "torch": thr_t,
                     "cr_iqr": (n / _q(all_cr, .75), n / _q(all_cr, .25)),
                     "torch_iqr": (n / _q(all_t, .75), n / _q(all_t, .25)),
                     "ratio": ratio, "paired": paired, "fast": fast, "target": target, "met": met})
    return rows


def print_throughput(rows: list, title: str) -> None:
    print(f"{title} (samples/s, median over all timed epochs, IQR in brackets; throughput ratio = "
          f"chainrule samples/s / torch samples/s, above 1 = chainrule faster; 'paired' = median "
          f"over rounds of the per-round ratio; 'fastest 10%' compares the 10th-percentile times; "
          f"'met': yes if all three ratios reach the target, no if none does, else borderline):\n")
    print("| case | chainrule samples/s | torch samples/s | throughput ratio | paired "
          "| fastest 10% | target | met |")
    print("|---|---:|---:|---:|---:|---:|:---:|:---:|")
    for r in rows:
        print(f"| {r['label']} | {r['cr']:,.0f} ({r['cr_iqr'][0]:,.0f}-{r['cr_iqr'][1]:,.0f}) | "
              f"{r['torch']:,.0f} ({r['torch_iqr'][0]:,.0f}-{r['torch_iqr'][1]:,.0f}) | "
              f"**{r['ratio']:.2f}x** | "
              f"{r['paired']:.2f}x | {r['fast']:.2f}x | >= {r['target']:g}x | {r['met']} |")
    print()


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="few rounds (smoke test; numbers are noisy)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds of the digits cases (default 24; LeNet gets a third, at least 5)")
    ap.add_argument("--no-steps-only", action="store_true", help="skip the loader-free table")
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")
    rounds = args.rounds if args.rounds is not None else (4 if args.quick else 24)
    lenet_rounds = 2 if args.quick and args.rounds is None else max(min(5, rounds), rounds // 3)

    threads = harness.print_setup("chainrule vs PyTorch (CPU) training throughput",
                                  "benchmarks/bench_train.py")
    print(f"- rounds: digits cases {rounds}, LeNet {lenet_rounds}; 1 timed epoch per library per "
          f"round (plus at least one untimed after each switch of library); order alternates "
          f"per round\n")

    data = {}
    print(f"Equivalence check ({CHECK_STEPS} Adam steps from the same weights on the same batches; "
          f"tolerance {CHECK_RTOL:g} relative):")
    for spec in SPECS:
        if spec.data not in data:
            data[spec.data] = spec.data()
        print(f"- {verify(spec, *data[spec.data])}")
    print()

    variants = [("epoch", "one epoch with DataLoader")]
    if not args.no_steps_only:
        variants.append(("steps", "steps only, pre-built batches"))
    cases, samples, targets = [], {}, {}
    for spec in SPECS:
        x, y = data[spec.data]
        n_steps = -(-len(y) // spec.batch)
        for variant, what in variants:
            model, twin = make_models(spec.kind)
            ours = trainer_cr(model, x, y, spec.batch)
            theirs = trainer_torch(twin, x, y, spec.batch)
            label = (f"{spec.title}, batch {spec.batch}: {what} "
                     f"({len(y):,} samples, {n_steps} steps)")
            lenet = spec.kind == "lenet"
            cases.append(harness.Case(label, getattr(ours, variant), getattr(theirs, variant),
                                      reps=1, rounds=lenet_rounds if lenet else rounds,
                                      # a time ratio, at most
                                      target=round(1 / TARGETS[spec.kind], 2),
                                      warmup=1 if lenet else 3))
            samples[label], targets[label] = len(y), TARGETS[spec.kind]
    times, elapsed = harness.measure(cases)

    print("Times per epoch (the harness's table: TIME ratios chainrule / torch, lower is better; "
          "the target column is the inverse of the throughput target):\n")
    harness.print_table(cases, times, threads, elapsed)
    print()
    rows = throughput_rows(cases, times, samples, targets)
    print_throughput([r for r in rows if "DataLoader" in r["label"]],
                     "THROUGHPUT, one epoch including data loading")
    steps_rows = [r for r in rows if "DataLoader" not in r["label"]]
    if steps_rows:
        print_throughput(steps_rows, "THROUGHPUT, steps only over pre-built batches (no loader)")


if __name__ == "__main__":
    sys.exit(main())

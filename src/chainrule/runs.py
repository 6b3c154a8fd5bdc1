"""Training runs on disk: what ``chainrule train`` and ``chainrule evaluate`` do.

A run folder holds ``config.json`` (every setting), ``model.safetensors`` and
``optimizer.safetensors`` (after each completed epoch, written atomically), ``metrics.csv`` (one
row per epoch), ``curves.png`` and ``confusion.png``. Every random choice is derived from the
seed and the epoch number (the data split, the initial weights, each epoch's shuffling and
dropout masks), so ``resume`` after epoch k ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Optional

import chainrule as cr
from chainrule import nn, optim
from chainrule.checkpoint import CheckpointError, atomic_write, load_model, load_optimizer, save_model, save_optimizer
from chainrule.data import DataLoader, TensorDataset, load_digits, load_idx, random_split
from chainrule.plots import plot_confusion, plot_curves
from chainrule.train import evaluate, fit

__all__ = ["RunConfig", "train_run", "evaluate_run", "build_model", "load_splits", "RunError"]

METRICS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class RunError(ValueError):
    """A run folder or setting that cannot be used (missing files, bad dataset spec)."""


@dataclass
class RunConfig:
    dataset: str = "digits"  # 'digits' or 'idx:IMAGES,LABELS'
    model: str = "mlp"  # 'mlp' or 'cnn'
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # 'adam' or 'sgd' (momentum 0.9)
    weight_decay: float = 0.0
    seed: int = 0
    test_fraction: float = 0.2  # held out for the final test accuracy
    val_fraction: float = 0.1  # of the rest: the validation curve

    def __post_init__(self) -> None:
        if self.model not in ("mlp", "cnn"):
            raise RunError(f"model={self.model!r}: choose 'mlp' or 'cnn'")
        if self.optimizer not in ("adam", "sgd"):
            raise RunError(f"optimizer={self.optimizer!r}: choose 'adam' or 'sgd'")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise RunError("epochs and batch size must be >= 1, lr > 0 and weight decay >= 0")
        if not (self.dataset == "digits" or self.dataset.startswith("idx:")):
            raise RunError(f"dataset={self.dataset!r}: use 'digits' or 'idx:IMAGES,LABELS'")

    @classmethod
    def load(cls, folder: Path) -> "RunConfig":
        try:
            data = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunError(f"{folder} is not a run folder: cannot read config.json ({error})") from None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_splits(config: RunConfig):
    """(train, validation, test) datasets, input shape and number of classes; the split is seeded."""
    if config.dataset == "digits":
        images, labels = load_digits()
    else:
        paths = config.dataset[len("idx:"):].split(",")
        if len(paths) != 2:
            raise RunError(f"dataset={config.dataset!r}: expected idx:IMAGES,LABELS (two paths)")
        images, labels = load_idx(*paths)
    n = len(labels)
    n_test = int(round(n * config.test_fraction))
    n_val = int(round((n - n_test) * config.val_fraction))
    parts = random_split(TensorDataset(images, labels), [n - n_test - n_val, n_val, n_test],
                         generator=cr.Generator(config.seed))
    n_classes = int(cr.max(labels).item()) + 1
    return parts, tuple(images.shape[1:]), n_classes


def build_model(kind: str, input_shape: tuple, n_classes: int, seed: int) -> nn.Module:
    """The default networks: an MLP with two hidden ReLU layers, or a small CNN (two 3x3 convs, a max-pool)."""
    cr.manual_seed(seed)  # the initial weights follow from the seed
    channels, height, width = input_shape
    if kind == "mlp":
        features = channels * height * width
        hidden = 128 if features <= 256 else 256
        return nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                             nn.ReLU(), nn.Linear(hidden, n_classes))
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (height // 2) * (width // 2), 64), nn.ReLU(), nn.Linear(64, n_classes))


def _build_optimizer(config: RunConfig, model: nn.Module):
    if config.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


class _EpochSeeds:
    """Reseed the shuffling and the default generator (dropout) from (seed, epoch) at each epoch start."""

    def __init__(self, seed: int, shuffle: cr.Generator) -> None:
        self.seed, self.shuffle = seed, shuffle

    def on_epoch_start(self, epoch: int) -> None:
        self.shuffle.manual_seed(self.seed * 1_000_003 + epoch)
        cr.manual_seed(self.seed * 7_919 + epoch + 1)


class _SaveEachEpoch:
    """After every epoch: the checkpoints and metrics.csv, atomically, and one printed line."""

    def __init__(self, folder: Path, model, optimizer, rows: list, log: Callable) -> None:
        self.folder, self.model, self.optimizer, self.rows, self.log = folder, model, optimizer, rows, log

    def on_epoch_end(self, metrics: dict) -> None:
        self.rows.append(metrics)
        stamp = {"epoch": metrics["epoch"]}
        save_model(self.model, self.folder / "model.safetensors", stamp)
        save_optimizer(self.optimizer, self.folder / "optimizer.safetensors", stamp)
        _write_metrics(self.folder / "metrics.csv", self.rows)
        self.log(_format_metrics(metrics))


def _format_metrics(m: dict) -> str:
    line = f"epoch {m['epoch']:3d}  loss {m['train_loss']:.4f}  acc {m['train_accuracy']:.4f}"
    if "val_loss" in m:
        line += f"  val_loss {m['val_loss']:.4f}  val_acc {m['val_accuracy']:.4f}"
    return line + f"  ({m['seconds']:.2f}s)"


def _write_metrics(path: Path, rows: list) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRICS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, text.getvalue().encode())


def _read_metrics(path: Path) -> list:
    if not path.exists():
        return []
    with path.open() as file:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(file)]


def _confusion(predictions, targets, n_classes: int) -> list:
    """counts[true][predicted] as onehot(targets)^T onehot(predictions)."""
    eye = cr.eye(n_classes, dtype="int64")
    return (eye[targets].T @ eye[predictions]).tolist()


def train_run(config: RunConfig, folder, resume: bool = False, progress: bool = True,
              log: Callable = print, epochs: Optional[int] = None) -> dict:
    """Train (or resume) the run in ``folder``; returns the final test accuracy and the history."""
    folder = Path(folder)
    (train_set, val_set, test_set), input_shape, n_classes = load_splits(config)
    model = build_model(config.model, input_shape, n_classes, config.seed)
    optimizer = _build_optimizer(config, model)
    rows: list = []
    start = 0
    if resume:
        metadata = load_model(model, folder / "model.safetensors")
        load_optimizer(optimizer, folder / "optimizer.safetensors")
        start = int(metadata.get("epoch", 0))
        rows = [r for r in _read_metrics(folder / "metrics.csv") if r["epoch"] <= start]
        if len(rows) != start:
            raise CheckpointError(f"{folder}: the checkpoint is at epoch {start} but metrics.csv has "
                                  f"{len(rows)} of its epochs")
        if epochs is not None:
            config.epochs = epochs
        log(f"resuming {folder} after epoch {start} of {config.epochs}")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "config.json", (json.dumps(asdict(config), indent=2) + "\n").encode())
    shuffle = cr.Generator(config.seed)
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=shuffle)
    val_loader = DataLoader(val_set, batch_size=256)
    test_loader = DataLoader(test_set, batch_size=256)
    loss_fn = nn.CrossEntropyLoss()
    if start < config.epochs:
        fit(model, loss_fn, optimizer, train_loader, config.epochs, val_loader, start_epoch=start, progress=progress,
            callbacks=[_EpochSeeds(config.seed, shuffle), _SaveEachEpoch(folder, model, optimizer, rows, log)])
    result = evaluate(model, test_loader, loss_fn)
    title = f"{config.model} on {config.dataset.split(':')[0]}, seed {config.seed}"
    plot_curves(rows, folder / "curves.png", title)
    plot_confusion(_confusion(result["predictions"], result["targets"], n_classes), folder / "confusion.png",
                   f"test set, accuracy {result['accuracy']:.2%}")
    log(f"test accuracy {result['accuracy']:.4f} ({len(test_set)} samples); run folder {folder}")
    return {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "history": rows}


def evaluate_run(folder, log: Callable = print) -> dict:
    """Reload a run's model and print its test accuracy and per-class precision, recall and F1."""
    folder = Path(folder)
    config = RunConfig.load(folder)
    (_, _, test_set), input_shape, n_classes = load_splits(config)
    model = build_model(config.model, input_shape, n_classes, config.seed)
    metadata = load_model(model, folder / "model.safetensors")
    result = evaluate(model, DataLoader(test_set, batch_size=256), nn.CrossEntropyLoss())
    matrix = _confusion(result["predictions"], result["targets"], n_classes)
    log(f"{folder}: {config.model} on {config.dataset}, after epoch {metadata.get('epoch', '?')}")
    log(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  ({len(test_set)} samples)\n")
    log(f"{'class':>5}  {'precision':>9}  {'recall':>6}  {'f1':>6}  {'support':>7}")
    for c in range(n_classes):
        hits = matrix[c][c]
        predicted = sum(row[c] for row in matrix)
        support = sum(matrix[c])
        precision = hits / predicted if predicted else math.nan
        recall = hits / support if support else math.nan
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else math.nan
        log(f"{c:>5}  {precision:>9.3f}  {recall:>6.3f}  {f1:>6.3f}  {support:>7}")
    return {"test_accuracy": result["accuracy"], "confusion": matrix}

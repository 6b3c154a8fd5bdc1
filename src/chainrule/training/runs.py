"""Training runs on disk: what ``chainrule train`` and ``chainrule evaluate`` do.

A run folder holds ``config.json`` (every setting), the state of the last completed epoch
(``model.safetensors``, ``optimizer.safetensors``, ``metrics.csv``), the commit record
``commit.json`` that names those three files by SHA-256, ``curves.png`` and ``confusion.png``.
An epoch is committed in one step: its files are written to ``staging/``, then ``commit.json`` is
replaced atomically (the commit point), then the files are moved into the folder. Resume and
evaluate read only what ``commit.json`` names (finishing an interrupted move first), so a run
killed at any instant continues from its last committed epoch; with no commit yet it restarts.
Every random choice is derived from the seed and the epoch number (the data split, the initial
weights, each epoch's shuffling and dropout masks), so ``resume`` after epoch k ends with exactly
the weights, byte for byte, of an uninterrupted run.

Under ``mpirun -n N`` (after :func:`chainrule.distributed.init`) the same run trains on N ranks:
``batch_size`` stays the global batch (each rank takes ``batch_size / N`` samples of it, through a
``DistributedSampler`` that deals out the single-process order), the model is wrapped in
``DistributedDataParallel``, the metrics are averaged over ranks, and only rank 0 writes the run
folder and prints. ``config.json`` records the world size of the latest start; a run may resume
with another one (the global batch, and so the arithmetic, stays the same).
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import io
import json
import math
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import chainrule as cr
from chainrule import distributed, nn, optim
from chainrule.data import (
    DataLoader,
    TensorDataset,
    Vocabulary,
    load_digits,
    load_idx,
    random_split,
)
from chainrule.data.files import atomic_write, sync_folder
from chainrule.engine.errors import ChainruleError
from chainrule.training.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    load_model,
    load_optimizer,
    read_limited,
    save_model,
    save_optimizer,
)
from chainrule.training.fit import NonFiniteLossError, evaluate, fit
from chainrule.training.language import (
    SEQ_LEN,
    TEXT_MODELS,
    TextError,
    build_language_model,
    generate,
    read_text,
    text_splits,
)
from chainrule.training.plots import plot_confusion, plot_curves

__all__ = ["RunConfig", "train_run", "evaluate_run", "build_model", "load_splits", "RunError",
           "committed_epoch", "load_vocabulary", "sample_run"]

METRICS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
COMMIT = "commit.json"
STAGING = "staging"
STATE_FILES = ("model.safetensors", "optimizer.safetensors", "metrics.csv")  # one commit's files
RUN_FILES = ("config.json", COMMIT, *STATE_FILES, "curves.png", "confusion.png", "vocab.json")

# Limits on settings and inputs: beyond them a run would not finish or not fit in memory.
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1 << 31
MAX_SEED = 2 ** 63 - 1
MAX_PARAMETERS = 50_000_000  # the default networks' weights (MNIST's MLP has 270,000)
MAX_TEXT_BYTES = 16 << 20  # config.json, commit.json, metrics.csv


class RunError(ChainruleError, ValueError):
    """A run folder or setting that cannot be used (missing files, bad dataset spec)."""


def _short(value: Any) -> str:
    """repr of a user's value, cut short (a config.json may hold anything)."""
    return _cut(repr(value))


def _cut(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _folder(folder: Any) -> Path:
    """A run folder's path; '' is refused (Path('') would be the current folder)."""
    if not str(folder).strip():
        raise RunError("the run folder is empty: give a folder "
                       "(--out DIR, --resume DIR, evaluate DIR)")
    return Path(folder)


_KINDS = {int: "an integer", float: "a number", str: "a string"}


@dataclass
class RunConfig:
    dataset: str = "digits"  # 'digits', 'idx:IMAGES,LABELS', 'text' or 'text:FILE'
    model: str = "mlp"  # 'mlp', 'cnn' (images), 'lstm' or 'transformer' (text)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # 'adam' or 'sgd' (momentum 0.9)
    weight_decay: float = 0.0
    seed: int = 0
    test_fraction: float = 0.2  # held out for the final test accuracy
    val_fraction: float = 0.1  # of the rest: the validation curve

    def __post_init__(self) -> None:
        for f in fields(self):
            self._check_type(f.name, type(f.default))
        if self.model not in ("mlp", "cnn", *TEXT_MODELS):
            raise RunError(f"model={_short(self.model)}: choose 'mlp' or 'cnn' (images), "
                           f"'lstm' or 'transformer' (text)")
        if self.optimizer not in ("adam", "sgd"):
            raise RunError(f"optimizer={_short(self.optimizer)}: choose 'adam' or 'sgd'")
        for name, low, high in (("epochs", 1, MAX_EPOCHS), ("batch_size", 1, MAX_BATCH_SIZE),
                                ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise RunError(f"{name}={value}: must be an integer from {low} to {high:,}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise RunError(f"lr={self.lr}: the learning rate must be a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise RunError(f"weight_decay={self.weight_decay}: must be a finite number >= 0")
        for name in ("test_fraction", "val_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise RunError(f"{name}={value}: must be a fraction strictly between 0 and 1")
        text = self.dataset == "text" or self.dataset.startswith("text:")
        known = text or self.dataset == "digits" or self.dataset.startswith("idx:")
        if not known or "\0" in self.dataset:
            raise RunError(f"dataset={_short(self.dataset)}: use 'digits', 'idx:IMAGES,LABELS', "
                           f"'text' or 'text:FILE'")
        if text != self.is_text:
            raise RunError(f"model={self.model} does not fit dataset={_short(self.dataset)}: "
                           f"text needs --model lstm or transformer, images mlp or cnn")

    @property
    def is_text(self) -> bool:
        """A character-level language model (lstm or transformer on a text)."""
        return self.model in TEXT_MODELS

    def _check_type(self, name: str, kind: type) -> None:
        """Settings come from the command line or a config.json: refuse a wrong type in one line."""
        value = getattr(self, name)
        if kind is float and type(value) is int:
            setattr(self, name, float(value))
        elif type(value) is not kind:  # bool is not an int here
            raise RunError(f"{name}={_short(value)}: must be {_KINDS[kind]}")

    @classmethod
    def load(cls, folder) -> "RunConfig":
        """The settings in ``folder/config.json``; RunError (one line) when missing or malformed."""
        path = _folder(folder) / "config.json"
        data = _read_json(path, f"{folder} is not a run folder: cannot read config.json")
        if not isinstance(data, dict):
            raise RunError(f"{path}: expected a JSON object of settings, "
                           f"got a {type(data).__name__}")
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise RunError(f"{path}: the settings {', '.join(missing)} are missing")
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except RunError as error:
            raise RunError(f"{path}: {error}") from None


def _read_text(path: Path, unreadable: str) -> str:
    """A small UTF-8 text file of the run; RunError naming ``path`` for anything else."""
    try:
        return read_limited(path, MAX_TEXT_BYTES, RunError).decode("utf-8")
    except OSError as error:
        raise RunError(f"{unreadable} ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: not UTF-8 text") from None


def _read_json(path: Path, unreadable: str) -> Any:
    text = _read_text(path, unreadable)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, a huge integer, deep nesting
        raise RunError(f"{path}: not valid JSON ({_cut(str(error))})") from None


def load_splits(config: RunConfig) -> tuple[list, tuple[int, ...], int]:
    """(train, validation, test) datasets, input shape and number of classes (a seeded split;
    a text is cut in reading order, its classes are its characters)."""
    if config.is_text:
        try:
            parts, vocab = text_splits(read_text(config.dataset), config.test_fraction,
                                       config.val_fraction)
        except TextError as error:
            raise RunError(str(error)) from None
        return parts, (SEQ_LEN,), len(vocab)
    if config.dataset == "digits":
        images, labels = load_digits()
    else:
        paths = config.dataset[len("idx:"):].split(",")
        if len(paths) != 2 or not all(paths):
            raise RunError(f"dataset={_short(config.dataset)}: "
                           f"expected idx:IMAGES,LABELS (two paths)")
        images, labels = load_idx(*paths)
    n = len(labels)
    n_test = int(round(n * config.test_fraction))
    n_val = int(round((n - n_test) * config.val_fraction))
    sizes = [n - n_test - n_val, n_val, n_test]
    if min(sizes) < 1:
        raise RunError(f"the dataset has {n} samples: too few for a training, a validation "
                       f"and a test set ({sizes[0]}, {sizes[1]} and {sizes[2]} samples; "
                       f"each needs at least 1)")
    parts = random_split(TensorDataset(images, labels), sizes, generator=cr.Generator(config.seed))
    n_classes = int(cr.max(labels).item()) + 1
    return parts, tuple(images.shape[1:]), n_classes


def _check_model_size(kind: str, input_shape: tuple, n_classes: int) -> None:
    """Refuse images the network cannot take, before any weight is allocated."""
    channels, height, width = input_shape
    if kind == "cnn" and min(height, width) < 2:
        raise RunError(f"images of {height}x{width} pixels are too small for the cnn "
                       f"(its 2x2 max-pool needs at least 2x2): use --model mlp")
    features = channels * height * width
    if features < 1:
        raise RunError(f"images of {height}x{width} pixels have no pixels to learn from")
    if kind == "mlp":
        hidden = 128 if features <= 256 else 256
        count = (features + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * n_classes
    else:
        flat = 32 * (height // 2) * (width // 2)
        count = 16 * (channels * 9 + 1) + 32 * (16 * 9 + 1) + (flat + 1) * 64 + 65 * n_classes
    if count > MAX_PARAMETERS:
        raise RunError(f"images of {channels}x{height}x{width} would need a {kind} of "
                       f"{count:,} parameters, more than the {MAX_PARAMETERS:,} allowed")


def build_model(kind: str, input_shape: tuple, n_classes: int, seed: int) -> nn.Module:
    """The default networks: an MLP with two hidden ReLU layers, or a small CNN (two 3x3
    convolutions, a max-pool); for text, a character LSTM or transformer over ``n_classes``
    characters (:mod:`chainrule.training.language`)."""
    if kind in TEXT_MODELS:
        return build_language_model(kind, n_classes, seed)
    _check_model_size(kind, input_shape, n_classes)
    cr.manual_seed(seed)  # the initial weights follow from the seed
    channels, height, width = input_shape
    if kind == "mlp":
        features = channels * height * width
        hidden = 128 if features <= 256 else 256
        return nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(),
                             nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (height // 2) * (width // 2), 64), nn.ReLU(),
        nn.Linear(64, n_classes))


def _build_optimizer(config: RunConfig, model: nn.Module):
    if config.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return optim.SGD(model.parameters(), lr=config.lr, momentum=0.9,
                     weight_decay=config.weight_decay)


class _EpochSeeds:
    """Reseed the shuffling (the sampler's epoch) and the default generator (dropout) from
    (seed, epoch) as each epoch starts."""

    def __init__(self, seed: int, sampler: distributed.DistributedSampler) -> None:
        self.seed, self.sampler = seed, sampler

    def on_epoch_start(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)  # the order of Generator(seed * 1_000_003 + epoch)
        cr.manual_seed(self.seed * 7_919 + epoch + 1)


def _train_loader(config: RunConfig, train_set, device: str) -> DataLoader:
    """Each rank's part of every global batch: ``batch_size / world_size`` samples of the order a
    single process would shuffle (see :class:`~chainrule.distributed.DistributedSampler`)."""
    ranks = distributed.world_size()
    if config.batch_size % ranks:
        raise RunError(f"batch_size={config.batch_size} is the global batch: it must be divisible "
                       f"by the {ranks} ranks (each rank takes batch_size / {ranks} samples)")
    sampler = distributed.DistributedSampler(train_set, shuffle=True,
                                             seed=config.seed * 1_000_003)
    return DataLoader(train_set, batch_size=config.batch_size // ranks, sampler=sampler,
                      device=device)


class _CommitEachEpoch:
    """After every epoch: refuse non-finite weights, commit the epoch, report one line."""

    def __init__(self, folder: Path, model, optimizer, rows: list, report: Callable,
                 perplexity: bool = False) -> None:
        self.folder, self.model, self.optimizer = folder, model, optimizer
        self.rows, self.report, self.perplexity = rows, report, perplexity

    def on_epoch_end(self, metrics: dict) -> None:
        epoch = metrics["epoch"]
        bad = [name for name, value in self.model.state_dict().items()
               if not np.isfinite(np.asarray(getattr(value, "data", value))).all()]
        if bad or not math.isfinite(metrics["train_loss"]):
            what = f"the parameter {bad[0]}" if bad else "the training loss"
            raise RunError(f"epoch {epoch}: {what} became non-finite; stopped without saving epoch "
                           f"{epoch}: the run stays at epoch {epoch - 1} (a smaller --lr may help)")
        self.rows.append(metrics)
        _commit(self.folder, self.model, self.optimizer, self.rows)
        self.report("epoch", _format_metrics(metrics, self.perplexity), metrics)


# ------------------------------------------------------------------ the commit protocol
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256(path: Path) -> Optional[str]:
    """The SHA-256 of a regular file, or None when there is none (missing, a device, too large)."""
    try:
        return hashlib.sha256(read_limited(path, MAX_CHECKPOINT_BYTES, RunError)).hexdigest()
    except (FileNotFoundError, NotADirectoryError, RunError):
        return None


def _commit(folder: Path, model, optimizer, rows: list) -> None:
    """Make epoch ``rows[-1]`` the run's state in one step: the replacement of commit.json.

    Its files are first written to staging/ (each atomically), then commit.json names them by
    SHA-256 (the commit point), then they are moved into the folder. A kill before the commit
    point leaves the previous epoch; after it, resume finishes the move (:func:`_roll_forward`).
    """
    epoch = rows[-1]["epoch"]
    staging = folder / STAGING
    save_model(model, staging / "model.safetensors", {"epoch": epoch})
    save_optimizer(optimizer, staging / "optimizer.safetensors", {"epoch": epoch})
    _write_metrics(staging / "metrics.csv", rows)
    record = {"epoch": epoch, "files": {name: _sha256(staging / name) for name in STATE_FILES}}
    atomic_write(folder / COMMIT, (json.dumps(record, indent=2) + "\n").encode())
    for name in STATE_FILES:
        os.replace(staging / name, folder / name)
    sync_folder(folder)


def _read_commit(folder: Path) -> Optional[dict]:
    """commit.json's record ``{"epoch": k, "files": {name: sha256}}``; None before any commit."""
    path = folder / COMMIT
    if not os.path.lexists(path):
        return None
    record = _read_json(path, f"cannot read {path}")
    epoch = record.get("epoch") if isinstance(record, dict) else None
    files = record.get("files") if isinstance(record, dict) else None
    valid = (type(epoch) is int and epoch >= 1 and isinstance(files, dict)
             and set(files) == set(STATE_FILES)
             and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in files.values()))
    if not valid:
        raise RunError(f"{path}: not a commit record (expected {{\"epoch\": N, \"files\": "
                       f"{{name: sha256}}}} naming {', '.join(STATE_FILES)})")
    return record


def committed_epoch(folder) -> int:
    """The last epoch committed in the run folder ``folder`` (0 before the first)."""
    record = _read_commit(Path(folder))
    return 0 if record is None else record["epoch"]


def _locate(folder: Path, record: dict) -> dict:
    """name -> path of each committed file: in the folder, or still in staging/ (a move cut
    short)."""
    found = {}
    for name, digest in record["files"].items():
        for path in (folder / name, folder / STAGING / name):
            if _sha256(path) == digest:
                found[name] = path
                break
        else:
            raise RunError(f"{folder}: {name} is damaged or was changed: its SHA-256 is not "
                           f"the one commit.json recorded at epoch {record['epoch']}")
    return found


def _roll_forward(folder: Path, record: Optional[dict]) -> None:
    """Finish an interrupted commit (move its files out of staging/), then drop any leftovers."""
    if record is not None:
        for name, path in _locate(folder, record).items():
            if path.parent.name == STAGING:
                os.replace(path, folder / name)
        sync_folder(folder)
    _clear_leftovers(folder)


def _clear_leftovers(folder: Path) -> None:
    """Delete staged files and atomic_write's temporaries that a killed run left behind."""
    staging = folder / STAGING
    if staging.is_dir():
        for path in staging.iterdir():
            if path.is_file() or path.is_symlink():
                path.unlink()
    for name in RUN_FILES:
        for path in folder.glob(f".{glob.escape(name)}.*.tmp"):
            path.unlink()


def _load_committed(folder: Path, record: dict, model, optimizer) -> list:
    """Load the committed epoch into ``model`` and ``optimizer``; its metrics rows."""
    epoch = record["epoch"]
    metadata = load_model(model, folder / "model.safetensors")
    load_optimizer(optimizer, folder / "optimizer.safetensors")
    if metadata.get("epoch") != str(epoch):
        raise RunError(f"{folder}/model.safetensors says epoch {_short(metadata.get('epoch'))}, "
                       f"commit.json says {epoch}")
    rows = _read_metrics(folder / "metrics.csv")
    if [row["epoch"] for row in rows] != list(range(1, epoch + 1)):
        raise RunError(f"{folder}/metrics.csv: expected the rows of epochs 1 to {epoch}, "
                       f"found epochs {_short([row['epoch'] for row in rows])}")
    return rows


# ------------------------------------------------------------------ folders and settings
def _check_new_folder(folder: Path, force: bool) -> None:
    """A new run goes to a folder that holds no run, unless ``force``."""
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} exists and is not a folder")
    present = [name for name in (*RUN_FILES, STAGING) if os.path.lexists(folder / name)]
    if present and not force:
        raise RunError(f"{folder} already holds a run ({present[0]}): use --resume or --force")


def _clear_run(folder: Path) -> None:
    """--force: delete the old run's files, commit.json first (from then on there is no old run)."""
    for name in (COMMIT, *RUN_FILES):
        path = folder / name
        if path.is_symlink() or path.is_file():
            path.unlink()
    _clear_leftovers(folder)
    sync_folder(folder)


def _resumed_config(folder: Path, config: RunConfig, epochs: Optional[int]) -> RunConfig:
    """The run's stored settings with a new total of ``epochs``; any other difference is refused."""
    stored = RunConfig.load(folder)
    for f in fields(RunConfig):
        new, old = getattr(config, f.name), getattr(stored, f.name)
        if f.name != "epochs" and new != old:
            raise RunError(f"{f.name}={_short(new)} conflicts with the run's "
                           f"{f.name}={_short(old)} (a resumed run keeps its settings; "
                           f"start a new run with --out)")
    return dataclasses.replace(stored, epochs=config.epochs if epochs is None else epochs)


def _write_config(folder: Path, config: RunConfig) -> None:
    """The settings, and the world size of this start (a record: a resume may use another)."""
    record = {**asdict(config), "world_size": distributed.world_size()}
    atomic_write(folder / "config.json", (json.dumps(record, indent=2) + "\n").encode())


def _stored_world_size(folder: Path) -> Any:
    return _read_json(folder / "config.json", f"cannot read {folder}/config.json").get("world_size")


def _format_metrics(m: dict, perplexity: bool = False) -> str:
    line = f"epoch {m['epoch']:3d}  loss {m['train_loss']:.4f}  acc {m['train_accuracy']:.4f}"
    if "val_loss" in m:
        line += f"  val_loss {m['val_loss']:.4f}  val_acc {m['val_accuracy']:.4f}"
        if perplexity:
            line += f"  val_ppl {math.exp(min(m['val_loss'], 700.0)):.3f}"
    return line + f"  ({m['seconds']:.2f}s)"


def _write_metrics(path: Path, rows: list) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRICS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, text.getvalue().encode())


def _read_metrics(path: Path) -> list:
    """The rows of a metrics.csv (epoch an int, the rest floats); RunError when it is not one."""
    text = _read_text(path, f"cannot read {path}")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if tuple(reader.fieldnames or ()) != METRICS:
            raise ValueError(f"its header is not {','.join(METRICS)}")
        return [_metrics_row(row) for row in reader]
    except (csv.Error, ValueError) as error:
        raise RunError(f"{path}: not a metrics file ({_cut(str(error))})") from None


def _metrics_row(row: dict) -> dict:
    if None in row or None in row.values():
        more = "more" if None in row else "fewer"
        raise ValueError(f"a row has {more} than {len(METRICS)} fields")
    values = {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
    needed = {"epoch", "train_loss", "train_accuracy", "lr", "seconds"}
    if not needed <= values.keys():
        raise ValueError(f"a row lacks {', '.join(sorted(needed - values.keys()))}")
    return values


def _confusion(predictions, targets, n_classes: int) -> list:
    """counts[true][predicted] as onehot(targets)^T onehot(predictions)."""
    eye = cr.eye(n_classes, dtype="int64")
    return (eye[targets].T @ eye[predictions]).tolist()


def train_run(config: RunConfig, folder, resume: bool = False, progress: bool = True,
              log: Callable = print, epochs: Optional[int] = None, force: bool = False,
              device: str = "cpu", log_format: str = "text") -> dict:
    """Train (or resume) the run in ``folder``; returns the final test accuracy and the history.

    A new run refuses a folder that holds one unless ``force``; ``resume`` continues from the last
    committed epoch (from scratch if none) to ``epochs`` (default: the run's), and refuses a
    ``config`` that differs from the run's in anything but the epochs. ``device`` ("cpu", "cuda"
    ...) is where the model trains; it is not part of the run's config: checkpoints are device-free,
    so a run started on a GPU resumes on the CPU and the other way round. ``log_format``: "text"
    (a line per epoch for people) or "json" (one JSON object per line, for tools: events "resume",
    "epoch" with the metrics of metrics.csv, and "test").
    """
    report = _reporter(log, log_format)
    device = _device(device)
    folder = _folder(folder)
    lead = distributed.rank() == 0  # rank 0 writes the folder and prints; one process: itself
    report = report if lead else _silent
    # every rank checks the folder before any rank writes to it (the barrier below)
    if resume:
        config = _resumed_config(folder, config, epochs)
        record = _read_commit(folder)
    else:
        _check_new_folder(folder, force)
        record = None
    (train_set, val_set, test_set), input_shape, n_classes = load_splits(config)
    model = build_model(config.model, input_shape, n_classes, config.seed).to(device)
    optimizer = _build_optimizer(config, model)
    train_loader = _train_loader(config, train_set, device)
    start = 0 if record is None else record["epoch"]
    if start > config.epochs:
        raise RunError(f"epochs={config.epochs} is below the {start} epochs the run has completed "
                       f"(--epochs is the new total)")
    distributed.barrier()
    if lead:
        _prepare_folder(folder, config, record, resume)
    distributed.barrier()  # the committed files are in place for every rank to read
    rows = [] if record is None else _load_committed(folder, record, model, optimizer)
    if resume:
        report("resume", f"resuming {folder} after epoch {start} of {config.epochs}",
               {"folder": str(folder), "after_epoch": start, "epochs": config.epochs})
    net = model if distributed.world_size() == 1 else distributed.DistributedDataParallel(model)
    loaders = [train_loader, DataLoader(val_set, batch_size=256, device=device),
               DataLoader(test_set, batch_size=256, device=device)]
    loss_fn = nn.CrossEntropyLoss()
    with np.errstate(all="ignore"):  # overflow shows as a non-finite loss, refused below
        if start < config.epochs:
            _fit(config, folder, net, model, optimizer, loss_fn, loaders, start, rows, progress,
                 report, lead)
        result = evaluate(model, loaders[2], loss_fn)
    title = f"{config.model} on {config.dataset.split(':')[0]}, seed {config.seed}"
    if config.is_text:
        if lead:
            plot_curves(rows, folder / "curves.png", title, perplexity=True)
        report("test", f"test perplexity {math.exp(result['loss']):.3f}, accuracy "
               f"{result['accuracy']:.4f} ({len(test_set) * SEQ_LEN} characters); run folder "
               f"{folder}", {"loss": result["loss"], "perplexity": math.exp(result["loss"]),
                             "accuracy": result["accuracy"], "characters": len(test_set) * SEQ_LEN,
                             "folder": str(folder)})
    else:
        if lead:
            plot_curves(rows, folder / "curves.png", title)
            plot_confusion(_confusion(result["predictions"], result["targets"], n_classes),
                           folder / "confusion.png",
                           f"test set, accuracy {result['accuracy']:.2%}")
        report("test", f"test accuracy {result['accuracy']:.4f} ({len(test_set)} samples); "
               f"run folder {folder}", {"loss": result["loss"], "accuracy": result["accuracy"],
                                        "samples": len(test_set), "folder": str(folder)})
    return {"test_accuracy": result["accuracy"], "test_loss": result["loss"], "history": rows}


def _silent(*_: Any) -> None:
    """The log of ranks other than 0."""


LOG_FORMATS = ("text", "json")


def _reporter(log: Callable, log_format: str) -> Callable:
    """``report(event, text, fields)``: ``log(text)``, or ``log`` of one JSON object
    ``{"event": event, **fields}`` for ``log_format="json"``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format={log_format!r}: use 'text' or 'json'")
    if log_format == "json":
        return lambda event, text, fields: log(json.dumps({"event": event, **fields}))
    return lambda event, text, fields: log(text)


def _prepare_folder(folder: Path, config: RunConfig, record: Optional[dict], resume: bool) -> None:
    """Rank 0: a new run's empty folder and config, or a resumed run's interrupted commit finished
    (and its config updated to the new epochs and world size)."""
    if resume:
        _roll_forward(folder, record)
        stored = RunConfig.load(folder)
        if config != stored or _stored_world_size(folder) != distributed.world_size():
            _write_config(folder, config)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        _clear_run(folder)
        _write_config(folder, config)
    if config.is_text:
        _check_vocabulary(folder, config, write=not resume)


def _check_vocabulary(folder: Path, config: RunConfig, write: bool) -> None:
    """A text run keeps its characters in vocab.json (``chainrule sample`` reads it); a resumed
    run refuses a text whose characters changed."""
    _, vocab = text_splits(read_text(config.dataset), config.test_fraction, config.val_fraction)
    path = folder / "vocab.json"
    if write or not path.exists():
        atomic_write(path, vocab.to_json().encode())
        return
    stored = Vocabulary.from_json(_read_text(path, f"cannot read {path}"))
    if stored.itos != vocab.itos:
        raise RunError(f"{config.dataset}: the text's characters differ from the run's "
                       f"vocab.json: the text changed since the run started")


def load_vocabulary(folder) -> Vocabulary:
    """The characters of a text run (its vocab.json)."""
    path = _folder(folder) / "vocab.json"
    try:
        return Vocabulary.from_json(_read_text(path, f"{folder}: cannot read vocab.json "
                                                     f"(is it a text run?)"))
    except (ValueError, KeyError, TypeError) as error:
        raise RunError(f"{path}: not a vocabulary ({_cut(str(error))})") from None


def _device(spec: str) -> str:
    """``spec`` checked: a known device whose backend imports and works here, else RunError."""
    try:
        device = cr.device(spec)
    except (TypeError, ValueError) as error:
        raise RunError(f"device: {error}") from None
    if device.backend not in cr.backends.available():
        usable = ", ".join(cr.backends.available())
        raise RunError(f"device={spec}: the {device.backend} backend is not usable here (usable: "
                       f"{usable}); CUDA needs CuPy and a GPU: pip install 'chainrule[cuda12]'")
    return str(device)


def _fit(config: RunConfig, folder: Path, net, model, optimizer, loss_fn, loaders: list,
         start: int, rows: list, progress: bool, report: Callable, lead: bool) -> None:
    """Epochs start+1 .. config.epochs, each committed (by rank 0); a non-finite loss stops the
    run. ``net`` is what trains (``model`` itself, or its DistributedDataParallel wrapper)."""
    train_loader, val_loader, _ = loaders
    callbacks: list = [_EpochSeeds(config.seed, train_loader.sampler)]
    if lead:
        callbacks.append(_CommitEachEpoch(folder, model, optimizer, rows, report,
                                          config.is_text))
    try:
        fit(net, loss_fn, optimizer, train_loader, config.epochs, val_loader, start_epoch=start,
            progress=progress, callbacks=callbacks)
    except NonFiniteLossError as error:
        done = rows[-1]["epoch"] if rows else 0
        raise RunError(f"{error}; stopped: the run stays at epoch {done} "
                       f"(a smaller --lr may help)") from None


def evaluate_run(folder, log: Callable = print, device: str = "cpu") -> dict:
    """Reload a run's model and print its test accuracy and per-class precision, recall and F1."""
    device = _device(device)
    folder = _folder(folder)
    config = RunConfig.load(folder)
    record = _read_commit(folder)
    if record is None:
        raise RunError(f"{folder}: no epoch is committed yet (no commit.json): nothing to evaluate")
    path = _locate(folder, record)["model.safetensors"]  # read only: a cut-short move stays
    (_, _, test_set), input_shape, n_classes = load_splits(config)
    model = build_model(config.model, input_shape, n_classes, config.seed).to(device)
    load_model(model, path)
    with np.errstate(all="ignore"):
        result = evaluate(model, DataLoader(test_set, batch_size=256, device=device),
                          nn.CrossEntropyLoss())
    log(f"{folder}: {config.model} on {config.dataset}, after epoch {record['epoch']}")
    if config.is_text:
        log(f"test loss {result['loss']:.4f}  perplexity {math.exp(result['loss']):.3f}  "
            f"accuracy {result['accuracy']:.4f}  ({len(test_set) * SEQ_LEN} characters)")
        return {"test_accuracy": result["accuracy"], "test_loss": result["loss"]}
    matrix = _confusion(result["predictions"], result["targets"], n_classes)
    log(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
        f"({len(test_set)} samples)\n")
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


def sample_run(folder, prompt: str = "", tokens: int = 200, temperature: float = 0.8,
               seed: int = 0, log: Callable = print) -> str:
    """Continue ``prompt`` with ``tokens`` characters from a text run's committed model."""
    folder = _folder(folder)
    config = RunConfig.load(folder)
    if not config.is_text:
        raise RunError(f"{folder}: a {config.model} run on {config.dataset} has no text to "
                       f"sample (train with --model lstm or transformer)")
    record = _read_commit(folder)
    if record is None:
        raise RunError(f"{folder}: no epoch is committed yet (no commit.json): nothing to sample")
    vocab = load_vocabulary(folder)
    model = build_model(config.model, (SEQ_LEN,), len(vocab), config.seed)
    load_model(model, _locate(folder, record)["model.safetensors"])
    try:
        text = generate(model, vocab, prompt, tokens, temperature, seed)
    except (TextError, ValueError) as error:
        raise RunError(str(error)) from None
    log(text)
    return text

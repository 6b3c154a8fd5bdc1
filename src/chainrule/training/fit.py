"""Training loops: ``fit`` and ``evaluate``, with a progress bar and per-epoch metrics.

``fit`` is the plain loop of every course, written once: for each batch, zero the gradients,
forward, loss, backward, step; after each epoch, evaluate on the validation loader and call the
callbacks. A callback is a callable ``cb(metrics)`` run at the end of each epoch, or an object
with ``on_epoch_start(epoch)`` and/or ``on_epoch_end(metrics)`` methods.

Under ``mpirun`` (after :func:`chainrule.distributed.init`, with a ``DistributedDataParallel``
model and loaders that read each rank's shard) the same loop trains data-parallel: the progress
bar shows on rank 0 only, and every epoch's metrics are the averages over all ranks' samples, the
same on every rank.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Optional, Sequence, Sized

from tqdm import tqdm  # the text bar: tqdm.auto's widget warns in Jupyter without ipywidgets

import chainrule as cr
from chainrule import distributed
from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor
from chainrule.nn import Module

__all__ = ["fit", "evaluate", "predict", "NonFiniteLossError"]


class NonFiniteLossError(ChainruleError, FloatingPointError):
    """The training loss became NaN or infinite: every later step would be meaningless."""


def _call(callbacks: Sequence, hook: str, *args) -> None:
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)
        elif hook == "on_epoch_end" and callable(callback):
            callback(*args)


def _accuracy_count(output: Tensor, target: Tensor) -> int:
    """Correct predictions: argmax over the class axis 1 equals an integer target (one per
    sample, or one per position of a sequence target (N, L) for (N, C, L) outputs)."""
    if output.ndim < 2 or target.dtype.kind not in "iu":
        return 0
    return int(cr.sum(cr.equal(cr.argmax(output, axis=1), target)).item())


def fit(model: Module, loss_fn: Callable, optimizer, train_loader: Iterable, epochs: int,
        val_loader: Optional[Iterable] = None, callbacks: Sequence = (), start_epoch: int = 0,
        scheduler=None, progress: bool = True) -> list[dict]:
    """Train for epochs ``start_epoch + 1 .. epochs``; return one dict of metrics per epoch run.

    Metrics: epoch, train_loss (mean over samples), train_accuracy (integer targets), val_loss and
    val_accuracy (with a validation loader), lr (first parameter group), seconds. A batch whose
    loss is NaN or infinite raises :class:`NonFiniteLossError` naming the epoch and the batch,
    before that batch's step (the progress bar shows only on a terminal).
    """
    if epochs < 1 or start_epoch < 0:
        raise ValueError(f"fit: epochs={epochs} must be >= 1 and start_epoch={start_epoch} >= 0")
    history = []
    show = progress and distributed.rank() == 0
    for epoch in range(start_epoch, epochs):
        _call(callbacks, "on_epoch_start", epoch)
        started = time.perf_counter()
        model.train()
        total_loss, correct, seen, predicted = 0.0, 0, 0, 0
        # disable=None: no bar when stderr is not a terminal (logs and pipes stay clean)
        # one iter() per epoch: tqdm's notebook bar would call iter(train_loader) twice, drawing
        # (and throwing away) a shuffled order
        total = len(train_loader) if isinstance(train_loader, Sized) else None
        bar = tqdm(iter(train_loader), total=total, desc=f"epoch {epoch + 1}/{epochs}",
                   leave=False, disable=None if show else True, unit="batch", dynamic_ncols=True)
        try:
            for batch, (inputs, target) in enumerate(bar, 1):
                optimizer.zero_grad()
                output = model(inputs)
                loss = loss_fn(output, target)
                value = loss.item()
                if not math.isfinite(value):
                    raise NonFiniteLossError(f"epoch {epoch + 1}: the training loss became {value} "
                                             f"at batch {batch}")
                loss.backward()
                optimizer.step()
                n = len(target)
                total_loss += value * n
                correct += _accuracy_count(output.detach(), target)
                seen += n
                predicted += target.size  # targets: one per sample, or per sequence position
                bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        finally:
            bar.close()
        total_loss, correct, seen, predicted = _summed_over_ranks(total_loss, correct, seen,
                                                                  predicted)
        metrics = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1),
                   "train_accuracy": correct / max(predicted, 1)}
        if val_loader is not None:
            result = evaluate(model, val_loader, loss_fn)
            metrics.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
            if distributed.world_size() > 1:  # each rank's mean, weighted by its samples
                n = len(result["targets"])
                loss, hits, n = _summed_over_ranks(result["loss"] * n, result["accuracy"] * n, n)
                metrics.update(val_loss=loss / n, val_accuracy=hits / n)
        metrics["lr"] = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        metrics["seconds"] = time.perf_counter() - started
        history.append(metrics)
        _call(callbacks, "on_epoch_end", metrics)
    return history


def _summed_over_ranks(*counts: float) -> tuple:
    """``counts`` summed over the ranks of a distributed job (as they are in one process)."""
    if distributed.world_size() == 1:
        return counts
    totals = distributed.all_reduce(cr.tensor(list(counts), dtype="float64"))
    return tuple(totals.tolist())


def predict(model: Module, loader: Iterable) -> tuple[Tensor, Tensor]:
    """(outputs, targets) over a whole loader, in evaluation mode and without a graph."""
    model.eval()
    outputs, targets = [], []
    with cr.no_grad():
        for inputs, target in loader:
            outputs.append(model(inputs))
            targets.append(target if isinstance(target, Tensor) else cr.tensor(target))
    return cr.concatenate(outputs), cr.concatenate(targets)


def evaluate(model: Module, loader: Iterable, loss_fn: Optional[Callable] = None) -> dict:
    """Accuracy, predicted classes, targets and (with ``loss_fn``) the mean loss over ``loader``."""
    outputs, targets = predict(model, loader)
    predictions = cr.argmax(outputs, axis=1)
    result = {"accuracy": cr.mean(cr.equal(predictions, targets).astype("float64")).item(),
              "predictions": predictions, "targets": targets}
    if loss_fn is not None:
        result["loss"] = loss_fn(outputs, targets).item()
    return result

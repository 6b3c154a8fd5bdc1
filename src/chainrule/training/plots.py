"""Pictures of a training run (matplotlib, Agg backend: no display needed), saved atomically."""

from __future__ import annotations

import io
import math
import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: works on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from chainrule.data.files import atomic_write  # noqa: E402

__all__ = ["plot_curves", "plot_confusion"]


def _save(figure, path: os.PathLike) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    atomic_write(path, buffer.getvalue())


def plot_curves(history: Sequence[dict], path: os.PathLike, title: str = "",
                perplexity: bool = False) -> None:
    """Loss and accuracy per epoch (``perplexity``: loss and exp(loss)), train and validation,
    side by side."""
    epochs = [row["epoch"] for row in history]
    figure, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, style in (("train", "train", "-o"), ("val", "validation", "-s")):
        if f"{key}_loss" in history[0]:
            losses = [row[f"{key}_loss"] for row in history]
            ax_loss.plot(epochs, losses, style, label=label, markersize=3)
            right = ([math.exp(min(v, 700.0)) for v in losses] if perplexity
                     else [row[f"{key}_accuracy"] for row in history])
            ax_acc.plot(epochs, right, style, label=label, markersize=3)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    if perplexity:
        ax_acc.set(xlabel="epoch", ylabel="perplexity exp(loss)", title="perplexity")
    else:
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    _save(figure, path)


def plot_confusion(matrix: Sequence[Sequence[int]], path: os.PathLike, title: str = "") -> None:
    """The confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    n = len(matrix)
    figure, ax = plt.subplots(figsize=(1 + 0.55 * n, 1 + 0.5 * n))
    image = ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i][j] > peak / 2 else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted class", ylabel="true class",
           title=title or "confusion matrix")
    figure.colorbar(image, ax=ax, fraction=0.046)
    _save(figure, path)

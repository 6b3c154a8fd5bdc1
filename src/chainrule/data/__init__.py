"""Datasets and mini-batches, with PyTorch's names (``torch.utils.data``).

>>> import chainrule as cr
>>> from chainrule.data import DataLoader, TensorDataset, load_digits, random_split
>>> images, labels = load_digits()                      # (1797, 1, 8, 8) float32, (1797,) int64
>>> train, test = random_split(TensorDataset(images, labels), [0.8, 0.2], generator=cr.Generator(0))
>>> for x, y in DataLoader(train, batch_size=32, shuffle=True, generator=cr.Generator(1)):
...     ...                                               # x (32, 1, 8, 8), y (32,)

- :mod:`~chainrule.data.dataset`: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``.
- :mod:`~chainrule.data.loader`: ``DataLoader``, ``default_collate``.
- :mod:`~chainrule.data.text`: ``Vocabulary``, ``NextTokenDataset`` (next-token windows),
  ``pad_sequences`` and ``padding_mask`` (variable lengths).
- :mod:`~chainrule.data.datasets`: ``load_digits`` (scikit-learn's 8x8 digits, offline),
  ``load_idx`` / ``read_idx`` / ``write_idx`` (MNIST-style IDX files, raw or gzip), the synthetic
  ``xor``, ``four_points``, ``two_spirals``, and ``DatasetError`` for unusable files.
"""

from chainrule.data.dataset import Dataset, Subset, TensorDataset, random_split
from chainrule.data.datasets import (
    DatasetError,
    four_points,
    load_digits,
    load_idx,
    read_idx,
    two_spirals,
    write_idx,
    xor,
)
from chainrule.data.loader import DataLoader, default_collate
from chainrule.data.text import (
    NextTokenDataset,
    Vocabulary,
    pad_collate,
    pad_sequences,
    padding_mask,
)

__all__ = [
    "Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate",
    "DatasetError", "load_digits", "load_idx", "read_idx", "write_idx", "xor", "four_points",
    "two_spirals", "Vocabulary", "NextTokenDataset", "pad_sequences", "padding_mask",
    "pad_collate",
]

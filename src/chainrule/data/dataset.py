"""Map-style datasets: ``Dataset``, ``TensorDataset``, ``Subset`` and ``random_split`` (PyTorch's).

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample (usually a tuple
``(input, target)``). :class:`~chainrule.data.DataLoader` batches them; for a ``TensorDataset``,
or a ``Subset`` of one, it indexes the stored arrays once per batch instead of sample by sample.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from chainrule.engine.tensor import Tensor
from chainrule.ops import creation

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__(index)`` and
    ``__len__()``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


class TensorDataset(Dataset):
    """Samples are the rows of tensors sharing their first axis:
    ``ds[i] == (t[i] for t in tensors)``.

    Accepts Tensors or array-likes (converted with ``cr.tensor``'s dtype rules). Items are
    views of the stored arrays, outside any graph. ``tensors`` holds the stored Tensors.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        converted = []
        for i, t in enumerate(tensors):
            t = t if isinstance(t, Tensor) else Tensor(t)
            if t.ndim == 0:
                raise ValueError(
                    f"TensorDataset: tensor {i} is 0-d; every tensor needs a first (sample) axis"
                )
            converted.append(t)
        sizes = [len(t) for t in converted]
        if any(n != sizes[0] for n in sizes):
            shapes = ", ".join(str(tuple(t.shape)) for t in converted)
            raise ValueError(
                "TensorDataset: size mismatch between tensors: their first axes must match, "
                f"got shapes {shapes}"
            )
        self.tensors = tuple(converted)

    def __getitem__(self, index: Any) -> tuple:
        return tuple(Tensor._from_array(np.asarray(t.data[index, ...])) for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in self.tensors)
        return f"TensorDataset({shapes})"


def _as_indices(indices: Any, n: Optional[int], what: str) -> np.ndarray:
    """``indices`` as a 1-d int64 array, negatives counted from the end, all checked in range."""
    if isinstance(indices, Tensor):
        indices = indices.data
    array = np.asarray(indices)
    if array.size == 0:
        return np.zeros(0, np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        got = f"dtype {array.dtype}" if array.ndim == 1 else f"{array.ndim}-d data"
        raise TypeError(f"{what}: indices must be a 1-d sequence of ints, got {got}")
    array = array.astype(np.int64)
    if n is not None:
        bad = (array < -n) | (array >= n)
        if bad.any():
            raise IndexError(f"{what}: index {int(array[bad][0])} is out of range for a dataset of "
                             f"{n} samples")
        array = np.where(array < 0, array + n, array)
    return array


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order:
    ``Subset(ds, idx)[i] == ds[idx[i]]``.

    ``indices`` are kept as an int64 array (negatives counted from the end of ``dataset``).
    """

    def __init__(self, dataset: Any, indices: Union[Sequence[int], np.ndarray, Tensor]) -> None:
        try:
            n = len(dataset)
        except TypeError:
            n = None
        self.dataset = dataset
        self.indices = _as_indices(indices, n, "Subset")

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[[int(self.indices[i]) for i in index]]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {type(self.dataset).__name__})"


def numpy_rng(generator: Optional[creation.Generator], who: str) -> np.random.Generator:
    """The NumPy generator behind ``generator`` (chainrule's default generator when None)."""
    if generator is None:
        return creation.default_generator.numpy
    if not isinstance(generator, creation.Generator):
        raise TypeError(
            f"{who}: generator must be a chainrule.Generator, got {type(generator).__name__}"
        )
    return generator.numpy


def _split_lengths(lengths: Sequence, n: int) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    for i, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, numbers.Real):
            raise TypeError(
                f"random_split: lengths[{i}] = {length!r} must be an int or a float fraction"
            )
        if length < 0:
            raise ValueError(f"random_split: lengths[{i}] = {length} is negative")
    if all(isinstance(length, numbers.Integral) for length in lengths):
        counts = [int(length) for length in lengths]
        if sum(counts) != n:
            raise ValueError(
                f"random_split: the lengths sum to {sum(counts)} but the dataset has {n} "
                f"samples (give counts summing to {n} or fractions summing to 1)"
            )
        return counts
    # fractions, as torch: floor each share, then hand out the remainder round-robin from the first
    total = math.fsum(float(x) for x in lengths)
    if not math.isclose(total, 1.0) or total > 1.0 + 1e-12:
        raise ValueError(f"random_split: fractions must sum to 1, these sum to {total!r}")
    for i, frac in enumerate(lengths):
        if frac > 1:
            raise ValueError(f"random_split: fraction lengths[{i}] = {frac} is not between 0 and 1")
    counts = [int(math.floor(n * float(frac))) for frac in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    for i, count in enumerate(counts):
        if count == 0:
            warnings.warn(
                f"random_split: split {i} is empty ({lengths[i]} of {n} samples)", stacklevel=3
            )
    return counts


def random_split(
    dataset: Any, lengths: Sequence, generator: Optional[creation.Generator] = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets (``Subset``) of the given lengths.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1: each split gets
    ``floor(n * fraction)`` samples and the remainder goes one by one to the splits in order
    (PyTorch's rule). One permutation is drawn from ``generator`` (chainrule's default generator
    when None), so equal seeds give equal splits.
    """
    n = len(dataset)
    counts = _split_lengths(lengths, n)
    order = numpy_rng(generator, "random_split").permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

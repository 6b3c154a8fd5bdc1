"""``DataLoader``: mini-batches of a dataset, optionally reshuffled each epoch (PyTorch's names).

Iterating a loader yields one batch per step: samples collated along a new first axis, so a
dataset of ``(image, label)`` pairs gives ``(images, labels)`` tuples of Tensors. Each ``iter()``
(each epoch) with ``shuffle=True`` draws a fresh permutation from the loader's
:class:`~chainrule.Generator` (the default one unless ``generator=`` is given): loaders whose
generators are seeded alike yield the same batches, epoch after epoch.

``device=`` ("cpu", "cuda", ...) moves every batch there as it is yielded (tensors inside tuples,
lists and dicts too), as PyTorch code does with ``.to(device)`` in the loop: the dataset stays in
host memory and one batch at a time crosses to the GPU.

Fast path: with the default collation, a ``TensorDataset`` (or a ``Subset`` of one, or a Tensor /
ndarray used as a dataset) is batched by indexing each stored array once with the batch's index
array, instead of fetching and stacking samples one at a time.
"""

from __future__ import annotations

import collections.abc
import numbers
from typing import Any, Callable, Iterator, Optional

import numpy as np

from chainrule import backends
from chainrule.data.dataset import Subset, TensorDataset, numpy_rng
from chainrule.engine.tensor import Tensor
from chainrule.ops import creation

__all__ = ["DataLoader", "default_collate"]


def _stack(arrays: list, what: str) -> Any:
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"default_collate: cannot stack {what} of different shapes {sorted(shapes)}: "
            "give every sample the same shape or pass a collate_fn"
        )
    if type(arrays[0]) is np.ndarray:
        return np.stack(arrays)
    return backends.backend_of(arrays[0]).xp.stack(arrays)  # tensors of another backend


def to_device(batch: Any, device: backends.Device) -> Any:
    """``batch`` with every Tensor in it (also inside tuples, lists, dicts) moved to ``device``."""
    if isinstance(batch, Tensor):
        return Tensor._from_array(backends.move(batch.data, device))
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*[to_device(value, device) for value in batch])
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch along a new first axis, keeping the samples' structure.

    Tensors and ndarrays are stacked (dtype kept); NumPy scalars keep their dtype; Python bools
    become bool, ints int64 and floats float64 (as PyTorch); tuples, lists, namedtuples and dicts
    are collated field by field; strings and bytes are returned as a list. Results are Tensors.
    """
    if not batch:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._from_array(_stack([t.data for t in batch], "tensors"))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUSV":
            raise TypeError(f"default_collate: cannot batch arrays of dtype {elem.dtype}")
        return Tensor._from_array(_stack([np.asarray(a) for a in batch], "arrays"))
    if isinstance(elem, np.generic):
        return Tensor._from_array(np.array(batch))
    if isinstance(elem, bool):
        return Tensor._from_array(np.array(batch, dtype=bool))
    if isinstance(elem, numbers.Integral):
        return Tensor._from_array(np.array(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return Tensor._from_array(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise ValueError(
                "default_collate: every sample of a batch must have the same number of fields"
            )
        fields = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return fields if isinstance(elem, list) else tuple(fields)
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(elem).__name__}: expected "
        "Tensors, ndarrays, numbers, or tuples/lists/dicts of them (or pass a collate_fn)"
    )


def _fast_source(dataset: Any) -> Optional[tuple]:
    """(arrays, index map or None, single) when batches can be taken by fancy indexing, else
    None."""
    base_index = None
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        base_index = dataset.indices if base_index is None else dataset.indices[base_index]
        dataset = dataset.dataset
    if (
        isinstance(dataset, TensorDataset)
        and type(dataset).__getitem__ is TensorDataset.__getitem__
        and all(type(t.data) is np.ndarray for t in dataset.tensors)  # NumPy fancy indexing
    ):
        return tuple(t.data for t in dataset.tensors), base_index, False
    if (isinstance(dataset, Tensor) and type(dataset) is Tensor and dataset.ndim > 0
            and type(dataset.data) is np.ndarray):
        return (dataset.data,), base_index, True
    if type(dataset) is np.ndarray and dataset.ndim > 0 and dataset.dtype.kind not in "OUSV":
        return (dataset,), base_index, True
    return None


class DataLoader:
    """Iterate over ``dataset`` in mini-batches.

    Parameters (PyTorch's): ``batch_size`` samples per batch (>= 1); ``shuffle`` draws a new
    permutation at the start of each epoch from ``generator`` (a ``chainrule.Generator``; the
    default generator when None); ``drop_last`` drops a last, incomplete batch; ``collate_fn``
    turns a list of samples into a batch (:func:`default_collate` when None); ``device``
    (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...) moves each batch's tensors there (None: as they are).

    ``sampler``: an iterable of dataset indices with a length (e.g.
    :class:`chainrule.distributed.DistributedSampler`), read afresh at the start of each epoch;
    it decides the order, so it excludes ``shuffle=True`` (as in PyTorch).

    ``len(loader)`` is the number of batches per epoch.
    """

    dataset: Any
    batch_size: int
    shuffle: bool
    drop_last: bool
    generator: Optional[creation.Generator]
    collate_fn: Optional[Callable[[list], Any]]
    device: Optional[backends.Device]
    sampler: Any

    def __init__(
        self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
        generator: Optional[creation.Generator] = None,
        collate_fn: Optional[Callable[[list], Any]] = None, device: Any = None,
        sampler: Any = None,
    ) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must define __getitem__ and __len__ (a map-style "
                            f"dataset), got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be True or False, got {flag!r}")
        if generator is not None and not isinstance(generator, creation.Generator):
            raise TypeError(
                "DataLoader: generator must be a chainrule.Generator, "
                f"got {type(generator).__name__}"
            )
        if sampler is not None:
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError(f"DataLoader: sampler must be an iterable of indices with a "
                                f"length, got {type(sampler).__name__}")
            if shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True exclude each other "
                                 "(the sampler decides the order)")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(
                f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn
        self.sampler = sampler
        try:
            self.device = None if device is None else backends.Device(device)
        except (TypeError, ValueError) as error:
            raise ValueError(f"DataLoader: device: {error}") from None
        if self.device is not None:
            backends.get(self.device.backend)  # ImportError naming the package, before epoch 1

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self, n: int) -> Optional[np.ndarray]:
        """This epoch's sample order (None: 0..n-1), drawn when iteration starts."""
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
            if order.size and not (0 <= order.min() and order.max() < n):
                raise IndexError(f"DataLoader: the sampler gave index {order.max()} or "
                                 f"{order.min()}, outside the dataset of {n} samples")
            return order
        return numpy_rng(self.generator, "DataLoader").permutation(n) if self.shuffle else None

    def __iter__(self) -> Iterator[Any]:
        order = self._order(len(self.dataset))
        n = len(self.dataset) if order is None else len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        source = _fast_source(self.dataset) if self.collate_fn in (None, default_collate) else None
        if source is None:
            batches = self._iter_samples(order, stop)
        else:
            batches = self._iter_arrays(source, order, stop)
        if self.device is None:
            return batches
        device = self.device
        return (to_device(batch, device) for batch in batches)

    def _iter_samples(self, order: Optional[np.ndarray], stop: int) -> Iterator[Any]:
        collate = self.collate_fn or default_collate
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, stop)
            indices = range(start, end) if order is None else order[start:end].tolist()
            yield collate([self.dataset[i] for i in indices])

    def _iter_arrays(self, source: tuple, order: Optional[np.ndarray], stop: int) -> Iterator[Any]:
        arrays, base_index, single = source
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, stop)
            if order is None and base_index is None:
                # contiguous: one memcpy per array
                batch = tuple(a[start:end].copy() for a in arrays)
            else:
                index = np.arange(start, end) if order is None else order[start:end]
                if base_index is not None:
                    index = base_index[index]
                batch = tuple(a[index] for a in arrays)
            batch = tuple(Tensor._from_array(a) for a in batch)
            yield batch[0] if single else batch

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}"
            + ("" if self.sampler is None else f", sampler={type(self.sampler).__name__}") + ")"
        )

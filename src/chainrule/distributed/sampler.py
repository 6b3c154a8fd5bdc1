"""``DistributedSampler``: each rank's share of a dataset, one epoch at a time (torch's semantics).

Every rank draws the same permutation of ``range(len(dataset))`` from ``seed + epoch`` (so all
ranks agree without talking), pads it by wrapping around to a multiple of the world size (or, with
``drop_last=True``, cuts it down to one), and keeps every ``num_replicas``-th index from its rank
on: rank r gets ``order[r::num_replicas]``. With ``batch_size=B // num_replicas`` on every rank,
global batch k is then exactly ``order[k*B:(k+1)*B]``, the batch one process would take with batch
size B and the same order.

The permutation is ``numpy.random.default_rng(seed + epoch).permutation(n)``, the one a
``DataLoader(shuffle=True)`` draws from ``chainrule.Generator(seed + epoch)``; torch draws another
(``randperm``), so the orders differ from torch's, but not the rules. Call ``set_epoch(epoch)``
before each epoch, as with torch, or every epoch repeats the first one's order.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterator, Optional

import numpy as np

__all__ = ["DistributedSampler"]


def _index(value: Any, name: str, low: int, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DistributedSampler: {name} must be an int, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"DistributedSampler: {name}={value} must be {bound}")
    return value


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` reads this epoch.

    ``num_replicas`` and ``rank`` default to the job's (:func:`chainrule.distributed.world_size`,
    :func:`~chainrule.distributed.rank`). ``len(sampler)`` is the number of indices per rank,
    ``ceil(n / num_replicas)`` (``floor`` with ``drop_last``); every rank gets the same number.
    """

    def __init__(self, dataset: Any, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        from chainrule import distributed  # the job's world, read once here

        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: dataset must have a length, "
                            f"got {type(dataset).__name__}")
        self.dataset = dataset
        self.num_replicas = _index(distributed.world_size() if num_replicas is None
                                   else num_replicas, "num_replicas", 1)
        self.rank = _index(distributed.rank() if rank is None else rank, "rank", 0,
                           self.num_replicas - 1)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DistributedSampler: {name} must be True or False, got {flag!r}")
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.seed = _index(seed, "seed", 0)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of epoch ``epoch`` (drawn from ``seed + epoch``)."""
        self.epoch = _index(epoch, "epoch", 0)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad by wrapping around (more than once for tiny datasets)
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler(rank={self.rank} of {self.num_replicas}, "
                f"{self.num_samples} of {len(self.dataset)} samples, shuffle={self.shuffle}, "
                f"seed={self.seed}, epoch={self.epoch}, drop_last={self.drop_last})")

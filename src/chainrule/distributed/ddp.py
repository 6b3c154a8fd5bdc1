"""``DistributedDataParallel``: one model per rank, kept identical by averaging the gradients.

At construction rank 0's parameters and buffers are broadcast, so every rank starts from the same
weights. Each backward pass then averages every parameter's gradient over the ranks, so each rank's
optimizer takes the same step. The gradients travel in *buckets*: the parameters, taken in reverse
order of ``module.parameters()`` (roughly the order backward produces their gradients), are grouped
into flat buffers of at most ``bucket_cap_mb`` megabytes of one dtype. A hook on each parameter
(``register_post_accumulate_grad_hook``) counts the gradients that are ready; when a bucket is full
it is packed and its non-blocking allreduce (``MPI_Iallreduce``) starts, while backward goes on
with the earlier layers. At the end of backward (``queue_callback``) every reduction is waited
for, divided by the world size, and each parameter's ``.grad`` becomes its slice of the averaged
bucket. Buckets start in index order on every rank, so all ranks post their collectives in the
same order whatever order the gradients arrive in. ``overlap=False`` starts them all at the end.

Parameters that got no gradient in a pass (unused by this forward) are reduced as zeros: after
backward every parameter that requires grad has the average over ranks in ``.grad``.

``no_sync()`` skips the averaging (gradient accumulation: the first backward after leaving it
averages everything accumulated). Buffers (BatchNorm's running statistics) are broadcast from
rank 0 before every forward in training mode (torch's ``broadcast_buffers=True``); the batch
statistics BatchNorm normalises with are each rank's own (local), as torch's DDP without
``SyncBatchNorm``.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from typing import Any, Iterator, Optional

import numpy as np

from chainrule.distributed.group import DistributedError, ProcessGroup, Work
from chainrule.engine.autograd import queue_callback
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module
from chainrule.ops import buffers

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """Parameters whose gradients are reduced together, in one flat buffer of one dtype."""

    def __init__(self, params: list) -> None:
        self.params = params
        self.sizes = [int(p.size) for p in params]
        self.dtype = params[0].dtype
        self.ready = 0  # gradients accumulated in this backward pass
        self.flat: Optional[np.ndarray] = None
        self.work: Optional[Work] = None

    @property
    def nbytes(self) -> int:
        return sum(self.sizes) * self.dtype.itemsize


def _buckets(params: list, cap_bytes: float) -> list:
    """Consecutive parameters of one dtype and device, each bucket at most ``cap_bytes`` (a
    larger parameter gets a bucket of its own)."""
    result: list = []
    current: list = []
    size = 0
    for p in params:
        nbytes = int(p.size) * p.dtype.itemsize
        same_kind = current and (p.dtype, p.device) == (current[0].dtype, current[0].device)
        if current and (not same_kind or size + nbytes > cap_bytes):
            result.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        result.append(_Bucket(current))
    return result


class DistributedDataParallel(Module):
    """Wrap ``module`` so that backward averages its gradients over the ranks (torch's name).

    ``bucket_cap_mb``: the largest bucket (25 MB, torch's default); ``broadcast_buffers``: copy
    rank 0's buffers before each training forward; ``overlap``: start a bucket's reduction as soon
    as its gradients are ready (False: all at the end of backward). ``group``: the process group
    (the job's, :func:`chainrule.distributed.init`, by default).

    ``stats`` counts, since construction or :meth:`reset_stats`: ``reductions`` (backward passes
    averaged), ``wait_seconds`` (time blocked waiting for reductions at the end of backward) and
    ``pack_seconds`` (time copying gradients into and out of the buckets).
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True,
                 overlap: bool = True, group: Optional[ProcessGroup] = None) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a chainrule.nn.Module, "
                            f"got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not (isinstance(bucket_cap_mb, (int, float))
                                                   and bucket_cap_mb > 0):
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb={bucket_cap_mb!r} must be a "
                             f"number of megabytes > 0")
        if group is None:
            from chainrule import distributed

            group = distributed.get_group()
        self.module = module
        self.group = group
        self.broadcast_buffers = bool(broadcast_buffers)
        self.overlap = bool(overlap)
        self.require_backward_grad_sync = True
        self.bucket_cap_mb = float(bucket_cap_mb)
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._check_same_model()
        self._broadcast(list(module.parameters()) + list(module.buffers()))
        self._buckets = _buckets(self._params[::-1], self.bucket_cap_mb * 1e6)
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._next_launch = 0
        self._callback_queued = False
        self.reset_stats()
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready)
                         for p in self._params]

    # ------------------------------------------------------------------ the public surface
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._callback_queued or self._next_launch:  # the last backward raised midway
            self._clear_pass()
        if self.broadcast_buffers and self.training and self.group.size > 1:
            self._broadcast(list(self.module.buffers()))
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside accumulate local gradients only (no communication)."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def reset_stats(self) -> None:
        self.stats = {"reductions": 0, "wait_seconds": 0.0, "pack_seconds": 0.0}

    @property
    def buckets(self) -> list:
        """The parameter names of each bucket, in launch order (for inspection)."""
        names = {id(p): name for name, p in self.module.named_parameters()}
        return [[names[id(p)] for p in b.params] for b in self._buckets]

    def extra_repr(self) -> str:
        return (f"rank {self.group.rank} of {self.group.size}, {len(self._buckets)} buckets "
                f"(cap {self.bucket_cap_mb:g} MB), overlap={self.overlap}")

    # ------------------------------------------------------------------ construction
    def _check_same_model(self) -> None:
        """Every rank must wrap the same architecture: compare the parameter shapes' digest."""
        if self.group.size == 1:
            return
        digest = np.zeros(3, dtype=np.int64)
        for p in self._params:
            shape_key = zlib.crc32(f"{tuple(p.shape)} {p.dtype}".encode())  # same in every process
            digest += (1, int(p.size), shape_key)
        gathered = np.empty((self.group.size, 3), dtype=np.int64)
        self.group.allgather(digest, gathered)
        if (gathered != gathered[0]).any():
            raise DistributedError(
                f"DistributedDataParallel: the ranks wrap different models ((count, elements, "
                f"shape digest) of the parameters by rank: {gathered.tolist()})")

    def _broadcast(self, tensors: list) -> None:
        """Rank 0's values into ``tensors`` on every rank, one flat buffer per dtype."""
        if self.group.size == 1 or not tensors:
            return
        with no_grad():
            for group in _buckets(tensors, float("inf")):
                flat = buffers.pack(group.params, group.sizes, group.dtype)
                self.group.bcast(flat, 0)
                for t, value in zip(group.params, buffers.unpack(flat, group.params)):
                    buffers.write_back(t, buffers.host_buffer(value))

    # ------------------------------------------------------------------ during backward
    def _grad_ready(self, param: Tensor) -> None:
        if not self.require_backward_grad_sync or self.group.size == 1:
            return  # one process: its gradients are already the average
        if not self._callback_queued:
            queue_callback(self._finish)
            self._callback_queued = True
        bucket = self._bucket_of[id(param)]
        bucket.ready += 1
        if self.overlap:
            self._launch_ready()

    def _launch_ready(self) -> None:
        """Start the complete buckets, in index order only (the same order on every rank)."""
        while (self._next_launch < len(self._buckets)
               and self._buckets[self._next_launch].ready == len(self._buckets[self._next_launch]
                                                                 .params)):
            self._launch(self._buckets[self._next_launch])
            self._next_launch += 1
        for bucket in self._buckets[:self._next_launch]:
            if bucket.work is not None:
                bucket.work.test()  # lets MPI progress the reductions in flight

    def _launch(self, bucket: _Bucket) -> None:
        started = time.perf_counter()
        bucket.flat = buffers.pack([p.grad for p in bucket.params], bucket.sizes, bucket.dtype)
        self.stats["pack_seconds"] += time.perf_counter() - started
        bucket.work = self.group.iallreduce(bucket.flat, "sum")

    def _finish(self) -> None:
        """End of backward: start what is left, wait for everything, store the averages."""
        try:
            while self._next_launch < len(self._buckets):  # unused parameters: reduced as zeros
                self._launch(self._buckets[self._next_launch])
                self._next_launch += 1
            started = time.perf_counter()
            for bucket in self._buckets:
                assert bucket.work is not None  # every bucket was launched above
                bucket.work.wait()
            self.stats["wait_seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            for bucket in self._buckets:
                flat = bucket.flat
                np.divide(flat, self.group.size, out=flat)  # the sum over ranks -> the mean
                for p, grad in zip(bucket.params, buffers.unpack(flat, bucket.params)):
                    p.grad = grad
            self.stats["pack_seconds"] += time.perf_counter() - started
            self.stats["reductions"] += 1
        finally:
            self._clear_pass()

    def _clear_pass(self) -> None:
        self._callback_queued = False
        self._next_launch = 0
        for bucket in self._buckets:
            bucket.ready, bucket.flat, bucket.work = 0, None, None

    def __getstate__(self) -> Any:
        raise TypeError("DistributedDataParallel cannot be pickled: save .module's state_dict")

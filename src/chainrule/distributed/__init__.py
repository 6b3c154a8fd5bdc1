"""Data-parallel training over MPI: N processes (ranks), each with a shard of every global batch.

Start a script with an MPI launcher and call :func:`init` once::

    mpirun -n 2 python train.py          # or: srun -n 2 python train.py, mpiexec, ...

    import chainrule.distributed as dist
    dist.init()                          # MPI.COMM_WORLD; without a launcher: a world of 1 process
    model = dist.DistributedDataParallel(model)          # same weights everywhere, averaged grads
    sampler = dist.DistributedSampler(dataset, seed=0)   # this rank's share of each epoch
    loader = DataLoader(dataset, batch_size=B // dist.world_size(), sampler=sampler)

The collectives take Tensors and change them in place (``all_reduce``, ``broadcast``) or return a
new one (``all_gather``); their numbers travel as raw buffers (mpi4py's upper-case methods, never
pickled). A process that never calls ``init`` is the one-process world: ``rank() == 0``,
``world_size() == 1``, and every collective leaves its tensor as it is, so the same script runs
with and without ``mpirun``.

Failure: after ``init`` in a world of several ranks, an exception that ends one rank's program
aborts the whole job (``MPI_Abort``) once its traceback is printed, as ``python -m mpi4py`` does,
so no rank is left waiting; a collective that waits longer than the timeout (30 minutes by
default; ``init(timeout=)`` or ``CHAINRULE_COLLECTIVE_TIMEOUT``) raises
:class:`CollectiveTimeoutError`.

Not differentiable: the collectives act on numbers, outside any graph (call them under
``no_grad`` or on detached tensors, as with ``torch.distributed``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Optional

import numpy as np

from chainrule.distributed.group import (
    REDUCE_OPS,
    CollectiveTimeoutError,
    DistributedError,
    MPIGroup,
    ProcessGroup,
    launched_by_mpi,
)
from chainrule.engine.tensor import Tensor
from chainrule.ops import buffers

__all__ = ["init", "is_initialized", "get_group", "rank", "world_size", "barrier", "all_reduce",
           "broadcast", "all_gather", "abort", "DistributedDataParallel", "DistributedSampler",
           "CollectiveTimeoutError", "DistributedError", "ProcessGroup"]

_group: Optional[ProcessGroup] = None  # set once by init(); the process's place in the job
_init_lock = threading.Lock()
_SINGLE = ProcessGroup(timeout=1.0)  # the world of a process that never called init()


def init(backend: Optional[str] = None, timeout: Optional[float] = None) -> ProcessGroup:
    """Join the job: ``MPI.COMM_WORLD`` when an MPI launcher started this process, else a
    one-process world. Calling it again returns the same group.

    ``backend``: None (choose from the environment), ``"mpi"`` (require MPI) or ``"single"``.
    ``timeout``: seconds a collective may wait before :class:`CollectiveTimeoutError`.
    """
    global _group
    if backend not in (None, "mpi", "single"):
        raise ValueError(f"init: backend={backend!r}: choose None (from the environment), "
                         f"'mpi' or 'single'")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"init: timeout={timeout!r} must be a number of seconds > 0")
    with _init_lock:
        if _group is None:
            use_mpi = backend == "mpi" or (backend is None and launched_by_mpi())
            _group = MPIGroup(timeout) if use_mpi else ProcessGroup(timeout)
            if _group.size > 1:
                _install_abort_hook(_group)
        elif backend is not None and backend != _group.backend:
            raise DistributedError(f"init: already initialized with backend "
                                   f"{_group.backend!r}, not {backend!r}")
        return _group


def _install_abort_hook(group: ProcessGroup) -> None:
    """An uncaught exception prints its traceback, then ends every rank (no rank left hanging)."""
    previous = sys.excepthook

    def abort_job(kind: type, value: BaseException, traceback: Any) -> None:
        previous(kind, value, traceback)
        print(f"chainrule.distributed: rank {group.rank} of {group.size} failed; "
              f"aborting the job", file=sys.stderr)
        group.abort(1)

    sys.excepthook = abort_job


def is_initialized() -> bool:
    return _group is not None


def get_group() -> ProcessGroup:
    """The group of :func:`init`; the one-process world before it."""
    return _SINGLE if _group is None else _group


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1 (0 before ``init``)."""
    return get_group().rank


def world_size() -> int:
    """How many processes take part (1 before ``init``)."""
    return get_group().size


def barrier() -> None:
    """Wait until every rank has reached this call."""
    get_group().barrier()


def abort(code: int = 1) -> None:
    """End every rank of the job now with exit status ``code``."""
    get_group().abort(code)


def _checked(t: Any, who: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{who}: tensor must be a chainrule Tensor, got {type(t).__name__}")
    return t


def _writable_buffer(tensor: Tensor, who: str) -> Any:
    try:
        return buffers.host_buffer(tensor)
    except ValueError as error:
        raise ValueError(f"{who}: {error}") from None


def all_reduce(tensor: Tensor, op: str = "sum") -> Tensor:
    """Replace ``tensor`` on every rank by the reduction over ranks; returns it.

    ``op``: ``"sum"``, ``"mean"`` (the sum divided by the world size; floating tensors only),
    ``"prod"``, ``"max"`` or ``"min"``. In place, as ``torch.distributed.all_reduce``.
    """
    tensor = _checked(tensor, "all_reduce")
    if op not in (*REDUCE_OPS, "mean"):
        raise ValueError(f"all_reduce: op={op!r}: choose one of {', '.join(REDUCE_OPS)}, mean")
    if op == "mean" and tensor.dtype.kind not in "fc":
        raise TypeError(f"all_reduce: op='mean' needs a floating tensor, got {tensor.dtype}")
    group = get_group()
    buffer = _writable_buffer(tensor, "all_reduce")
    group.allreduce(buffer, "sum" if op == "mean" else op)
    if op == "mean":
        np.divide(buffer, group.size, out=buffer)
    return buffers.write_back(tensor, buffer)


def broadcast(tensor: Tensor, src: int = 0) -> Tensor:
    """Replace ``tensor`` on every rank by rank ``src``'s; returns it (in place)."""
    tensor = _checked(tensor, "broadcast")
    group = get_group()
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < group.size:
        raise ValueError(f"broadcast: src={src!r} must be a rank from 0 to {group.size - 1}")
    buffer = _writable_buffer(tensor, "broadcast")
    group.bcast(buffer, int(src))
    return buffers.write_back(tensor, buffer)


def all_gather(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` stacked along a new first axis: shape ``(world_size, *shape)``.

    As JAX's ``all_gather`` (torch fills a list instead). Every rank must pass the same shape and
    dtype. The result is on ``tensor``'s device.
    """
    tensor = _checked(tensor, "all_gather")
    group = get_group()
    send = buffers.host_buffer(tensor, write=False)
    if group.size > 1:  # a mismatch would make MPI truncate or overrun: check the sizes first
        sizes = np.empty((group.size, 2), dtype=np.int64)
        group.allgather(np.array([send.nbytes, send.ndim], dtype=np.int64), sizes)
        if (sizes != sizes[0]).any():
            raise DistributedError(f"all_gather: every rank must pass the same shape and dtype; "
                                   f"(bytes, ndim) by rank: {sizes.tolist()}")
    receive = buffers.empty((group.size, *send.shape), send.dtype)
    group.allgather(send, receive)
    out = Tensor._from_array(receive)
    return out if type(tensor.data) is np.ndarray else out.to(tensor.device)


from chainrule.distributed.ddp import DistributedDataParallel  # noqa: E402
from chainrule.distributed.sampler import DistributedSampler  # noqa: E402

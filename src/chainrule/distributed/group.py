"""Process groups: who the ranks are, and the collectives that move host buffers between them.

A :class:`ProcessGroup` is the world of one process (size 1: every collective leaves its buffer as
it is); :class:`MPIGroup` is ``MPI.COMM_WORLD`` through mpi4py. Collectives take C-contiguous NumPy
buffers and change them in place with mpi4py's buffer methods (``Allreduce``, ``Bcast``,
``Allgather``: upper-case, so arrays are never pickled). Every wait polls a non-blocking request
against a deadline, so a collective that a peer never joins raises :class:`CollectiveTimeoutError`
after ``timeout`` seconds instead of hanging (torch.distributed's ``timeout``; default 30 minutes,
``CHAINRULE_COLLECTIVE_TIMEOUT`` seconds in the environment, or ``init(timeout=)``).

The group is process-wide state, as MPI's world is: it is made once by ``init`` and read (never
changed) afterwards. mpi4py is imported only when the process was started by an MPI launcher.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional

import numpy as np

from chainrule.engine.errors import ChainruleError

__all__ = ["ProcessGroup", "MPIGroup", "Work", "CollectiveTimeoutError", "DistributedError",
           "launched_by_mpi", "default_timeout", "REDUCE_OPS"]

DEFAULT_TIMEOUT = 1800.0  # seconds, as torch.distributed's default for CPU backends
TIMEOUT_ENV = "CHAINRULE_COLLECTIVE_TIMEOUT"
#: environment variables set by MPI launchers: Open MPI's mpirun, MPICH/Intel's hydra (PMI),
#: PMIx (Open MPI 5, Slurm's srun --mpi=pmix), Slurm's srun --mpi=pmi2
MPI_ENVIRONMENT = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK")
REDUCE_OPS = ("sum", "prod", "max", "min")


class DistributedError(ChainruleError, RuntimeError):
    """A distributed setting or call that cannot work (no mpi4py, shapes that differ by rank)."""


class CollectiveTimeoutError(DistributedError, TimeoutError):
    """A collective waited longer than the group's timeout: a rank died, hangs, or diverged."""


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (or mpi4py's MPI is already imported)."""
    return "mpi4py.MPI" in sys.modules or any(name in os.environ for name in MPI_ENVIRONMENT)


def default_timeout() -> float:
    """Seconds a collective may wait: ``CHAINRULE_COLLECTIVE_TIMEOUT`` or 1800."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: must be a number of seconds > 0")
    return value


class Work:
    """A collective in flight: ``wait()`` blocks until it is done (or the timeout passes)."""

    def __init__(self, group: "ProcessGroup", request: Any, what: str) -> None:
        self.group, self.request, self.what = group, request, what

    def test(self) -> bool:
        """True once complete (also lets MPI progress it)."""
        return self.request is None or bool(self.request.Test())

    def wait(self) -> None:
        if self.request is not None:
            self.group._wait(self.request, self.what)
            self.request = None


class ProcessGroup:
    """The one-process world: rank 0 of 1; every collective leaves its buffer unchanged."""

    backend = "single"
    rank = 0
    size = 1

    def __init__(self, timeout: Optional[float] = None) -> None:
        self.timeout = default_timeout() if timeout is None else float(timeout)

    def barrier(self) -> None:
        pass

    def allreduce(self, buffer: np.ndarray, op: str = "sum") -> None:
        pass

    def iallreduce(self, buffer: np.ndarray, op: str = "sum") -> Work:
        return Work(self, None, "allreduce")

    def bcast(self, buffer: np.ndarray, root: int = 0) -> None:
        pass

    def allgather(self, send: np.ndarray, receive: np.ndarray) -> None:
        receive[0] = send

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (one process: this one), with exit status ``code``."""
        sys.stderr.flush()
        os._exit(code)

    def _wait(self, request: Any, what: str) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, rank={self.rank}, " \
               f"size={self.size}, timeout={self.timeout:g}s)"


class MPIGroup(ProcessGroup):
    """``MPI.COMM_WORLD`` (mpi4py): collectives on host buffers, waited on against a deadline."""

    backend = "mpi"

    def __init__(self, timeout: Optional[float] = None) -> None:
        super().__init__(timeout)
        # Open MPI's non-blocking allreduce (libnbc) takes a binomial tree by default: 2-3x the
        # time of the blocking Allreduce on 10-100 MB. Its reduce-scatter + allgather
        # (Rabenseifner, algorithm 3) matches the blocking one (docs/benchmarks.md, issue 11).
        # Read when MPI starts, so it applies only if mpi4py has not initialised MPI yet; a value
        # the user set wins; other MPIs ignore it.
        os.environ.setdefault("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3")
        try:
            from mpi4py import MPI  # noqa: PLC0415 -- optional: only multi-process runs need it
        except ImportError as error:
            raise DistributedError(
                f"this process was started by an MPI launcher but mpi4py cannot be imported "
                f"({error}): pip install 'chainrule[mpi]'") from None
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "prod": MPI.PROD, "max": MPI.MAX, "min": MPI.MIN}

    def barrier(self) -> None:
        self._wait(self.comm.Ibarrier(), "barrier")

    def allreduce(self, buffer: np.ndarray, op: str = "sum") -> None:
        self.iallreduce(buffer, op).wait()

    def iallreduce(self, buffer: np.ndarray, op: str = "sum") -> Work:
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, self._ops[op])
        return Work(self, request, f"allreduce of {buffer.nbytes:,} bytes")

    def bcast(self, buffer: np.ndarray, root: int = 0) -> None:
        self._wait(self.comm.Ibcast(buffer, root), f"broadcast of {buffer.nbytes:,} bytes")

    def allgather(self, send: np.ndarray, receive: np.ndarray) -> None:
        self._wait(self.comm.Iallgather(send, receive), f"all_gather of {send.nbytes:,} bytes")

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    def _wait(self, request: Any, what: str) -> None:
        """Poll ``request`` until done: spin for a millisecond, then back off up to 1 ms sleeps
        (so oversubscribed ranks give their core away); past the deadline, raise."""
        if request.Test():
            return
        start = time.monotonic()
        spin_until, deadline, pause = start + 1e-3, start + self.timeout, 2e-5
        while not request.Test():
            now = time.monotonic()
            if now > deadline:
                raise CollectiveTimeoutError(
                    f"rank {self.rank} of {self.size}: the {what} did not complete within "
                    f"{self.timeout:g} s (a rank died, hangs, or called a different collective); "
                    f"set {TIMEOUT_ENV} or init(timeout=) to wait longer")
            if now > spin_until:
                time.sleep(pause)
                pause = min(2 * pause, 1e-3)

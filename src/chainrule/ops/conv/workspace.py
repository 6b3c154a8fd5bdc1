"""Conv's scratch state: reused scratch arrays and saved im2col matrices, per backend and thread.

Each backend owns a ``threading.local`` (``Backend.scratch``); conv keeps one :class:`ConvScratch`
on it (:func:`scratch_of`): a :class:`Workspace` of scratch arrays and the :class:`SavedColumns`.
So NumPy and CuPy never share a buffer (their arrays live in different memories), and two threads
never do either: a scratch buffer filled by one call must not be refilled by another thread's call
before the first has read it (with process-wide buffers, 4 threads running conv2d got wrong
results). ``threading.local`` frees a thread's scratch when the thread ends. What a conv call
returns is never workspace memory (a later call would overwrite it).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Hashable, Optional

import numpy as np

from chainrule import backends
from chainrule.backends import Backend


class Workspace:
    """A few scratch arrays reused across calls, keyed by purpose, shape and dtype (LRU).

    ``xp`` makes them: NumPy, or CuPy for device buffers (``empty`` and ``full`` as NumPy's).
    """

    def __init__(self, capacity: int = 24, xp: Any = np) -> None:  # a few per conv layer
        self.capacity = capacity
        self.xp = xp
        self.arrays: OrderedDict = OrderedDict()

    def get(self, key: Hashable, shape: tuple, dtype, fill=None) -> tuple[Any, bool]:
        """An array for ``key`` (contents left from the previous use) and whether it is new."""
        key = (key, shape, np.dtype(dtype).str)
        array = self.arrays.pop(key, None)
        fresh = array is None
        if fresh:
            array = (self.xp.empty(shape, dtype) if fill is None
                     else self.xp.full(shape, fill, dtype))
        self.arrays[key] = array
        while len(self.arrays) > self.capacity:
            self.arrays.popitem(last=False)
        return array, fresh

    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())


class _Matrix(weakref.ref):
    """A weak reference to the weight of a forward, holding the im2col matrix of its input.

    ``input`` is a plain weak reference to that input array. The matrix lives while the input or
    the weight lives, and is freed as soon as both are gone (``_input_died``, ``_weight_died``).
    """

    __slots__ = ("cols", "input")
    cols: Optional[Any]  # None once freed
    input: weakref.ref

    # weakref.ref takes the referent and the callback in __new__; its __init__ only checks them
    # again, so it is not called
    def __new__(cls, w: Any, x: Any, cols: Any):
        return super().__new__(cls, w, _weight_died)

    def __init__(self, w: Any, x: Any, cols: Any) -> None:
        self.cols, self.input = cols, weakref.ref(x)


class _Columns(weakref.ref):
    """A weak reference to the input array of a forward: one entry of ``SavedColumns``."""

    __slots__ = ("geometry", "matrix")

    def __new__(cls, x: Any, w: Any, geometry: tuple, cols: Any):
        return super().__new__(cls, x, _input_died)

    def __init__(self, x: Any, w: Any, geometry: tuple, cols: Any) -> None:
        # as in _Matrix: no weakref.ref.__init__ call, __new__ took the referent and callback
        self.geometry, self.matrix = geometry, _Matrix(w, x, cols)


# Both callbacks run in whichever thread drops the last reference. All weak references to an
# object are cleared before its callbacks run, so whichever of the two runs second sees both
# gone and frees the matrix. One attribute store is safe from any thread; the owning thread
# drops the empty entry at its next forward.
def _input_died(entry: _Columns) -> None:
    if entry.matrix() is None:
        entry.matrix.cols = None


def _weight_died(matrix: _Matrix) -> None:
    if matrix.input() is None:
        matrix.cols = None


class SavedColumns:
    """The im2col matrices of recent forward passes, kept for the weight gradient of the same input.

    W(x, g) needs exactly the windows of x that the forward C(x, w) copied out; rebuilding them
    costs as much again. Each matrix is tagged with weak references to x and w and with the
    geometry, and is found again only while that very x is alive (the graph keeps it alive until
    the backward pass has run). Once x has died, the matrix serves the next forward with the same
    w and geometry: the layer's next training step, whose input is a new array (a fresh matrix
    above 32 MB, glibc's mmap threshold, costs page faults on every step: 10% of the step).
    Once x and w have both died the matrix is freed at once: none outlives its input and its
    layer. Past ``max_bytes`` the oldest matrices are dropped; W then rebuilds its columns.
    Used by one thread and one backend only (``ConvScratch``).
    """

    def __init__(self, max_bytes: int = 256 * 2**20, xp: Any = np) -> None:
        self.max_bytes = max_bytes
        self.xp = xp
        self.entries: list[_Columns] = []  # oldest first

    def find(self, x: Any, geometry: tuple) -> Optional[Any]:
        for entry in self.entries:
            if entry() is x and entry.geometry == geometry:
                return entry.matrix.cols
        return None

    def new(self, x: Any, w: Any, geometry: tuple, shape: tuple, dtype) -> Any:
        """A matrix to fill for C(x, w): x's own, else one a dead input of w left, else a fresh one.

        The matrices reused here cannot be freed meanwhile: x and w are alive.
        """
        self.entries = [entry for entry in self.entries if entry.matrix.cols is not None]
        same = [entry for entry in self.entries if entry.geometry == geometry]
        reuse = [entry for entry in same if entry() is x] or [
            entry for entry in same if entry() is None and entry.matrix() is w
            and (kept := entry.matrix.cols) is not None
            and kept.shape == shape and kept.dtype == dtype]
        if reuse:
            cols = reuse[0].matrix.cols
            assert cols is not None  # not None after the filter, and x or w alive: not freed
            self.entries = [entry for entry in self.entries if entry is not reuse[0]]
        else:
            cols = self.xp.empty(shape, dtype)
        self._add(_Columns(x, w, geometry, cols))
        return cols

    def keep(self, x: Any, w: Any, geometry: tuple, cols: Any) -> None:
        """Keep a matrix built elsewhere (the generic kernels build it, they cannot fill one)."""
        self.entries = [entry for entry in self.entries
                        if entry.matrix.cols is not None and entry() is not x]
        self._add(_Columns(x, w, geometry, cols))

    def _add(self, entry: _Columns) -> None:
        self.entries.append(entry)
        while len(self.entries) > 1 and self.nbytes() > self.max_bytes:  # keep the newest
            del self.entries[0]

    def nbytes(self) -> int:
        return sum(_nbytes(entry.matrix.cols) for entry in self.entries)


def _nbytes(array: Any) -> int:
    """Bytes of an array of any backend (array_api_strict's arrays have no ``nbytes``)."""
    if array is None:
        return 0
    found = getattr(array, "nbytes", None)
    if found is not None:
        return int(found)
    return int(np.prod(array.shape, dtype=np.int64)) * backends.backend_of(array).np_dtype(
        array.dtype).itemsize


class ConvScratch:
    """One thread's conv scratch on one backend: its workspace and its saved columns."""

    __slots__ = ("workspace", "saved_columns", "__weakref__")

    def __init__(self, xp: Any = np) -> None:
        self.workspace = Workspace(xp=xp)
        self.saved_columns = SavedColumns(xp=xp)

    def nbytes(self) -> tuple[int, int]:
        """(workspace, saved columns): the bytes held."""
        return self.workspace.nbytes(), self.saved_columns.nbytes()


def scratch_of(backend: Backend) -> ConvScratch:
    """The calling thread's conv scratch on ``backend`` (made at its first use there)."""
    local = backend.scratch
    try:
        return local.conv
    except AttributeError:
        local.conv = made = ConvScratch(backend.xp)
        return made


class _NumpyScratch:
    """The calling thread's NumPy conv scratch, under its name from before backends (``_caches``:
    ``_caches.workspace``, ``_caches.saved_columns``); tests read it."""

    @property
    def workspace(self) -> Workspace:
        return scratch_of(backends.NUMPY).workspace

    @property
    def saved_columns(self) -> SavedColumns:
        return scratch_of(backends.NUMPY).saved_columns


_caches = _NumpyScratch()


def _held_nbytes(backend: Optional[Backend] = None) -> tuple[int, int]:
    """(workspace, saved columns): the bytes the calling thread's scratch on ``backend`` (NumPy
    unless given) holds (for tests)."""
    return scratch_of(backend or backends.NUMPY).nbytes()

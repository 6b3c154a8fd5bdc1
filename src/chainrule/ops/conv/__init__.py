"""Deep-learning convolution and pooling: cross-correlation in PyTorch's layout (N, C, *spatial).

Three primitives close the convolution under differentiation. With C(x, w) the convolution,
T(g, w) its adjoint in x (the transposed convolution) and W(x, g) its adjoint in w:

    C(x, w):  dx = T(g, w)            dw = W(x, g)
    T(g, w):  dg = C(h, w)            dw = W(h, g)
    W(x, g):  dx = T(g, k)            dg = C(x, k)

so every VJP is again a convolution and derivatives of any order work (``create_graph=True``).
Implementation: the padded input is cut into windows by stride tricks and copied once into an
im2col matrix (G, Cg*K, N*L) held in a reusable workspace (fresh 30 MB temporaries cost page
faults on every step); the forward and the weight gradient are one GEMM each (the weight gradient
reuses the forward's im2col matrix, see ``_SavedColumns``); the input gradient is one GEMM followed
by a strided add per kernel offset (col2im), never ``np.add.at``; at stride 1 those adds run on
the flattened padded grid, one contiguous add per offset (``_col2im_flat``).

Threads: the workspace and the saved columns are per thread (``_caches``, a ``threading.local``),
so calls in different threads never share scratch memory, and what a call returns is never
workspace memory (a later call would overwrite it). A thread's caches go when it ends; a saved
im2col matrix is freed as soon as its input array and the weight of its forward have both died.

Pooling: ``max_pool`` (gradient to the *first* maximum of each window, as PyTorch) and
``avg_pool`` are primitives whose VJPs are again pooling-shaped primitives (a scatter to the
arg-max and its gather; the average and its adjoint), so they too have higher derivatives.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from collections import OrderedDict
from typing import Hashable, Optional, Sequence, Union

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule.engine.errors import ShapeError
from chainrule.engine.grad_mode import is_grad_enabled
from chainrule.engine.tensor import Tensor
from chainrule.ops.conv import sizes as shapes
from chainrule.ops.primitive import Primitive, as_tensor

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
    "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
]


# ---------------------------------------------------------------- scratch memory
class _Workspace:
    """A few scratch arrays reused across calls, keyed by purpose, shape and dtype (LRU)."""

    def __init__(self, capacity: int = 24) -> None:  # a few arrays per conv layer of a deep CNN
        self.capacity = capacity
        self.arrays: OrderedDict = OrderedDict()

    def get(self, key: Hashable, shape: tuple, dtype, fill=None) -> tuple[np.ndarray, bool]:
        """An array for ``key`` (contents left from the previous use) and whether it is new."""
        key = (key, shape, np.dtype(dtype).str)
        array = self.arrays.pop(key, None)
        fresh = array is None
        if fresh:
            array = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        self.arrays[key] = array
        while len(self.arrays) > self.capacity:
            self.arrays.popitem(last=False)
        return array, fresh

    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())


def _copy_swapped(a: np.ndarray) -> np.ndarray:
    """``np.swapaxes(a, 0, 1)`` as a new C-contiguous array."""
    return np.swapaxes(a, 0, 1).copy()


def _padded(x: np.ndarray, padding: tuple, fill: float) -> np.ndarray:
    """x with per-side ``padding`` of the spatial axes, in a reused buffer whose border keeps
    ``fill``."""
    if not any(lo or hi for lo, hi in padding):
        return x
    shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    buffer, _ = _caches.workspace.get(("pad", padding, fill), shape, x.dtype, fill=fill)
    buffer[_interior(x.shape, padding)] = x  # the border is never written, so it keeps `fill`
    return buffer


def _interior(shape: tuple, padding: tuple) -> tuple:
    return (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for n, (lo, _) in zip(shape[2:], padding)
    )


def _offset_slices(offset: tuple, stride: tuple, dilation: tuple, out_size: tuple) -> tuple:
    """The positions a kernel offset touches in the padded input, for every output position."""
    return (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s)
        for o, s, d, n in zip(offset, stride, dilation, out_size)
    )


def _windows(xp: np.ndarray, groups: int, kernel: tuple, stride: tuple, dilation: tuple,
             out_size: tuple) -> np.ndarray:
    """A strided view (G, Cg, *kernel, N, *out) of the padded input: no copy."""
    n, c = xp.shape[:2]
    s_n, s_c = xp.strides[:2]
    s_sp = xp.strides[2:]
    shape = (groups, c // groups) + kernel + (n,) + out_size
    strides = (
        ((c // groups) * s_c, s_c)
        + tuple(s * d for s, d in zip(s_sp, dilation))
        + (s_n,)
        + tuple(s * st for s, st in zip(s_sp, stride))
    )
    return as_strided(xp, shape, strides, writeable=False)


class _Matrix(weakref.ref):
    """A weak reference to the weight of a forward, holding the im2col matrix of its input.

    ``input`` is a plain weak reference to that input array. The matrix lives while the input or
    the weight lives, and is freed as soon as both are gone (``_input_died``, ``_weight_died``).
    """

    __slots__ = ("cols", "input")
    cols: Optional[np.ndarray]  # None once freed
    input: weakref.ref[np.ndarray]

    # weakref.ref takes the referent and the callback in __new__; its __init__ only checks them
    # again, so it is not called
    def __new__(cls, w: np.ndarray, x: np.ndarray, cols: np.ndarray):
        return super().__new__(cls, w, _weight_died)

    def __init__(self, w: np.ndarray, x: np.ndarray, cols: np.ndarray) -> None:
        self.cols, self.input = cols, weakref.ref(x)


class _Columns(weakref.ref):
    """A weak reference to the input array of a forward: one entry of ``_SavedColumns``."""

    __slots__ = ("geometry", "matrix")

    def __new__(cls, x: np.ndarray, w: np.ndarray, geometry: tuple, cols: np.ndarray):
        return super().__new__(cls, x, _input_died)

    def __init__(self, x: np.ndarray, w: np.ndarray, geometry: tuple, cols: np.ndarray) -> None:
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


class _SavedColumns:
    """The im2col matrices of recent forward passes, kept for the weight gradient of the same input.

    W(x, g) needs exactly the windows of x that the forward C(x, w) copied out; rebuilding them
    costs as much again. Each matrix is tagged with weak references to x and w and with the
    geometry, and is found again only while that very x is alive (the graph keeps it alive until
    the backward pass has run). Once x has died, the matrix serves the next forward with the same
    w and geometry: the layer's next training step, whose input is a new array (a fresh matrix
    above 32 MB, glibc's mmap threshold, costs page faults on every step: 10% of the step).
    Once x and w have both died the matrix is freed at once: none outlives its input and its
    layer. Past ``max_bytes`` the oldest matrices are dropped; W then rebuilds its columns.
    Used by one thread only (``_caches``).
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.entries: list[_Columns] = []  # oldest first

    def find(self, x: np.ndarray, geometry: tuple) -> Optional[np.ndarray]:
        for entry in self.entries:
            if entry() is x and entry.geometry == geometry:
                return entry.matrix.cols
        return None

    def new(self, x: np.ndarray, w: np.ndarray, geometry: tuple, shape: tuple, dtype) -> np.ndarray:
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
            cols = np.empty(shape, dtype)
        self.entries.append(_Columns(x, w, geometry, cols))
        while len(self.entries) > 1 and self.nbytes() > self.max_bytes:  # keep the newest
            del self.entries[0]
        return cols

    def nbytes(self) -> int:
        return sum(getattr(entry.matrix.cols, "nbytes", 0) for entry in self.entries)


class _ThreadCaches(threading.local):
    """Each thread's own workspace and saved columns.

    A scratch buffer filled by one call must not be refilled by another thread's call before the
    first has read it: with process-wide buffers, 4 threads running conv2d got wrong results.
    ``threading.local`` frees a thread's caches when the thread ends.
    """

    def __init__(self) -> None:  # runs once in each thread, at its first use
        self.workspace = _Workspace()
        self.saved_columns = _SavedColumns()


_caches = _ThreadCaches()


def _held_nbytes() -> tuple[int, int]:
    """(workspace, saved columns): the bytes the calling thread's caches hold (for tests)."""
    return _caches.workspace.nbytes(), _caches.saved_columns.nbytes()


def _im2col(x: np.ndarray, *, stride, padding, dilation, groups, kernel, out_size,
            keep_for: Optional[np.ndarray] = None, find: bool = False) -> np.ndarray:
    """The (G, Cg*K, N*L) matrix of input windows.

    The forward copies the windows out of x, and keeps the matrix when given its weight
    (``keep_for``); the weight gradient (``find=True``) uses the kept one when x is the very array
    of that forward. So the weight gradient sees x as it was at the forward, as the recorded graph
    requires.
    """
    geometry = (stride, padding, dilation, groups, kernel, out_size)
    saved = _caches.saved_columns
    cols = saved.find(x, geometry) if find else None
    if cols is None:
        view = _windows(_padded(x, padding, 0.0), groups, kernel, stride, dilation, out_size)
        if keep_for is not None:
            cols = saved.new(x, keep_for, geometry, view.shape, x.dtype)
        else:
            cols, _ = _caches.workspace.get("im2col", view.shape, x.dtype)
        for group in range(groups):  # per group: NumPy copies a 6-d view much faster than a 7-d one
            np.copyto(cols[group], view[group])
    k = int(np.prod(kernel))
    return cols.reshape(groups, (x.shape[1] // groups) * k, -1)


def _grouped_matmul(a: np.ndarray, b: np.ndarray, scratch: Optional[str] = None) -> np.ndarray:
    """a[g] @ b[g] for every group as 2-d GEMMs (NumPy's batched matmul skips BLAS on transposed
    operands).

    With ``scratch`` the result lives in the workspace (for temporaries that do not escape).
    """
    shape, dtype = (a.shape[0], a.shape[1], b.shape[2]), np.result_type(a.dtype, b.dtype)
    if scratch is None:
        out = np.empty(shape, dtype)
    else:
        out, _ = _caches.workspace.get(scratch, shape, dtype)
    for group in range(a.shape[0]):
        np.matmul(a[group], b[group], out=out[group])
    return out


def _to_group_major(g: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, *out) -> (G, Og, N*L): the gradient laid out for the GEMMs."""
    n, o = g.shape[:2]
    return _copy_swapped(g.reshape(n, o, -1)).reshape(groups, o // groups, -1)


# ---------------------------------------------------------------- the three convolution primitives
def _conv_impl(x, w, *, stride, padding, dilation, groups, output_size):
    # keep the columns for W(x, g) only where a graph may be recorded (not under no_grad)
    cols = _im2col(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                   kernel=w.shape[2:], out_size=output_size,
                   keep_for=w if is_grad_enabled() else None)
    # (G, Og, N*L): one GEMM
    out = _grouped_matmul(w.reshape(groups, w.shape[0] // groups, -1), cols, "gemm")
    out = out.reshape((w.shape[0], x.shape[0]) + output_size)
    return _copy_swapped(out)  # always a copy: `out` is workspace memory


def _conv_transpose_impl(g, w, *, stride, padding, dilation, groups, input_size):
    """T(g, w): scatter every output position's gradient back over its window (col2im)."""
    kernel, out_size = w.shape[2:], g.shape[2:]
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(input_size, padding))
    w3_t = np.ascontiguousarray(np.swapaxes(w.reshape(groups, w.shape[0] // groups, -1), 1, 2))
    c, n = groups * w.shape[1], g.shape[0]
    if all(s == 1 for s in stride):
        acc = _col2im_flat(_grouped_matmul(w3_t, _embedded(g, groups, padded), "gemm"),
                           c, kernel, dilation, padded)
    else:
        # (G, Cg*K, N*L): one GEMM
        dcols = _grouped_matmul(w3_t, _to_group_major(g, groups), "gemm")
        dcols = dcols.reshape((c,) + kernel + (n,) + out_size)
        # accumulate channel-first (C, N, ...), where each offset's block of dcols is contiguous
        acc, _ = _caches.workspace.get("col2im", (c, n) + padded, dcols.dtype)
        acc.fill(0)
        for offset in itertools.product(*map(range, kernel)):  # one strided add per kernel offset
            acc[_offset_slices(offset, stride, dilation, out_size)] += (
                dcols[(slice(None),) + offset]
            )
    return _copy_swapped(acc[_interior((None, None) + input_size, padding)])  # out of the workspace


def _embedded(g: np.ndarray, groups: int, padded: tuple) -> np.ndarray:
    """(N, O, *out) -> (G, Og, N * prod(padded)): g at the top-left of each padded grid, zeros
    elsewhere."""
    n, o, out_size = g.shape[0], g.shape[1], g.shape[2:]
    grid, _ = _caches.workspace.get(("embedded", out_size), (o, n) + padded, g.dtype, fill=0)
    # only this region is ever written, so the rest of the reused buffer stays zero
    region = (slice(None), slice(None)) + tuple(slice(0, size) for size in out_size)
    grid[region] = np.swapaxes(g, 0, 1)
    return grid.reshape(groups, o // groups, -1)


def _col2im_flat(dcols: np.ndarray, c: int, kernel: tuple, dilation: tuple,
                 padded: tuple) -> np.ndarray:
    """col2im at stride 1 as one contiguous shifted add per kernel offset, (C, N, *padded).

    ``dcols`` (G, Cg*K, N*P) holds each window's gradient at its output position on the padded
    grid (P = prod(padded)), zero at the positions that are not outputs. With stride 1 the window
    entry at kernel offset (i, j) of output (h, w) is padded position (h + i d, w + j d): on the
    flattened grid, output position + i d Wp + j d. So each offset is one add of a shifted row,
    thousands of elements long, where the strided col2im iterates over rows as short as the image.
    The GEMM grows by the junk positions (prod(padded) / prod(out), 1.15x at 28x28 with padding 1)
    but the whole T(g, w) is still faster: measured 1.13 vs 1.79 ms for g (32, 32, 8, 8), 20.0 vs
    23.4 ms for g (64, 32, 28, 28), w (32, 16, 3, 3).
    """
    dcols = dcols.reshape(c, int(np.prod(kernel)), -1)
    length = dcols.shape[-1]
    acc, _ = _caches.workspace.get("col2im", (c, length), dcols.dtype)
    acc.fill(0)
    grid_strides = np.cumprod((1,) + padded[:0:-1])[::-1]  # (Wp, 1) for 2-d
    for k, offset in enumerate(itertools.product(*map(range, kernel))):
        shift = int(sum(o * d * s for o, d, s in zip(offset, dilation, grid_strides)))
        acc[:, shift:] += dcols[:, k, : length - shift]
    return acc.reshape((c, -1) + padded)


def _conv_weight_impl(x, g, *, stride, padding, dilation, groups, kernel_size):
    """W(x, g): dw[o, c, k] = sum over n and positions of g * the window entry; one GEMM."""
    cols = _im2col(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                   kernel=kernel_size, out_size=g.shape[2:], find=True)
    # (cols G^T)^T rather than G cols^T: OpenBLAS is faster with the long axis as the inner one
    dw_t = _grouped_matmul(cols, np.swapaxes(_to_group_major(g, groups), 1, 2))  # (G, Cg*K, Og)
    dw = np.ascontiguousarray(np.swapaxes(dw_t, 1, 2))
    return dw.reshape((g.shape[1], x.shape[1] // groups) + kernel_size)


# fmt: off
conv_p           = Primitive("conv", _conv_impl)
conv_transpose_p = Primitive("conv_transpose", _conv_transpose_impl)
conv_weight_p    = Primitive("conv_weight", _conv_weight_impl)
conv_p.defvjp(
    lambda g, out, x, w, *, output_size, **p:
        conv_transpose_p.bind(g, w, input_size=x.shape[2:], **p),
    lambda g, out, x, w, *, output_size, **p:
        conv_weight_p.bind(x, g, kernel_size=w.shape[2:], **p))
conv_transpose_p.defvjp(
    lambda h, out, g, w, *, input_size, **p:
        conv_p.bind(h, w, output_size=g.shape[2:], **p),
    lambda h, out, g, w, *, input_size, **p:
        conv_weight_p.bind(h, g, kernel_size=w.shape[2:], **p))
conv_weight_p.defvjp(
    lambda k, out, x, g, *, kernel_size, **p:
        conv_transpose_p.bind(g, k, input_size=x.shape[2:], **p),
    lambda k, out, x, g, *, kernel_size, **p:
        conv_p.bind(x, k, output_size=g.shape[2:], **p))
# fmt: on


# ---------------------------------------------------------------- pooling primitives
def _pool_views(xp: np.ndarray, kernel, stride, dilation, out_size):
    """(offset, strided view (N, C, *out)) for every kernel offset, in row-major order."""
    for offset in itertools.product(*map(range, kernel)):
        yield offset, xp[_offset_slices(offset, stride, dilation, out_size)]


def _max_pool_impl(x, *, kernel, stride, padding, dilation, output_size):
    views = _pool_views(_padded(x, padding, -np.inf), kernel, stride, dilation, output_size)
    _, first = next(views)
    out = first.copy()
    for _, view in views:
        np.maximum(out, view, out=out)
    return out


def _argmax_masks(x, best, *, kernel, stride, padding, dilation, output_size):
    """For each kernel offset, where it holds its window's *first* maximum (PyTorch's tie rule).

    ``best`` is the forward's output (the window maxima), so the maximum is not computed again.
    """
    taken = np.zeros(best.shape, dtype=bool)
    masks = []
    xp = _padded(x, padding, -np.inf)
    for offset, view in _pool_views(xp, kernel, stride, dilation, output_size):
        mask = np.equal(view, best)
        np.greater(mask, taken, out=mask)  # mask and not taken: a later tie does not take over
        np.logical_or(taken, mask, out=taken)
        masks.append((offset, mask))
    return masks


def _windows_disjoint(kernel, stride, dilation) -> bool:
    """True when no input position lies in two windows, so scatters may write instead of add."""
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def _max_pool_scatter_impl(g, x, best, **params):
    """Each window's gradient goes to the position of its first maximum (overlaps accumulate)."""
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], params["padding"]))
    dx = np.zeros(x.shape[:2] + padded, dtype=g.dtype)
    disjoint = _windows_disjoint(params["kernel"], params["stride"], params["dilation"])
    for offset, mask in _argmax_masks(x, best, **params):
        target = dx[_offset_slices(offset, params["stride"], params["dilation"],
                                   params["output_size"])]
        if disjoint:
            np.multiply(g, mask, out=target)  # each position is written once: no temporary, no add
        else:
            target += g * mask
    return dx[_interior(x.shape, params["padding"])]


def _max_pool_gather_impl(h, x, best, **params):
    """The adjoint of the scatter: each window reads ``h`` at its arg-max position."""
    hp = _padded(h, params["padding"], 0.0)
    out = np.zeros(x.shape[:2] + params["output_size"], dtype=h.dtype)
    for offset, mask in _argmax_masks(x, best, **params):
        np.copyto(out, hp[_offset_slices(offset, params["stride"], params["dilation"],
                                         params["output_size"])],
                  where=mask)  # exactly one offset per window holds the arg-max
    return out


def _avg_pool_impl(x, *, kernel, stride, padding, output_size, divisor):
    out = np.zeros(x.shape[:2] + output_size, dtype=x.dtype)
    xp = _padded(x, padding, 0.0)
    for _, view in _pool_views(xp, kernel, stride, (1,) * len(kernel), output_size):
        out += view
    out /= divisor
    return out


def _avg_pool_adjoint_impl(g, *, kernel, stride, padding, output_size, divisor, input_size):
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(input_size, padding))
    dx = np.zeros(g.shape[:2] + padded, dtype=g.dtype)
    share = g / divisor
    for offset in itertools.product(*map(range, kernel)):
        dx[_offset_slices(offset, stride, (1,) * len(kernel), output_size)] += share
    return dx[_interior((None, None) + input_size, padding)]


# fmt: off
max_pool_p         = Primitive("max_pool", _max_pool_impl, smooth=False)
max_pool_scatter_p = Primitive("max_pool_scatter", _max_pool_scatter_impl, smooth=False)
max_pool_gather_p  = Primitive("max_pool_gather", _max_pool_gather_impl, smooth=False)
avg_pool_p         = Primitive("avg_pool", _avg_pool_impl)
avg_pool_adjoint_p = Primitive("avg_pool_adjoint", _avg_pool_adjoint_impl)
max_pool_p.defvjp(lambda g, out, x, **p: max_pool_scatter_p.bind(g, x.detach(), out.detach(), **p))
max_pool_scatter_p.defvjp(lambda h, out, g, x, best, **p: max_pool_gather_p.bind(h, x, best, **p),
                          None, None)
max_pool_gather_p.defvjp(lambda k, out, h, x, best, **p: max_pool_scatter_p.bind(k, x, best, **p),
                         None, None)
avg_pool_p.defvjp(lambda g, out, x, **p: avg_pool_adjoint_p.bind(g, input_size=x.shape[2:], **p))
avg_pool_adjoint_p.defvjp(lambda h, out, g, *, input_size, **p: avg_pool_p.bind(h, **p))
# fmt: on


# ---------------------------------------------------------------- argument handling
Size = Union[int, Sequence[int]]
Padding = Union[int, str, Sequence]


def _ntuple(value, n: int, name: str, minimum: int = 1) -> tuple:
    values = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name}={value!r}: expected an int or {n} ints")
    if any(v < minimum for v in values):
        raise ValueError(f"{name}={value!r}: every entry must be >= {minimum}")
    return tuple(int(v) for v in values)


def _conv_padding(padding: Padding, sizes: tuple, kernel: tuple, stride: tuple,
                  dilation: tuple) -> tuple:
    """Per-side pads ((lo, hi), ...) from an int, a tuple (per axis, or per-side pairs) or a mode
    name.

    In 1-d a pair of ints is (before, after).
    'same' has TensorFlow's meaning for every stride: output = ceil(input / stride), the odd pad
    on the far side. 'full' pads d(k-1) on both sides, 'valid' nothing.
    """
    n = len(sizes)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "full":
            return tuple((shapes.effective_kernel(k, d) - 1,) * 2 for k, d in zip(kernel, dilation))
        if padding == "same":
            return tuple(shapes.same_padding(i, k, s, d)
                         for i, k, s, d in zip(sizes, kernel, stride, dilation))
        raise ValueError(f"padding={padding!r}: use an int, a tuple, or 'valid', 'same', 'full'")
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * n
    padding = tuple(padding)
    if n == 1 and len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        padding = (padding,)  # 1-d: a pair of ints is (before, after)
    if len(padding) == n and all(isinstance(p, (int, np.integer)) for p in padding):
        pairs = tuple((int(p), int(p)) for p in padding)
    elif len(padding) == n and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding):
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    else:
        raise ValueError(f"padding={padding!r}: expected an int, {n} ints, "
                         f"or {n} (before, after) pairs")
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"padding={padding!r} must not be negative")
    return pairs


def _output_sizes(sizes, padding, kernel, stride, dilation, what: str) -> tuple:
    """floor((i + lo + hi - d(k-1) - 1) / s) + 1 per axis (``shapes.conv_output_size``)."""
    with _named(what):
        return tuple(shapes.conv_output_size(i, k, s, pads, d)
                     for i, pads, k, s, d in zip(sizes, padding, kernel, stride, dilation))


@contextlib.contextmanager
def _named(what: str):
    """Prefix the shape arithmetic's errors with the function the user called."""
    try:
        yield
    except ShapeError as error:
        raise ShapeError(f"{what}: {error}") from None


def _batched(x: Tensor, n_spatial: int, name: str) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or the unbatched (C, *spatial); return the batched tensor and a
    flag."""
    if x.ndim == n_spatial + 1:
        return x.reshape((1,) + x.shape), True
    if x.ndim != n_spatial + 2:
        raise ShapeError(f"{name}: input must be (N, C, {'L' if n_spatial == 1 else 'H, W'}) "
                         f"or unbatched, got shape {x.shape}")
    return x, False


def _convnd(x, weight, bias, stride, padding, dilation, groups, n: int) -> Tensor:
    name = f"conv{n}d"
    x, weight = as_tensor(x), as_tensor(weight)
    x, unbatched = _batched(x, n, name)
    if weight.ndim != n + 2:
        raise ShapeError(f"{name}: weight must be (out_channels, in_channels/groups, *kernel) "
                         f"with {n + 2} dimensions, got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups={groups!r} must be a positive int")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ShapeError(f"{name}: in_channels {c_in} and out_channels {c_out} must both be "
                         f"divisible by groups={groups}")
    if weight.shape[1] * groups != c_in:
        raise ShapeError(f"{name}: weight {weight.shape} expects {weight.shape[1] * groups} "
                         f"input channels (weight.shape[1] * groups), the input has {c_in}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(stride, n, "stride"), _ntuple(dilation, n, "dilation")
    pads = _conv_padding(padding, x.shape[2:], kernel, stride, dilation)
    out_size = _output_sizes(x.shape[2:], pads, kernel, stride, dilation, name)
    out = conv_p.bind(x, weight, stride=stride, padding=pads, dilation=dilation, groups=int(groups),
                      output_size=out_size)
    out = _add_bias(out, bias, c_out, name)
    return out.reshape(out.shape[1:]) if unbatched else out


def _add_bias(out: Tensor, bias, channels: int, name: str) -> Tensor:
    if bias is None:
        return out
    bias = as_tensor(bias)
    if bias.shape != (channels,):
        raise ShapeError(f"{name}: bias must have shape ({channels},), got {bias.shape}")
    return out + bias.reshape((1, channels) + (1,) * (out.ndim - 2))


def conv1d(x, weight, bias=None, stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation of x (N, C_in, L) with weight (C_out, C_in/groups, k), as
    ``torch.nn.functional.conv1d``.

    out[n, o, l] = bias[o] + sum_{c, j} weight[o, c, j] x_pad[n, g(o) C_in/groups + c, l s + j d].
    ``padding``: int, tuple, per-side pairs, or 'valid' / 'same' (any stride: output ceil(L / s))
    / 'full'.
    """
    return _convnd(x, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(x, weight, bias=None, stride: Size = 1, padding: Padding = 0, dilation: Size = 1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation of x (N, C_in, H, W) with weight (C_out, C_in/groups, kH, kW), as
    PyTorch.

    Output size per axis: floor((i + pad_lo + pad_hi - d(k-1) - 1) / s) + 1. ``padding='same'``
    works for every stride with TensorFlow's meaning (output ceil(i / s), the odd pad on the far
    side).
    """
    return _convnd(x, weight, bias, stride, padding, dilation, groups, 2)


def _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation,
                      n: int) -> Tensor:
    name = f"conv_transpose{n}d"
    x, weight = as_tensor(x), as_tensor(weight)
    x, unbatched = _batched(x, n, name)
    if weight.ndim != n + 2:
        raise ShapeError(f"{name}: weight must be (in_channels, out_channels/groups, *kernel), "
                         f"got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1 or x.shape[1] % groups:
        raise ShapeError(f"{name}: groups={groups!r} must be a positive int dividing "
                         f"in_channels {x.shape[1]}")
    if weight.shape[0] != x.shape[1]:
        raise ShapeError(f"{name}: weight {weight.shape} expects {weight.shape[0]} input channels, "
                         f"input has {x.shape[1]}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(stride, n, "stride"), _ntuple(dilation, n, "dilation")
    pad = _ntuple(padding, n, "padding", minimum=0)
    extra = _ntuple(output_padding, n, "output_padding", minimum=0)
    with _named(name):
        input_size = tuple(shapes.conv_transpose_output_size(i, k, s, p, e, d)
                           for i, k, s, p, e, d
                           in zip(x.shape[2:], kernel, stride, pad, extra, dilation))
    out = conv_transpose_p.bind(x, weight, stride=stride, padding=tuple((p, p) for p in pad),
                                dilation=dilation, groups=int(groups), input_size=input_size)
    out = _add_bias(out, bias, weight.shape[1] * groups, name)
    return out.reshape(out.shape[1:]) if unbatched else out


def conv_transpose1d(x, weight, bias=None, stride: Size = 1, padding: Size = 0,
                     output_padding: Size = 0, groups: int = 1, dilation: Size = 1) -> Tensor:
    """The adjoint of conv1d in its input (``torch.nn.functional.conv_transpose1d``): weight
    (C_in, C_out/groups, k)."""
    return _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x, weight, bias=None, stride: Size = 1, padding: Size = 0,
                     output_padding: Size = 0, groups: int = 1, dilation: Size = 1) -> Tensor:
    """The adjoint of conv2d in its input, as ``torch.nn.functional.conv_transpose2d``.

    weight is (C_in, C_out/groups, kH, kW); output size (i-1)s - 2p + d(k-1) + output_padding + 1.
    """
    return _conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def _pool_geometry(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, n: int, name: str):
    """(kernel, stride, per-side padding incl. ceil-mode extra, dilation, output size), PyTorch's
    rules."""
    kernel = _ntuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None or stride == () else _ntuple(stride, n, "stride")
    pad = _ntuple(padding, n, "padding", minimum=0)
    dilation = _ntuple(dilation, n, "dilation")
    sizes = x.shape[2:]
    with _named(name):
        out = [shapes.pool_output_size(i, k, s, p, d, bool(ceil_mode))
               for i, k, s, p, d in zip(sizes, kernel, stride, pad, dilation)]
    # ceil mode's last window may run past the padding: pad the far side as far as it reaches
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - i - p))
                 for i, k, s, p, d, o in zip(sizes, kernel, stride, pad, dilation, out))
    return kernel, stride, pads, dilation, tuple(out)


def _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, n: int) -> Tensor:
    name = f"max_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    kernel, stride, pads, dilation, out_size = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, n, name)
    out = max_pool_p.bind(x, kernel=kernel, stride=stride, padding=pads, dilation=dilation,
                          output_size=out_size)
    return out.reshape(out.shape[1:]) if unbatched else out


def max_pool1d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               dilation: Size = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over windows of (N, C, L). The gradient goes to the first maximum of each window
    (PyTorch)."""
    return _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               dilation: Size = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over windows of (N, C, H, W), stride defaulting to the kernel size; padding counts
    as -inf.

    Ties: the whole gradient goes to the *first* maximum of the window in row-major order, as
    PyTorch does (a valid subgradient; ``max`` splits ties instead).
    """
    return _max_poolnd(x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def _avg_divisor(sizes, kernel, stride, pads, out_size, count_include_pad: bool) -> np.ndarray:
    """Per-output-position divisor, as PyTorch: windows clipped to input + padding (or to the
    input)."""
    divisor = np.ones((), dtype=np.float64)
    for i, k, s, (p, _), o in zip(sizes, kernel, stride, pads, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, i + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, i)
        divisor = np.multiply.outer(divisor, (end - start).astype(np.float64))
    return divisor


def _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, n: int) -> Tensor:
    name = f"avg_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    kernel, stride, pads, _, out_size = _pool_geometry(
        x, kernel_size, stride, padding, 1, ceil_mode, n, name)
    divisor = _avg_divisor(x.shape[2:], kernel, stride, pads, out_size,
                           count_include_pad).astype(x.dtype)
    out = avg_pool_p.bind(x, kernel=kernel, stride=stride, padding=pads, output_size=out_size,
                          divisor=divisor)
    return out.reshape(out.shape[1:]) if unbatched else out


def avg_pool1d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, L), as ``torch.nn.functional.avg_pool1d``."""
    return _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, 1)


def avg_pool2d(x, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over windows of (N, C, H, W). ``count_include_pad`` decides whether zero padding counts
    in the divisor."""
    return _avg_poolnd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, 2)


def _adaptive_avg_poolnd(x, output_size, n: int) -> Tensor:
    name = f"adaptive_avg_pool{n}d"
    x, unbatched = _batched(as_tensor(x), n, name)
    sizes = x.shape[2:]
    wanted = _ntuple_or_none(output_size, n, name)
    out_size = tuple(i if o is None else o for i, o in zip(sizes, wanted))
    if all(i % o == 0 for i, o in zip(sizes, out_size)):  # equal windows: a plain average pool
        kernel = tuple(i // o for i, o in zip(sizes, out_size))
        out = _avg_poolnd(x, kernel, kernel, 0, False, True, n)
    else:  # PyTorch's windows: [floor(j i / o), ceil((j + 1) i / o)) on each axis
        out = _adaptive_by_slices(x, sizes, out_size)
    return out.reshape(out.shape[1:]) if unbatched else out


def _ntuple_or_none(value, n: int, name: str) -> tuple:
    values = (value,) * n if value is None or isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != n or any(
        v is not None and (not isinstance(v, (int, np.integer)) or v < 1) for v in values
    ):
        raise ValueError(f"{name}: output_size={value!r} must be a positive int, None, "
                         f"or {n} of those")
    return values


def _adaptive_by_slices(x: Tensor, sizes: tuple, out_size: tuple) -> Tensor:
    bounds = [[(j * i // o, -(-(j + 1) * i // o)) for j in range(o)]
              for i, o in zip(sizes, out_size)]
    cells = []
    for region in itertools.product(*bounds):
        index = (slice(None), slice(None)) + tuple(slice(a, b) for a, b in region)
        cells.append(mean(getitem(x, index), axis=tuple(range(2, x.ndim))))
    return reshape(stack(cells, axis=-1), x.shape[:2] + out_size)


def adaptive_avg_pool1d(x, output_size: int) -> Tensor:
    """Average pooling to a fixed output length (PyTorch's window boundaries)."""
    return _adaptive_avg_poolnd(x, output_size, 1)


def adaptive_avg_pool2d(x, output_size) -> Tensor:
    """Average pooling to a fixed (H, W) output (an int for both; None keeps an axis); 1 is global
    average pooling."""
    return _adaptive_avg_poolnd(x, output_size, 2)


from chainrule.ops.reductions import mean  # noqa: E402
from chainrule.ops.shape import getitem, reshape, stack  # noqa: E402

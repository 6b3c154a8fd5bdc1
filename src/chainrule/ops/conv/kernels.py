"""The convolution kernels: im2col, GEMM, col2im, for each backend.

C(x, w), T(g, w) and W(x, g) (see :mod:`chainrule.ops.conv`) are three kernels each:

* NumPy (``*_numpy``), the fast path: the padded input is cut into windows by stride tricks and
  copied once into an im2col matrix (G, Cg*K, N*L) held in a reusable workspace (fresh 30 MB
  temporaries cost page faults on every step); the forward and the weight gradient are one GEMM
  each (the weight gradient reuses the forward's im2col matrix, ``SavedColumns``); the input
  gradient is one GEMM followed by a strided add per kernel offset (col2im), never
  ``np.add.at``; at stride 1 those adds run on the flattened padded grid, one contiguous add per
  offset (``_col2im_flat``).
* generic (``*_generic``), any array-API namespace, the standard only: the im2col matrix is the
  ``stack`` of one strided slice per kernel offset, col2im sums shifted slices into zeros by
  slice assignment; ``matmul`` on the (G, ...) stacks.
* CuPy (``*_cupy``), imported on first use: strided windows as NumPy's, one strided-batched GEMM
  (``cupy.matmul`` on the (G, ...) stacks), col2im as one ``cupyx.scatter_add``.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule import backends
from chainrule.engine.grad_mode import is_grad_enabled
from chainrule.ops.conv.workspace import Workspace, scratch_of


# ---------------------------------------------------------------- geometry (every backend)
def interior(shape: tuple, padding: tuple) -> tuple:
    """The index of the unpadded input inside the padded one."""
    return (slice(None), slice(None)) + tuple(
        slice(lo, lo + n) for n, (lo, _) in zip(shape[2:], padding)
    )


def offset_slices(offset: tuple, stride: tuple, dilation: tuple, out_size: tuple) -> tuple:
    """The positions a kernel offset touches in the padded input, for every output position."""
    return (slice(None), slice(None)) + tuple(
        slice(o * d, o * d + s * (n - 1) + 1, s)
        for o, s, d, n in zip(offset, stride, dilation, out_size)
    )


def offset_views(padded: Any, kernel, stride, dilation, out_size) -> Iterator[tuple]:
    """(offset, strided view (N, C, *out)) for every kernel offset, in row-major order."""
    for offset in itertools.product(*map(range, kernel)):
        yield offset, padded[offset_slices(offset, stride, dilation, out_size)]


def padded_size(sizes: tuple, padding: tuple) -> tuple:
    return tuple(n + lo + hi for n, (lo, hi) in zip(sizes, padding))


def _window_layout(x: Any, groups: int, kernel: tuple, stride: tuple, dilation: tuple,
                   out_size: tuple) -> tuple[tuple, tuple]:
    """Shape and byte strides of the window view (G, Cg, *kernel, N, *out) of the padded x."""
    n, c = x.shape[:2]
    s_n, s_c = x.strides[:2]
    s_sp = x.strides[2:]
    shape = (groups, c // groups) + kernel + (n,) + out_size
    strides = (
        ((c // groups) * s_c, s_c)
        + tuple(s * d for s, d in zip(s_sp, dilation))
        + (s_n,)
        + tuple(s * st for s, st in zip(s_sp, stride))
    )
    return shape, strides


# ---------------------------------------------------------------- NumPy: scratch-memory helpers
def workspace() -> Workspace:
    """The calling thread's NumPy conv workspace (reused scratch arrays)."""
    return scratch_of(backends.NUMPY).workspace


def copy_swapped(a: np.ndarray) -> np.ndarray:
    """``np.swapaxes(a, 0, 1)`` as a new C-contiguous array."""
    return np.swapaxes(a, 0, 1).copy()


def padded_numpy(x: np.ndarray, padding: tuple, fill: float) -> np.ndarray:
    """x with per-side ``padding`` of the spatial axes, in a reused buffer whose border keeps
    ``fill``."""
    if not any(lo or hi for lo, hi in padding):
        return x
    shape = x.shape[:2] + padded_size(x.shape[2:], padding)
    buffer, _ = workspace().get(("pad", padding, fill), shape, x.dtype, fill=fill)
    buffer[interior(x.shape, padding)] = x  # the border is never written, so it keeps `fill`
    return buffer


def _windows(xp: np.ndarray, groups: int, kernel: tuple, stride: tuple, dilation: tuple,
             out_size: tuple) -> np.ndarray:
    """A strided view (G, Cg, *kernel, N, *out) of the padded input: no copy."""
    shape, strides = _window_layout(xp, groups, kernel, stride, dilation, out_size)
    return as_strided(xp, shape, strides, writeable=False)


def im2col_numpy(x: np.ndarray, *, stride, padding, dilation, groups, kernel, out_size,
                 keep_for: Optional[np.ndarray] = None, find: bool = False) -> np.ndarray:
    """The (G, Cg*K, N*L) matrix of input windows.

    The forward copies the windows out of x, and keeps the matrix when given its weight
    (``keep_for``); the weight gradient (``find=True``) uses the kept one when x is the very array
    of that forward. So the weight gradient sees x as it was at the forward, as the recorded graph
    requires.
    """
    geometry = (stride, padding, dilation, groups, kernel, out_size)
    scratch = scratch_of(backends.NUMPY)
    saved = scratch.saved_columns
    cols = saved.find(x, geometry) if find else None
    if cols is None:
        view = _windows(padded_numpy(x, padding, 0.0), groups, kernel, stride, dilation, out_size)
        if keep_for is not None:
            cols = saved.new(x, keep_for, geometry, view.shape, x.dtype)
        else:
            cols, _ = scratch.workspace.get("im2col", view.shape, x.dtype)
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
        out, _ = workspace().get(scratch, shape, dtype)
    for group in range(a.shape[0]):
        np.matmul(a[group], b[group], out=out[group])
    return out


def _to_group_major(g: np.ndarray, groups: int) -> np.ndarray:
    """(N, O, *out) -> (G, Og, N*L): the gradient laid out for the GEMMs."""
    n, o = g.shape[:2]
    return copy_swapped(g.reshape(n, o, -1)).reshape(groups, o // groups, -1)


# ---------------------------------------------------------------- NumPy: the three kernels
def conv_numpy(x, w, *, stride, padding, dilation, groups, output_size) -> Any:
    # keep the columns for W(x, g) only where a graph may be recorded (not under no_grad)
    cols = im2col_numpy(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                        kernel=w.shape[2:], out_size=output_size,
                        keep_for=w if is_grad_enabled() else None)
    # (G, Og, N*L): one GEMM
    out = _grouped_matmul(w.reshape(groups, w.shape[0] // groups, -1), cols, "gemm")
    out = out.reshape((w.shape[0], x.shape[0]) + output_size)
    return copy_swapped(out)  # always a copy: `out` is workspace memory


def conv_transpose_numpy(g, w, *, stride, padding, dilation, groups, input_size) -> Any:
    """T(g, w): scatter every output position's gradient back over its window (col2im)."""
    kernel, out_size = w.shape[2:], g.shape[2:]
    padded = padded_size(input_size, padding)
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
        acc, _ = workspace().get("col2im", (c, n) + padded, dcols.dtype)
        acc.fill(0)
        for offset in itertools.product(*map(range, kernel)):  # one strided add per kernel offset
            acc[offset_slices(offset, stride, dilation, out_size)] += (
                dcols[(slice(None),) + offset]
            )
    return copy_swapped(acc[interior((None, None) + input_size, padding)])  # out of the workspace


def _embedded(g: np.ndarray, groups: int, padded: tuple) -> np.ndarray:
    """(N, O, *out) -> (G, Og, N * prod(padded)): g at the top-left of each padded grid, zeros
    elsewhere."""
    n, o, out_size = g.shape[0], g.shape[1], g.shape[2:]
    grid, _ = workspace().get(("embedded", out_size), (o, n) + padded, g.dtype, fill=0)
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
    acc, _ = workspace().get("col2im", (c, length), dcols.dtype)
    acc.fill(0)
    grid_strides = np.cumprod((1,) + padded[:0:-1])[::-1]  # (Wp, 1) for 2-d
    for k, offset in enumerate(itertools.product(*map(range, kernel))):
        shift = int(sum(o * d * s for o, d, s in zip(offset, dilation, grid_strides)))
        acc[:, shift:] += dcols[:, k, : length - shift]
    return acc.reshape((c, -1) + padded)


def conv_weight_numpy(x, g, *, stride, padding, dilation, groups, kernel_size) -> Any:
    """W(x, g): dw[o, c, k] = sum over n and positions of g * the window entry; one GEMM."""
    cols = im2col_numpy(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                        kernel=kernel_size, out_size=g.shape[2:], find=True)
    # (cols G^T)^T rather than G cols^T: OpenBLAS is faster with the long axis as the inner one
    dw_t = _grouped_matmul(cols, np.swapaxes(_to_group_major(g, groups), 1, 2))  # (G, Cg*K, Og)
    dw = np.ascontiguousarray(np.swapaxes(dw_t, 1, 2))
    return dw.reshape((g.shape[1], x.shape[1] // groups) + kernel_size)


# ---------------------------------------------------------------- generic: the standard only
def promoted(xp, *arrays) -> list:
    """The arrays in NumPy's result dtype (strict namespaces refuse int with float)."""
    backend = backends.backend_of(arrays[0])
    target = backend.dtype(np.result_type(*[backend.np_dtype(a.dtype) for a in arrays]))
    return [a if a.dtype == target else xp.astype(a, target) for a in arrays]


def padded_generic(xp, x, padding: tuple, fill) -> Any:
    """x with per-side ``padding`` of the spatial axes filled with ``fill``: a new array."""
    if not any(lo or hi for lo, hi in padding):
        return x
    shape = x.shape[:2] + padded_size(x.shape[2:], padding)
    out = xp.full(shape, fill, dtype=x.dtype, device=x.device)
    out[interior(x.shape, padding)] = x
    return out


def swap01(xp, a) -> Any:
    """``a`` with its first two axes exchanged (N, C, ...) <-> (C, N, ...)."""
    return xp.permute_dims(a, (1, 0) + tuple(range(2, a.ndim)))


def im2col_generic(xp, x, *, stride, padding, dilation, groups, kernel, out_size) -> Any:
    """(G, Cg*K, N*L): the windows of the zero-padded x, one strided slice per kernel offset."""
    n, c = x.shape[:2]
    padded = padded_generic(xp, x, padding, 0)
    views = [view for _, view in offset_views(padded, kernel, stride, dilation, out_size)]
    stacked = xp.reshape(xp.stack(views, axis=2), (n, groups, (c // groups) * len(views), -1))
    return xp.reshape(xp.permute_dims(stacked, (1, 2, 0, 3)), (groups, stacked.shape[2], -1))


def group_major_generic(xp, g, groups: int) -> Any:
    """(N, O, *out) -> (G, Og, N*L): the gradient laid out for the GEMMs."""
    n, o = g.shape[:2]
    return xp.reshape(swap01(xp, xp.reshape(g, (n, o, -1))), (groups, o // groups, -1))


def col2im_generic(xp, dcols, *, kernel, stride, padding, dilation, input_size) -> Any:
    """(C, K, N, *out) window gradients -> (N, C, *input): each offset's slice added where its
    window entries lie (shifted slices summed into zeros), the padding cut off."""
    c, n, out_size = dcols.shape[0], dcols.shape[2], dcols.shape[3:]
    acc = xp.zeros((c, n) + padded_size(input_size, padding), dtype=dcols.dtype,
                   device=dcols.device)
    for k, offset in enumerate(itertools.product(*map(range, kernel))):
        where = offset_slices(offset, stride, dilation, out_size)
        acc[where] = acc[where] + dcols[:, k, ...]
    return swap01(xp, acc[interior((None, None) + input_size, padding)])


def conv_generic(xp, x, w, *, stride, padding, dilation, groups, output_size) -> Any:
    """C(x, w): one batched GEMM (G, Og, Cg*K) @ (G, Cg*K, N*L)."""
    xc, wc = promoted(xp, x, w)
    cols = im2col_generic(xp, xc, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, kernel=w.shape[2:], out_size=output_size)
    if is_grad_enabled():  # W(x, g) finds them while this very x lives, as on NumPy
        geometry = (stride, padding, dilation, groups, w.shape[2:], output_size)
        scratch_of(backends.backend_of(x)).saved_columns.keep(x, w, geometry, cols)
    o = w.shape[0]
    out = xp.matmul(xp.reshape(wc, (groups, o // groups, -1)), cols)
    return swap01(xp, xp.reshape(out, (o, x.shape[0]) + output_size))


def conv_transpose_generic(xp, g, w, *, stride, padding, dilation, groups, input_size) -> Any:
    """T(g, w): one batched GEMM (G, Cg*K, Og) @ (G, Og, N*L), then col2im."""
    g, w = promoted(xp, g, w)
    kernel, c = w.shape[2:], groups * w.shape[1]
    w3 = xp.reshape(w, (groups, w.shape[0] // groups, -1))
    dcols = xp.matmul(xp.permute_dims(w3, (0, 2, 1)), group_major_generic(xp, g, groups))
    dcols = xp.reshape(dcols, (c, -1, g.shape[0]) + g.shape[2:])  # (C, K, N, *out)
    return col2im_generic(xp, dcols, kernel=kernel, stride=stride, padding=padding,
                          dilation=dilation, input_size=input_size)


def conv_weight_generic(xp, x, g, *, stride, padding, dilation, groups, kernel_size) -> Any:
    """W(x, g): one batched GEMM (G, Og, N*L) @ (G, N*L, Cg*K), the forward's columns reused."""
    geometry = (stride, padding, dilation, groups, kernel_size, g.shape[2:])
    cols = scratch_of(backends.backend_of(x)).saved_columns.find(x, geometry)
    xc, gc = promoted(xp, x, g)
    if cols is None or cols.dtype != xc.dtype:
        cols = im2col_generic(xp, xc, stride=stride, padding=padding, dilation=dilation,
                              groups=groups, kernel=kernel_size, out_size=g.shape[2:])
    dw = xp.matmul(group_major_generic(xp, gc, groups), xp.permute_dims(cols, (0, 2, 1)))
    return xp.reshape(dw, (g.shape[1], x.shape[1] // groups) + kernel_size)


# ---------------------------------------------------------------- CuPy (cannot run here: no GPU)
def _cupy():
    import cupy  # noqa: PLC0415 -- optional, and only on CuPy arrays

    return cupy


def im2col_cupy(x, *, stride, padding, dilation, groups, kernel, out_size) -> Any:
    """(G, Cg*K, N*L) on the GPU: NumPy's strided window view, copied once."""
    cupy = _cupy()
    if any(lo or hi for lo, hi in padding):
        x = cupy.pad(x, ((0, 0), (0, 0)) + tuple(padding))
    shape, strides = _window_layout(x, groups, kernel, stride, dilation, out_size)
    view = cupy.lib.stride_tricks.as_strided(x, shape, strides)
    return cupy.ascontiguousarray(view).reshape(groups, (x.shape[1] // groups) * int(
        np.prod(kernel)), -1)


def conv_cupy(x, w, *, stride, padding, dilation, groups, output_size) -> Any:
    """C(x, w): im2col, then one strided-batched GEMM (cuBLAS) over the groups."""
    cupy = _cupy()
    cols = im2col_cupy(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       kernel=w.shape[2:], out_size=output_size)
    out = cupy.matmul(w.reshape(groups, w.shape[0] // groups, -1), cols)
    return cupy.ascontiguousarray(cupy.swapaxes(out.reshape((w.shape[0], x.shape[0])
                                                            + output_size), 0, 1))


def conv_transpose_cupy(g, w, *, stride, padding, dilation, groups, input_size) -> Any:
    """T(g, w): one strided-batched GEMM, then col2im as one ``cupyx.scatter_add``."""
    cupy = _cupy()
    import cupyx  # noqa: PLC0415

    kernel, out_size, c, n = w.shape[2:], g.shape[2:], groups * w.shape[1], g.shape[0]
    w3_t = cupy.swapaxes(w.reshape(groups, w.shape[0] // groups, -1), 1, 2)
    g3 = cupy.swapaxes(g.reshape(n, g.shape[1], -1), 0, 1).reshape(groups, g.shape[1] // groups,
                                                                    -1)
    dcols = cupy.matmul(w3_t, g3).reshape((c,) + kernel + (n,) + out_size)
    acc = cupy.zeros((c, n) + padded_size(input_size, padding), dcols.dtype)
    cupyx.scatter_add(acc, _col2im_index(cupy, dcols.ndim, c, n, kernel, stride, dilation,
                                         out_size), dcols)
    return cupy.ascontiguousarray(cupy.swapaxes(acc[interior((None, None) + input_size,
                                                             padding)], 0, 1))


def _col2im_index(cupy, ndim: int, c: int, n: int, kernel, stride, dilation, out_size) -> tuple:
    """Where each entry of dcols (C, *kernel, N, *out) lands in (C, N, *padded): broadcast
    index arrays, padded position = offset d + output position s on each spatial axis."""
    def along(values, axis):
        return values.reshape(tuple(values.size if a == axis else 1 for a in range(ndim)))

    nk = len(kernel)
    spatial = tuple(along(cupy.arange(k) * d, 1 + a) + along(cupy.arange(o) * s, 2 + nk + a)
                    for a, (k, s, d, o) in enumerate(zip(kernel, stride, dilation, out_size)))
    return (along(cupy.arange(c), 0), along(cupy.arange(n), 1 + nk)) + spatial


def conv_weight_cupy(x, g, *, stride, padding, dilation, groups, kernel_size) -> Any:
    """W(x, g): im2col again, one strided-batched GEMM."""
    cupy = _cupy()
    cols = im2col_cupy(x, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       kernel=kernel_size, out_size=g.shape[2:])
    n, o = g.shape[:2]
    g3 = cupy.swapaxes(g.reshape(n, o, -1), 0, 1).reshape(groups, o // groups, -1)
    dw = cupy.matmul(g3, cupy.swapaxes(cols, 1, 2))
    return dw.reshape((o, x.shape[1] // groups) + kernel_size)

"""Compiled 2-d convolution kernels (numba), the ``[fast]`` extra: direct convolution at stride 1.

Imported only when :mod:`chainrule.ops.conv.dispatch` picks them, so ``import chainrule`` never
imports numba. The NumPy kernels of :mod:`chainrule.ops.conv.kernels` stay the reference; these
are tested against them (``tests/ops/test_conv_compiled.py``).

The idea: lay the zero-padded input out channel first, every image's (Hp, Wp) plane flattened one
after another: planes (C, N Hp Wp). Output position p = n Hp Wp + h Wp + w reads, for kernel tap
(i, j), position p + s with s = i d_h Wp + j d_w. So

    out[o, p] = sum_c sum_k w[o, c, k] planes[c, p + s_k]

is, for every (o, c, k), one multiply-add of a *contiguous* shifted row: no im2col matrix. The
positions with w >= Wo or h >= Ho are junk (they wrap into the next row or image) and are
skipped when each chunk's result rows are written into (N, O, Ho, Wo) (``_scatter``). The
microkernel (``_axpy_4x3``) updates 4 output channels from 3 taps at once, so each loaded input
vector serves 12 multiply-adds with the weights in registers (one channel and one tap at a time
ran at 8-27 GFLOP/s a core here, this at 62 on an L1-sized chunk); work is split into chunks of
positions small enough for L1, one parallel item per (chunk, block of 4 output channels).

The three convolutions of :mod:`chainrule.ops.conv.primitives` are this one kernel and a
reduction:

* C(x, w): the sum above.
* T(g, w): the same sum with w's channels exchanged and its taps reversed, over g placed at
  offset s_max of a zero grid (input positions q receive sum_k w_k g[q - s_k]).
* W(x, g): dw[o, c, k] = sum_n sum_p g[n, o, p] xpad[n, c, p + s_k], dot products of contiguous
  rows (``_dot_4x3``: 4 output channels by 3 taps, 12 accumulators).

Numerics: ``fastmath`` is limited to contraction (FMA) and reassociation (the dot products'
vector reduction); NaN and infinity propagate as in NumPy. Threads: numba's parallel loops run
in its OpenMP layer (else workqueue) unless NUMBA_THREADING_LAYER says otherwise, with
OMP_WAIT_POLICY=PASSIVE unless set, so one pool (OpenMP's or OpenBLAS's) works at a time instead
of both spinning on 2 cores. Launches hold ``_LAUNCH``: the workqueue layer must not be entered
by two threads at once, and one pool per process at a time is the point. Compiled code is cached
on disk (``cache=True``: ``__pycache__`` beside this file, or numba's user cache directory when
that is read-only), so only the first run on a machine compiles (a few seconds per dtype).
"""

from __future__ import annotations

import os
import threading

# OpenMP's workers sleep as soon as a parallel loop ends instead of spinning, leaving the cores to
# OpenBLAS's threads (set before numba loads the OpenMP runtime; a value the user set is kept).
# Measured: with spinning workers a LeNet step whose layers alternate between these kernels and
# OpenBLAS's GEMMs took 30-34 ms instead of 20-26 ms, and a digits-CNN epoch 1.0-1.1 s instead
# of 0.32 s (docs/benchmarks.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import prange  # noqa: E402

if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
    # OpenMP first, then workqueue: in a LeNet step workqueue's launches cost 30 ms where
    # OpenMP's cost 21 ms (docs/benchmarks.md); setattr: numba.config's attributes are made at
    # run time
    setattr(numba.config, "THREADING_LAYER_PRIORITY", ["omp", "workqueue", "tbb"])  # noqa: B010

_FAST = {"contract", "reassoc", "nsz"}  # FMA and vector reductions; NaN and inf kept
_LAUNCH = threading.Lock()  # one launch at a time (the workqueue layer requires it too)
OUT_BLOCK, TAP_BLOCK = 4, 3  # the microkernels' register block


# ---------------------------------------------------------------- microkernels
@numba.njit(fastmath=_FAST, inline="always", cache=True)
def _axpy_4x3(a0, a1, a2, a3, row, s0, s1, s2, w, length):  # pragma: no cover (compiled)
    """a_j[p] += sum_t w[j, t] row[s_t + p] for 4 outputs j and 3 taps t."""
    x0 = row[s0:s0 + length]  # slices: indices then start at 0, so no negative-index checks
    x1 = row[s1:s1 + length]
    x2 = row[s2:s2 + length]
    w00, w01, w02 = w[0, 0], w[0, 1], w[0, 2]
    w10, w11, w12 = w[1, 0], w[1, 1], w[1, 2]
    w20, w21, w22 = w[2, 0], w[2, 1], w[2, 2]
    w30, w31, w32 = w[3, 0], w[3, 1], w[3, 2]
    for p in range(length):  # written as chains of a += w v: three FMAs per output
        v0, v1, v2 = x0[p], x1[p], x2[p]
        a0[p] = ((a0[p] + w00 * v0) + w01 * v1) + w02 * v2
        a1[p] = ((a1[p] + w10 * v0) + w11 * v1) + w12 * v2
        a2[p] = ((a2[p] + w20 * v0) + w21 * v1) + w22 * v2
        a3[p] = ((a3[p] + w30 * v0) + w31 * v1) + w32 * v2


@numba.njit(fastmath=_FAST, inline="always", cache=True)
def _dot_4x3(g0, g1, g2, g3, row, s0, s1, s2, length, dst):  # pragma: no cover (compiled)
    """dst[j, t] += sum_p g_j[p] row[s_t + p] for 4 outputs j and 3 taps t."""
    x0 = row[s0:s0 + length]
    x1 = row[s1:s1 + length]
    x2 = row[s2:s2 + length]
    c00, c01, c02 = dst[0, 0], dst[0, 1], dst[0, 2]
    c10, c11, c12 = dst[1, 0], dst[1, 1], dst[1, 2]
    c20, c21, c22 = dst[2, 0], dst[2, 1], dst[2, 2]
    c30, c31, c32 = dst[3, 0], dst[3, 1], dst[3, 2]
    for p in range(length):
        v0, v1, v2 = x0[p], x1[p], x2[p]
        u = g0[p]
        c00 += u * v0
        c01 += u * v1
        c02 += u * v2
        u = g1[p]
        c10 += u * v0
        c11 += u * v1
        c12 += u * v2
        u = g2[p]
        c20 += u * v0
        c21 += u * v1
        c22 += u * v2
        u = g3[p]
        c30 += u * v0
        c31 += u * v1
        c32 += u * v2
    dst[0, 0], dst[0, 1], dst[0, 2] = c00, c01, c02
    dst[1, 0], dst[1, 1], dst[1, 2] = c10, c11, c12
    dst[2, 0], dst[2, 1], dst[2, 2] = c20, c21, c22
    dst[3, 0], dst[3, 1], dst[3, 2] = c30, c31, c32


# ---------------------------------------------------------------- parallel kernels
@numba.njit(inline="always", cache=True)
def _scatter(acc_row, start, plane, row_stride, corner, out_plane_of):  # pragma: no cover
    """out[n, h - r0, w - c0] = acc_row[p - start] for the grid positions p = n plane + h Wp + w
    of this chunk inside the window r0 <= h < r0 + rows, c0 <= w < c0 + cols (corner = (r0, c0);
    out_plane_of (N, rows, cols)): one contiguous copy per grid row."""
    r0, c0 = corner
    rows, cols = out_plane_of.shape[1], out_plane_of.shape[2]
    p, end = start, start + acc_row.shape[0]
    while p < end:
        n = p // plane
        h = (p - n * plane) // row_stride
        w = p - n * plane - h * row_stride
        row_end = min(end, p + row_stride - w)
        if r0 <= h < r0 + rows and w < c0 + cols:
            lo = max(w, c0)
            hi = min(c0 + cols, w + row_end - p)
            if lo < hi:
                out_plane_of[n, h - r0, lo - c0:hi - c0] = acc_row[p - start + lo - w:
                                                                   p - start + hi - w]
        p = row_end


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def _direct(planes, blocked, shifts, length, chunk, grid, corner, out):  # pragma: no cover
    """out[n, o, h - r0, w - c0] = sum_c sum_k w[o, c, k] planes[c, p + s_k] at the positions
    p = n Hp Wp + h Wp + w < length that fall in out's window (corner (r0, c0)).

    planes (C, >= length + s_max) flattened padded planes, every image one after the other;
    blocked (O4/4, C, K3/3, 4, 3) the weights in register blocks (zero-padded to whole blocks);
    shifts (K3,); grid (Hp, Wp); out (N, O, rows, cols). One parallel item per (chunk of
    positions, block of 4 output channels), the blocks of one chunk next to each other so they
    share its input rows in cache.
    """
    channels, n_out = planes.shape[0], out.shape[1]
    out_blocks, tap_blocks = blocked.shape[0], blocked.shape[2]
    plane, row_stride = grid[0] * grid[1], grid[1]
    n_chunks = (length + chunk - 1) // chunk
    for item in prange(n_chunks * out_blocks):
        start, ob = (item // out_blocks) * chunk, item % out_blocks
        size = min(chunk, length - start)
        acc = np.zeros((OUT_BLOCK, size), planes.dtype)
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        for c in range(channels):
            row = planes[c, start:]
            for t in range(tap_blocks):
                _axpy_4x3(a0, a1, a2, a3, row, shifts[3 * t], shifts[3 * t + 1],
                          shifts[3 * t + 2], blocked[ob, c, t], size)
        for j in range(OUT_BLOCK):
            if OUT_BLOCK * ob + j < n_out:
                _scatter(acc[j], start, plane, row_stride, corner, out[:, OUT_BLOCK * ob + j])


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def _correlate(planes, g_grid, shifts, length, chunk, parts):  # pragma: no cover (compiled)
    """parts[i] = sum over chunk i's positions p of g_grid[o, p] planes[c, p + s_k], blocked
    (O4/4, C, K3/3, 4, 3); g_grid (O4, >= length) is zero at junk positions and channels past O.
    One parallel item per (chunk, block of 4 output channels); parts starts at zero."""
    channels = planes.shape[0]
    n_chunks, out_blocks, _, tap_blocks = parts.shape[:4]
    for item in prange(n_chunks * out_blocks):
        chunk_index, ob = item // out_blocks, item % out_blocks
        start = chunk_index * chunk
        size = min(chunk, length - start)
        g0, g1 = g_grid[4 * ob, start:], g_grid[4 * ob + 1, start:]
        g2, g3 = g_grid[4 * ob + 2, start:], g_grid[4 * ob + 3, start:]
        for c in range(channels):
            row = planes[c, start:]
            for t in range(tap_blocks):
                _dot_4x3(g0, g1, g2, g3, row, shifts[3 * t], shifts[3 * t + 1],
                         shifts[3 * t + 2], size, parts[chunk_index, ob, c, t])


@numba.njit(parallel=True, cache=True)
def _embed(src, dst, offset, grid, corner):  # pragma: no cover (compiled)
    """dst[c, offset + n Hp Wp + (h + r0) Wp + w + c0] = src[n, c, h, w]: images (N, C, H, W)
    into flattened channel-first planes (C, ...); one parallel item per (image, channel)."""
    n_images, channels, rows, cols = src.shape
    plane, row_stride = grid[0] * grid[1], grid[1]
    for item in prange(n_images * channels):
        n, c = item // channels, item % channels
        base = offset + n * plane + corner[0] * row_stride + corner[1]
        for h in range(rows):
            dst[c, base + h * row_stride:base + h * row_stride + cols] = src[n, c, h]


def embed(src: np.ndarray, dst: np.ndarray, *, offset: int, grid: tuple, corner: tuple) -> None:
    """Images (N, C, H, W) into the planes ``dst`` (C, ...) at ``offset``, each at ``corner`` of
    its (Hp, Wp) grid; what lies outside is left as it is (zero, in the callers' buffers)."""
    with _LAUNCH:
        _embed(src, dst, offset, grid, corner)


# ---------------------------------------------------------------- layout helpers (NumPy)
def _whole(n: int, block: int) -> int:
    return -(-n // block) * block


def tap_shifts(kernel: tuple, dilation: tuple, row_stride: int) -> np.ndarray:
    """s_k = i d_h Wp + j d_w for the taps in row-major order, zero-padded to whole blocks of 3
    (the padding taps get zero weights)."""
    (kh, kw), (dh, dw) = kernel, dilation
    shifts = np.zeros(_whole(kh * kw, TAP_BLOCK), np.int64)
    shifts[:kh * kw] = [i * dh * row_stride + j * dw for i in range(kh) for j in range(kw)]
    return shifts


def block_weights(w3: np.ndarray, taps: int) -> np.ndarray:
    """(O, C, K) -> (O4/4, C, K3/3, 4, 3): register blocks, zeros past O and K."""
    o, c, k = w3.shape
    padded = np.zeros((_whole(o, OUT_BLOCK), c, taps), w3.dtype)
    padded[:o, :, :k] = w3
    blocks = padded.reshape(-1, OUT_BLOCK, c, taps // TAP_BLOCK, TAP_BLOCK)
    return np.ascontiguousarray(blocks.transpose(0, 2, 3, 1, 4))


def unblock_weights(blocks: np.ndarray, o: int, k: int) -> np.ndarray:
    """The inverse of :func:`block_weights`: (O4/4, C, K3/3, 4, 3) -> (O, C, K)."""
    ob, c, tb = blocks.shape[:3]
    return blocks.transpose(0, 3, 1, 2, 4).reshape(ob * OUT_BLOCK, c, tb * TAP_BLOCK)[:o, :, :k]


# ---------------------------------------------------------------- the three convolutions
CHUNK_BYTES = 4096  # one row of a chunk: 4 accumulator rows (16 KB) and the input rows stay in
# the 32 KB L1 cache (measured: the microkernel ran 62 GFLOP/s a core on 1024 float32 positions,
# 35 on 2048)


def _chunk(dtype: np.dtype) -> int:
    """Positions per parallel item."""
    return CHUNK_BYTES // np.dtype(dtype).itemsize


def conv(planes: np.ndarray, w: np.ndarray, *, shifts: np.ndarray, grid: tuple,
         out: np.ndarray) -> None:
    """C(x, w) into ``out`` (N, O, Ho, Wo), from ``planes`` (C, N Hp Wp), grid = (Hp, Wp)."""
    blocked = block_weights(w.reshape(w.shape[0], w.shape[1], -1), len(shifts))
    length = out.shape[0] * grid[0] * grid[1] - int(shifts.max())
    with _LAUNCH:
        _direct(planes, blocked, shifts, length, _chunk(planes.dtype), grid, (0, 0), out)


def conv_transpose(g_grid: np.ndarray, w: np.ndarray, *, shifts: np.ndarray, grid: tuple,
                   corner: tuple, out: np.ndarray) -> None:
    """T(g, w) into ``out`` (N, C, H, W), the window of the padded grid (Hp, Wp) at ``corner``,
    from g placed at offset s_max of a zero grid ``g_grid`` (O, s_max + N Hp Wp): w's channels
    exchanged and its taps reversed (see the module)."""
    flipped = np.swapaxes(w.reshape(w.shape[0], w.shape[1], -1), 0, 1)[:, :, ::-1]
    length = out.shape[0] * grid[0] * grid[1]
    with _LAUNCH:
        _direct(g_grid, block_weights(flipped, len(shifts)), shifts, length,
                _chunk(g_grid.dtype), grid, corner, out)


def conv_weight(planes: np.ndarray, g_grid: np.ndarray, *, shifts: np.ndarray, length: int,
                out_channels: int, taps: int) -> np.ndarray:
    """W(x, g) as (O, C, K), a new array; ``g_grid`` (O4, >= length) zero at junk positions and
    at channels past O."""
    chunk = _chunk(planes.dtype)
    n_chunks = -(-length // chunk)
    parts = np.zeros((n_chunks, g_grid.shape[0] // OUT_BLOCK, planes.shape[0],
                      len(shifts) // TAP_BLOCK, OUT_BLOCK, TAP_BLOCK), planes.dtype)
    with _LAUNCH:
        _correlate(planes, g_grid, shifts, length, chunk, parts)
    return np.ascontiguousarray(unblock_weights(parts.sum(axis=0), out_channels, taps))

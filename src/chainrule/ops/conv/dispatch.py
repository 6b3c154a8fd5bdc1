"""Which host kernel runs a convolution: the compiled direct kernel or NumPy's im2col + GEMM.

The NumPy kernels (:mod:`chainrule.ops.conv.kernels`) are the reference and run everything. The
compiled kernels (:mod:`chainrule.ops.conv.compiled`, numba, ``pip install chainrule[fast]``)
run a call when every row of ``RULES`` holds; the first row that fails names why not
(:func:`choice`). The rows come from measurements (docs/benchmarks.md, "Issue 13: the compiled
convolution"), not guesses:

* stride 1 only: the direct kernel walks the flattened padded grid at stride 1; at stride 2 it
  would compute 4x the outputs and drop 3 of 4, where im2col copies only the needed windows.
* groups 1: grouped and depthwise convolutions keep the per-group GEMMs.
* at least 2 taps: a 1x1 convolution *is* one GEMM, which OpenBLAS does best.
* padded planes of at least 12x12 positions: on the 8x8 digits (10x10 padded planes) the
  NumPy kernels were faster, on LeNet's 28x28 and 13x13 planes the compiled ones.
* 2-d, one float dtype (float32 or float64) for both operands.

``CHAINRULE_CONV_KERNELS=numpy`` (read at import) or ``with prefer("numpy"):`` (this thread only,
as grad mode) turns the compiled path off; ``prefer("compiled")`` runs it wherever it can, even
where the "faster" rows say NumPy is faster. Tests use both to compare the two.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import threading
from typing import Any, Callable, Iterator, NamedTuple, Optional

import numpy as np

from chainrule.ops.conv import kernels

__all__ = ["RULES", "choice", "compiled_available", "prefer", "conv_host", "conv_transpose_host",
           "conv_weight_host"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_DISABLED = os.environ.get("CHAINRULE_CONV_KERNELS", "auto") == "numpy"
_NUMBA = importlib.util.find_spec("numba") is not None  # found, not imported
_local = threading.local()


class Call(NamedTuple):
    """What the rules look at: the operands' dtypes, the spatial rank, stride, groups, kernel
    taps and the positions of one padded input plane."""

    dtypes: tuple
    rank: int
    stride: tuple
    groups: int
    taps: int
    plane: int


# A row is (kind, condition, test). "needs" rows are what the compiled kernels can do; "faster"
# rows are where they were measured faster (prefer("compiled") skips those, for tests).
# fmt: off
RULES: tuple[tuple[str, str, Callable[[Call], bool]], ...] = (
    ("needs",  "numba is installed (pip install chainrule[fast])", lambda c: _NUMBA),
    ("needs",  "CHAINRULE_CONV_KERNELS is not 'numpy'",            lambda c: not _DISABLED),
    ("needs",  "this thread does not prefer 'numpy'",              lambda c: not _numpy_pinned()),
    ("needs",  "2-d",                                              lambda c: c.rank == 2),
    ("needs",  "stride 1",                                         lambda c: set(c.stride) == {1}),
    ("needs",  "groups 1",                                         lambda c: c.groups == 1),
    ("needs",  "one float dtype",                                  lambda c: _one_float(c.dtypes)),
    ("faster", "at least 2 taps (1x1 is one GEMM)",                lambda c: c.taps >= 2),
    ("faster", "padded planes of at least 12x12 positions",        lambda c: c.plane >= 144),
)
# fmt: on


def compiled_available() -> bool:
    """Whether numba is installed, so the compiled kernels can run at all."""
    return _NUMBA


def choice(call: Call) -> tuple[str, Optional[str]]:
    """("compiled", None) or ("numpy", the first rule that does not hold)."""
    forced = _preference() == "compiled"
    for kind, name, holds in RULES:
        if not (forced and kind == "faster") and not holds(call):
            return "numpy", name
    return "compiled", None


def _preference() -> str:
    return getattr(_local, "preference", "auto")


def _numpy_pinned() -> bool:
    """``prefer("numpy")`` holds in this thread."""
    return _preference() == "numpy"


def _one_float(dtypes: tuple) -> bool:
    return len(set(dtypes)) == 1 and dtypes[0] in _FLOATS


@contextlib.contextmanager
def prefer(kernels_name: str) -> Iterator[None]:
    """This thread's convolutions, inside the block: "auto" (the rules decide), "numpy" (the
    reference kernels), "compiled" (the compiled kernels wherever they can run, even where
    measured slower: for tests)."""
    if kernels_name not in ("auto", "numpy", "compiled"):
        raise ValueError(f"prefer({kernels_name!r}): use 'auto', 'numpy' or 'compiled'")
    previous = _preference()
    _local.preference = kernels_name
    try:
        yield
    finally:
        _local.preference = previous


def _compiled(a: np.ndarray, b: np.ndarray, *, stride: tuple, groups: int, kernel: tuple,
              spatial: tuple, padding: tuple) -> bool:
    """Whether the compiled kernels run this call (a, b: the primitive's operands)."""
    plane = math.prod(kernels.padded_size(tuple(spatial), padding))
    call = Call((a.dtype, b.dtype), a.ndim - 2, stride, groups, math.prod(kernel), plane)
    return choice(call)[0] == "compiled"


def _module() -> Any:
    from chainrule.ops.conv import compiled  # noqa: PLC0415 -- numba loads on first use only

    return compiled


# ---------------------------------------------------------------- the primitives' host kernels
# The compiled kernels work on every image's padded plane flattened one after the other, channel
# first: (C, N * Hp * Wp). Output position p = n Hp Wp + h Wp + w; see compiled.py.
def conv_host(x, w, *, stride, padding, dilation, groups, output_size) -> Any:
    """C(x, w) on the host."""
    if not _compiled(x, w, stride=stride, groups=groups, kernel=w.shape[2:],
                     spatial=x.shape[2:], padding=padding):
        return kernels.conv_numpy(x, w, stride=stride, padding=padding, dilation=dilation,
                                  groups=groups, output_size=output_size)
    compiled = _module()
    planes, grid = _planes(x, padding)
    out = np.empty((x.shape[0], w.shape[0]) + tuple(output_size), x.dtype)
    compiled.conv(planes, w, shifts=compiled.tap_shifts(w.shape[2:], dilation, grid[1]),
                  grid=grid, out=out)
    return out


def conv_transpose_host(g, w, *, stride, padding, dilation, groups, input_size) -> Any:
    """T(g, w) on the host."""
    if not _compiled(g, w, stride=stride, groups=groups, kernel=w.shape[2:],
                     spatial=input_size, padding=padding):
        return kernels.conv_transpose_numpy(g, w, stride=stride, padding=padding,
                                            dilation=dilation, groups=groups,
                                            input_size=input_size)
    compiled = _module()
    grid = kernels.padded_size(tuple(input_size), padding)
    shifts = compiled.tap_shifts(w.shape[2:], dilation, grid[1])
    g_grid = _on_grid(g, g.shape[1], grid, offset=int(shifts.max()))
    out = np.empty((g.shape[0], w.shape[1]) + tuple(input_size), g.dtype)
    compiled.conv_transpose(g_grid, w, shifts=shifts, grid=grid,
                            corner=(padding[0][0], padding[1][0]), out=out)
    return out


def conv_weight_host(x, g, *, stride, padding, dilation, groups, kernel_size) -> Any:
    """W(x, g) on the host."""
    if not _compiled(x, g, stride=stride, groups=groups, kernel=kernel_size,
                     spatial=x.shape[2:], padding=padding):
        return kernels.conv_weight_numpy(x, g, stride=stride, padding=padding,
                                         dilation=dilation, groups=groups,
                                         kernel_size=kernel_size)
    compiled = _module()
    n, o = g.shape[:2]
    planes, (hp, wp) = _planes(x, padding)
    shifts = compiled.tap_shifts(kernel_size, dilation, wp)
    channels = -(-o // compiled.OUT_BLOCK) * compiled.OUT_BLOCK
    g_grid = _on_grid(g, channels, (hp, wp), offset=0)
    dw = compiled.conv_weight(planes, g_grid, shifts=shifts,
                              length=n * hp * wp - int(shifts.max()), out_channels=o,
                              taps=math.prod(kernel_size))
    return dw.reshape((o, x.shape[1]) + tuple(kernel_size))


def _planes(x: np.ndarray, padding: tuple) -> tuple[np.ndarray, tuple]:
    """x zero-padded, channel first, flattened: (C, N * Hp * Wp) in a reused workspace buffer
    whose border is never written (so it stays zero: the key holds the geometry); and (Hp, Wp)."""
    n, c = x.shape[:2]
    grid = kernels.padded_size(x.shape[2:], padding)
    planes, _ = kernels.workspace().get(("planes", padding, grid), (c, n * grid[0] * grid[1]),
                                        x.dtype, fill=0)
    _module().embed(x, planes, offset=0, grid=grid, corner=(padding[0][0], padding[1][0]))
    return planes, grid


def _on_grid(g: np.ndarray, channels: int, grid: tuple, offset: int) -> np.ndarray:
    """(channels, offset + N * Hp * Wp) zeros with g[n, o, h, w] at offset + n Hp Wp + h Wp + w:
    a reused workspace buffer; only that region is ever written (its key holds the geometry), so
    every other entry stays zero (junk positions, channels past O)."""
    n, o, ho, wo = g.shape
    key = ("on_grid", (ho, wo), grid, offset)
    buffer, _ = kernels.workspace().get(key, (channels, offset + n * grid[0] * grid[1]), g.dtype,
                                        fill=0)
    _module().embed(g, buffer, offset=offset, grid=grid, corner=(0, 0))
    return buffer

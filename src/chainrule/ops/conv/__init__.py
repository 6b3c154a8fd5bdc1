"""Deep-learning convolution and pooling: cross-correlation in PyTorch's layout
``(N, C, *spatial)``.

Three primitives close the convolution under differentiation. With C(x, w) the convolution,
T(g, w) its adjoint in x (the transposed convolution) and W(x, g) its adjoint in w:

    C(x, w):  dx = T(g, w)            dw = W(x, g)
    T(g, w):  dg = C(h, w)            dw = W(h, g)
    W(x, g):  dx = T(g, k)            dg = C(x, k)

so every VJP is again a convolution and derivatives of any order work (``create_graph=True``).
Implementation (NumPy): the padded input is cut into windows by stride tricks and copied once
into an im2col matrix (G, Cg*K, N*L) held in a reusable workspace (fresh 30 MB temporaries cost
page faults on every step); the forward and the weight gradient are one GEMM each (the weight
gradient reuses the forward's im2col matrix, see ``SavedColumns``); the input gradient is one
GEMM followed by a strided add per kernel offset (col2im), never ``np.add.at``; at stride 1
those adds run on the flattened padded grid, one contiguous add per offset (``_col2im_flat``).
Other array-API namespaces run generic kernels (the standard only: slices, ``stack``,
``matmul``); CuPy has its own fast kernels (strided windows, batched GEMM, ``scatter_add``).

Threads and backends: the workspace and the saved columns are per backend and per thread (one
``ConvScratch`` in each backend's ``threading.local`` ``scratch``), so calls in different threads
never share scratch memory, and what a call returns is never workspace memory (a later call
would overwrite it). A thread's scratch goes when it ends; a saved im2col matrix is freed as soon
as its input array and the weight of its forward have both died.

Pooling: ``max_pool`` (gradient to the *first* maximum of each window, as PyTorch) and
``avg_pool`` are primitives whose VJPs are again pooling-shaped primitives (a scatter to the
arg-max and its gather; the average and its adjoint), so they too have higher derivatives.

Modules: ``sizes`` (shape arithmetic), ``workspace`` (scratch state), ``kernels`` (im2col, GEMM,
col2im per backend), ``primitives`` (the three convolutions and their rules), ``pooling`` (the
pooling primitives), ``functional`` (argument parsing and the public functions).
"""

from __future__ import annotations

from chainrule.ops.conv.functional import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from chainrule.ops.conv.workspace import SavedColumns as _SavedColumns  # noqa: F401 (tests)
from chainrule.ops.conv.workspace import _caches, _held_nbytes  # noqa: F401 (tests)

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
    "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "max_unpool1d",
    "max_unpool2d", "conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d",
]

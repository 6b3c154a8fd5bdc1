"""Signal processing: N-D ``convolve`` and ``correlate`` with ``scipy.signal``'s semantics.

Convolution flips the kernel; cross-correlation does not::

    convolve:   (x * k)[n] = sum_m x[m] k[n - m]     (= sum_m x[n - m] k[m])
    correlate:  (x ⋆ k)[n] = sum_m x[n + m] k[m]     (slide k over x, no flip)

so ``convolve(x, k) == correlate(x, k[::-1])``. What deep-learning layers call a convolution
(``conv2d``) is the cross-correlation: their kernels are learned, so the flip would only relabel
the weights. A tiny example, x = [1, 2, 3, 4] and k = [1, 0, 2]::

    convolve(x, k, 'valid')  = [1*2 + 2*0 + 3*1, 2*2 + 3*0 + 4*1] = [5, 8]
    correlate(x, k, 'valid') = [1*1 + 2*0 + 3*2, 2*1 + 3*0 + 4*2] = [7, 10]   (what conv1d gives)

Modes, per axis with input length N and kernel length M (as ``scipy.signal``):

* ``'full'``  every overlap, length N + M - 1;
* ``'valid'`` only full overlaps, length N - M + 1; when the kernel is at least as large as the
  input in every axis the roles swap (length M - N + 1, as SciPy), otherwise a ``ShapeError``;
* ``'same'``  the shape of ``x``, the centre of ``'full'`` (from index (M - 1) // 2). Unlike
  ``numpy.convolve``, whose ``'same'`` has length max(N, M).

One primitive, ``correlate_valid`` (out[n] = sum_m x[n + m] k[m], x at least as large as k), does
the arithmetic; everything else is that primitive composed with ``pad``, slices and flips. Its
VJPs are again ``correlate_valid`` (so second derivatives work)::

    d/dx = full convolution of g with k = correlate_valid(pad(g, M - 1), flip(k))
    d/dk = correlate_valid(x, g)

Kernels: NumPy views the windows of x in place (``sliding_window_view``, no copy) and contracts
them with k in one ``tensordot``. Every other backend runs the standard-only kernel: one shifted
slice of x per kernel offset m, stacked into windows of shape out + (prod(M),), then one
``matmul`` with k flattened -- prod(M) copies of the output's size, correctness before speed.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.shape import getitem, pad

__all__ = ["convolve", "correlate"]

_MODES = ("full", "valid", "same")


def _correlate_valid_impl(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    windows = sliding_window_view(x, k.shape) if k.ndim else x  # shape out + k.shape
    return np.tensordot(windows, k, axes=k.ndim)


def _correlate_valid_generic(xp, x, k):
    """out[n] = sum_m x[n + m] k[m] with the standard only: windows[..., j] = x[n + m_j]."""
    backend = backends.backend_of(x)
    dtype = backend.dtype(np.result_type(backend.np_dtype(x.dtype), backend.np_dtype(k.dtype)))
    x, k = xp.astype(x, dtype, copy=False), xp.astype(k, dtype, copy=False)
    if k.ndim == 0:
        return xp.multiply(x, k)
    out_shape = [n - m + 1 for n, m in zip(x.shape, k.shape)]
    offsets = np.ndindex(*k.shape)  # C order, as reshape flattens k
    windows = xp.stack([x[tuple(slice(m, m + o) for m, o in zip(offset, out_shape))]
                        for offset in offsets], axis=-1)
    return xp.matmul(windows, xp.reshape(k, (-1,)))


def _correlate_valid_abstract(x: ShapeDtype, k: ShapeDtype) -> ShapeDtype:
    """Shape N - M + 1 per axis (x at least as large as k), dtype of x and k promoted."""
    if x.ndim != k.ndim or any(n < m for n, m in zip(x.shape, k.shape)):
        raise ShapeError(f"correlate_valid: x of shape {x.shape} must be at least as large as "
                         f"k of shape {k.shape} in every axis")
    shape = tuple(n - m + 1 for n, m in zip(x.shape, k.shape))
    return ShapeDtype(shape, np.result_type(x.dtype, k.dtype), x.device)


def _flip(x: Tensor) -> Tensor:
    """x reversed along every axis."""
    return getitem(x, (slice(None, None, -1),) * x.ndim) if x.ndim else x


def _pad_by_kernel(x: Tensor, k_shape: tuple) -> Tensor:
    """x with len - 1 zeros on both sides of every axis, len from ``k_shape``."""
    widths = [(m - 1, m - 1) for m in k_shape]
    return pad(x, widths) if any(m > 1 for m in k_shape) else x


def _correlate_valid_vjp_x(g, out, x, k):
    return correlate_valid_p.bind(_pad_by_kernel(g, k.shape), _flip(k))


def _correlate_valid_vjp_k(g, out, x, k):
    return correlate_valid_p.bind(x, g)


# fmt: off
correlate_valid_p = Primitive("correlate_valid", _correlate_valid_impl,
                              generic=_correlate_valid_generic,
                              abstract_eval=_correlate_valid_abstract, smooth=True).defvjp(
    _correlate_valid_vjp_x, _correlate_valid_vjp_k)
# fmt: on


def _prepare(name: str, x, k, mode: str) -> tuple[Tensor, Tensor]:
    if isinstance(x, Tensor) or not isinstance(k, Tensor):
        x = as_tensor(x)
        k = as_tensor(k, like=x)
    else:
        k = as_tensor(k)
        x = as_tensor(x, like=k)
    if mode not in _MODES:
        raise ValueError(f"{name}: mode={mode!r} is not one of {', '.join(map(repr, _MODES))}")
    if x.ndim != k.ndim:
        raise ShapeError(f"{name}: x and k must have the same number of dimensions, "
                         f"got shapes {x.shape} ({x.ndim}-D) and {k.shape} ({k.ndim}-D)")
    if x.size == 0 or k.size == 0:
        raise ShapeError(f"{name}: empty input (x has shape {x.shape}, k has shape {k.shape})")
    return x, k


def _correlate(x: Tensor, k: Tensor, mode: str, name: str) -> Tensor:
    if mode == "valid":
        if all(n >= m for n, m in zip(x.shape, k.shape)):
            return correlate_valid_p.bind(x, k)
        if all(m >= n for n, m in zip(x.shape, k.shape)):  # SciPy swaps the inputs and reverses
            return _flip(correlate_valid_p.bind(k, x))
        raise ShapeError(f"{name}: mode 'valid' needs x or k at least as large as the other in "
                         f"every axis, got shapes {x.shape} and {k.shape}")
    full = correlate_valid_p.bind(_pad_by_kernel(x, k.shape), k)
    if mode == "full" or full.shape == x.shape:
        return full
    start = [(m - 1) // 2 for m in k.shape]  # 'same': x's shape, centred in 'full' as SciPy
    return getitem(full, tuple(slice(s, s + n) for s, n in zip(start, x.shape)))


def correlate(x, k, mode: str = "full") -> Tensor:
    """N-D cross-correlation, out[n] = sum_m x[n + m] k[m] (no flip), as ``scipy.signal.correlate``.

    ``mode`` is ``'full'``, ``'valid'`` or ``'same'`` (see the module docstring); x and k must have
    the same number of dimensions. Differentiable in both arguments.
    """
    x, k = _prepare("correlate", x, k, mode)
    return _correlate(x, k, mode, "correlate")


def convolve(x, k, mode: str = "full") -> Tensor:
    """N-D convolution, (x * k)[n] = sum_m x[m] k[n - m], as ``scipy.signal.convolve``.

    ``convolve(x, k, mode) == correlate(x, flip(k), mode)``; ``mode`` is ``'full'``, ``'valid'`` or
    ``'same'``; x and k must have the same number of dimensions. In 1-D, ``'full'`` and ``'valid'``
    equal ``numpy.convolve`` (whose ``'same'`` differs when k is longer than x). Differentiable in
    both arguments.
    """
    x, k = _prepare("convolve", x, k, mode)
    return _correlate(x, _flip(k), mode, "convolve")

"""Pooling primitives: max and average over windows, and their adjoints.

``max_pool`` (gradient to the *first* maximum of each window, as PyTorch) and ``avg_pool`` are
primitives whose VJPs are again pooling-shaped primitives (a scatter to the arg-max and its
gather; the average and its adjoint), so they too have higher derivatives. Each has a NumPy
kernel (strided views of a reused padded buffer, ``out=`` ufuncs) and a generic one (the standard
only: one strided slice per kernel offset, ``where`` for the masks, slice assignment for the
scatters), which CuPy runs too.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from chainrule import backends
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.conv.kernels import (
    interior,
    offset_slices,
    offset_views,
    padded_generic,
    padded_numpy,
    padded_size,
)
from chainrule.ops.primitive import Primitive

__all__ = ["max_pool_p", "max_pool_scatter_p", "max_pool_gather_p", "avg_pool_p",
           "avg_pool_adjoint_p", "max_pool_indices_p"]


def _windows_disjoint(kernel, stride, dilation) -> bool:
    """True when no input position lies in two windows, so scatters may write instead of add."""
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


# ---------------------------------------------------------------- NumPy kernels
def _max_pool_numpy(x, *, kernel, stride, padding, dilation, output_size):
    views = offset_views(padded_numpy(x, padding, -np.inf), kernel, stride, dilation, output_size)
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
    xp = padded_numpy(x, padding, -np.inf)
    for offset, view in offset_views(xp, kernel, stride, dilation, output_size):
        mask = np.equal(view, best)
        np.greater(mask, taken, out=mask)  # mask and not taken: a later tie does not take over
        np.logical_or(taken, mask, out=taken)
        masks.append((offset, mask))
    return masks


def _max_pool_scatter_numpy(g, x, best, **params):
    """Each window's gradient goes to the position of its first maximum (overlaps accumulate)."""
    padded = padded_size(x.shape[2:], params["padding"])
    dx = np.zeros(x.shape[:2] + padded, dtype=g.dtype)
    disjoint = _windows_disjoint(params["kernel"], params["stride"], params["dilation"])
    for offset, mask in _argmax_masks(x, best, **params):
        target = dx[offset_slices(offset, params["stride"], params["dilation"],
                                  params["output_size"])]
        if disjoint:
            np.multiply(g, mask, out=target)  # each position is written once: no temporary, no add
        else:
            target += g * mask
    return dx[interior(x.shape, params["padding"])]


def _max_pool_gather_numpy(h, x, best, **params):
    """The adjoint of the scatter: each window reads ``h`` at its arg-max position."""
    hp = padded_numpy(h, params["padding"], 0.0)
    out = np.zeros(x.shape[:2] + params["output_size"], dtype=h.dtype)
    for offset, mask in _argmax_masks(x, best, **params):
        np.copyto(out, hp[offset_slices(offset, params["stride"], params["dilation"],
                                        params["output_size"])],
                  where=mask)  # exactly one offset per window holds the arg-max
    return out


def _avg_pool_numpy(x, *, kernel, stride, padding, output_size, divisor):
    out = np.zeros(x.shape[:2] + output_size, dtype=x.dtype)
    xp = padded_numpy(x, padding, 0.0)
    for _, view in offset_views(xp, kernel, stride, (1,) * len(kernel), output_size):
        out += view
    out /= divisor
    return out


def _avg_pool_adjoint_numpy(g, *, kernel, stride, padding, output_size, divisor, input_size):
    dx = np.zeros(g.shape[:2] + padded_size(input_size, padding), dtype=g.dtype)
    share = g / divisor
    for offset in itertools.product(*map(range, kernel)):
        dx[offset_slices(offset, stride, (1,) * len(kernel), output_size)] += share
    return dx[interior((None, None) + input_size, padding)]


# ---------------------------------------------------------------- generic kernels (standard only)
def _lowest(xp, dtype) -> Any:
    """The padding of max pooling: -inf, or the integer dtype's minimum (NumPy's cast of -inf)."""
    if xp.isdtype(dtype, "bool"):
        return False
    return -xp.inf if xp.isdtype(dtype, "real floating") else xp.iinfo(dtype).min


def _max_pool_generic(xp, x, *, kernel, stride, padding, dilation, output_size):
    padded = padded_generic(xp, x, padding, _lowest(xp, x.dtype))
    views = offset_views(padded, kernel, stride, dilation, output_size)
    _, out = next(views)
    for _, view in views:
        out = xp.maximum(out, view)
    return out


def _argmax_masks_generic(xp, x, best, *, kernel, stride, padding, dilation, output_size):
    """As ``_argmax_masks``: per offset, where it holds its window's first maximum."""
    taken = xp.zeros(best.shape, dtype=xp.bool, device=best.device)
    padded = padded_generic(xp, x, padding, _lowest(xp, x.dtype))
    for offset, view in offset_views(padded, kernel, stride, dilation, output_size):
        mask = xp.logical_and(view == best, xp.logical_not(taken))
        taken = xp.logical_or(taken, mask)
        yield offset, mask


def _max_pool_scatter_generic(xp, g, x, best, **params):
    dx = xp.zeros(x.shape[:2] + padded_size(x.shape[2:], params["padding"]), dtype=g.dtype,
                  device=g.device)
    zero = xp.zeros_like(g)
    for offset, mask in _argmax_masks_generic(xp, x, best, **params):
        where = offset_slices(offset, params["stride"], params["dilation"], params["output_size"])
        dx[where] = dx[where] + xp.where(mask, g, zero)
    return dx[interior(x.shape, params["padding"])]


def _max_pool_gather_generic(xp, h, x, best, **params):
    hp = padded_generic(xp, h, params["padding"], 0)
    out = xp.zeros(x.shape[:2] + params["output_size"], dtype=h.dtype, device=h.device)
    for offset, mask in _argmax_masks_generic(xp, x, best, **params):
        where = offset_slices(offset, params["stride"], params["dilation"], params["output_size"])
        out = xp.where(mask, hp[where], out)
    return out


def _divisor_like(divisor: np.ndarray, x) -> Any:
    """The host divisor (a parameter: NumPy on every backend) on x's backend and device."""
    backend = backends.backend_of(x)
    return backend.from_host(divisor, backend.device_of(x))


def _avg_pool_generic(xp, x, *, kernel, stride, padding, output_size, divisor):
    padded = padded_generic(xp, x, padding, 0)
    views = offset_views(padded, kernel, stride, (1,) * len(kernel), output_size)
    _, out = next(views)
    for _, view in views:  # in NumPy's order: the same sums
        out = out + view
    return out / _divisor_like(divisor, x)


def _avg_pool_adjoint_generic(xp, g, *, kernel, stride, padding, output_size, divisor,
                              input_size):
    dx = xp.zeros(g.shape[:2] + padded_size(input_size, padding), dtype=g.dtype, device=g.device)
    share = g / _divisor_like(divisor, g)
    for offset in itertools.product(*map(range, kernel)):
        where = offset_slices(offset, stride, (1,) * len(kernel), output_size)
        dx[where] = dx[where] + share
    return dx[interior((None, None) + input_size, padding)]


# ---------------------------------------------------------------- abstract evaluation
def _pooled(x: ShapeDtype, *, output_size, **params) -> ShapeDtype:
    """max_pool, avg_pool: (N, C, *output_size) in x's dtype."""
    return ShapeDtype(x.shape[:2] + tuple(output_size), x.dtype, x.device)


def _scattered(g: ShapeDtype, x: ShapeDtype, best: ShapeDtype, **params) -> ShapeDtype:
    """max_pool_scatter: x's shape in g's dtype."""
    return ShapeDtype(x.shape, g.dtype, g.device)


def _gathered(h: ShapeDtype, x: ShapeDtype, best: ShapeDtype, *, output_size,
              **params) -> ShapeDtype:
    """max_pool_gather: (N, C, *output_size) in h's dtype."""
    return ShapeDtype(x.shape[:2] + tuple(output_size), h.dtype, h.device)


def _unpooled(g: ShapeDtype, *, input_size, **params) -> ShapeDtype:
    """avg_pool_adjoint: (N, C, *input_size) in g's dtype."""
    return ShapeDtype(g.shape[:2] + tuple(input_size), g.dtype, g.device)


def _input_positions(offset, *, stride, padding, dilation, output_size, input_size) -> np.ndarray:
    """Flat index into the input's spatial plane of the element that kernel ``offset`` reads at
    every output position (torch's return_indices numbering: row-major over the spatial axes)."""
    flat = np.zeros(output_size, dtype=np.int64)
    for axis, (a, s, (lo, _), d, n_out) in enumerate(zip(offset, stride, padding, dilation,
                                                        output_size)):
        along = np.arange(n_out) * s - lo + a * d  # inside the input: the max is never padding
        shape = [1] * len(output_size)
        shape[axis] = n_out
        flat = flat * input_size[axis] + along.reshape(shape)
    return flat


def _max_pool_indices_numpy(x, best, **params):
    out = np.zeros(best.shape, dtype=np.int64)
    geometry = {k: v for k, v in params.items() if k != "kernel"}
    for offset, mask in _argmax_masks(x, best, **params):
        np.copyto(out, _input_positions(offset, input_size=x.shape[2:], **geometry), where=mask)
    return out


def _max_pool_indices_generic(xp, x, best, **params):
    out = xp.zeros(best.shape, dtype=xp.int64, device=best.device)
    geometry = {k: v for k, v in params.items() if k != "kernel"}
    for offset, mask in _argmax_masks_generic(xp, x, best, **params):
        positions = xp.asarray(_input_positions(offset, input_size=tuple(x.shape[2:]), **geometry),
                               device=best.device)
        out = xp.where(mask, positions, out)
    return out


def _indices(x: ShapeDtype, best: ShapeDtype, **params) -> ShapeDtype:
    """max_pool_indices: the output's shape, int64."""
    return ShapeDtype(best.shape, np.dtype(np.int64), best.device)


# fmt: off
max_pool_indices_p = Primitive("max_pool_indices", _max_pool_indices_numpy,
                               generic=_max_pool_indices_generic, abstract_eval=_indices,
                               smooth=False)  # integers: not differentiable
max_pool_p         = Primitive("max_pool", _max_pool_numpy, generic=_max_pool_generic,
                               abstract_eval=_pooled, smooth=False)
max_pool_scatter_p = Primitive("max_pool_scatter", _max_pool_scatter_numpy,
                               generic=_max_pool_scatter_generic, abstract_eval=_scattered,
                               smooth=False)
max_pool_gather_p  = Primitive("max_pool_gather", _max_pool_gather_numpy,
                               generic=_max_pool_gather_generic, abstract_eval=_gathered,
                               smooth=False)
avg_pool_p         = Primitive("avg_pool", _avg_pool_numpy, generic=_avg_pool_generic,
                               abstract_eval=_pooled)
avg_pool_adjoint_p = Primitive("avg_pool_adjoint", _avg_pool_adjoint_numpy,
                               generic=_avg_pool_adjoint_generic, abstract_eval=_unpooled)
max_pool_p.defvjp(lambda g, out, x, **p: max_pool_scatter_p.bind(g, x.detach(), out.detach(), **p))
max_pool_scatter_p.defvjp(lambda h, out, g, x, best, **p: max_pool_gather_p.bind(h, x, best, **p),
                          None, None)
max_pool_gather_p.defvjp(lambda k, out, h, x, best, **p: max_pool_scatter_p.bind(k, x, best, **p),
                         None, None)
avg_pool_p.defvjp(lambda g, out, x, **p: avg_pool_adjoint_p.bind(g, input_size=x.shape[2:], **p))
avg_pool_adjoint_p.defvjp(lambda h, out, g, *, input_size, **p: avg_pool_p.bind(h, **p))
# fmt: on

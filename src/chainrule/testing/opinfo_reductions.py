"""Op-info rows of issue 12's reductions, scans and ordering ops (see ``opinfo.py`` for what a row
holds)."""

from __future__ import annotations

import numpy as np
from scipy import special

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, _separated, cases

_MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False,
                                                                           True]])


def _with_zeros(rng, shape, zeros):
    """Random values with ``zeros`` entries set to exactly 0 (prod and cumprod's hard case)."""
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, zeros, replace=False)] = 0.0
    return flat.reshape(shape)


def _zero_samples(shape, counts=(0, 1, 2, 3)):
    return lambda rng: [(_with_zeros(rng, shape, k),) for k in counts]


def _ref_logcumsumexp(x, axis):
    moved = np.moveaxis(x, axis, -1)
    out = np.stack([special.logsumexp(moved[..., :k + 1], axis=-1)
                    for k in range(moved.shape[-1])], axis=-1)
    return np.moveaxis(out, -1, axis)


def _spread(rng):
    """logcumsumexp's stability case: early elements far below the later ones."""
    return np.array([[-800.0, -3.0, 0.5, 700.0], [2.0, -1.0, 0.25, -900.0]])


def _ref_median(x, axis):
    s = np.sort(x, axis=axis)
    return np.take(s, (x.shape[axis] - 1) // 2, axis=axis)


# fmt: off
ROWS: list[OpInfo] = [
    # reductions
    OpInfo("prod", lambda x: cr.prod(x, axis=1), _zero_samples((3, 4)),
           lambda x: x.prod(axis=1), lambda t, x: x.prod(dim=1),
           covers=("prod", "cumprod", "concatenate", "getitem", "reshape")),
    OpInfo("prod_all", cr.prod,
           lambda rng: [(_with_zeros(rng, (2, 3), k),) for k in (0, 1, 2)]
           + [(np.asarray(1.7),), (np.zeros((0, 3)),)],
           np.prod, lambda t, x: x.prod(), covers=("prod",)),
    OpInfo("prod_axes", lambda x: cr.prod(x, axis=(0, 2), keepdims=True),
           _zero_samples((2, 3, 2), counts=(0, 1, 2)),
           lambda x: x.prod(axis=(0, 2), keepdims=True),
           None, covers=("prod", "transpose")),
    OpInfo("std", lambda x: cr.std(x, axis=0, ddof=1), cases(((3, 4),), ((5,),)),
           lambda x: x.std(axis=0, ddof=1), lambda t, x: x.std(dim=0),
           covers=("sum", "sqrt")),
    OpInfo("std_all", cr.std, cases(((3, 4),), ((2, 1, 3),)), np.std,
           lambda t, x: x.std(correction=0), covers=("sum", "sqrt")),
    # scans
    OpInfo("cumsum", lambda x: cr.cumsum(x, axis=1), cases(((3, 4),), ((2, 3, 2),), ((2, 0),)),
           lambda x: np.cumsum(x, axis=1), lambda t, x: x.cumsum(dim=1), covers=("cumsum",)),
    OpInfo("cumsum_flat", cr.cumsum, cases(((3, 4),), ((),)),
           lambda x: np.cumsum(x), lambda t, x: x.flatten().cumsum(dim=0), covers=("cumsum",)),
    OpInfo("cumprod", lambda x: cr.cumprod(x, axis=1), _zero_samples((3, 5)),
           lambda x: np.cumprod(x, axis=1), lambda t, x: x.cumprod(dim=1),
           covers=("cumprod", "cumsum", "prod")),
    OpInfo("cumprod_axis0", lambda x: cr.cumprod(x, axis=0), _zero_samples((4, 2, 2), (0, 2)),
           lambda x: np.cumprod(x, axis=0), lambda t, x: x.cumprod(dim=0), covers=("cumprod",)),
    OpInfo("logcumsumexp", lambda x: cr.logcumsumexp(x, axis=1),
           lambda rng: [(rng.standard_normal((3, 4)),), (_spread(rng),)],
           lambda x: _ref_logcumsumexp(x, 1), lambda t, x: x.logcumsumexp(dim=1),
           covers=("logcumsumexp", "exp", "log")),
    OpInfo("logcumsumexp_axis0", lambda x: cr.logcumsumexp(x, axis=0),
           cases(((4, 3),), ((),)), lambda x: _ref_logcumsumexp(np.atleast_1d(x), 0).reshape(
               x.shape), lambda t, x: x.logcumsumexp(dim=0), covers=("logcumsumexp",)),
    OpInfo("cummax", lambda x: cr.cummax(x, axis=1).values,
           lambda rng: [(_separated(rng, (3, 5)),), (_separated(rng, (2, 4, 2)),)],
           lambda x: np.maximum.accumulate(x, axis=1), lambda t, x: x.cummax(dim=1).values,
           covers=("cum_extreme_index", "select_along", "select_along_adjoint"), order=1),
    OpInfo("cummin", lambda x: cr.cummin(x, axis=0).values,
           lambda rng: [(_separated(rng, (5, 3)),)],
           lambda x: np.minimum.accumulate(x, axis=0), lambda t, x: x.cummin(dim=0).values,
           covers=("cum_extreme_index", "select_along"), order=1),
    # ordering
    OpInfo("sort", lambda x: cr.sort(x, axis=1).values,
           lambda rng: [(_separated(rng, (3, 5)),), (_separated(rng, (2, 3, 2)),)],
           lambda x: np.sort(x, axis=1), lambda t, x: t.sort(x, dim=1).values,
           covers=("argsort", "select_along", "select_along_adjoint")),
    OpInfo("sort_descending", lambda x: cr.sort(x, axis=0, descending=True).values,
           lambda rng: [(_separated(rng, (4, 3)),), (_separated(rng, ()),)],
           lambda x: -np.sort(-x, axis=0) if x.ndim else x,
           lambda t, x: t.sort(x, dim=0, descending=True).values,
           covers=("argsort", "select_along")),
    OpInfo("topk", lambda x: cr.topk(x, 2, axis=-1).values,
           lambda rng: [(_separated(rng, (3, 5)),), (_separated(rng, (4,)),)],
           lambda x: -np.sort(-x, axis=-1)[..., :2], lambda t, x: t.topk(x, 2, dim=-1).values,
           covers=("argsort", "select_along", "getitem")),
    OpInfo("topk_smallest", lambda x: cr.topk(x, 3, axis=0, largest=False).values,
           lambda rng: [(_separated(rng, (4, 2)),)],
           lambda x: np.sort(x, axis=0)[:3], lambda t, x: t.topk(x, 3, dim=0, largest=False).values,
           covers=("argsort", "select_along")),
    OpInfo("median", lambda x: cr.median(x, axis=1).values,
           lambda rng: [(_separated(rng, (3, 4)),), (_separated(rng, (2, 5)),)],
           lambda x: _ref_median(x, 1), lambda t, x: t.median(x, dim=1).values,
           covers=("argsort", "select_along", "reshape")),
    OpInfo("median_all", cr.median,
           lambda rng: [(_separated(rng, (3, 4)),), (_separated(rng, ()),)],
           lambda x: _ref_median(x.reshape(-1), 0), lambda t, x: t.median(x),
           covers=("argsort", "select_along")),
    OpInfo("kthvalue", lambda x: cr.kthvalue(x, 2, axis=0, keepdims=True).values,
           lambda rng: [(_separated(rng, (4, 3)),)],
           lambda x: np.sort(x, axis=0)[1:2], lambda t, x: t.kthvalue(x, 2, dim=0,
                                                                       keepdim=True).values,
           covers=("argsort", "select_along")),
    OpInfo("quantile", lambda x: cr.quantile(x, [0.2, 0.5, 0.9], axis=1),
           lambda rng: [(_separated(rng, (3, 5)),), (_separated(rng, (2, 4, 2)),)],
           lambda x: np.quantile(x, [0.2, 0.5, 0.9], axis=1),
           lambda t, x: t.quantile(x, t.tensor([0.2, 0.5, 0.9], dtype=x.dtype), dim=1),
           covers=("argsort", "select_along", "getitem")),
    OpInfo("quantile_midpoint", lambda x: cr.quantile(x, 0.4, interpolation="midpoint"),
           lambda rng: [(_separated(rng, (3, 4)),), (_separated(rng, ()),)],
           lambda x: np.quantile(x, 0.4, method="midpoint"),
           lambda t, x: t.quantile(x, 0.4, interpolation="midpoint"),
           covers=("argsort", "select_along")),
    OpInfo("masked_select", lambda x: cr.masked_select(x, _MASK), cases(((3, 4),), ((3, 1),)),
           lambda x: np.broadcast_to(x, _MASK.shape)[_MASK],
           lambda t, x: t.masked_select(x, t.tensor(_MASK)), covers=("getitem", "broadcast_to")),
]
# fmt: on



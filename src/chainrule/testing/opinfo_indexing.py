"""Op-info rows of issue 12's indexing, shape and linear-algebra ops (see ``opinfo.py`` for what a
row holds)."""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, cases, fixed

_GETITEM = ("getitem", "index_add")


def _np_meshgrid_sum(x, y, z):
    a, b, c = np.meshgrid(x, y, z, indexing="ij")
    d, e = np.meshgrid(x, y, indexing="xy")
    return a * 1.0 + b * 2.0 + c * 3.0 + (d * e).sum()


def _cr_meshgrid_sum(x, y, z):
    a, b, c = cr.meshgrid(x, y, z)
    d, e = cr.meshgrid(x, y, indexing="xy")
    return a * 1.0 + b * 2.0 + c * 3.0 + cr.sum(d * e)


def _torch_meshgrid_sum(t, x, y, z):
    a, b, c = t.meshgrid(x, y, z, indexing="ij")
    d, e = t.meshgrid(x, y, indexing="xy")
    return a * 1.0 + b * 2.0 + c * 3.0 + (d * e).sum()


# gather/scatter: index of x's rank, shorter than x on the other axes, repeats in gather and
# scatter_add (they accumulate); none in scatter (a repeat's loser has no finite-difference
# gradient, PyTorch gives it one: tests/ops/test_indexing.py checks that case against torch)
_GATHER_INDEX = np.array([[0, 2, 2], [1, 0, 1]])              # into x (3, 4) along axis 0
_SCATTER_INDEX = np.array([[2, 0, 1], [3, 1, 0]])             # into x (3, 4) along axis 1
_SELECT = np.array([2, 0, 2, 1])
_MASK = np.array([[True, False, False, True]])


def _np_gather(x, axis, index):
    trimmed = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(index.shape))]
    return np.take_along_axis(trimmed, index, axis)


def _np_scatter_add(x, index, src):  # axis 1
    out = x.copy()
    rows = np.arange(index.shape[0])[:, None]
    np.add.at(out, (rows, index), src[:index.shape[0], :index.shape[1]])
    return out


def _np_scatter(x, index, src):  # axis 1, no repeats
    out = x.copy()
    out[np.arange(index.shape[0])[:, None], index] = src[:index.shape[0], :index.shape[1]]
    return out


def _chunk_cat(x):
    return [p * (k + 1.0) for k, p in enumerate(x)]


# fmt: off
ROWS: list[OpInfo] = [
    # shape (composites of getitem, reshape, transpose, concatenate, broadcast_to, where)
    OpInfo("flip", lambda x: cr.flip(x, (0, 2)), cases(((2, 3, 4),), ((3, 1, 2),)),
           lambda x: np.flip(x, (0, 2)), lambda t, x: x.flip((0, 2)), covers=("getitem",)),
    OpInfo("flip_all", cr.flip, cases(((3, 2),), ((),)), np.flip, None, covers=("getitem",)),
    OpInfo("roll", lambda x: cr.roll(x, (1, -5), (0, 2)), fixed((2, 3, 4)),
           lambda x: np.roll(x, (1, -5), (0, 2)), lambda t, x: x.roll((1, -5), (0, 2)),
           covers=("concatenate", "getitem")),
    OpInfo("roll_flat", lambda x: cr.roll(x, 4), fixed((2, 3)), lambda x: np.roll(x, 4),
           lambda t, x: x.roll(4), covers=("concatenate", "reshape")),
    OpInfo("tile", lambda x: cr.tile(x, (2, 1, 3)), cases(((2, 3),), ((3,),), ((),)),
           lambda x: np.tile(x, (2, 1, 3)), lambda t, x: x.tile((2, 1, 3)),
           covers=("broadcast_to", "reshape")),
    OpInfo("repeat", lambda x: x.repeat(2, 1, 2), fixed((3, 2)), lambda x: np.tile(x, (2, 1, 2)),
           lambda t, x: x.repeat(2, 1, 2), covers=("broadcast_to", "reshape")),
    OpInfo("repeat_interleave", lambda x: cr.repeat_interleave(x, 2, axis=1), fixed((2, 3)),
           lambda x: np.repeat(x, 2, axis=1), lambda t, x: x.repeat_interleave(2, dim=1),
           covers=("broadcast_to", "reshape")),
    OpInfo("repeat_interleave_counts", lambda x: cr.repeat_interleave(x, [1, 0, 3], axis=-1),
           fixed((2, 3)), lambda x: np.repeat(x, [1, 0, 3], axis=-1),
           lambda t, x: x.repeat_interleave(t.tensor([1, 0, 3]), dim=-1), covers=_GETITEM),
    OpInfo("tril", lambda x: cr.tril(x, 1), cases(((3, 4),), ((2, 4, 3),)),
           lambda x: np.tril(x, 1), lambda t, x: x.tril(1), covers=("where",)),
    OpInfo("triu", lambda x: cr.triu(x, -1), cases(((3, 4),), ((2, 4, 3),)),
           lambda x: np.triu(x, -1), lambda t, x: x.triu(-1), covers=("where",)),
    OpInfo("diagonal", lambda x: cr.diagonal(x, 1, 2, 0), cases(((3, 2, 4),), ((4, 1, 3),)),
           lambda x: np.diagonal(x, 1, 2, 0), lambda t, x: x.diagonal(1, 2, 0),
           covers=_GETITEM + ("transpose",)),
    OpInfo("diag_matrix", lambda x: cr.diag(x, -1), fixed((3,)), lambda x: np.diag(x, -1),
           lambda t, x: x.diag(-1), covers=("index_add", "getitem")),
    OpInfo("diag_vector", lambda x: cr.diag(x, 1), cases(((3, 4),), ((4, 2),)),
           lambda x: np.diag(x, 1), lambda t, x: x.diag(1), covers=_GETITEM),
    OpInfo("trace", cr.trace, cases(((3, 3),), ((2, 4),)), np.trace, lambda t, x: x.trace(),
           covers=_GETITEM + ("sum",)),
    OpInfo("chunk", lambda x: cr.concatenate(_chunk_cat(cr.chunk(x, 3, axis=1)), axis=1),
           fixed((2, 5)), lambda x: np.concatenate(_chunk_cat(np.array_split(x, [2, 4], 1)), 1),
           lambda t, x: t.cat(_chunk_cat(x.chunk(3, dim=1)), dim=1),
           covers=("getitem", "concatenate")),
    OpInfo("unflatten", lambda x: cr.unflatten(x, 1, (2, -1)), fixed((3, 6)),
           lambda x: x.reshape(3, 2, 3), lambda t, x: x.unflatten(1, (2, -1)),
           covers=("reshape",)),
    OpInfo("moveaxis", lambda x: cr.moveaxis(x, (0, 1), (2, 0)), fixed((2, 3, 4)),
           lambda x: np.moveaxis(x, (0, 1), (2, 0)), lambda t, x: x.moveaxis((0, 1), (2, 0)),
           covers=("transpose",)),
    # indexing and scatter
    OpInfo("gather", lambda x: cr.gather(x, 0, _GATHER_INDEX), fixed((3, 4)),
           lambda x: _np_gather(x, 0, _GATHER_INDEX),
           lambda t, x: x.gather(0, t.tensor(_GATHER_INDEX)), covers=("gather", "scatter_add")),
    OpInfo("take_along_axis", lambda x: cr.take_along_axis(x, _GATHER_INDEX[:, :, None], 1),
           fixed((2, 4, 3)), lambda x: np.take_along_axis(x, _GATHER_INDEX[:, :, None], 1),
           lambda t, x: t.take_along_dim(x, t.tensor(_GATHER_INDEX[:, :, None]), 1),
           covers=("gather", "broadcast_to")),
    # src of index's shape: torch's scatter_add backward refuses a larger src (its bug)
    OpInfo("scatter_add", lambda x, s: cr.scatter_add(x, 1, _SCATTER_INDEX[:, :2] % 2, s),
           fixed((3, 4), (2, 2)), lambda x, s: _np_scatter_add(x, _SCATTER_INDEX[:, :2] % 2, s),
           lambda t, x, s: x.scatter_add(1, t.tensor(_SCATTER_INDEX[:, :2] % 2), s),
           covers=("scatter_add", "gather", "getitem")),
    OpInfo("scatter", lambda x, s: cr.scatter(x, 1, _SCATTER_INDEX, s), fixed((3, 4), (2, 3)),
           lambda x, s: _np_scatter(x, _SCATTER_INDEX, s),
           lambda t, x, s: x.scatter(1, t.tensor(_SCATTER_INDEX), s),
           covers=("scatter", "gather", "scatter_add")),
    OpInfo("scatter_value", lambda x: cr.scatter(x, 1, _SCATTER_INDEX, 0.5), fixed((2, 4)),
           lambda x: _np_scatter(x, _SCATTER_INDEX, np.full((2, 3), 0.5)),
           lambda t, x: x.scatter(1, t.tensor(_SCATTER_INDEX), 0.5), covers=("scatter",)),
    OpInfo("index_select", lambda x: cr.index_select(x, 1, _SELECT),
           cases(((2, 3),), ((3, 4, 2),)), lambda x: np.take(x, _SELECT, axis=1),
           lambda t, x: x.index_select(1, t.tensor(_SELECT)), covers=_GETITEM + ("transpose",)),
    OpInfo("masked_fill", lambda x: cr.masked_fill(x, _MASK, -2.0), fixed((3, 4)),
           lambda x: np.where(_MASK, -2.0, x), lambda t, x: x.masked_fill(t.tensor(_MASK), -2.0),
           covers=("where",)),
    OpInfo("masked_fill_tensor", lambda x, v: cr.masked_fill(x, _MASK, v), fixed((3, 4), ()),
           lambda x, v: np.where(_MASK, v, x),
           lambda t, x, v: x.masked_fill(t.tensor(_MASK), v), covers=("where",)),
    # linear algebra: einsum's general forms, and composites of einsum
    OpInfo("einsum_broadcast", lambda x, y: cr.einsum("ij,jk->ik", x, y),
           cases(((3, 1), (4, 2)), ((3, 4), (1, 2))),
           lambda x, y: np.einsum("ij,jk->ik", x, y), lambda t, x, y: t.einsum("ij,jk->ik", x, y),
           covers=("einsum", "broadcast_to")),
    OpInfo("einsum_ellipsis", lambda x, y: cr.einsum("...ij,...jk->...ik", x, y),
           cases(((2, 3, 4), (5, 1, 4, 2)), ((3, 4), (4, 2))),
           lambda x, y: np.einsum("...ij,...jk->...ik", x, y),
           lambda t, x, y: t.einsum("...ij,...jk->...ik", x, y), covers=("einsum",)),
    OpInfo("einsum_ellipsis_summed", lambda x, y: cr.einsum("...i,i", x, y),
           fixed((2, 3, 4), (4,)), lambda x, y: np.einsum("...i,i", x, y),
           lambda t, x, y: t.einsum("...i,i", x, y), covers=("einsum",)),
    OpInfo("einsum_trace", lambda x: cr.einsum("ii->", x), fixed((3, 3)),
           lambda x: np.einsum("ii->", x), lambda t, x: t.einsum("ii->", x),
           covers=("einsum",) + _GETITEM),
    OpInfo("einsum_diagonal", lambda x, y: cr.einsum("bii,bj->bij", x, y),
           fixed((2, 3, 3), (2, 4)), lambda x, y: np.einsum("bii,bj->bij", x, y),
           lambda t, x, y: t.einsum("bii,bj->bij", x, y), covers=("einsum",) + _GETITEM),
    OpInfo("tensordot", lambda x, y: cr.tensordot(x, y, ([1, 2], [1, 0])),
           fixed((2, 3, 4), (4, 3, 2)), lambda x, y: np.tensordot(x, y, ([1, 2], [1, 0])),
           lambda t, x, y: t.tensordot(x, y, ([1, 2], [1, 0])), covers=("einsum",)),
    OpInfo("tensordot_int", lambda x, y: cr.tensordot(x, y, 1), fixed((2, 3), (3, 4)),
           lambda x, y: np.tensordot(x, y, 1), lambda t, x, y: t.tensordot(x, y, 1),
           covers=("einsum",)),
    OpInfo("inner", cr.inner, cases(((2, 3), (4, 3)), ((3,), (3,)), ((), (2,))), np.inner,
           lambda t, x, y: t.inner(x, y), covers=("einsum", "mul")),
    OpInfo("kron", cr.kron, cases(((2, 3), (2, 2)), ((2,), (3, 1, 2))),
           np.kron, lambda t, x, y: t.kron(x, y), covers=("mul", "reshape")),
    OpInfo("meshgrid", _cr_meshgrid_sum, fixed((2,), (3,), (4,)), _np_meshgrid_sum,
           _torch_meshgrid_sum, covers=("broadcast_to", "reshape")),
]
# fmt: on

"""Reductions, shape operations, linear algebra and normalisation on array_api_strict.

One row per public function of ``chainrule.ops.{reductions, shape, linalg, normalization}``:
the same function of the same float64 inputs on NumPy and on ``array_api_strict`` (the namespace
that allows only the array API standard) gives the same value and the same gradients (of
<f(x), p> for a fixed random p) within 1e-6, and the result stays on the strict backend. Then
each primitive of these modules: a generic kernel and an ``abstract_eval`` rule that matches the
NumPy kernel's shape and dtype; getitem's indices the standard lacks fail with a clear error.
"""

from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import chainrule as cr
from chainrule import backends
from chainrule.ops import linalg, normalization, reductions, shape
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.primitive import Primitive

STRICT = "array_api_strict"
MODULES = (reductions, shape, linalg, normalization)
TOL = 1e-6

_rng = np.random.default_rng(7)
A = _rng.standard_normal((3, 4, 5))  # the usual 3-d input
M = _rng.standard_normal((4, 5))
B = _rng.standard_normal((5, 2))
V = _rng.standard_normal(5)
TIED = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]])  # ties share the gradient of max/min
SMALL = _rng.standard_normal((3, 1, 5))  # broadcasts to A's shape
AT = A.transpose(0, 2, 1)


def _ix(values: list, like: Any) -> Any:
    """An integer index tensor on ``like``'s device (the index follows the tensor it indexes)."""
    return cr.tensor(np.asarray(values, dtype=np.int64)).to(like.device)


class Row(NamedTuple):
    name: str  #: the public function the row tests (module __all__ coverage)
    fn: Callable[..., Any]  #: f(*tensors) -> Tensor
    inputs: tuple  #: float64 arrays (differentiable) or other arrays (held fixed)
    grad: bool = True  #: False: the result is an index (argmax), no gradient


# fmt: off
ROWS = [
    Row("sum",          lambda x: reductions.sum(x, axis=(0, 2)), (A,)),
    Row("sum",          lambda x: reductions.sum(x, keepdims=True), (A,)),
    Row("mean",         lambda x: reductions.mean(x, axis=-1), (A,)),
    Row("var",          lambda x: reductions.var(x, axis=(0, 1), ddof=1), (A,)),
    Row("max",          lambda x: reductions.max(x, axis=1), (TIED,)),
    Row("min",          lambda x: reductions.min(x, axis=None), (TIED,)),
    Row("logsumexp",    lambda x: reductions.logsumexp(x, axis=2), (A,)),
    Row("sum_to",       lambda x: reductions.sum_to(x, (1, 4, 1)), (A,)),
    Row("broadcast_to", lambda x: reductions.broadcast_to(x, (2, 3, 4, 5)), (SMALL,)),
    Row("broadcast_to", lambda x, y: x * y, (A, SMALL)),  # the engine's sum_to in the backward
    Row("argmax",       lambda x: reductions.argmax(x, axis=1), (A,), grad=False),
    Row("argmax",       lambda x: reductions.argmax(x, keepdims=True), (A,), grad=False),
    Row("argmin",       lambda x: reductions.argmin(x, axis=-1), (A,), grad=False),
    Row("reshape",      lambda x: shape.reshape(x, (4, -1)), (A,)),
    Row("transpose",    lambda x: shape.transpose(x, (2, 0, 1)), (A,)),
    Row("permute",      lambda x: shape.permute(x, 1, 2, 0), (A,)),
    Row("swapaxes",     lambda x: shape.swapaxes(x, 0, 2), (A,)),
    Row("squeeze",      lambda x: shape.squeeze(x, 1), (SMALL,)),
    Row("expand_dims",  lambda x: shape.expand_dims(x, (0, 3)), (A,)),
    Row("flatten",      lambda x: shape.flatten(x, 1), (A,)),
    Row("concatenate",  lambda x, y: shape.concatenate([x, y], axis=1), (A, SMALL)),
    Row("stack",        lambda x, y: shape.stack([x, y * 2], axis=-1), (M, M[::-1])),
    Row("split",        lambda x: shape.concatenate(
        [p * (k + 1) for k, p in enumerate(shape.split(x, [1, 3], axis=1))], axis=1), (A,)),
    Row("pad",          lambda x: shape.pad(x, ((1, 0), (0, 2), (1, 1)), 0.5), (A,)),
    Row("getitem",      lambda x: shape.getitem(x, 1), (A,)),
    Row("getitem",      lambda x: shape.getitem(x, (slice(None, None, -2), None, ..., 3)), (A,)),
    Row("getitem",      lambda x: shape.getitem(x, (slice(1, None), slice(None, None, 2))), (A,)),
    Row("getitem",      lambda x: x[_ix([2, 0, 2, 2], x)], (A,)),  # repeats accumulate
    Row("getitem",      lambda x: x[_ix([[0, 1], [2, 0]], x), -1], (A,)),
    Row("getitem",      lambda x: x[_ix([0, 2, 0], x), _ix([3, -1, 3], x), 1], (A,)),
    Row("getitem",      lambda x: x[[1, 1], ...], (A,)),  # a list: an integer array
    Row("getitem",      lambda x: x[[0, 2, 0], 1:], (A,)),  # then basic entries
    Row("getitem",      lambda x: x[_ix([[2], [0]], x), None, ::2, -1], (A,)),
    Row("getitem",      lambda x: x[x > 0.3], (A,)),
    Row("getitem",      lambda x: x[reductions.sum(x, axis=2) > 0], (A,)),
    Row("index_add",    lambda v: shape.index_add(v, (_ix([0, 3, 0], v),), (4, 5)), (M[:3],)),
    Row("matmul",       lambda a, b: linalg.matmul(a, b), (A, B)),
    Row("matmul",       lambda a, b: linalg.matmul(a, b), (V, B)),
    Row("matmul",       lambda a, b: linalg.matmul(a, b), (M, V)),
    Row("dot",          lambda a, b: linalg.dot(a, b), (V, V[::-1])),
    Row("outer",        lambda a, b: linalg.outer(a, b), (V, B[:, 0])),
    Row("einsum",       lambda a, b: linalg.einsum("ijk,kl->lji", a, b), (A, B)),
    Row("einsum",       lambda a, b, c: linalg.einsum("ij,jk,j->ik", a, b, c), (M, B, V)),
    Row("einsum",       lambda a: linalg.einsum("ijk->j", a), (A,)),
    Row("einsum",       lambda a, b: linalg.einsum("bij,bjk->bik", a, b), (A, AT[:, :, :2])),
    Row("einsum",       lambda a, b: linalg.einsum("ij,kj->ikj", a, b), (SMALL[:, 0], M)),
    Row("einsum",       lambda a, b: linalg.einsum("ij,jk", a, b), (M, B)),
    Row("dropout",      lambda x: normalization.dropout(x, 0.4, generator=cr.Generator(3)), (A,)),
    Row("dropout2d",    lambda x: normalization.dropout2d(x, 0.4, generator=cr.Generator(3)),
        (A[None],)),
    Row("diag",         lambda x: shape.diag(x, 1), (M,)),
    Row("any",          lambda x: reductions.any(x > 0.5, axis=1), (A,), grad=False),
    Row("all",          lambda x: reductions.all(x > -2.0, axis=0), (A,), grad=False),
    Row("batch_norm",   lambda x, w, b: normalization.batch_norm(
        x, None, None, w, b, training=True), (A, M[:, 0], M[:, 1])),
    Row("layer_norm",   lambda x, w, b: normalization.layer_norm(x, 5, w, b), (A, V, B[:, 1])),
]
# fmt: on


def _run(row: Row, device: str) -> tuple:
    """(value, gradients, backend of the value) of ``row`` on ``device``."""
    leaves = [cr.tensor(x, device=device, requires_grad=row.grad and x.dtype.kind == "f")
              for x in row.inputs]
    out = row.fn(*leaves)
    if not row.grad:
        return out.numpy(), [], out.backend
    weights = np.random.default_rng(11).standard_normal(out.shape)
    (out * cr.tensor(weights, device=device)).sum().backward()
    return out.numpy(), [x.grad.numpy() for x in leaves if x.requires_grad], out.backend


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.name}-{k}" for k, r in enumerate(ROWS)])
def test_numpy_and_array_api_strict_agree(row: Row) -> None:
    value, grads, where = _run(row, "cpu")
    strict_value, strict_grads, strict_where = _run(row, STRICT)
    assert (where, strict_where) == ("numpy", STRICT)
    assert strict_value.dtype == value.dtype and strict_value.shape == value.shape
    np.testing.assert_allclose(strict_value, value, rtol=TOL, atol=TOL)
    assert len(strict_grads) == len(grads)
    for strict_grad, grad in zip(strict_grads, grads):
        np.testing.assert_allclose(strict_grad, grad, rtol=TOL, atol=TOL)


def test_every_public_function_has_a_row() -> None:
    """Here, or as an op-info row (tests/backends/test_opinfo_matrix.py runs those on the strict
    backend too: issue 12's functions are checked there)."""
    from chainrule.testing.opinfo import OPINFO

    covered = {row.name for row in ROWS} | {info.name for info in OPINFO}
    covered |= {name for info in OPINFO for name in info.primitives}
    public = {name for module in MODULES for name in module.__all__
              if not isinstance(getattr(module, name), type)}  # AxisError: a class, no op
    assert public - covered == set()


def test_batch_norm_updates_running_statistics_on_the_strict_backend() -> None:
    results = []
    for device in ("cpu", STRICT):
        mean = cr.tensor(np.zeros(4), device=device)
        var = cr.tensor(np.ones(4), device=device)
        normalization.batch_norm(cr.tensor(A, device=device), mean, var, training=True)
        assert mean.backend == backends.Device(device).backend
        results.append((mean.numpy(), var.numpy()))
    for strict, host in zip(results[1], results[0]):
        np.testing.assert_allclose(strict, host, rtol=TOL, atol=TOL)


# ------------------------------------------------------------------ getitem's scatter, errors
@pytest.mark.parametrize("index", [
    (slice(None), [0, 1]),  # an integer array after a slice: NumPy's rule, not the standard's
    ([True, False, True], 0),  # a mask with other indices
    True,  # a Python bool (NumPy's 0-d mask)
    (0, slice(None), [0, 1]),  # arrays (and ints) on both sides of a slice
    ([0, 1], slice(None), [[1], [2]]),
])
def test_indices_the_standard_lacks_name_the_index_and_the_backend(index: Any) -> None:
    x = cr.tensor(A, device=STRICT)
    with pytest.raises(IndexError, match=STRICT) as caught:
        x[index]
    assert "index" in str(caught.value) and "x.cpu()" in str(caught.value)
    assert cr.tensor(A)[index].shape  # NumPy takes every one of them


def test_out_of_range_index_arrays_raise_index_error_on_the_strict_backend() -> None:
    x = cr.tensor(A, device=STRICT)
    with pytest.raises(IndexError, match="out of bounds"):
        x[[0, 3]]
    with pytest.raises(IndexError, match=STRICT):
        x[[0, 1], [0, 1, 2]]  # do not broadcast


def test_generic_scatter_in_blocks_and_with_infinities(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-hot matmul in blocks gives np.add.at's sums; an inf lands on its own row only."""
    monkeypatch.setattr(shape, "_ONE_HOT_ELEMENTS", 8)  # 2 columns of the (4, n) one-hot a time
    values = _rng.standard_normal((7, 3))
    rows = [3, 0, 3, 1, 0, 3, 2]
    expected = np.zeros((4, 3))
    np.add.at(expected, (np.asarray(rows),), values)
    on_strict = cr.tensor(values, device=STRICT)
    strict = shape.index_add(on_strict, (_ix(rows, on_strict),), (4, 3))
    np.testing.assert_allclose(strict.numpy(), expected, rtol=TOL, atol=TOL)
    values[1, 2] = np.inf
    expected = np.zeros((4, 3))
    np.add.at(expected, (np.asarray(rows),), values)
    on_strict = cr.tensor(values, device=STRICT)
    strict = shape.index_add(on_strict, (_ix(rows, on_strict),), (4, 3))
    np.testing.assert_array_equal(np.isfinite(strict.numpy()), np.isfinite(expected))
    np.testing.assert_allclose(strict.numpy(), expected, rtol=TOL, atol=TOL)


# ------------------------------------------------------------------ the primitives themselves
MY_PRIMITIVES = sorted({value.name for module in MODULES for value in vars(module).values()
                        if isinstance(value, Primitive)
                        and module.__name__.endswith(("reductions", "shape", "linalg"))})

INT32 = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
MASK = A > 0
# fmt: off
ABSTRACT_CASES = [  # (primitive name, input arrays, params)
    ("prod",         (A,),            {"axis": (0, 2), "keepdims": False}),
    ("prod",         (INT32,),        {"axis": (1,), "keepdims": True}),
    ("sum",          (A,),            {"axis": (0, 2), "keepdims": False}),
    ("sum",          (INT32,),        {"axis": (1,), "keepdims": True}),
    ("sum",          (MASK,),         {"axis": (0, 1, 2), "keepdims": False}),
    ("max",          (A,),            {"axis": (1,), "keepdims": False}),
    ("min",          (INT32,),        {"axis": (0, 2), "keepdims": True}),
    ("sum_to",       (A,),            {"shape": (4, 1)}),
    ("sum_to",       (INT32,),        {"shape": (1, 5)}),
    ("sum_to",       (A,),            {"shape": (3, 4, 5)}),
    ("broadcast_to", (SMALL,),        {"shape": (2, 3, 4, 5)}),
    ("reshape",      (A,),            {"shape": (5, 12)}),
    ("transpose",    (A,),            {"axes": (2, 0, 1)}),
    ("concatenate",  (A, SMALL.astype(np.float32)), {"axis": 1}),
    ("pad",          (INT32,),        {"pad_width": ((1, 0), (0, 2), (1, 1)), "value": 0.0}),
    ("getitem",      (A,),            {"index": (1, slice(None, None, 2)), "advanced": False}),
    ("getitem",      (A,),            {"index": (None, Ellipsis, 0), "advanced": False}),
    ("getitem",      (A,),            {"index": (np.array([[0, 2]]), -1), "advanced": True}),
    ("getitem",      (A,),            {"index": (MASK[:, :, 0],), "advanced": True}),
    ("getitem",      (A,),            {"index": (np.array([2, 0, 2]), None, slice(1, None), 0),
                                       "advanced": True}),
    ("index_add",    (M[:3, 1:],),    {"index": (np.array([0, 3, 0]), slice(1, None)),
                                       "shape": (4, 5), "advanced": True}),
    ("index_add",    (M[:3],),        {"index": (np.array([0, 3, 0]),), "shape": (4, 5),
                                       "advanced": True}),
    ("matmul",       (A, B),          {}),
    ("matmul",       (V, B),          {}),
    ("matmul",       (M, V.astype(np.float32)), {}),
    ("matmul",       (A[:1, None], A.swapaxes(1, 2)), {}),
    ("einsum",       (A, B),          {"subscripts": "ijk,kl->lji"}),
    ("einsum",       (M, B, V),       {"subscripts": "ij,jk,j->ik"}),
    ("einsum",       (M[:, :1], B),   {"subscripts": "ij,jk->ik"}),  # j: 1 broadcasts to 5
    ("einsum",       (A[:1], B),      {"subscripts": "bij,jk->bik"}),
]
# fmt: on


@pytest.mark.parametrize("name, inputs, params", ABSTRACT_CASES,
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(ABSTRACT_CASES)])
def test_abstract_eval_matches_the_numpy_kernel(name: str, inputs: tuple, params: dict) -> None:
    prim = cr.ops.REGISTRY[name]
    real = prim.kernel_for(backends.NUMPY)(*inputs, **params)
    rule = prim.rules["abstract_eval"]
    aval = rule(*[ShapeDtype(x.shape, x.dtype) for x in inputs], **params)
    assert (tuple(aval.shape), np.dtype(aval.dtype)) == (real.shape, real.dtype)


@pytest.mark.parametrize("name, inputs, params", ABSTRACT_CASES,
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(ABSTRACT_CASES)])
def test_generic_kernel_on_strict_matches_the_numpy_kernel(name: str, inputs: tuple,
                                                          params: dict) -> None:
    prim = cr.ops.REGISTRY[name]
    strict = backends.get(STRICT)
    on_strict = {k: tuple(strict.asarray(p) if isinstance(p, np.ndarray) else p for p in v)
                 if k == "index" else v for k, v in params.items()}
    out = prim.kernel_for(strict)(*[strict.asarray(x) for x in inputs], **on_strict)
    real = prim.kernel_for(backends.NUMPY)(*inputs, **params)
    assert strict.np_dtype(out.dtype) == real.dtype
    np.testing.assert_allclose(strict.to_host(out), real, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name", MY_PRIMITIVES)
def test_each_primitive_has_a_generic_kernel_and_an_abstract_rule(name: str) -> None:
    prim = cr.ops.REGISTRY[name]
    assert "array_api" in prim.kernels
    assert prim.rules["abstract_eval"] is not None
    covered = {case[0] for case in ABSTRACT_CASES}
    assert name in covered

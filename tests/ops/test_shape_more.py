"""Issue 12's shape ops beyond their op-info rows: torch's edge cases, errors, Tensor methods."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine.errors import ShapeError


def _same(ours, theirs):
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


_X = np.arange(24.0).reshape(2, 3, 4)


@settings(max_examples=30, deadline=None)
@given(shift=st.integers(-9, 9), axis=st.integers(-3, 2))
def test_roll_matches_torch_for_any_shift(shift, axis):
    _same(cr.roll(_X, shift, axis), torch.tensor(_X).roll(shift, axis))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 9), chunks=st.integers(1, 6))
def test_chunk_sizes_are_torchs(n, chunks):
    ours = cr.chunk(np.arange(float(n)), chunks)
    theirs = torch.arange(float(n)).chunk(chunks)
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]


@settings(max_examples=30, deadline=None)
@given(k=st.integers(-5, 5), rows=st.integers(1, 4), cols=st.integers(1, 4))
def test_triangles_and_diagonals_match_torch(k, rows, cols):
    x = np.arange(float(rows * cols)).reshape(rows, cols)
    t = torch.tensor(x)
    _same(cr.tril(x, k), t.tril(k))
    _same(cr.triu(x, k), t.triu(k))
    _same(cr.diagonal(x, k), t.diagonal(k))
    _same(cr.diag(x, k), t.diag(k))
    _same(cr.diag(x[0], k), t[0].diag(k))


def test_tril_keeps_inf_out_of_the_zeroed_part_and_its_gradient():
    x = cr.tensor([[1.0, np.inf], [2.0, 3.0]], requires_grad=True)
    out = cr.tril(x)
    np.testing.assert_array_equal(out.numpy(), [[1.0, 0.0], [2.0, 3.0]])
    cr.sum(out).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0], [1.0, 1.0]])


def test_tile_and_repeat_follow_torch_on_rank_mismatch():
    t = torch.tensor(_X)
    _same(cr.tile(_X, (2,)), t.tile((2,)))
    _same(cr.tile(_X, (2, 1, 1, 2)), t.tile((2, 1, 1, 2)))
    _same(cr.tensor(_X).repeat(1, 2, 1, 1), t.repeat(1, 2, 1, 1))
    _same(cr.repeat(_X, (2, 1, 1)), t.repeat(2, 1, 1))
    with pytest.raises(ValueError, match="sizes"):
        cr.repeat(_X, 2, 2)
    with pytest.raises(ValueError, match="negative"):
        cr.tile(_X, (-1,))


def test_repeat_interleave_forms():
    t = torch.tensor(_X)
    _same(cr.repeat_interleave(_X, 2), t.repeat_interleave(2))
    _same(cr.tensor(_X).repeat_interleave(3, axis=-1), t.repeat_interleave(3, dim=-1))
    _same(cr.repeat_interleave(_X, cr.tensor([2, 0]), axis=0),
          t.repeat_interleave(torch.tensor([2, 0]), dim=0))
    _same(cr.repeat_interleave(_X, [2], axis=1), t.repeat_interleave(torch.tensor([2]), dim=1))
    _same(cr.repeat_interleave(np.array(5.0), 3), torch.tensor(5.0).repeat_interleave(3))
    with pytest.raises(ShapeError, match="repeats"):
        cr.repeat_interleave(_X, [1, 2], axis=1)
    with pytest.raises(ValueError, match="negative"):
        cr.repeat_interleave(_X, [1, -1, 0], axis=1)
    with pytest.raises(TypeError, match="integers"):
        cr.repeat_interleave(_X, [1.5, 1.0, 1.0], axis=1)


def test_flip_moveaxis_unflatten_trace_as_torch():
    t = torch.tensor(_X)
    _same(cr.tensor(_X).flip(-1), t.flip(-1))
    _same(cr.flip(_X), t.flip((0, 1, 2)))
    _same(cr.tensor(_X).moveaxis(-1, 0), t.moveaxis(-1, 0))
    _same(cr.tensor(_X).unflatten(-1, (2, 2)), t.unflatten(-1, (2, 2)))
    _same(cr.tensor(_X[0]).trace(), t[0].trace())
    assert cr.trace(_X, 1, 1, 2).shape == (2,)
    np.testing.assert_array_equal(cr.trace(_X, 1, 1, 2).numpy(), np.trace(_X, 1, 1, 2))


def test_meshgrid_ij_and_xy():
    a, b = np.arange(2.0), np.arange(3.0)
    for indexing in ("ij", "xy"):
        for ours, theirs in zip(cr.meshgrid(a, b, indexing=indexing),
                                torch.meshgrid(torch.tensor(a), torch.tensor(b),
                                               indexing=indexing)):
            _same(ours, theirs)
    assert [g.shape for g in cr.meshgrid([a, b, np.array(1.0)])] == [(2, 3, 1)] * 3


@pytest.mark.parametrize("call, error, words", [
    (lambda: cr.tril(np.ones(3)), ShapeError, "2 dimensions"),
    (lambda: cr.diagonal(np.ones((2, 2)), 0, 1, -1), ShapeError, "same axis"),
    (lambda: cr.diag(np.ones((2, 2, 2))), ShapeError, "1-D or 2-D"),
    (lambda: cr.chunk(np.ones(3), 0), ValueError, "positive"),
    (lambda: cr.chunk(np.array(1.0), 2), ShapeError, "0-d"),
    (lambda: cr.unflatten(np.ones((2, 6)), 1, (4, -1)), ShapeError, "does not split"),
    (lambda: cr.unflatten(np.ones((2, 6)), 1, (2, 2)), ShapeError, "do not match"),
    (lambda: cr.unflatten(np.ones((2, 6)), 1, (-1, -1)), ValueError, "one -1"),
    (lambda: cr.moveaxis(np.ones((2, 3)), 0, (0, 1)), ValueError, "as many axes"),
    (lambda: cr.moveaxis(np.ones((2, 3)), 2, 0), cr.AxisError, "source"),
    (lambda: cr.roll(np.ones((2, 3)), (1, 2), 0), ValueError, "same length"),
    (lambda: cr.roll(np.ones((2, 3)), (1, 2)), ValueError, "one int"),
    (lambda: cr.roll(np.ones((2, 3)), 1.5, 0), TypeError, "shift"),
    (lambda: cr.meshgrid(np.ones(2), indexing="yx"), ValueError, "indexing"),
    (lambda: cr.meshgrid(np.ones((2, 2))), ShapeError, "0-d or 1-D"),
])
def test_bad_arguments_are_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_diag_of_a_vector_has_the_diagonal_of_g_as_gradient():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    g = np.arange(16.0).reshape(4, 4)
    cr.sum(cr.diag(x, 1) * g).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.diag(g, 1))


# ------------------------------------------------------------------ einsum forms, tensordot
@pytest.mark.parametrize("spec, shapes", [
    ("ii->", [(3, 3)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iji->j", [(2, 3, 2)]),
    ("...ii->...i", [(2, 3, 3)]), ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("ij...,j->...i", [(3, 4, 5), (4,)]),
    ("...ij->ij", [(2, 3, 4)]), ("ij,j->i", [(3, 1), (4,)]), ("ij,kj->ik", [(3, 1), (2, 4)]),
])
def test_einsum_forms_and_gradients_match_torch(spec, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = cr.einsum(spec, *ours), torch.einsum(spec, *theirs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    cr.sum(out * out).backward()
    (expected * expected).sum().backward()
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), rtol=1e-10)


def test_tensordot_inner_kron_as_torch():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 4, 5))
    assert cr.tensordot(a, b, 0).shape == (2, 3, 4, 3, 4, 5)
    np.testing.assert_allclose(cr.tensordot(a, b).numpy(), np.tensordot(a, b), rtol=1e-12)
    np.testing.assert_allclose(cr.tensordot(a, b, ([-1], [1])).numpy(),
                               np.tensordot(a, b, ([-1], [1])), rtol=1e-12)
    np.testing.assert_allclose(cr.tensor(a).inner(b[0].T).numpy(), np.inner(a, b[0].T), rtol=1e-12)
    np.testing.assert_allclose(cr.tensor(a[0]).kron(b[0]).numpy(),
                               torch.kron(torch.tensor(a[0]), torch.tensor(b[0])).numpy())


@pytest.mark.parametrize("call, error, words", [
    (lambda: cr.einsum("ij->", np.ones((2, 3, 4))), ShapeError, "name 2 axes"),
    (lambda: cr.einsum("ii->", np.ones((2, 3))), ShapeError, "repeated in operand 0"),
    (lambda: cr.einsum("i.j", np.ones((2, 3))), ValueError, "'...'"),
    (lambda: cr.einsum("...i...", np.ones((2, 3))), ValueError, "'...'"),
    (lambda: cr.einsum("i1", np.ones((2, 3))), ValueError, "letters"),
    (lambda: cr.einsum("ij->ii", np.ones((2, 2))), ValueError, "twice"),
    (lambda: cr.einsum("ij->k", np.ones((2, 2))), ValueError, "no operand"),
    (lambda: cr.einsum("ij,jk", np.ones((2, 2))), ValueError, "2 operands"),
    (lambda: cr.tensordot(np.ones((2, 3)), np.ones((2, 3)), 1), ShapeError, "differ"),
    (lambda: cr.tensordot(np.ones((2, 3)), np.ones(3), 2), ValueError, "0 .. 1"),
    (lambda: cr.tensordot(np.ones((2, 3)), np.ones(3), ([0, 1], [0])), ValueError, "pair"),
    (lambda: cr.tensordot(np.ones((2, 3)), np.ones(3), "x"), ValueError, "pair of axis"),
    (lambda: cr.inner(np.ones(2), np.ones(3)), ShapeError, "last axes"),
])
def test_linear_algebra_errors_are_named(call, error, words):
    with pytest.raises(error, match=words):
        call()

"""Ordering and selection beyond their op-info rows: indices (with ties, against PyTorch), the
gradient's scatter with ties, median's lower middle, nonzero's two forms, masked_select's
broadcasting and errors, eval_shape, the array_api_strict backend and the Tensor methods."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.ops import ordering
from chainrule.ops.abstract import eval_shape

torch = pytest.importorskip("torch")
STRICT = "array_api_strict"
FAST = settings(max_examples=25, deadline=None)

#: float64 arrays of small integers: many ties
tied = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                  elements=st.integers(-2, 2).map(float))
#: float64 arrays of distinct values
distinct = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5).map(
    lambda shape: np.random.default_rng(int(np.prod(shape))).permutation(
        int(np.prod(shape))).reshape(shape) * 0.5 - 1.0)


def _grads(ours_fn, torch_fn, x):
    w = np.random.default_rng(3).standard_normal(ours_fn(cr.tensor(x)).shape)
    t = cr.tensor(x, requires_grad=True)
    cr.sum(ours_fn(t) * cr.tensor(w)).backward()
    tt = torch.tensor(x, requires_grad=True)
    (torch_fn(tt) * torch.tensor(w)).sum().backward()
    return t.grad.numpy(), tt.grad.numpy()


# ------------------------------------------------------------------ sort, argsort
@given(tied, st.booleans())
@FAST
def test_stable_sort_matches_torch_with_ties(x, descending):
    axis = -1
    ours = cr.sort(cr.tensor(x), axis=axis, descending=descending)
    theirs = torch.sort(torch.tensor(x), dim=axis, descending=descending, stable=True)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    assert ours.indices.dtype == np.int64
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()
    assert cr.argsort(cr.tensor(x), descending=descending).numpy().tolist() == \
        theirs.indices.tolist()
    got, want = _grads(lambda t: cr.sort(t, descending=descending).values,
                       lambda t: torch.sort(t, descending=descending, stable=True).values, x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sort_along_other_axes_and_0d():
    x = np.array([[3.0, 1.0], [2.0, 5.0], [0.0, 4.0]])
    out = cr.sort(cr.tensor(x), axis=0)
    assert out.values.numpy().tolist() == np.sort(x, axis=0).tolist()
    assert out.indices.numpy().tolist() == np.argsort(x, axis=0, kind="stable").tolist()
    scalar = cr.sort(cr.tensor(2.5))
    assert scalar.values.shape == () and scalar.indices.numpy().tolist() == 0
    assert cr.sort(cr.zeros((2, 0))).values.shape == (2, 0)


def test_sort_indices_have_no_gradient_and_values_do():
    x = cr.tensor(np.array([2.0, 1.0]), requires_grad=True)
    values, indices = cr.sort(x)
    assert values.requires_grad and not indices.requires_grad
    assert not cr.argsort(x).requires_grad


def test_sort_errors():
    with pytest.raises(TypeError, match="axis must be an int"):
        cr.sort(cr.ones(3), axis=None)
    with pytest.raises(cr.AxisError):
        cr.sort(cr.ones((2, 3)), axis=2)
    with pytest.raises(TypeError, match="real"):
        cr.sort(cr.tensor(np.array([True, False])))


# ------------------------------------------------------------------ topk, kthvalue
@given(distinct, st.booleans(), st.data())
@FAST
def test_topk_matches_torch(x, largest, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    k = data.draw(st.integers(0, x.shape[axis]))
    ours = cr.topk(cr.tensor(x), k, axis=axis, largest=largest)
    theirs = torch.topk(torch.tensor(x), k, dim=axis, largest=largest)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()


def test_topk_gradient_goes_to_the_picked_elements():
    x = cr.tensor(np.array([[0.5, 3.0, -1.0, 2.0]]), requires_grad=True)
    cr.sum(cr.topk(x, 2).values * cr.tensor(np.array([[10.0, 1.0]]))).backward()
    assert x.grad.numpy().tolist() == [[0.0, 10.0, 0.0, 1.0]]


@pytest.mark.parametrize("k", [-1, 5, 1.0, True])
def test_topk_refuses_a_bad_k(k):
    with pytest.raises(ValueError, match="k="):
        cr.topk(cr.ones((2, 4)), k)


@given(distinct, st.data())
@FAST
def test_kthvalue_matches_torch(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    k = data.draw(st.integers(1, x.shape[axis]))
    keepdims = data.draw(st.booleans())
    ours = cr.kthvalue(cr.tensor(x), k, axis=axis, keepdims=keepdims)
    theirs = torch.kthvalue(torch.tensor(x), k, dim=axis, keepdim=keepdims)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()


def test_kthvalue_refuses_a_bad_k():
    with pytest.raises(ValueError, match="1 .. 3"):
        cr.kthvalue(cr.ones(3), 0)


# ------------------------------------------------------------------ median
@given(distinct, st.data())
@FAST
def test_median_matches_torch_with_indices(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    ours = cr.median(cr.tensor(x), axis=axis, keepdims=keepdims)
    theirs = torch.median(torch.tensor(x), dim=axis, keepdim=keepdims)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()
    assert float(cr.median(cr.tensor(x))) == float(torch.median(torch.tensor(x)))


def test_median_of_an_even_count_is_the_lower_middle_not_numpys_mean():
    x = np.array([4.0, 1.0, 3.0, 2.0])
    assert float(cr.median(cr.tensor(x))) == 2.0 != np.median(x)
    assert cr.median(cr.tensor(x)).shape == ()
    values, indices = cr.median(cr.tensor(x), axis=0)
    assert (float(values), int(indices)) == (2.0, 3)


@given(tied)
@FAST
def test_median_values_and_gradient_with_ties_match_torch(x):
    ours = cr.median(cr.tensor(x), axis=-1)
    theirs = torch.median(torch.tensor(x), dim=-1)
    assert ours.values.numpy().tolist() == theirs.values.tolist()
    # the index among equal values may differ from torch's; it must hold the median value
    picked = np.take_along_axis(x, ours.indices.numpy()[..., None], axis=-1)[..., 0]
    assert picked.tolist() == theirs.values.tolist()
    t = cr.tensor(x, requires_grad=True)
    cr.sum(cr.median(t, axis=-1).values).backward()
    grad = t.grad.numpy()
    assert grad.sum(axis=-1).tolist() == np.ones(x.shape[:-1]).tolist()
    assert np.take_along_axis(grad, ours.indices.numpy()[..., None], -1).min(initial=1) == 1


def test_median_of_nothing_raises():
    with pytest.raises(cr.ShapeError, match="empty"):
        cr.median(cr.zeros((2, 0)), axis=1)
    with pytest.raises(cr.ShapeError, match="empty"):
        cr.median(cr.zeros(0))


# ------------------------------------------------------------------ nonzero, masked_select
@pytest.mark.parametrize("x", [np.array([[0, 1, 2], [3, 0, 0]]), np.array([0.0, 2.0, 0.0]),
                               np.zeros((2, 3)), np.array(5.0), np.array(0.0),
                               np.array([[[True, False]], [[False, True]]])])
def test_nonzero_matches_torch_and_numpy(x):
    out = cr.nonzero(cr.tensor(x))
    expected = torch.nonzero(torch.tensor(x))
    assert out.dtype == np.int64
    assert out.shape == tuple(expected.shape)
    assert out.numpy().tolist() == expected.tolist()
    parts = cr.nonzero(cr.tensor(x), as_tuple=True)
    assert [p.numpy().tolist() for p in parts] == \
        [p.tolist() for p in torch.nonzero(torch.tensor(x), as_tuple=True)]


@pytest.mark.parametrize("x_shape, mask_shape", [((3, 4), (3, 4)), ((3, 1), (3, 4)),
                                                 ((4,), (3, 4)), ((3, 4), (4,)), ((2, 3), ())])
def test_masked_select_broadcasts_and_backpropagates_as_torch(x_shape, mask_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    mask = rng.random(mask_shape) > 0.4
    ours = cr.masked_select(cr.tensor(x), cr.tensor(mask))
    theirs = torch.masked_select(torch.tensor(x), torch.tensor(mask))
    assert ours.numpy().tolist() == theirs.tolist()
    got, want = _grads(lambda t: cr.masked_select(t, mask),
                       lambda t: torch.masked_select(t, torch.tensor(mask)), x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_masked_select_errors():
    with pytest.raises(TypeError, match="boolean"):
        cr.masked_select(cr.ones(3), np.array([1, 0, 1]))
    with pytest.raises(cr.ShapeError, match="broadcast"):
        cr.masked_select(cr.ones(3), np.array([True, False]))


# ------------------------------------------------------------------ methods, eval_shape, backends
def test_tensor_methods():
    x = cr.tensor(np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]))
    assert x.sort().values.numpy().tolist() == [[1.0, 2.0, 3.0], [0.0, 4.0, 5.0]]
    assert x.argsort(axis=0).numpy().tolist() == [[1, 0, 0], [0, 1, 1]]
    assert x.topk(1).indices.numpy().tolist() == [[0], [1]]
    assert float(x.median()) == 2.0
    assert x.kthvalue(3).values.numpy().tolist() == [3.0, 5.0]
    assert x.nonzero().shape == (5, 2)
    assert x.masked_select(x > 2.5).numpy().tolist() == [3.0, 5.0, 4.0]


def test_eval_shape_of_selections():
    x = cr.ones((3, 5), dtype=np.float32)
    for fn, shape, dtype in [(lambda t: cr.sort(t).values, (3, 5), np.float32),
                             (lambda t: cr.sort(t, axis=0).indices, (3, 5), np.int64),
                             (lambda t: cr.topk(t, 2).values, (3, 2), np.float32),
                             (lambda t: cr.median(t, axis=1, keepdims=True).indices, (3, 1),
                              np.int64),
                             (lambda t: cr.median(t), (), np.float32)]:
        aval = eval_shape(fn, x)
        assert (tuple(aval.shape), np.dtype(aval.dtype)) == (shape, np.dtype(dtype))


@pytest.mark.parametrize("fn", [lambda t: cr.sort(t, axis=0, descending=True),
                                lambda t: cr.topk(t, 2, axis=1),
                                lambda t: cr.median(t, axis=1), lambda t: cr.kthvalue(t, 3, 0)])
def test_strict_backend_matches_numpy(fn):
    pytest.importorskip("array_api_strict")
    x = np.array([[0.5, -1.0, 2.0, 0.5], [0.0, 3.0, -2.0, 1.0], [1.5, 0.0, 0.25, 4.0]])
    results = []
    for device in ("cpu", STRICT):
        t = cr.tensor(x, device=device, requires_grad=True)
        values, indices = fn(t)
        cr.sum(values * values).backward()
        results.append([a.to("cpu").numpy() for a in (values, indices, t.grad)])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_array_equal(got, want)


def test_strict_backend_nonzero_and_masked_select():
    pytest.importorskip("array_api_strict")
    x = np.array([[0.0, 1.5], [2.0, 0.0]])
    t = cr.tensor(x, device=STRICT)
    assert cr.nonzero(t).to("cpu").numpy().tolist() == [[0, 1], [1, 0]]
    selected = cr.masked_select(t, cr.tensor(x > 0, device=STRICT))
    assert selected.device.type == STRICT
    assert selected.to("cpu").numpy().tolist() == [1.5, 2.0]


def test_generic_take_and_put_without_take_along_axis():
    """The fallbacks for namespaces lacking take_along_axis, against NumPy's kernels."""
    xp = pytest.importorskip("array_api_strict")

    class Without:  # the namespace minus take_along_axis
        def __getattr__(self, name):
            if name == "take_along_axis":
                raise AttributeError(name)
            return getattr(xp, name)

    x = np.arange(12.0).reshape(3, 4)
    index = np.array([[3, 0], [1, 1], [2, 0]])
    for axis, idx in ((1, index), (0, np.array([[2, 0, 1, 1], [0, 2, 2, 0]]))):
        taken = ordering._take_along_generic(Without(), xp.asarray(x), xp.asarray(idx),
                                             axis=axis)
        np.testing.assert_array_equal(np.asarray(taken), np.take_along_axis(x, idx, axis=axis))
        put = ordering._put_along_generic(xp, xp.asarray(x[:, :2] if axis else x[:2]),
                                          xp.asarray(idx), axis=axis, size=x.shape[axis])
        expected = ordering._put_along_numpy(x[:, :2] if axis else x[:2], idx, axis=axis,
                                             size=x.shape[axis])
        np.testing.assert_array_equal(np.asarray(put), expected)


def test_nan_orders_as_torch():
    x = np.array([[1.0, np.nan, 2.0, np.nan, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0],
                  [np.nan, 0.5, -1.0, 2.0, 1.0]])
    t = torch.tensor(x)
    ours, theirs = cr.median(cr.tensor(x), axis=1), torch.median(t, dim=1)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    assert ours.indices.numpy().tolist() == theirs.indices.tolist()
    assert np.isnan(float(cr.median(cr.tensor(x))))
    for descending in (False, True):
        ours_sort = cr.sort(cr.tensor(x), descending=descending)
        theirs_sort = torch.sort(t, descending=descending, stable=True)
        np.testing.assert_array_equal(ours_sort.values.numpy(), theirs_sort.values.numpy())
        assert ours_sort.indices.numpy().tolist() == theirs_sort.indices.tolist()
    ours_top, theirs_top = cr.topk(cr.tensor(x), 2), torch.topk(t, 2)
    np.testing.assert_array_equal(ours_top.values.numpy(), theirs_top.values.numpy())
    assert ours_top.indices.numpy().tolist() == theirs_top.indices.tolist()


# ------------------------------------------------------------------ quantile, searchsorted
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "nearest", "midpoint"])
@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 1.0, [0.1, 0.5, 0.75]])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (None, True), (1, False), (0, True)])
def test_quantile_matches_torch(interpolation, q, axis, keepdims):
    x = np.random.default_rng(0).permutation(12).reshape(3, 4) * 0.5
    ours = cr.quantile(cr.tensor(x), q, axis=axis, keepdims=keepdims,
                       interpolation=interpolation)
    theirs = torch.quantile(torch.tensor(x), torch.tensor(q, dtype=torch.float64), dim=axis,
                            keepdim=keepdims, interpolation=interpolation)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_quantile_gradient_with_ties_and_nan_match_torch():
    x = np.array([[1.0, 2.0, 2.0, 0.0, 5.0], [3.0, np.nan, 1.0, 0.0, 2.0]])
    got, want = _grads(lambda t: cr.quantile(t[:1], [0.3, 0.6], axis=1),
                       lambda t: torch.quantile(t[:1], torch.tensor([0.3, 0.6], dtype=t.dtype),
                                                dim=1), x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    out = cr.quantile(cr.tensor(x), 0.5, axis=1).numpy()
    assert out[0] == 2.0 and np.isnan(out[1])


def test_quantile_errors():
    with pytest.raises(ValueError, match="q="):
        cr.quantile(cr.ones(3), 1.5)
    with pytest.raises(ValueError, match="interpolation"):
        cr.quantile(cr.ones(3), 0.5, interpolation="cubic")
    with pytest.raises(TypeError, match="floating"):
        cr.quantile(cr.tensor(np.array([1, 2])), 0.5)
    with pytest.raises(cr.ShapeError, match="empty"):
        cr.quantile(cr.zeros((2, 0)), 0.5, axis=1)


@pytest.mark.parametrize("device", ["cpu", STRICT])
@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_matches_torch(side, device):
    if device == STRICT:
        pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    flat = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    rows = np.sort(rng.integers(0, 4, (2, 5)).astype(float), axis=1)
    cases = [(flat, np.array([[0.0, 2.0], [2.5, 6.0]])), (flat, np.array(2.0)),
             (rows, np.array([[0.0, 2.0, 3.0], [1.0, 4.0, 2.0]]))]
    for seq, v in cases:
        ours = cr.searchsorted(cr.tensor(seq, device=device), cr.tensor(v, device=device),
                               side=side)
        theirs = torch.searchsorted(torch.tensor(seq), torch.tensor(v), side=side)
        assert ours.dtype == np.int64
        assert ours.to("cpu").numpy().tolist() == theirs.tolist()
    assert cr.searchsorted(flat, 2.0, right=True).numpy().tolist() == 3


def test_searchsorted_errors():
    with pytest.raises(ValueError, match="side"):
        cr.searchsorted(cr.ones(3), cr.ones(2), side="middle")
    with pytest.raises(cr.ShapeError, match="leading axes"):
        cr.searchsorted(cr.ones((2, 3)), cr.ones((3, 2)))

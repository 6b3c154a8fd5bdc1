"""Issue 12's indexing and scatter ops beyond their op-info rows: repeats, index validation,
one_hot, the generic (array API) kernels against torch, and Tensor methods."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine.errors import ShapeError
from chainrule.ops.abstract import eval_shape

pytest.importorskip("array_api_strict")
DEVICES = ("cpu", "array_api_strict")


def _same(ours, theirs):
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.cpu().numpy(), theirs.detach().numpy(), rtol=1e-12)


@st.composite
def _gather_case(draw):
    """x of rank 1..3, an axis, an index of x's rank no longer than x off the axis, and a src."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axis = draw(st.integers(0, len(shape) - 1))
    ishape = tuple(draw(st.integers(0 if d != axis else 0, n if d != axis else 5))
                   for d, n in enumerate(shape))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, shape[axis], ishape)
    return rng.standard_normal(shape), axis, index, rng.standard_normal(ishape)


@settings(max_examples=25, deadline=None)
@given(case=_gather_case(), device=st.sampled_from(DEVICES))
def test_gather_and_scatter_add_match_torch_with_repeats(case, device):
    x, axis, index, src = case
    tx, ti, ts = torch.tensor(x), torch.tensor(index), torch.tensor(src)
    _same(cr.gather(cr.tensor(x, device=device), axis, index), tx.gather(axis, ti))
    _same(cr.scatter_add(cr.tensor(x, device=device), axis, index, cr.tensor(src, device=device)),
          tx.scatter_add(axis, ti, ts))


@settings(max_examples=25, deadline=None)
@given(case=_gather_case(), device=st.sampled_from(DEVICES))
def test_scatter_gradient_matches_torch_with_repeated_targets(case, device):
    """A repeated target: the forward keeps the last writer (as torch on CPU) and every writer of
    src gets g gathered at its target, x none at the overwritten places (torch's rule)."""
    x, axis, index, src = case
    xs = cr.tensor(x, device=device, requires_grad=True)
    ss = cr.tensor(src, device=device, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ts = torch.tensor(src, requires_grad=True)
    out, expected = cr.scatter(xs, axis, index, ss), tx.scatter(axis, torch.tensor(index), ts)
    _same(out, expected)
    g = np.random.default_rng(1).standard_normal(x.shape)
    cr.sum(out * cr.tensor(g, device=device)).backward()
    (expected * torch.tensor(g)).sum().backward()
    _same(xs.grad, tx.grad)
    _same(ss.grad, ts.grad)


def test_gather_backward_accumulates_repeats_and_differentiates_again():
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    index = np.array([[2, 2, 0, 2]])

    def f(x):
        return cr.sum(cr.gather(x, 1, index) ** 2)

    np.testing.assert_array_equal(cr.gather(x, 1, index).numpy(), [[2.0, 2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(cr.grad(f)(x).numpy(), [[0.0, 0.0, 12.0], [0.0, 0.0, 0.0]])
    v = cr.tensor(np.arange(1.0, 7.0).reshape(2, 3))
    hessian_v = cr.grad(lambda x: cr.sum(cr.grad(f)(x) * v))(x)  # 2 * (picks of each) * v
    np.testing.assert_array_equal(hessian_v.numpy(), [[2.0, 0.0, 18.0], [0.0, 0.0, 0.0]])


def test_scatter_add_reads_only_the_index_shaped_corner_of_a_larger_src():
    x, src = np.zeros((2, 4)), np.arange(12.0).reshape(3, 4)
    index = np.array([[0, 1], [3, 3]])
    s = cr.tensor(src, requires_grad=True)
    out = cr.scatter_add(x, 1, index, s)
    _same(out, torch.zeros(2, 4, dtype=torch.float64).scatter_add(
        1, torch.tensor(index), torch.tensor(src)))
    cr.sum(out).backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])


def test_scatter_takes_a_number_and_gather_a_0d_tensor():
    x = torch.zeros(2, 3)
    index = np.array([[2], [0]])
    _same(cr.scatter(np.zeros((2, 3), np.float32), 1, index, 7.0),
          x.scatter(1, torch.tensor(index), 7.0))
    _same(cr.gather(np.array(3.0), 0, np.array(0)), torch.tensor(3.0).gather(0, torch.tensor(0)))


def test_index_select_take_along_axis_masked_fill_one_hot_as_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    t = torch.tensor(x)
    _same(cr.tensor(x).index_select(0, cr.tensor([2, 2, 0])),
          t.index_select(0, torch.tensor([2, 2, 0])))
    _same(cr.index_select(x, -1, np.array(1)), t.index_select(-1, torch.tensor(1)))
    _same(cr.index_select(x, 1, []), t.index_select(1, torch.tensor([], dtype=torch.long)))
    index = np.array([[1], [0], [3]])
    _same(cr.take_along_axis(x, index, 1), torch.take_along_dim(t, torch.tensor(index), 1))
    _same(cr.take_along_axis(x, np.array([5, 0]), None),
          torch.take_along_dim(t, torch.tensor([5, 0])))
    mask = np.array([True, False, True, False])
    _same(cr.tensor(x).masked_fill(mask, 9), t.masked_fill(torch.tensor(mask), 9))
    labels = np.array([[0, 2], [1, 4]])
    ours = cr.one_hot(labels)
    assert ours.dtype == np.int64
    _same(ours, torch.nn.functional.one_hot(torch.tensor(labels)))
    _same(cr.one_hot(labels, 6), torch.nn.functional.one_hot(torch.tensor(labels), 6))
    on_device = cr.one_hot(cr.tensor(labels, device="array_api_strict"), 5)
    assert on_device.device.type == "array_api_strict"
    _same(on_device, torch.nn.functional.one_hot(torch.tensor(labels), 5))


def test_masked_fill_gradient_skips_the_filled_places_and_sums_into_a_tensor_value():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    v = cr.tensor(np.array(0.5), requires_grad=True)
    mask = np.array([[True, False, False], [True, True, False]])
    cr.sum(cr.masked_fill(x, mask, v) * 2.0).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask, 0.0, 2.0))
    assert v.grad.item() == 6.0


@pytest.mark.parametrize("call, error, words", [
    (lambda: cr.gather(np.ones((2, 3)), 1, np.array([[3]])), IndexError, "gather: index"),
    (lambda: cr.gather(np.ones((2, 3)), 1, np.array([[-1]])), IndexError, "not wrapped"),
    (lambda: cr.gather(np.ones((2, 3)), 1, np.array([1])), ShapeError, "dimensions"),
    (lambda: cr.gather(np.ones((2, 3)), 1, np.zeros((3, 1), int)), ShapeError, "axis 0"),
    (lambda: cr.gather(np.ones((2, 3)), 1, np.zeros((1, 1))), TypeError, "integers"),
    (lambda: cr.gather(np.ones((2, 3)), 2, np.zeros((1, 1), int)), cr.AxisError, "axis"),
    (lambda: cr.scatter(np.ones((2, 3)), 0, np.array([[2]]), np.ones((1, 1))), IndexError,
     "scatter: index"),
    (lambda: cr.scatter_add(np.ones((2, 3)), 0, np.zeros((1, 2), int), np.ones((1, 1))),
     ShapeError, "src"),
    (lambda: cr.scatter_add(np.array(1.0), 0, np.array(0), np.array(1.0)), ShapeError, "0-d"),
    (lambda: cr.index_select(np.ones((2, 3)), 0, [0, 2]), IndexError, "index_select"),
    (lambda: cr.index_select(np.ones((2, 3)), 0, [[0]]), ShapeError, "1-D"),
    (lambda: cr.take_along_axis(np.ones((2, 3)), np.zeros((3, 1), int), 1), ShapeError,
     "broadcast"),
    (lambda: cr.masked_fill(np.ones((2, 3)), np.ones(3), 0.0), TypeError, "bool"),
    (lambda: cr.masked_fill(np.ones((2, 3)), np.ones((3, 3), bool), 0.0), ShapeError,
     "broadcast"),
    (lambda: cr.masked_fill(np.ones(3), np.ones(3, bool), cr.tensor([1.0])), ShapeError, "0-d"),
    (lambda: cr.one_hot(np.array([0, 3]), 3), IndexError, "one_hot"),
    (lambda: cr.one_hot(np.array([-1, 0]), 3), IndexError, "one_hot"),
    (lambda: cr.one_hot(np.array([], int)), ValueError, "empty"),
    (lambda: cr.one_hot(np.array([0.0])), TypeError, "integers"),
])
def test_bad_arguments_are_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_out_of_range_is_caught_on_the_array_api_backend_too():
    x = cr.tensor(np.ones((2, 3)), device="array_api_strict")
    with pytest.raises(IndexError, match="gather"):
        cr.gather(x, 0, cr.tensor([[2]], device="array_api_strict"))


def test_eval_shape_with_an_abstract_index():
    def f(x, index):
        return cr.gather(x, 1, index) + cr.scatter_add(x, 1, index, x)[:, :2]

    out = eval_shape(f, cr.tensor(np.ones((3, 4), np.float32)), cr.tensor(np.zeros((3, 2), int)))
    assert tuple(out.shape) == (3, 2) and np.dtype(out.dtype) == np.float32

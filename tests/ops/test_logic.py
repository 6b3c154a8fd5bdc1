"""Logic and tests of values (issue 12): logical_*, & | ^ ~, isnan, isinf, isfinite, isclose.

Not differentiable: bool results, checked against PyTorch (the semantics) and NumPy, on every
backend, with their dtype rules and errors.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.engine.errors import ShapeError

_SPECIALS = np.array([0.0, -0.0, 1.0, -2.5, np.nan, np.inf, -np.inf])
_LOGICAL = ["logical_and", "logical_or", "logical_xor"]
_BITWISE = {"__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor"}


def _arrays(dtype, shape=(2, 3)):
    elements = {np.bool_: st.booleans(), np.int64: st.integers(-9, 9),
                np.float64: st.sampled_from(list(_SPECIALS) + [0.25, 3.0])}[dtype]
    return hnp.arrays(dtype, shape, elements=elements)


@settings(max_examples=30, deadline=None)
@given(x=_arrays(np.float64), y=_arrays(np.int64, (3,)), name=st.sampled_from(_LOGICAL))
def test_logical_any_dtype_is_nonzero_and_broadcasts_as_torch(x, y, name):
    got = getattr(cr, name)(cr.tensor(x), cr.tensor(y))
    want = getattr(torch, name)(torch.tensor(x), torch.tensor(y)).numpy()
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got.numpy(), want)


@settings(max_examples=20, deadline=None)
@given(x=_arrays(np.float64))
def test_logical_not_and_value_tests_match_torch(x):
    t = torch.tensor(x)
    for name in ["logical_not", "isnan", "isinf", "isfinite"]:
        got = getattr(cr, name)(cr.tensor(x))
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got.numpy(), getattr(torch, name)(t).numpy(), err_msg=name)
        np.testing.assert_array_equal(getattr(cr.tensor(x), name)().numpy(), got.numpy())


@settings(max_examples=30, deadline=None)
@given(x=_arrays(np.bool_), y=_arrays(np.bool_, (3,)), dunder=st.sampled_from(list(_BITWISE)))
def test_operators_on_bool_tensors_are_logical(x, y, dunder):
    got = getattr(cr.tensor(x), dunder)(cr.tensor(y))
    want = getattr(torch.tensor(x), dunder)(torch.tensor(y)).numpy()
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal((~cr.tensor(x)).numpy(), (~torch.tensor(x)).numpy())


@settings(max_examples=30, deadline=None)
@given(x=_arrays(np.int64), y=_arrays(np.bool_, (3,)), dunder=st.sampled_from(list(_BITWISE)))
def test_operators_on_integers_are_bitwise_and_bool_joins_the_integers(x, y, dunder):
    got = getattr(cr.tensor(x), dunder)(cr.tensor(y))
    want = getattr(torch.tensor(x), dunder)(torch.tensor(y)).numpy()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal((~cr.tensor(x)).numpy(), -x - 1)
    named = getattr(cr, _BITWISE[dunder])(cr.tensor(y), cr.tensor(x))
    np.testing.assert_array_equal(named.numpy(), want)  # symmetric


def test_python_scalars_on_either_side():
    b = cr.tensor(np.array([True, False]))
    np.testing.assert_array_equal((True & b).numpy(), [True, False])
    np.testing.assert_array_equal((b | False).numpy(), [True, False])
    np.testing.assert_array_equal((True ^ b).numpy(), [False, True])
    i = cr.tensor(np.array([6, 5]))
    np.testing.assert_array_equal((3 & i).numpy(), [2, 1])
    np.testing.assert_array_equal((i | 8).numpy(), [14, 13])
    np.testing.assert_array_equal((1 ^ i).numpy(), [7, 4])


@pytest.mark.parametrize("op", [lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b,
                                lambda a, b: ~a, lambda a, b: cr.bitwise_and(b, a)])
def test_bitwise_refuses_floating_tensors(op):
    f = cr.tensor(np.array([1.0, 0.0]))
    with pytest.raises(TypeError, match="bool or integer"):
        op(f, cr.tensor(np.array([True, False])))


def test_shapes_that_do_not_broadcast_are_named():
    with pytest.raises(ShapeError, match=r"\(2,\).*\(3,\)"):
        cr.logical_and(cr.tensor(np.ones(2)), cr.tensor(np.ones(3)))
    with pytest.raises(ShapeError, match="isclose"):
        cr.isclose(cr.tensor(np.ones(2)), cr.tensor(np.ones(3)))


def test_results_are_outside_the_graph():
    x = cr.tensor(np.array([1.0, np.nan]), requires_grad=True)
    for out in [cr.isnan(x), cr.logical_not(x), cr.isclose(x, x), x.isinf()]:
        assert not out.requires_grad and out.grad_fn is None


_CLOSE_VALUES = st.sampled_from([0.0, 1.0, 1.0 + 1e-6, 1.0 + 1e-4, 1e-9, -1e-9, 1e8, 1e8 + 1e3,
                                 np.nan, np.inf, -np.inf])


@settings(max_examples=60, deadline=None)
@given(a=hnp.arrays(np.float64, 6, elements=_CLOSE_VALUES),
       b=hnp.arrays(np.float64, 6, elements=_CLOSE_VALUES),
       rtol=st.sampled_from([0.0, 1e-5, 1e-3]), atol=st.sampled_from([0.0, 1e-8, 1e-3]),
       equal_nan=st.booleans(), float32=st.booleans())
def test_isclose_matches_torch(a, b, rtol, atol, equal_nan, float32):
    if float32:
        a, b = a.astype(np.float32), b.astype(np.float32)
    got = cr.isclose(cr.tensor(a), cr.tensor(b), rtol=rtol, atol=atol, equal_nan=equal_nan)
    want = torch.isclose(torch.tensor(a), torch.tensor(b), rtol=rtol, atol=atol,
                         equal_nan=equal_nan).numpy()
    np.testing.assert_array_equal(got.numpy(), want)
    assert cr.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan) == bool(want.all())


def test_isclose_is_relative_to_b_and_takes_integers_and_bools():
    one, more = cr.tensor(np.array([1.0])), cr.tensor(np.array([1.041]))
    assert cr.isclose(one, more, rtol=0.04, atol=0).numpy().tolist() == [True]  # 0.041 <= 0.0416
    assert cr.isclose(more, one, rtol=0.04, atol=0).numpy().tolist() == [False]  # 0.041 > 0.04
    ints = cr.isclose(cr.tensor(np.array([1, 2, 100])), cr.tensor(np.array([1, 3, 101])), rtol=0.01)
    np.testing.assert_array_equal(ints.numpy(), [True, False, True])
    bools = cr.isclose(cr.tensor(np.array([True, False])), cr.tensor(np.array([True, True])))
    np.testing.assert_array_equal(bools.numpy(), [True, False])
    assert cr.tensor([1.0, 2.0]).allclose(cr.tensor([1.0, 2.0 + 1e-9]))
    assert not cr.allclose(cr.tensor([1.0, np.nan]), cr.tensor([1.0, np.nan]))


@pytest.mark.parametrize("bad, error", [(-1e-3, ValueError), (float("nan"), ValueError),
                                        ("0.1", TypeError), (True, TypeError)])
def test_isclose_refuses_bad_tolerances(bad, error):
    x = cr.tensor([1.0])
    with pytest.raises(error, match="rtol"):
        cr.isclose(x, x, rtol=bad)
    with pytest.raises(error, match="atol"):
        cr.isclose(x, x, atol=bad)


def test_every_function_on_each_backend(backend):
    x = np.array([[0.0, 1.5, np.nan], [np.inf, -2.0, 0.0]])
    y = np.array([0.0, 1.5 + 1e-7, 3.0])
    tx, ty = cr.tensor(x, device=backend), cr.tensor(y, device=backend)
    results = {
        "and": (cr.logical_and(tx, ty), np.logical_and(x, y)),
        "or": (cr.logical_or(tx, ty), np.logical_or(x, y)),
        "xor": (cr.logical_xor(tx, ty), np.logical_xor(x, y)),
        "not": (cr.logical_not(tx), np.logical_not(x)),
        "isnan": (cr.isnan(tx), np.isnan(x)),
        "isinf": (cr.isinf(tx), np.isinf(x)),
        "isfinite": (cr.isfinite(tx), np.isfinite(x)),
        "isclose": (cr.isclose(tx, ty), np.isclose(x, y)),
        "&": ((tx > 0) & (ty > 0), (x > 0) & (y > 0)),
        "~": (~(tx > 0), ~(x > 0)),
        "int ^": (cr.tensor(np.array([5, 6]), device=backend) ^ 3, np.array([6, 5])),
        "int ~": (~cr.tensor(np.array([5, -1]), device=backend), np.array([-6, 0])),
    }
    for name, (got, want) in results.items():
        assert got.device.type == backend, name
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)


def test_two_backends_in_one_call_are_refused():
    pytest.importorskip("array_api_strict")
    with pytest.raises(cr.BackendMismatchError):
        cr.logical_and(cr.tensor([1.0]), cr.tensor([1.0], device="array_api_strict"))


def test_eval_shape_gives_the_shape_and_dtype():
    def f(x, i):
        return cr.logical_and(x > 0, cr.isnan(x)), i & 3, cr.isclose(x, 1.0)

    out = cr.eval_shape(f, cr.tensor(np.ones((2, 3))), cr.tensor(np.ones(3, dtype=np.int32)))
    assert [(tuple(o.shape), np.dtype(o.dtype)) for o in out] == [
        ((2, 3), np.bool_), ((3,), np.int32), ((2, 3), np.bool_)]

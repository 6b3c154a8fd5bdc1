"""Issue 12's creation functions: logspace, eye's diagonal offset, empty / empty_like,
tril_indices / triu_indices, rand_like / randn_like, and the dtype rules of full / linspace /
*_like, against torch and NumPy; their devices and their errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr

torch = pytest.importorskip("torch")

STRICT = "array_api_strict"


def _torch_dtype_name(t) -> str:
    return str(t.dtype).removeprefix("torch.")


# ------------------------------------------------------------------ logspace and linspace
@pytest.mark.parametrize("start, end, steps, base", [
    (0, 2, 5, 10.0), (-1.0, 3.0, 9, 2.0), (1, 1, 3, 10.0), (0, 1, 1, 10.0), (0, 1, 0, 10.0),
    (2.0, -2.0, 4, np.e),
])
def test_logspace_matches_torch(start, end, steps, base):
    ours = cr.logspace(start, end, steps, base=base)
    expected = torch.logspace(start, end, steps, base=base)
    assert ours.dtype == np.float32 and _torch_dtype_name(expected) == "float32"
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-6)
    wide = cr.logspace(start, end, steps, base=base, dtype=np.float64)
    np.testing.assert_allclose(wide.numpy(), np.logspace(start, end, steps, base=base),
                               rtol=1e-15)


def test_linspace_and_logspace_default_to_float32_even_for_int_bounds():
    assert cr.linspace(0, 10, 11).dtype == np.float32
    assert cr.logspace(0, 3, 4).dtype == np.float32
    assert cr.logspace(0, 3, 4, dtype=np.int64).tolist() == [1, 10, 100, 1000]


# ------------------------------------------------------------------ eye
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 5)), st.integers(-6, 6))
def test_eye_matches_numpy(n, m, k):
    ours = cr.eye(n, m, k=k)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.numpy(), np.eye(n, m, k=k, dtype=np.float32))


def test_eye_matches_torch_and_runs_on_the_strict_backend():
    np.testing.assert_array_equal(cr.eye(3, 4).numpy(), torch.eye(3, 4).numpy())
    strict = cr.eye(3, k=-1, dtype=np.int64, device=STRICT)
    assert strict.device == STRICT and strict.dtype == np.int64
    np.testing.assert_array_equal(strict.numpy(), np.eye(3, k=-1, dtype=np.int64))


# ------------------------------------------------------------------ tril / triu indices
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 6), st.integers(-7, 7), st.one_of(st.none(), st.integers(0, 6)))
def test_triangle_indices_match_torch_and_numpy(n, k, m):
    cols = n if m is None else m
    for ours, theirs, numpy_fn in ((cr.tril_indices, torch.tril_indices, np.tril_indices),
                                   (cr.triu_indices, torch.triu_indices, np.triu_indices)):
        got = ours(n, k, m)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got.numpy(), theirs(n, cols, k).numpy())
        rows, columns = ours(n, k, m, as_tuple=True)
        expected_rows, expected_columns = numpy_fn(n, k, m)
        np.testing.assert_array_equal(rows.numpy(), expected_rows)
        np.testing.assert_array_equal(columns.numpy(), expected_columns)


def test_triangle_indices_pick_the_triangle():
    x = cr.arange(12).reshape(3, 4)
    picked = x[cr.tril_indices(3, 0, 4, as_tuple=True)]
    np.testing.assert_array_equal(picked.numpy(), x.numpy()[np.tril_indices(3, 0, 4)])
    rows, cols = cr.triu_indices(3, 1, 4)  # the (2, count) tensor unpacks into its two rows
    np.testing.assert_array_equal(x[rows, cols].numpy(), np.triu(x.numpy(), 1)[
        np.triu_indices(3, 1, 4)])


def test_triangle_indices_dtype_and_device():
    idx = cr.tril_indices(4, -1, dtype=np.int32, device=STRICT)
    assert idx.dtype == np.int32 and idx.device == STRICT and idx.shape == (2, 6)
    assert not idx.requires_grad
    parts = cr.triu_indices(3, device=STRICT, as_tuple=True)
    assert all(p.device == STRICT and p.shape == (6,) for p in parts)


# ------------------------------------------------------------------ empty
def test_empty_has_the_shape_dtype_and_device_asked_for():
    assert cr.empty(2, 3).shape == (2, 3)
    assert cr.empty((2, 3)).dtype == np.float32
    assert cr.empty().shape == ()
    t = cr.empty(4, dtype=np.int32, device=STRICT, requires_grad=False)
    assert (t.shape, t.dtype, t.device) == ((4,), np.int32, STRICT)
    assert cr.empty(3, requires_grad=True).requires_grad


def test_empty_like_follows_its_model():
    model = cr.tensor(np.ones((2, 5), np.float64), device=STRICT)
    t = cr.empty_like(model)
    assert (t.shape, t.dtype, t.device) == ((2, 5), np.float64, STRICT)
    t = cr.empty_like(np.arange(3), dtype=np.float32, device="cpu")
    assert (t.shape, t.dtype, t.device) == ((3,), np.float32, "cpu")


# ------------------------------------------------------------------ rand_like / randn_like
def test_random_like_draws_with_the_model_shape_dtype_and_device():
    model = np.zeros((3, 4))
    uniform = cr.rand_like(model)
    assert (uniform.shape, uniform.dtype) == ((3, 4), np.float64)
    assert ((uniform.numpy() >= 0) & (uniform.numpy() < 1)).all()
    normal = cr.randn_like(cr.zeros(2, 5, device=STRICT))
    assert (normal.shape, normal.dtype, normal.device) == ((2, 5), np.float32, STRICT)
    assert cr.randn_like(model, dtype=np.float32).dtype == np.float32


def test_random_like_is_reproducible_from_a_seed_and_equals_rand():
    cr.manual_seed(3)
    a = cr.randn_like(np.zeros((2, 3), np.float32))
    cr.manual_seed(3)
    b = cr.randn(2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    first = cr.rand_like(np.zeros(5), generator=cr.Generator(11))
    second = cr.rand_like(np.zeros(5), generator=cr.Generator(11))
    np.testing.assert_array_equal(first.numpy(), second.numpy())


def test_random_like_refuses_integer_models_as_torch():
    with pytest.raises(RuntimeError):
        torch.rand_like(torch.arange(3))
    with pytest.raises(TypeError, match="rand_like: draws floats; x has dtype int64"):
        cr.rand_like(np.arange(3))
    with pytest.raises(TypeError, match="randn_like"):
        cr.randn_like(np.zeros(3), dtype=np.int32)


# ------------------------------------------------------------------ dtype rules of full / *_like
@pytest.mark.parametrize("value", [2, 2.5, True, -7])
def test_full_takes_its_dtype_from_the_value_as_torch(value):
    ours = cr.full((2, 3), value)
    expected = torch.full((2, 3), value)
    assert str(ours.dtype) == _torch_dtype_name(expected)
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())


@pytest.mark.parametrize("make", [cr.zeros_like, cr.ones_like, cr.empty_like,
                                  lambda x: cr.full_like(x, 3)])
@pytest.mark.parametrize("model", [np.arange(4, dtype=np.int32), np.ones((2, 2), np.float64),
                                   np.array([True, False])])
def test_like_functions_keep_the_model_dtype(make, model):
    out = make(model)
    assert out.dtype == model.dtype and out.shape == model.shape


def test_full_like_casts_the_value_to_the_model_dtype_as_torch():
    ours = cr.full_like(np.arange(3), 2.7)
    expected = torch.full_like(torch.arange(3), 2.7)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("call, words", [
    (lambda: cr.eye(-1), "eye: n must be a non-negative int, got -1"),
    (lambda: cr.eye(2, 2.5), "eye: m must be a non-negative int"),
    (lambda: cr.eye(2, k=0.5), "eye: k must be an int"),
    (lambda: cr.logspace(0, 1, -2), "logspace: steps must be a non-negative int"),
    (lambda: cr.linspace(0, 1, 2.0), "linspace: steps must be a non-negative int"),
    (lambda: cr.tril_indices(-3), "tril_indices: n must be a non-negative int"),
    (lambda: cr.triu_indices(3, 1.5), "triu_indices: k must be an int"),
    (lambda: cr.triu_indices(3, 0, -1), "triu_indices: m must be a non-negative int"),
    (lambda: cr.empty(2, -1), "must be non-negative ints"),
])
def test_bad_sizes_raise_value_errors(call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value)


def test_triangle_indices_refuse_float_dtypes():
    with pytest.raises(TypeError, match="tril_indices: dtype must be an integer type"):
        cr.tril_indices(3, dtype=np.float32)

"""Tensor: creation dtype rules, attributes, operators, NumPy interop, indexing gradients."""

import numpy as np
import pytest

import chainrule as cr


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2.5]], np.float32),
        (3, np.int64),
        ([1, 2], np.int64),
        (True, np.bool_),
        (np.arange(3, dtype=np.float64), np.float64),
        (np.arange(3, dtype=np.int32), np.int32),
        (np.float64(2.0), np.float64),
    ],
)
def test_dtype_rules_follow_pytorch(data, dtype):
    assert cr.tensor(data).dtype == dtype


def test_dtype_argument_overrides():
    assert cr.tensor([1, 2], dtype="float64").dtype == np.float64
    assert cr.tensor([0.1], dtype="float64").item() == 0.1  # no float32 detour


def test_tensor_copies_its_input():
    a = np.zeros(3)
    t = cr.tensor(a)
    a[0] = 1
    assert t.data[0] == 0


def test_requires_grad_on_integers_raises():
    with pytest.raises(TypeError, match="floating"):
        cr.tensor([1, 2], requires_grad=True)


def test_unconvertible_data_raises_type_error():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        cr.tensor(["a", "b"])


def test_attributes():
    x = cr.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    assert (x.shape, x.ndim, x.size, x.is_leaf, x.grad_fn) == ((1, 3), 2, 3, True, None)
    y = x * 2
    assert not y.is_leaf and y.grad_fn.name == "mul"
    assert y.detach().grad_fn is None and not y.detach().requires_grad
    assert cr.tensor(4.0).item() == 4.0
    assert isinstance(x.numpy(), np.ndarray)
    assert "grad_fn=<mulBackward>" in repr(y) and "float32" in repr(y)


def test_item_of_many_elements_raises():
    with pytest.raises(ValueError, match="one element"):
        cr.ones(2).item()


def test_scalar_keeps_float32():
    x = cr.ones(3)
    for y in (x * 2.0, 2.0 * x, x / 3, x ** 2, 1 - x, x + np.float32(1)):
        assert y.dtype == np.float32


def test_ndarray_on_the_left_gives_a_tensor():
    x = cr.ones(3)
    for y in (np.ones(3) + x, np.ones(3) * x, np.ones(3) - x, np.ones(3) / x, np.ones((2, 3)) @ x):
        assert isinstance(y, cr.Tensor)


def test_reflected_operators_and_gradients():
    x = cr.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = (3 - x) * (2 / x) + 2 ** x - (-x)
    y.sum().backward()
    expected = -2 / x.data + (3 - x.data) * (-2 / x.data**2) + np.log(2) * 2**x.data + 1
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_comparisons_are_bool_and_outside_the_graph():
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    for c in (x > 0, x >= 0, x < 0, x <= 0, x == 1, x != 1):
        assert c.dtype == np.bool_ and not c.requires_grad
    assert (x > 0).tolist() == [True, False]


def test_array_interop():
    x = cr.tensor([1.0, 2.0])
    assert np.asarray(x).dtype == np.float32
    assert np.array(x, dtype=np.float64).dtype == np.float64


def test_getitem_repeated_indices_accumulate():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_getitem_basic_and_mixed():
    x = cr.arange(12, dtype="float64").reshape(3, 4).requires_grad_()
    y = x[1:, [0, 3]]
    assert y.tolist() == [[4, 7], [8, 11]]
    y.sum().backward()
    assert x.grad.numpy()[1:, [0, 3]].sum() == 4 and x.grad.numpy().sum() == 4


def test_getitem_bool_mask_and_tensor_index():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x[x > 0] * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 2.0]
    assert x[cr.tensor([2, 0])].tolist() == [3.0, 1.0]


def test_getitem_out_of_range_says_so():
    with pytest.raises(IndexError, match="shape \\(3,\\)"):
        cr.ones(3)[5]


def test_methods_mirror_functions():
    x = cr.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(axis=1).tolist() == [3.0, 12.0]
    assert x.mean(axis=0, keepdims=True).shape == (1, 3)
    assert x.T.shape == (3, 2)
    assert x.transpose(1, 0).shape == (3, 2) and x.permute(1, 0).shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.flatten().shape == (6,) and x.expand_dims(0).shape == (1, 2, 3)
    assert x.max().item() == 5.0 and x.min(axis=1).tolist() == [0.0, 3.0]
    np.testing.assert_allclose(x.exp().numpy(), np.exp(x.numpy()))
    assert x.astype("float32").dtype == np.float32


def test_creation_functions():
    assert cr.zeros(2, 3).shape == (2, 3) and cr.zeros((2, 3)).dtype == np.float32
    assert cr.ones(2).tolist() == [1.0, 1.0]
    assert cr.full((2,), 7).dtype == np.int64 and cr.full((2,), 7.0).dtype == np.float32
    assert cr.zeros_like(cr.ones(3, dtype="float64")).dtype == np.float64
    assert cr.ones_like(cr.zeros(2)).tolist() == [1.0, 1.0]
    assert cr.arange(3).dtype == np.int64 and cr.arange(0, 1, 0.5).tolist() == [0.0, 0.5]
    assert cr.eye(2).tolist() == [[1, 0], [0, 1]]
    assert cr.stack([cr.ones(2), cr.zeros(2)]).shape == (2, 2)
    assert cr.concatenate([cr.ones(2), cr.zeros(3)]).shape == (5,)
    assert cr.where(cr.tensor([True, False]), 1.0, 2.0).tolist() == [1.0, 2.0]


def test_random_is_seedable():
    cr.manual_seed(3)
    a = cr.randn(4)
    cr.manual_seed(3)
    b = cr.randn(4)
    assert a.tolist() == b.tolist()
    g1, g2 = cr.Generator(5), cr.Generator(5)
    assert cr.rand(3, generator=g1).tolist() == cr.rand(3, generator=g2).tolist()
    assert cr.rand(2, 2).dtype == np.float32 and cr.randn(2, requires_grad=True).requires_grad


def test_requires_grad_and_retain_grad():
    x = cr.tensor([1.0, 2.0]).requires_grad_()
    y = x * x
    y.retain_grad()
    y.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0] and x.grad.tolist() == [2.0, 4.0]

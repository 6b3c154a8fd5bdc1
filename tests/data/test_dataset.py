"""TensorDataset, Subset and random_split: behaviour and errors (PyTorch's rules)."""

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import Dataset, Subset, TensorDataset, random_split


def make(n=10):
    X = cr.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = cr.tensor(np.arange(n) % 2)
    return TensorDataset(X, y)


def test_tensor_dataset_items_and_len():
    ds = make(10)
    assert len(ds) == 10
    x, y = ds[4]
    assert isinstance(x, cr.Tensor) and isinstance(y, cr.Tensor)
    np.testing.assert_array_equal(x.data, [12, 13, 14])
    assert y.shape == () and y.item() == 0 and y.dtype == np.int64
    assert ds[-1][0].data.tolist() == [27, 28, 29]
    assert not x.requires_grad and x.grad_fn is None


def test_tensor_dataset_accepts_arrays_and_one_tensor():
    ds = TensorDataset(np.ones((5, 2), np.float64))
    assert len(ds) == 5 and ds[0][0].dtype == np.float64 and len(ds[0]) == 1


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="first axes must match.*\\(5, 2\\).*\\(4,\\)"):
        TensorDataset(np.ones((5, 2)), np.ones(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(cr.tensor(1.0))
    with pytest.raises(IndexError):
        make(3)[3]


def test_dataset_base_class_requires_overrides():
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="__len__"):
        len(Dataset())


def test_subset():
    ds = make(10)
    sub = Subset(ds, [7, 2, -1])
    assert len(sub) == 3
    assert [int(sub[i][1].item()) for i in range(3)] == [1, 0, 1]
    np.testing.assert_array_equal(sub[2][0].data, ds[9][0].data)  # negatives count from the end
    np.testing.assert_array_equal(sub.indices, [7, 2, 9])
    nested = Subset(sub, [1])
    np.testing.assert_array_equal(nested[0][0].data, ds[2][0].data)
    assert len(Subset(ds, [])) == 0


def test_subset_errors():
    ds = make(4)
    with pytest.raises(IndexError, match="index 4 is out of range for a dataset of 4"):
        Subset(ds, [0, 4])
    with pytest.raises(TypeError, match="ints"):
        Subset(ds, [0.5, 1.0])
    with pytest.raises(IndexError):
        Subset(ds, [0, 1])[2]


def test_random_split_counts_partition_the_dataset():
    ds = make(10)
    parts = random_split(ds, [6, 3, 1], generator=cr.Generator(0))
    assert [len(p) for p in parts] == [6, 3, 1]
    assert all(isinstance(p, Subset) and p.dataset is ds for p in parts)
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))


def test_random_split_is_seeded():
    ds = make(50)
    a = random_split(ds, [30, 20], generator=cr.Generator(3))
    b = random_split(ds, [30, 20], generator=cr.Generator(3))
    c = random_split(ds, [30, 20], generator=cr.Generator(4))
    assert all(np.array_equal(p.indices, q.indices) for p, q in zip(a, b))
    assert not np.array_equal(a[0].indices, c[0].indices)
    cr.manual_seed(11)
    d = random_split(ds, [30, 20])  # the default generator
    cr.manual_seed(11)
    e = random_split(ds, [30, 20])
    assert np.array_equal(d[0].indices, e[0].indices)


@pytest.mark.parametrize("n, fractions, expected", [
    (10, [0.5, 0.5], [5, 5]),
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),
    (11, [1 / 3, 1 / 3, 1 / 3], [4, 4, 3]),  # remainder 2 -> splits 0 and 1
    (7, [0.1, 0.1, 0.8], [1, 1, 5]),  # floor: 0, 0, 5; remainder 2 round-robin from the first
    (5, [1.0], [5]),
])
def test_random_split_fractions(n, fractions, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no split is empty here: no warning
        parts = random_split(make(n), fractions, generator=cr.Generator(0))
    assert [len(p) for p in parts] == expected


def test_random_split_fractions_match_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import random_split as torch_split
    for n, fractions in [(10, [0.3, 0.7]), (11, [1 / 3, 1 / 3, 1 / 3]), (101, [0.8, 0.1, 0.1]),
                         (7, [0.2] * 5)]:
        ours = [len(p) for p in random_split(make(n), fractions, generator=cr.Generator(0))]
        theirs = [len(p) for p in torch_split(range(n), fractions,
                                              generator=torch.Generator().manual_seed(0))]
        assert ours == theirs


def test_random_split_errors():
    ds = make(10)
    with pytest.raises(ValueError, match="sum to 9 but the dataset has 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="fractions must sum to 1"):
        random_split(ds, [0.5, 0.4])
    with pytest.raises(ValueError, match="negative"):
        random_split(ds, [12, -2])
    with pytest.raises(TypeError, match="chainrule.Generator"):
        random_split(ds, [5, 5], generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="lengths\\[0\\]"):
        random_split(ds, ["5", 5])
    with pytest.warns(UserWarning, match="split 2 is empty"):
        random_split(make(2), [0.5, 0.5, 0.0])


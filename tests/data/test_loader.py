"""DataLoader: coverage, shapes, dtypes, seeded shuffling, len, the fast path, collation, errors."""

import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split


def make(n=10):
    X = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    return TensorDataset(cr.tensor(X), cr.tensor(np.arange(n)))


class Items(Dataset):
    """A plain map-style dataset of (ndarray float32, Python int) samples: the slow path."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.full((2, 3), i, dtype=np.float32), int(i)

    def __len__(self):
        return self.n


def labels_of(loader):
    return [batch[1].data.tolist() for batch in loader]


def flat(batches):
    return [i for batch in batches for i in batch]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), shuffle=st.booleans(),
       drop_last=st.booleans(), plain=st.booleans())
def test_every_sample_once_per_epoch(n, batch_size, shuffle, drop_last, plain):
    ds = Items(n) if plain else make(n)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                        generator=cr.Generator(5))
    batches = labels_of(loader)
    assert len(batches) == len(loader)
    sizes = [len(b) for b in batches]
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
        seen = flat(batches)
        assert len(set(seen)) == len(seen) == n - n % batch_size
    else:
        assert all(s == batch_size for s in sizes[:-1])
        assert not sizes or 1 <= sizes[-1] <= batch_size
        assert sorted(flat(batches)) == list(range(n))
    if not shuffle:
        assert flat(batches) == list(range(len(flat(batches))))


def test_len():
    assert len(DataLoader(make(10), batch_size=3)) == 4
    assert len(DataLoader(make(10), batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(make(9), batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(make(10))) == 10
    assert len(DataLoader(make(0), batch_size=4)) == 0


@pytest.mark.parametrize("dataset", [make(10), Items(10)], ids=["tensor_dataset", "plain"])
def test_batch_shapes_and_dtypes(dataset):
    batches = list(DataLoader(dataset, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 2, 3), (4, 2, 3), (2, 2, 3)]
    for x, y in batches:
        assert isinstance(x, cr.Tensor) and isinstance(y, cr.Tensor)
        assert x.dtype == np.float32 and y.dtype == np.int64 and y.shape == (len(x),)
        assert not x.requires_grad
        # sample i starts with i (Items) or 6 i (make)
        scale = 1 if isinstance(dataset, Items) else 6
        np.testing.assert_array_equal(x.data[:, 0, 0], scale * y.data)
    assert isinstance(batches[0], tuple)


def test_float64_data_keeps_its_dtype():
    ds = TensorDataset(np.zeros((5, 2), np.float64), np.zeros(5, np.int32))
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert x.dtype == np.float64 and y.dtype == np.int32


def test_equal_seeds_give_equal_batches_and_epochs_differ():
    a = DataLoader(make(30), batch_size=4, shuffle=True, generator=cr.Generator(7))
    b = DataLoader(make(30), batch_size=4, shuffle=True, generator=cr.Generator(7))
    epochs_a = [labels_of(a) for _ in range(3)]
    epochs_b = [labels_of(b) for _ in range(3)]
    assert epochs_a == epochs_b
    assert epochs_a[0] != epochs_a[1] != epochs_a[2]  # a new permutation each epoch
    assert flat(epochs_a[0]) != list(range(30))
    c = DataLoader(make(30), batch_size=4, shuffle=True, generator=cr.Generator(8))
    assert labels_of(c) != epochs_a[0]


def test_fast_and_slow_paths_agree():
    """Same seed, same order, whether batches are indexed at once or stacked sample by sample."""
    fast = DataLoader(make(23), batch_size=5, shuffle=True, generator=cr.Generator(1))
    slow = DataLoader(make(23), batch_size=5, shuffle=True, generator=cr.Generator(1),
                      collate_fn=lambda items: default_collate(items))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.data, xs.data)
        np.testing.assert_array_equal(yf.data, ys.data)
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype


def test_subsets_use_their_indices():
    ds = make(20)
    train, rest = random_split(ds, [12, 8], generator=cr.Generator(0))
    inner = Subset(rest, [5, 0, 3])
    ys = flat(labels_of(DataLoader(inner, batch_size=2)))
    assert ys == [int(rest.indices[5]), int(rest.indices[0]), int(rest.indices[3])]
    ys = sorted(flat(labels_of(DataLoader(train, batch_size=5, shuffle=True,
                                          generator=cr.Generator(0)))))
    assert ys == sorted(train.indices.tolist())


def test_batches_are_copies():
    ds = make(6)
    x, _ = next(iter(DataLoader(ds, batch_size=3)))
    x.data[...] = -1
    assert ds.tensors[0].data.min() == 0


def test_overridden_getitem_is_honoured():
    class Doubled(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x * 2, y

    x, _ = next(iter(DataLoader(Doubled(np.ones((4, 2), np.float32), np.arange(4)), batch_size=4)))
    np.testing.assert_array_equal(x.data, 2)


def test_tensor_as_dataset_gives_tensor_batches():
    batches = list(DataLoader(cr.arange(7), batch_size=3))
    assert all(isinstance(b, cr.Tensor) for b in batches)
    assert [b.data.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_default_generator_is_used_without_one():
    cr.manual_seed(3)
    first = labels_of(DataLoader(make(12), batch_size=12, shuffle=True))
    cr.manual_seed(3)
    assert labels_of(DataLoader(make(12), batch_size=12, shuffle=True)) == first


def test_generator_reseeded_between_epochs_repeats_the_epoch():
    gen = cr.Generator(0)
    loader = DataLoader(make(16), batch_size=4, shuffle=True, generator=gen)
    gen.manual_seed(42)
    one = labels_of(loader)
    gen.manual_seed(42)
    assert labels_of(loader) == one  # the permutation is drawn when iteration starts


def test_custom_collate_fn():
    loader = DataLoader(make(5), batch_size=2, collate_fn=lambda items: len(items))
    assert list(loader) == [2, 2, 1]


def test_default_collate_structures():
    Point = collections.namedtuple("Point", "x y")
    batch = default_collate([{"a": 1, "b": (0.5, np.float32(2))},
                             {"a": 2, "b": (1.5, np.float32(3))}])
    assert batch["a"].dtype == np.int64 and batch["a"].data.tolist() == [1, 2]
    assert batch["b"][0].dtype == np.float64 and batch["b"][1].dtype == np.float32
    p = default_collate([Point(1, True), Point(2, False)])
    assert isinstance(p, Point) and p.y.dtype == bool
    assert default_collate(["a", "b"]) == ["a", "b"]
    assert isinstance(default_collate([[1, 2], [3, 4]]), list)
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        default_collate([object()])


def test_errors():
    ds = make(4)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(ds, batch_size=2.0)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(ds, batch_size=None)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        DataLoader(ds, shuffle="yes")
    with pytest.raises(TypeError, match="chainrule.Generator"):
        DataLoader(ds, shuffle=True, generator=np.random.default_rng(0))
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        DataLoader(ds, collate_fn=3)
    with pytest.raises(TypeError, match="map-style"):
        DataLoader(iter(range(3)))

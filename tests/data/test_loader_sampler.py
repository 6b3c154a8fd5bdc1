"""DataLoader(sampler=): the sampler's indices, in its order, on the fast and per-sample paths."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import DataLoader, Dataset, TensorDataset
from chainrule.distributed import DistributedSampler


class Items(Dataset):
    """A map-style dataset with its own __getitem__: the per-sample path."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return np.full(2, 10 * i, dtype=np.int64), int(i)

    def __len__(self):
        return self.n


def tensor_dataset(n):
    """The same samples as Items(n), batched by fancy indexing: the fast path."""
    return TensorDataset(cr.tensor(10 * np.repeat(np.arange(n), 2).reshape(n, 2)),
                         cr.tensor(np.arange(n)))


class ListSampler:
    """Yields a list's indices; counts how often it is read."""

    def __init__(self, indices):
        self.indices, self.reads = list(indices), 0

    def __iter__(self):
        self.reads += 1
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def batches(loader):
    return [(x.data.tolist(), y.data.tolist()) for x, y in loader]


def expected(indices, batch_size, drop_last=False):
    stop = len(indices) - len(indices) % batch_size if drop_last else len(indices)
    chunks = [list(indices[k:min(k + batch_size, stop)]) for k in range(0, stop, batch_size)]
    return [([[10 * i, 10 * i] for i in chunk], chunk) for chunk in chunks]


DATASETS = [pytest.param(tensor_dataset, id="fast"), pytest.param(Items, id="per-sample")]


@pytest.mark.parametrize("make", DATASETS)
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 7])
def test_batches_follow_the_sampler(make, drop_last, batch_size):
    indices = [5, 0, 9, 9, 2, 7, 1]  # repeats and gaps: the sampler decides, not the dataset
    loader = DataLoader(make(10), batch_size=batch_size, drop_last=drop_last,
                        sampler=ListSampler(indices))
    want = expected(indices, batch_size, drop_last)
    assert batches(loader) == want
    assert len(loader) == len(want) == (7 // batch_size if drop_last else -(-7 // batch_size))


def test_fast_and_per_sample_paths_agree_with_a_distributed_sampler():
    n = 23
    for rank in range(3):
        got = []
        for dataset in (tensor_dataset(n), Items(n)):
            sampler = DistributedSampler(dataset, num_replicas=3, rank=rank, seed=4)
            sampler.set_epoch(2)
            got.append(batches(DataLoader(dataset, batch_size=3, sampler=sampler)))
        assert got[0] == got[1] == expected(sampler.indices().tolist(), 3)


def test_the_sampler_is_read_afresh_each_epoch():
    sampler = DistributedSampler(range(12), num_replicas=2, rank=1, seed=0)
    loader = DataLoader(tensor_dataset(12), batch_size=6, sampler=sampler)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(batches(loader)[0][1])
        assert epochs[-1] == sampler.indices().tolist()
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]

    counting = ListSampler([3, 1])
    loader = DataLoader(Items(4), sampler=counting)
    assert counting.reads == 0  # nothing read before iteration
    list(loader)
    list(loader)
    assert counting.reads == 2
    counting.indices = [0]  # a sampler that changes between epochs is followed
    assert batches(loader) == [([[0, 0]], [0])]


def test_len_follows_the_sampler_not_the_dataset():
    loader = DataLoader(Items(100), batch_size=4, sampler=ListSampler(range(10)))
    assert len(loader) == 3
    assert len(DataLoader(Items(100), batch_size=4, drop_last=True,
                          sampler=ListSampler(range(10)))) == 2
    assert len(DataLoader(Items(100), batch_size=4, sampler=ListSampler([]))) == 0
    assert list(DataLoader(Items(100), batch_size=4, sampler=ListSampler([]))) == []


def test_shuffle_with_a_sampler_is_refused():
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Items(4), shuffle=True, sampler=ListSampler([0]))
    DataLoader(Items(4), shuffle=False, sampler=ListSampler([0]))  # explicit False is fine


@pytest.mark.parametrize("sampler", [3, object(), iter([0, 1])])
def test_a_sampler_without_iter_and_len_is_refused(sampler):
    with pytest.raises(TypeError, match="sampler"):
        DataLoader(Items(4), sampler=sampler)


@pytest.mark.parametrize("make", DATASETS)
@pytest.mark.parametrize("bad", [4, 100, -1])
def test_an_index_outside_the_dataset_raises(make, bad):
    loader = DataLoader(make(4), batch_size=2, sampler=ListSampler([0, bad, 1]))
    with pytest.raises(IndexError, match="sampler"):
        list(loader)


def test_the_repr_names_the_sampler():
    loader = DataLoader(Items(4), sampler=ListSampler([0]))
    assert "sampler=ListSampler" in repr(loader)
    assert "sampler" not in repr(DataLoader(Items(4)))

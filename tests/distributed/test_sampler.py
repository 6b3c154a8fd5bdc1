"""DistributedSampler: torch's index rules exactly (shuffle=False), and for shuffle=True the
properties that hold whatever the permutation (its own is NumPy's, ``Generator(seed + epoch)``)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.data import DataLoader, TensorDataset
from chainrule.distributed import DistributedSampler

SIZES = (0, 1, 5, 7, 10, 1294)
WORLDS = (1, 2, 3, 4, 8)


def shards(n, world, **kwargs):
    """Every rank's index list for a dataset of ``n`` samples."""
    return [list(DistributedSampler(range(n), num_replicas=world, rank=r, **kwargs))
            for r in range(world)]


def interleave(parts):
    """The epoch's order rebuilt from the shards: rank r holds order[r::world]."""
    order = np.empty(sum(len(p) for p in parts), dtype=np.int64)
    for r, part in enumerate(parts):
        order[r::len(parts)] = part
    return order


# ---------------------------------------------------------------- shuffle=False: torch's lists


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("n", SIZES)
def test_unshuffled_shards_equal_torch(n, world, drop_last):
    for r in range(world):
        ours = DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=False,
                                  drop_last=drop_last)
        theirs = torch.utils.data.distributed.DistributedSampler(
            range(n), num_replicas=world, rank=r, shuffle=False, drop_last=drop_last)
        assert len(ours) == len(theirs)
        assert list(ours) == list(theirs)


def test_indices_are_int64_and_iteration_gives_python_ints():
    sampler = DistributedSampler(range(7), num_replicas=3, rank=1, shuffle=False)
    assert sampler.indices().dtype == np.int64
    assert sampler.indices().tolist() == [1, 4, 0]  # padded by wrapping around
    assert all(type(i) is int for i in sampler)


# ---------------------------------------------------------------- shuffle=True: the properties


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), world=st.integers(1, 8), seed=st.integers(0, 2**31),
       epoch=st.integers(0, 50), drop_last=st.booleans())
def test_shuffled_shards_partition_the_epochs_order(n, world, seed, epoch, drop_last):
    samplers = [DistributedSampler(range(n), num_replicas=world, rank=r, seed=seed,
                                   drop_last=drop_last) for r in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    parts = [list(s) for s in samplers]
    assert all(len(p) == len(samplers[0]) for p in parts)
    expected_len = n // world if drop_last else -(-n // world)
    assert len(samplers[0]) == expected_len
    order = interleave(parts)
    # every rank cut its shard from one permutation: seed + epoch through NumPy's PCG64,
    # the one DataLoader(shuffle=True, generator=Generator(seed + epoch)) draws
    permutation = cr.Generator(seed + epoch).numpy.permutation(n)
    if len(order) >= n:  # padded by wrapping around
        assert order.tolist() == np.resize(permutation, len(order)).tolist()
        assert set(order.tolist()) == set(range(n))
    else:  # drop_last cut the tail
        assert order.tolist() == permutation[:len(order)].tolist()
    if n % world == 0:  # no padding, nothing dropped: the shards are disjoint
        assert sorted(order.tolist()) == list(range(n))


def epoch_order(n, world, seed, epoch):
    """The epoch's whole order, rebuilt from every rank's shard."""
    samplers = [DistributedSampler(range(n), num_replicas=world, rank=r, seed=seed)
                for r in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return tuple(interleave([list(s) for s in samplers]).tolist())


@settings(max_examples=30, deadline=None)
@given(n=st.integers(5, 30), world=st.integers(1, 4), seed=st.integers(0, 1000))
def test_same_epoch_same_order_other_epoch_other_order(n, world, seed):
    sampler = DistributedSampler(range(n), num_replicas=world, rank=0, seed=seed)
    first = list(sampler)
    assert list(sampler) == first  # no set_epoch: the first epoch repeats
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert epoch_order(n, world, seed, 4) == epoch_order(n, world, seed, 4)
    orders = {epoch_order(n, world, seed, epoch) for epoch in range(6)}
    assert len(orders) > 1  # 6 draws of a permutation of >= 5 items: not all the same


def test_set_epoch_changes_the_permutation():
    sampler = DistributedSampler(range(100), num_replicas=2, rank=0, seed=3)
    sampler.set_epoch(1)
    one = list(sampler)
    sampler.set_epoch(2)
    two = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) == one != two
    assert sorted(one) != one  # shuffled


def test_ranks_agree_on_the_permutation_after_set_epoch():
    world, n = 4, 37
    samplers = [DistributedSampler(range(n), num_replicas=world, rank=r, seed=11)
                for r in range(world)]
    for s in samplers:
        s.set_epoch(5)
    order = interleave([list(s) for s in samplers])
    assert order.tolist() == np.resize(cr.Generator(16).numpy.permutation(n), 40).tolist()


# ---------------------------------------------------------------- the global-batch equivalence


def loader_batches(loader):
    return [set(batch[0].data.tolist()) for batch in loader]


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("seed,epoch", [(0, 0), (7, 3)])
def test_rank_batches_together_are_the_one_process_batch(world, seed, epoch):
    n, global_batch = 24 * world, 2 * world * 3
    dataset = TensorDataset(cr.tensor(np.arange(n)))
    per_rank = []
    for r in range(world):
        sampler = DistributedSampler(dataset, num_replicas=world, rank=r, seed=seed)
        sampler.set_epoch(epoch)
        per_rank.append(loader_batches(
            DataLoader(dataset, batch_size=global_batch // world, sampler=sampler)))
    single = loader_batches(DataLoader(dataset, batch_size=global_batch, shuffle=True,
                                       generator=cr.Generator(seed + epoch)))
    assert all(len(batches) == len(single) for batches in per_rank)
    for k, batch in enumerate(single):
        assert set().union(*(batches[k] for batches in per_rank)) == batch
    assert set().union(*single) == set(range(n))


# ---------------------------------------------------------------- defaults and bad arguments


def test_defaults_come_from_the_one_process_world():
    sampler = DistributedSampler(range(9), shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (cr.distributed.world_size(),
                                                    cr.distributed.rank()) == (1, 0)
    assert list(sampler) == list(range(9))
    assert (sampler.shuffle, sampler.seed, sampler.epoch, sampler.drop_last) == (False, 0, 0,
                                                                                 False)


@pytest.mark.parametrize("kwargs,error,name", [
    ({"num_replicas": 2, "rank": 2}, ValueError, "rank"),
    ({"num_replicas": 2, "rank": -1}, ValueError, "rank"),
    ({"num_replicas": 0, "rank": 0}, ValueError, "num_replicas"),
    ({"num_replicas": -3, "rank": 0}, ValueError, "num_replicas"),
    ({"num_replicas": True, "rank": 0}, TypeError, "num_replicas"),
    ({"num_replicas": 2.0, "rank": 0}, TypeError, "num_replicas"),
    ({"num_replicas": 2, "rank": False}, TypeError, "rank"),
    ({"num_replicas": 2, "rank": 1.0}, TypeError, "rank"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"seed": "0"}, TypeError, "seed"),
    ({"seed": True}, TypeError, "seed"),
    ({"shuffle": 1}, TypeError, "shuffle"),
    ({"drop_last": None}, TypeError, "drop_last"),
])
def test_bad_arguments_name_themselves(kwargs, error, name):
    with pytest.raises(error, match=name):
        DistributedSampler(range(10), **kwargs)


def test_numpy_integers_are_accepted():
    sampler = DistributedSampler(range(10), num_replicas=np.int64(2), rank=np.int32(1),
                                 seed=np.uint8(3), shuffle=np.bool_(False))
    assert list(sampler) == [1, 3, 5, 7, 9]
    assert type(sampler.rank) is int and type(sampler.num_replicas) is int


@pytest.mark.parametrize("epoch,error", [(-1, ValueError), (1.0, TypeError), (True, TypeError)])
def test_bad_epoch(epoch, error):
    sampler = DistributedSampler(range(10), num_replicas=1, rank=0)
    with pytest.raises(error, match="epoch"):
        sampler.set_epoch(epoch)


def test_a_dataset_without_length_is_refused():
    with pytest.raises(TypeError, match="length"):
        DistributedSampler(iter(range(3)), num_replicas=1, rank=0)

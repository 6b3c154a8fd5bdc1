"""What the ranks of ``test_mpi.py`` run: ``mpirun -n N python mpi_worker.py SCENARIO [args]``.

Each scenario checks its results on every rank (an AssertionError ends the job through the abort
hook, so the test sees a non-zero exit) and rank 0 prints ``OK <scenario>`` at the end; scenarios
that compare with a single process write their numbers to an ``.npz`` file for the test to read.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset, load_digits


def collectives() -> None:
    """all_reduce (every op), broadcast, all_gather: values, in place, non-contiguous tensors."""
    r, w = dist.rank(), dist.world_size()
    ranks = np.arange(w, dtype=np.float64)
    expected = {"sum": ranks.sum(), "mean": ranks.mean(), "max": ranks.max(), "min": ranks.min(),
                "prod": np.prod(ranks + 1)}
    for op, value in expected.items():
        t = cr.tensor(np.full((2, 3), float(r + 1 if op == "prod" else r)), dtype="float64")
        version = t._version
        out = dist.all_reduce(t, op=op)
        assert out is t and t._version == version + 1, op
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value), err_msg=op)
    counts = cr.tensor([r, 2 * r], dtype="int64")
    dist.all_reduce(counts)
    assert counts.tolist() == [ranks.sum(), 2 * ranks.sum()], counts.tolist()
    base = cr.tensor(np.arange(6.0).reshape(2, 3) * (r + 1), dtype="float32")
    view = base.T  # not C-contiguous: reduced through a copy, written back into the view
    dist.all_reduce(view)
    np.testing.assert_allclose(base.numpy(), np.arange(6.0).reshape(2, 3) * sum(range(1, w + 1)))
    b = cr.tensor(np.full(4, float(r)))
    dist.broadcast(b, src=w - 1)
    assert b.tolist() == [w - 1.0] * 4, b.tolist()
    gathered = dist.all_gather(cr.tensor([[r, r * 10]], dtype="int32"))
    assert gathered.shape == (w, 1, 2) and gathered.dtype == np.int32
    assert gathered.numpy()[:, 0, 1].tolist() == [10 * i for i in range(w)]
    dist.barrier()


def _digits(dtype: str, n: int = 1794) -> TensorDataset:
    """The first ``n`` digits, flattened. 1794 = 56 * 32 + 2 is even, so DistributedSampler deals
    the 2 ranks equal shards without padding, and the last global batch (2) splits evenly too:
    then, and only then, 2 ranks see exactly the batches of one process."""
    images, labels = load_digits()
    return TensorDataset(images[:n].reshape(n, -1).astype(dtype), labels[:n])


def _cast(model: nn.Module, dtype: str = "float64") -> nn.Module:
    for t in [*model.parameters(), *model.buffers()]:
        if t.dtype.kind == "f":
            t.data = t.data.astype(dtype)
    return model


def _mlp(dtype: str) -> nn.Module:
    cr.manual_seed(0)
    return _cast(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), dtype)


def train(out: str, dtype: str, epochs: int, batch: int, plain: bool) -> None:
    """The digits MLP with Adam: data parallel over the job, or (``plain``, one process) the
    textbook loop over ``DataLoader(shuffle=True)`` with batch ``batch``."""
    data = _digits(dtype)
    model = _mlp(dtype)
    w = dist.world_size()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    if plain:
        assert w == 1
        shuffle = cr.Generator(0)
        loader = DataLoader(data, batch_size=batch, shuffle=True, generator=shuffle)
        net: nn.Module = model
    else:
        sampler = dist.DistributedSampler(data, shuffle=True, seed=0)
        loader = DataLoader(data, batch_size=batch // w, sampler=sampler)
        net = dist.DistributedDataParallel(model)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        if plain:
            shuffle.manual_seed(epoch)  # the order DistributedSampler(seed=0).set_epoch deals out
        else:
            sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
    if dist.rank() == 0:
        np.savez(out, **{name: p.numpy() for name, p in model.named_parameters()})


def gradient(out: str, dtype: str, batch: int) -> None:
    """One backward on the first ``batch`` samples: the averaged gradient of ranks' shards."""
    images, labels = load_digits()
    x = images.reshape(len(labels), -1)[:batch].astype(dtype)
    y = labels[:batch]
    w, r = dist.world_size(), dist.rank()
    model = _mlp(dtype)
    net = dist.DistributedDataParallel(model)
    part = slice(r * batch // w, (r + 1) * batch // w)
    nn.CrossEntropyLoss()(net(x[part]), y[part]).backward()
    if r == 0:
        np.savez(out, **{name: p.grad.numpy() for name, p in model.named_parameters()})


def ddp_features() -> None:
    """Buckets (overlap on and off give the same averages), no_sync accumulation, an unused
    parameter, buffers broadcast from rank 0, construction broadcast."""
    w, r = dist.world_size(), dist.rank()
    rng = np.random.default_rng(r)
    x = cr.tensor(rng.standard_normal((6, 5)))
    shared = _cast(nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)))
    everyone_x = dist.all_gather(x)  # (w, 6, 5): every rank's data, to compute the expectation
    grads = {}
    for overlap, cap in ((True, 1e-4), (False, 1e-4), (True, 25.0)):
        cr.manual_seed(100 + r)  # different initial weights: DDP must broadcast rank 0's
        model = _cast(nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)))
        net = dist.DistributedDataParallel(model, bucket_cap_mb=cap, overlap=overlap)
        assert len(net.buckets) == (4 if cap < 1 else 1), net.buckets
        cr.sum(net(x) ** 2).backward()
        grads[overlap, cap] = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
        # the expectation: the mean over ranks of each rank's gradient with rank 0's weights
        shared.load_state_dict(model.state_dict())
        expected = {n: 0.0 for n, _ in shared.named_parameters()}
        for k in range(w):
            shared.zero_grad()
            cr.sum(shared(everyone_x[k]) ** 2).backward()
            for n, p in shared.named_parameters():
                expected[n] = expected[n] + p.grad.numpy() / w
        for n in expected:
            np.testing.assert_allclose(grads[overlap, cap][n], expected[n], rtol=1e-12,
                                       atol=1e-14, err_msg=f"{n} overlap={overlap} cap={cap}")
    for n in grads[True, 1e-4]:
        np.testing.assert_array_equal(grads[True, 1e-4][n], grads[False, 1e-4][n])
    # no_sync: the first micro-batch stays local, the second backward averages the sum
    cr.manual_seed(7)
    model = _cast(nn.Sequential(nn.Linear(5, 3)))
    net = dist.DistributedDataParallel(model, bucket_cap_mb=1e-4)
    with net.no_sync():
        cr.sum(net(x[:3])).backward()
        local = model[0].weight.grad.numpy().copy()
    cr.sum(net(x[3:])).backward()
    whole = model[0].weight.grad.numpy().copy()
    model.zero_grad()
    cr.sum(net(x)).backward()
    np.testing.assert_allclose(whole, model[0].weight.grad.numpy(), rtol=1e-12)
    assert net.stats["reductions"] == 2
    gathered_local = dist.all_gather(cr.tensor(local)).numpy()
    assert not np.allclose(gathered_local[0], gathered_local[-1])  # it really stayed local
    # a parameter only rank 0 uses: the others contribute zeros
    cr.manual_seed(3)
    first, second = _cast(nn.Linear(5, 2)), _cast(nn.Linear(5, 2))
    holder = nn.ModuleList([first, second])
    net = dist.DistributedDataParallel(holder, bucket_cap_mb=1e-4)
    out = first(x) if r else first(x) + second(x)
    cr.sum(out).backward()
    mine = cr.sum(x, axis=0).numpy()  # d/dW of sum(x W^T + b), one row per output
    all_sums = dist.all_gather(cr.tensor(mine)).numpy()
    np.testing.assert_allclose(second.weight.grad.numpy(), np.tile(all_sums[0] / w, (2, 1)))
    np.testing.assert_allclose(first.weight.grad.numpy(), np.tile(all_sums.mean(0), (2, 1)))
    # buffers: BatchNorm's running statistics follow rank 0's before each training forward
    cr.manual_seed(5)
    bn_model = _cast(nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4)))
    net = dist.DistributedDataParallel(bn_model)
    net(x)
    mean_after_first = bn_model[1].running_mean.numpy().copy()  # moved by this rank's batch
    net(x)  # broadcast first: every rank restarts from rank 0's running mean
    start = dist.all_gather(cr.tensor(mean_after_first)).numpy()[0]
    batch_mean = (x @ bn_model[0].weight.T + bn_model[0].bias).numpy().mean(0)
    np.testing.assert_allclose(bn_model[1].running_mean.numpy(), 0.9 * start + 0.1 * batch_mean,
                               rtol=1e-12)


def fail_at_step(step: int) -> None:
    """Rank 1 raises during step ``step`` while rank 0 goes on into backward and waits."""
    model = _mlp("float32")
    net = dist.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    data = _digits("float32")
    for i, (x, y) in enumerate(DataLoader(data, batch_size=16), 1):
        if dist.rank() == 1 and i == step:
            raise RuntimeError(f"rank 1 fails on purpose at step {step}")
        opt.zero_grad()
        nn.CrossEntropyLoss()(net(x), y).backward()
        opt.step()
    print("not reached: every step completed")


def timeout() -> None:
    """Rank 0 enters a barrier that rank 1 joins only after 60 s: rank 0 must time out first."""
    if dist.rank() == 1:
        time.sleep(60)
    dist.barrier()
    print("not reached: the barrier completed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--out")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--step", type=int, default=3)
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args()
    dist.init(timeout=args.timeout)
    if args.scenario == "collectives":
        collectives()
    elif args.scenario == "train":
        train(args.out, args.dtype, args.epochs, args.batch, args.plain)
    elif args.scenario == "gradient":
        gradient(args.out, args.dtype, args.batch)
    elif args.scenario == "ddp":
        ddp_features()
    elif args.scenario == "fail":
        fail_at_step(args.step)
    elif args.scenario == "timeout":
        timeout()
    else:
        sys.exit(f"unknown scenario {args.scenario}")
    print(f"OK {args.scenario} rank {dist.rank()} of {dist.world_size()}", flush=True)


if __name__ == "__main__":
    main()

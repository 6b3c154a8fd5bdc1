"""chainrule.distributed in one process (no launcher): the world of one rank, its collectives
(which leave every value as it is, in place), the timeout settings, and DistributedDataParallel,
which must train exactly as the bare model.

``TwinGroup`` pretends to be rank 0 of 2 ranks holding the same gradients (the reduction doubles
each buffer), so DDP's whole bucket path (hooks, packing, launch order, the end-of-backward
callback, the division by the world size) runs in this process with a known answer.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import chainrule as cr
import chainrule.distributed as dist
from chainrule.distributed.group import (
    MPI_ENVIRONMENT,
    TIMEOUT_ENV,
    DistributedError,
    ProcessGroup,
    Work,
    default_timeout,
)

OPS = ("sum", "mean", "max", "min", "prod")


@pytest.fixture
def no_launcher(monkeypatch):
    """No MPI launcher in sight and no timeout setting: what init() sees in a plain process."""
    for name in (*MPI_ENVIRONMENT, TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)


@pytest.fixture
def fresh(no_launcher, monkeypatch):
    """A process that has not called init() yet; the job's group is restored afterwards."""
    monkeypatch.setattr(dist, "_group", None)


@pytest.fixture(params=["before init", "after init"])
def world(request, fresh):
    """The one-process world, reached either without init() or through it."""
    if request.param == "after init":
        dist.init()
    return request.param


# ---------------------------------------------------------------- the world of one process


def test_before_init_the_world_is_one_process(fresh):
    assert not dist.is_initialized()
    assert (dist.rank(), dist.world_size()) == (0, 1)
    assert dist.get_group().backend == "single"
    dist.barrier()  # nothing to wait for


def test_init_without_a_launcher_is_the_single_backend(fresh):
    group = dist.init()
    assert dist.is_initialized() and dist.get_group() is group
    assert (group.backend, group.rank, group.size) == ("single", 0, 1)
    assert (dist.rank(), dist.world_size()) == (0, 1)
    assert dist.init() is group and dist.init(backend="single") is group  # once per process
    with pytest.raises(DistributedError, match="already initialized"):
        dist.init(backend="mpi")
    assert "mpi4py.MPI" not in sys.modules  # no launcher: mpi4py is not even imported


def test_init_takes_the_timeout(fresh):
    assert dist.init(timeout=2.5).timeout == 2.5


@pytest.mark.parametrize("kwargs,match", [
    ({"backend": "bogus"}, "backend"), ({"backend": "MPI"}, "backend"),
    ({"timeout": -1}, "timeout"), ({"timeout": 0}, "timeout"), ({"timeout": "60"}, "timeout"),
])
def test_bad_init_arguments(fresh, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dist.init(**kwargs)
    assert not dist.is_initialized()  # a refused call joins nothing


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", ""])
def test_a_bad_timeout_in_the_environment_raises(no_launcher, monkeypatch, text):
    monkeypatch.setenv(TIMEOUT_ENV, text)
    with pytest.raises(DistributedError, match=TIMEOUT_ENV):
        default_timeout()
    with pytest.raises(DistributedError, match=TIMEOUT_ENV):
        ProcessGroup()
    assert ProcessGroup(timeout=3).timeout == 3.0  # an explicit timeout does not read it


def test_the_timeout_from_the_environment(no_launcher, monkeypatch):
    assert default_timeout() == 1800.0
    monkeypatch.setenv(TIMEOUT_ENV, "12.5")
    assert default_timeout() == 12.5 and ProcessGroup().timeout == 12.5


# ---------------------------------------------------------------- collectives in one process


@pytest.mark.parametrize("op", OPS)
def test_all_reduce_leaves_the_values_in_place(world, op):
    values = np.array([[1.5, -2.0, 0.0], [3.0, 7.25, -1.0]], dtype=np.float32)
    t = cr.tensor(values.copy())
    memory, before = t.data, t.version
    assert dist.all_reduce(t, op=op) is t
    assert t.data is memory and t.version == before + 1
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, values)


@pytest.mark.parametrize("op", ["sum", "max", "min", "prod"])
def test_all_reduce_on_integers(world, op):
    t = cr.tensor(np.array([3, -4, 5], dtype=np.int64))
    dist.all_reduce(t, op)
    np.testing.assert_array_equal(t.data, [3, -4, 5])
    assert t.dtype == np.int64


def test_all_reduce_mean_needs_a_floating_tensor(world):
    t = cr.tensor(np.array([1, 2], dtype=np.int32))
    with pytest.raises(TypeError, match="mean"):
        dist.all_reduce(t, "mean")
    assert t.version == 0  # refused before touching it


def test_all_reduce_bad_op_names_the_choices(world):
    with pytest.raises(ValueError, match="sum, prod, max, min, mean"):
        dist.all_reduce(cr.zeros(2), "avg")


@pytest.mark.parametrize("collective", [dist.all_reduce, dist.broadcast, dist.all_gather])
def test_collectives_take_tensors_only(world, collective):
    with pytest.raises(TypeError, match="chainrule Tensor"):
        collective(np.zeros(2))


def test_all_reduce_on_a_transposed_view(world):
    base = cr.tensor(np.arange(6.0).reshape(2, 3))
    view = base.T
    assert not view.data.flags.c_contiguous
    assert dist.all_reduce(view, "mean") is view
    np.testing.assert_array_equal(view.data, np.arange(6.0).reshape(2, 3).T)
    np.testing.assert_array_equal(base.data, np.arange(6.0).reshape(2, 3))
    assert base.version == view.version == 1  # the view shares its base's counter


def test_all_reduce_on_array_api_strict(world):
    t = cr.tensor(np.array([1.0, 2.0]), device="array_api_strict")
    assert dist.all_reduce(t, "max") is t
    assert t.device.type == "array_api_strict" and t.version == 1
    np.testing.assert_array_equal(np.asarray(t.to("cpu").data), [1.0, 2.0])


def test_broadcast_from_rank_zero(world):
    t = cr.tensor(np.array([4.0, 5.0]))
    assert dist.broadcast(t) is t and dist.broadcast(t, src=np.int64(0)) is t
    np.testing.assert_array_equal(t.data, [4.0, 5.0])
    assert t.version == 2


@pytest.mark.parametrize("src", [1, -1, True, 0.0, "0"])
def test_broadcast_src_out_of_range(world, src):
    with pytest.raises(ValueError, match="src"):
        dist.broadcast(cr.zeros(2), src=src)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_all_gather_stacks_the_one_rank(world, shape):
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    t = cr.tensor(values)
    out = dist.all_gather(t)
    assert tuple(out.shape) == (1, *shape) and out.dtype == np.float64
    np.testing.assert_array_equal(out.data[0], values)
    assert not np.shares_memory(out.data, t.data)  # a new tensor, the input untouched
    assert t.version == 0


def test_all_gather_keeps_the_device(world):
    t = cr.tensor(np.array([1.0, 2.0]), device="array_api_strict")
    out = dist.all_gather(t)
    assert out.device.type == "array_api_strict" and tuple(out.shape) == (1, 2)


# ---------------------------------------------------------------- import costs


def test_import_chainrule_imports_neither_distributed_nor_mpi4py():
    code = textwrap.dedent("""
        import sys
        import chainrule as cr
        assert "chainrule.distributed" not in sys.modules
        assert not any(m == "mpi4py" or m.startswith("mpi4py.") for m in sys.modules)
        assert (cr.distributed.rank(), cr.distributed.world_size()) == (0, 1)
        assert "chainrule.distributed" in sys.modules
        assert cr.distributed.init().backend == "single"
        assert "mpi4py.MPI" not in sys.modules  # no launcher: never needed
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k not in (*MPI_ENVIRONMENT, TIMEOUT_ENV)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------- DistributedDataParallel


def mlp(seed=0):
    cr.manual_seed(seed)
    return cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 2))


def batch(seed=1, n=8):
    rng = np.random.default_rng(seed)
    return (cr.tensor(rng.standard_normal((n, 3)).astype(np.float32)),
            cr.tensor(rng.standard_normal((n, 2)).astype(np.float32)))


def weights(model):
    return {name: np.array(p.data, copy=True) for name, p in model.named_parameters()}


def grads(model):
    return {name: None if p.grad is None else np.array(p.grad.data, copy=True)
            for name, p in model.named_parameters()}


def assert_same_arrays(got, want):
    assert got.keys() == want.keys()
    for name in want:
        if want[name] is None:
            assert got[name] is None, name
        else:
            assert got[name].dtype == want[name].dtype, name
            assert got[name].tobytes() == want[name].tobytes(), name  # bit for bit


class TwinGroup(ProcessGroup):
    """Rank 0 of 2 ranks whose twin has the very same numbers: a sum over ranks doubles a
    buffer (exact in floating point), a broadcast or a gather copies this rank's."""

    size = 2

    def __init__(self):
        super().__init__(timeout=1.0)
        self.launched = []  # the sizes of the buffers reduced, in launch order

    def allreduce(self, buffer, op="sum"):
        assert op == "sum"
        buffer *= 2

    def iallreduce(self, buffer, op="sum"):
        self.launched.append(buffer.size)
        self.allreduce(buffer, op)
        return Work(self, None, "allreduce")

    def allgather(self, send, receive):
        receive[...] = send


def test_wrapping_keeps_the_weights_and_the_forward(world):
    model = mlp()
    before = weights(model)
    ddp = dist.DistributedDataParallel(model)
    assert ddp.module is model
    assert_same_arrays(weights(model), before)
    x, _ = batch()
    assert ddp(x).data.tobytes() == model(x).data.tobytes()


def test_state_dict_keys_are_prefixed_with_module(world):
    ddp = dist.DistributedDataParallel(mlp())
    assert list(ddp.state_dict()) == [f"module.{k}" for k in ddp.module.state_dict()]


@pytest.mark.parametrize("group", [None, "twin"])
def test_backward_gives_the_bare_modules_grads(world, group):
    bare, wrapped = mlp(), mlp()
    ddp = dist.DistributedDataParallel(wrapped, group=TwinGroup() if group else None)
    x, y = batch()
    cr.mse_loss(bare(x), y).backward()
    cr.mse_loss(ddp(x), y).backward()
    assert_same_arrays(grads(wrapped), grads(bare))
    assert ddp.stats["reductions"] == (1 if group else 0)  # one process: nothing to average


def test_twin_group_reduces_buckets_in_index_order_once_per_backward():
    model = mlp()
    group = TwinGroup()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=50e-6, group=group)
    # float32 parameters in reverse order: 2.bias 8 B, 2.weight 32 B, 0.bias 16 B, 0.weight 48 B
    assert ddp.buckets == [["2.bias", "2.weight"], ["0.bias"], ["0.weight"]]
    x, y = batch()
    for step in range(1, 3):
        model.zero_grad()
        cr.mse_loss(ddp(x), y).backward()
        assert group.launched == [2 + 8, 4, 12] * step
        assert ddp.stats["reductions"] == step


def test_unused_parameters_are_reduced_as_zeros():
    class Partly(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.extra = mlp(), cr.nn.Linear(2, 2)

        def forward(self, x):
            return self.used(x)  # extra never takes part

    model = Partly()
    ddp = dist.DistributedDataParallel(model, group=TwinGroup())
    x, y = batch()
    cr.mse_loss(ddp(x), y).backward()
    assert model.extra.weight.grad is not None
    np.testing.assert_array_equal(model.extra.weight.grad.data, np.zeros((2, 2)))
    np.testing.assert_array_equal(model.extra.bias.grad.data, np.zeros(2))


@pytest.mark.parametrize("overlap", [True, False])
def test_no_sync_accumulates_locally_then_averages_everything(overlap):
    bare, wrapped = mlp(), mlp()
    group = TwinGroup()
    ddp = dist.DistributedDataParallel(wrapped, group=group, overlap=overlap)
    (x1, y1), (x2, y2) = batch(1), batch(2)
    with ddp.no_sync():
        assert ddp.require_backward_grad_sync is False
        cr.mse_loss(ddp(x1), y1).backward()
    assert ddp.require_backward_grad_sync is True
    assert group.launched == [] and ddp.stats["reductions"] == 0
    cr.mse_loss(ddp(x2), y2).backward()
    assert ddp.stats["reductions"] == 1
    cr.mse_loss(bare(x1), y1).backward()
    cr.mse_loss(bare(x2), y2).backward()
    assert_same_arrays(grads(wrapped), grads(bare))


def test_no_sync_restores_the_flag_after_an_error():
    ddp = dist.DistributedDataParallel(mlp(), group=TwinGroup())
    with pytest.raises(KeyError), ddp.no_sync():
        raise KeyError("inside")
    assert ddp.require_backward_grad_sync is True


def _params_of_two_dtypes():
    class Mixed(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = cr.nn.Parameter(np.zeros(3, dtype=np.float32))
            self.b = cr.nn.Parameter(np.zeros(2, dtype=np.float64))
            self.c = cr.nn.Parameter(np.zeros(5, dtype=np.float64))
            self.d = cr.nn.Parameter(np.zeros(1, dtype=np.float32))

    return Mixed()


def reference_buckets(named, cap_bytes):
    """The grouping rule: parameters in reverse order, a new bucket on a dtype change or when
    the next one would pass the cap (a larger parameter alone)."""
    result, current, size, dtype = [], [], 0, None
    for name, p in reversed(named):
        nbytes = p.data.nbytes
        if current and (p.dtype != dtype or size + nbytes > cap_bytes):
            result.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
        dtype = p.dtype
    return result + ([current] if current else [])


@pytest.mark.parametrize("cap_mb", [25.0, 1e-6, 24e-6, 40e-6, 50e-6, 64e-6, 104e-6])
def test_buckets_group_parameters_in_reverse_under_the_cap(world, cap_mb):
    model = mlp()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=cap_mb)
    named = list(model.named_parameters())
    assert ddp.buckets == reference_buckets(named, cap_mb * 1e6)
    assert [name for bucket in ddp.buckets for name in bucket] == [n for n, _ in named][::-1]


def test_buckets_by_hand():
    model = mlp()
    ddp = dist.DistributedDataParallel
    assert ddp(model).buckets == [["2.bias", "2.weight", "0.bias", "0.weight"]]
    assert ddp(model, bucket_cap_mb=1e-6).buckets == [["2.bias"], ["2.weight"], ["0.bias"],
                                                      ["0.weight"]]
    assert ddp(model, bucket_cap_mb=56e-6).buckets == [["2.bias", "2.weight", "0.bias"],
                                                       ["0.weight"]]
    assert ddp(_params_of_two_dtypes()).buckets == [["d"], ["c", "b"], ["a"]]


@pytest.mark.parametrize("cap", [0, -1.0, "25", None])
def test_bad_bucket_cap(world, cap):
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        dist.DistributedDataParallel(mlp(), bucket_cap_mb=cap)


@pytest.mark.parametrize("module", [lambda x: x, "model", None])
def test_wrapping_a_non_module_is_refused(world, module):
    with pytest.raises(TypeError, match="Module"):
        dist.DistributedDataParallel(module)


def test_ddp_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError, match="state_dict"):
        pickle.dumps(dist.DistributedDataParallel(mlp()))


def train(model, steps=5, momentum=0.9):
    optimizer = cr.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)
    for step in range(steps):
        x, y = batch(seed=10 + step)
        optimizer.zero_grad()
        cr.mse_loss(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("group", [None, "twin"])
def test_training_through_ddp_is_bit_identical_to_the_bare_model(world, group):
    bare, wrapped = mlp(), mlp()
    train(bare)
    train(dist.DistributedDataParallel(wrapped, bucket_cap_mb=50e-6,
                                       group=TwinGroup() if group else None))
    assert_same_arrays(weights(wrapped), weights(bare))
    assert weights(bare)["0.weight"].tobytes() != weights(mlp())["0.weight"].tobytes()  # moved


def test_collectives_refuse_read_only_memory_with_a_clear_error():
    view = cr.broadcast_to(cr.tensor([1.0, 2.0]), (3, 2))
    for collective in (dist.all_reduce, dist.broadcast):
        with pytest.raises(ValueError, match=f"{collective.__name__}: .*read-only"):
            collective(view)
    assert dist.all_gather(view).shape == (1, 3, 2)  # reading is fine


@pytest.mark.parametrize("make", [lambda: dist.init(timeout=True),
                                  lambda: dist.DistributedDataParallel(cr.nn.Linear(2, 2),
                                                                       bucket_cap_mb=True)])
def test_bools_are_not_numbers_of_seconds_or_megabytes(make):
    with pytest.raises(ValueError, match="timeout=True|bucket_cap_mb=True"):
        make()

"""Creation, random numbers, in-place updates and signal ops on NumPy and on array_api_strict.

Four tables, each row run on NumPy ("cpu") and on array_api_strict (the standard only), the two
results compared:

* ``CREATION``: one row per creation function of ``chainrule.ops.creation.__all__`` (a test
  checks that every one has a row): ``device="array_api_strict"`` gives an array there with the
  NumPy result's values, dtype and shape; the random ones, from the same seed, the same numbers;
* ``INPLACE``: one row per in-place function of ``chainrule.ops.inplace.__all__``: equal values,
  the same array object written, the version counter bumped;
* ``SIGNAL``: convolve / correlate in every mode and 1-3 dimensions: equal values and gradients;
  the ``abstract_eval`` rule of ``correlate_valid`` against its kernels.

Also: the per-thread default device (``cr.zeros(3)`` inside ``default_device`` and, at the same
time, in another thread), generators per device, and the errors.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.errors import BackendMismatchError, ShapeError
from chainrule.ops import creation, inplace
from chainrule.ops.abstract import ShapeDtype, of
from chainrule.ops.signal import convolve, correlate, correlate_valid_p

STRICT = "array_api_strict"
DEVICES = ("cpu", STRICT)


def _same(ours: cr.Tensor, expected: cr.Tensor, device: str = STRICT) -> None:
    """``ours`` lives on ``device`` and holds exactly ``expected``'s values, dtype and shape."""
    assert ours.device == device
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())


# ------------------------------------------------------------------------------ creation
class Make(NamedTuple):
    """One call of a creation function: ``call(device) -> Tensor`` (reseeded before each)."""

    name: str
    call: Callable[[Any], cr.Tensor]


FLOAT64_MODEL = np.arange(6.0).reshape(2, 3)
INT_MODEL = np.array([[1, 2], [3, 4]], dtype=np.int32)

# fmt: off
CREATION = [
    Make("zeros",      lambda d: cr.zeros(2, 3, device=d)),
    Make("zeros",      lambda d: cr.zeros((4,), dtype=np.int64, device=d)),
    Make("zeros",      lambda d: cr.zeros(device=d)),
    Make("ones",       lambda d: cr.ones(3, 2, dtype=np.float64, device=d)),
    Make("ones",       lambda d: cr.ones(5, dtype=bool, device=d)),
    Make("full",       lambda d: cr.full((2, 2), 1.7, device=d)),
    Make("full",       lambda d: cr.full(3, 7, device=d)),
    Make("full",       lambda d: cr.full((2,), 3.9, dtype=np.int64, device=d)),
    Make("full",       lambda d: cr.full((2, 1), True, device=d)),
    Make("zeros_like", lambda d: cr.zeros_like(FLOAT64_MODEL, device=d)),
    Make("zeros_like", lambda d: cr.zeros_like(INT_MODEL, dtype=np.float32, device=d)),
    Make("ones_like",  lambda d: cr.ones_like(INT_MODEL, device=d)),
    Make("full_like",  lambda d: cr.full_like(FLOAT64_MODEL, -2.5, device=d)),
    Make("full_like",  lambda d: cr.full_like(INT_MODEL, 9, device=d)),
    Make("arange",     lambda d: cr.arange(5, device=d)),
    Make("arange",     lambda d: cr.arange(1, 2, 0.1, device=d)),
    Make("arange",     lambda d: cr.arange(10, 0, -3, dtype=np.float64, device=d)),
    Make("linspace",   lambda d: cr.linspace(0, 1, 7, device=d)),
    Make("linspace",   lambda d: cr.linspace(-3.0, 2.0, 11, dtype=np.float64, device=d)),
    Make("linspace",   lambda d: cr.linspace(0, 1, 0, device=d)),
    Make("eye",        lambda d: cr.eye(3, device=d)),
    Make("eye",        lambda d: cr.eye(2, 4, dtype=np.int64, device=d)),
    Make("eye",        lambda d: cr.eye(3, 5, k=2, device=d)),
    Make("empty",      lambda d: cr.empty(2, 3, device=d)),
    Make("empty",      lambda d: cr.empty((4,), dtype=np.int32, device=d)),
    Make("empty_like", lambda d: cr.empty_like(INT_MODEL, device=d)),
    Make("logspace",   lambda d: cr.logspace(0, 2, 5, device=d)),
    Make("logspace",   lambda d: cr.logspace(-1.0, 3.0, 4, base=2.0, dtype=np.float64, device=d)),
    Make("tril_indices", lambda d: cr.tril_indices(4, -1, 3, device=d)),
    Make("triu_indices", lambda d: cr.triu_indices(3, 1, dtype=np.int32, device=d)),
    Make("rand_like",  lambda d: cr.rand_like(FLOAT64_MODEL, device=d)),
    Make("randn_like", lambda d: cr.randn_like(FLOAT64_MODEL, dtype=np.float32, device=d)),
    Make("rand",       lambda d: cr.rand(3, 4, device=d)),
    Make("rand",       lambda d: cr.rand(5, dtype=np.float64, generator=cr.Generator(7), device=d)),
    Make("randn",      lambda d: cr.randn(2, 3, device=d)),
    Make("randn",      lambda d: cr.randn((6,), dtype=np.float64, device=d)),
    Make("randn",      lambda d: cr.randn(4, generator=cr.Generator(3, device=d), device=d)),
    Make("randint",    lambda d: cr.randint(0, 10, (3, 3), device=d)),
    Make("randint",    lambda d: cr.randint(-5, 5, 8, generator=cr.Generator(11), device=d)),
]
# fmt: on

#: names of creation.__all__ that are not functions making a tensor
NOT_TENSORS = {"Generator", "manual_seed", "default_generator"}


def _made(row: Make, device: Any) -> cr.Tensor:
    cr.manual_seed(1234)  # the same default stream for both devices
    return row.call(device)


def test_every_creation_function_has_a_row():
    missing = set(creation.__all__) - NOT_TENSORS - {row.name for row in CREATION}
    assert not missing, f"add CREATION rows for {sorted(missing)}"


@pytest.mark.parametrize("row", CREATION, ids=[row.name for row in CREATION])
def test_creation_on_the_strict_backend_equals_numpy(row):
    expected = _made(row, "cpu")
    assert expected.device == "cpu" and type(expected.data) is np.ndarray
    _same(_made(row, STRICT), expected)


@pytest.mark.parametrize("row", CREATION, ids=[row.name for row in CREATION])
def test_creation_follows_the_default_device(row):
    """Without ``device=`` a tensor goes to the thread's default device; a ``*_like`` one to its
    model's (here an ndarray: cpu)."""
    expected = _made(row, "cpu")
    with cr.backends.default_device(STRICT):
        _same(_made(row, None), expected, "cpu" if row.name.endswith("_like") else STRICT)
    assert _made(row, None).device == "cpu"


def test_numpy_numbers_are_unchanged():
    """The NumPy results of before: PCG64 streams, np.arange(...).astype, np.full."""
    cr.manual_seed(5)
    expected = np.random.default_rng(5)
    np.testing.assert_array_equal(cr.randn(3, 2).numpy(),
                                  expected.standard_normal((3, 2), dtype=np.float32))
    np.testing.assert_array_equal(cr.rand(4).numpy(), expected.random(4, dtype=np.float32))
    np.testing.assert_array_equal(cr.randint(0, 9, 5).numpy(),
                                  expected.integers(0, 9, 5, dtype=np.int64))
    np.testing.assert_array_equal(cr.arange(0, 1, 0.1).numpy(),
                                  np.arange(0, 1, 0.1).astype(np.float32))


@pytest.mark.parametrize("draw", [
    lambda d: cr.randn(3, 4, device=d),
    lambda d: cr.rand(5, device=d),
    lambda d: cr.randint(0, 100, (6,), device=d),
], ids=["randn", "rand", "randint"])
def test_the_same_seed_gives_the_same_numbers_on_both(draw):
    cr.manual_seed(42)
    first, second = draw("cpu"), draw("cpu")
    cr.manual_seed(42)
    _same(draw(STRICT), first)
    _same(draw(STRICT), second)  # the stream goes on identically
    cr.manual_seed(42, device=STRICT)  # the generator serving the strict device: the host one
    _same(draw(STRICT), first)


def test_own_generators_reproduce_per_device():
    host, strict = cr.Generator(9), cr.Generator(9, device=STRICT)
    assert host.device == "cpu" and strict.device == STRICT
    _same(cr.randn(4, generator=strict, device=STRICT), cr.randn(4, generator=host))
    host.manual_seed(9)
    _same(cr.randn(4, generator=host, device=STRICT),
          cr.randn(4, generator=cr.Generator(9), device="cpu"))
    with cr.backends.default_device(STRICT):
        assert cr.Generator(1).device == STRICT


def test_a_cuda_generator_cannot_draw_for_the_host():
    with pytest.raises(RuntimeError, match="generator for device 'cuda:0'"):
        cr.randn(2, generator=cr.Generator(0, device="cuda"))
    with pytest.raises(TypeError, match="chainrule.Generator"):
        cr.rand(2, generator=np.random.default_rng(0), device=STRICT)


def test_like_functions_take_the_model_tensors_device():
    model = cr.tensor(FLOAT64_MODEL).to(STRICT)
    for made in (cr.zeros_like(model), cr.ones_like(model), cr.full_like(model, 3.0)):
        assert made.device == STRICT and made.dtype == np.float64 and made.shape == (2, 3)
    assert cr.zeros_like(model, device="cpu").device == "cpu"


def test_leaves_on_the_strict_backend_can_require_grad():
    w = cr.randn(3, device=STRICT, requires_grad=True)
    (w * w).sum().backward()
    assert w.grad.device == STRICT
    np.testing.assert_allclose(w.grad.numpy(), 2 * w.numpy())


def test_the_default_device_is_per_thread():
    """Inside ``default_device`` zeros go to the strict backend, while another thread, at the
    same moment, still gets cpu."""
    inside, ready, done = {}, threading.Barrier(2), threading.Barrier(2)

    def in_the_block():
        with cr.backends.default_device(STRICT):
            ready.wait()  # the other thread runs while this block is open
            inside["here"] = cr.zeros(3).device
            done.wait()

    def outside():
        ready.wait()
        inside["there"] = cr.zeros(3).device
        done.wait()

    threads = [threading.Thread(target=in_the_block), threading.Thread(target=outside)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inside == {"here": STRICT, "there": "cpu"}
    assert cr.zeros(3).device == "cpu"


# ------------------------------------------------------------------------------ in place
RNG = np.random.default_rng(0)
T = RNG.normal(size=(3, 4)).astype(np.float32)
B = RNG.normal(size=(3, 4)).astype(np.float32)
C = RNG.uniform(0.5, 2.0, size=(3, 4)).astype(np.float32)


def _wide(operand: np.ndarray, t: cr.Tensor) -> cr.Tensor:
    """``operand`` as float64 on ``t``'s device: rounded into t's float32 when written."""
    return cr.tensor(operand.astype(np.float64)).to(t.device)


class Update(NamedTuple):
    """One in-place call ``call(t, b, c)`` on float32 (3, 4) tensors (c is positive)."""

    name: str
    call: Callable[[cr.Tensor, cr.Tensor, cr.Tensor], Any]


# fmt: off
INPLACE = [
    Update("add_",     lambda t, b, c: inplace.add_(t, b)),
    Update("add_",     lambda t, b, c: inplace.add_(t, b, alpha=-0.3)),
    Update("add_",     lambda t, b, c: inplace.add_(t, 2)),
    Update("add_",     lambda t, b, c: inplace.add_(t, _wide(B[0], t), alpha=2.0)),
    Update("add_",     lambda t, b, c: inplace.add_(t, B[1])),             # an ndarray operand
    Update("mul_",     lambda t, b, c: inplace.mul_(t, b)),
    Update("mul_",     lambda t, b, c: inplace.mul_(t, 0.9)),
    Update("div_",     lambda t, b, c: inplace.div_(t, c)),
    Update("div_",     lambda t, b, c: inplace.div_(t, 3)),
    Update("addcmul_", lambda t, b, c: inplace.addcmul_(t, b, c, value=0.1)),
    Update("addcmul_", lambda t, b, c: inplace.addcmul_(t, b, b)),
    Update("addcdiv_", lambda t, b, c: inplace.addcdiv_(t, b, c, value=-0.01)),
    Update("lerp_",    lambda t, b, c: inplace.lerp_(t, b, 0.1)),
    Update("lerp_",    lambda t, b, c: inplace.lerp_(t, b, 0.8)),
    Update("lerp_",    lambda t, b, c: inplace.lerp_(t, 1.5, 1.0)),
    Update("lerp_",    lambda t, b, c: inplace.lerp_(t, b, c / 2)),
    Update("maximum_", lambda t, b, c: inplace.maximum_(t, b)),
    Update("sqrt_",    lambda t, b, c: inplace.sqrt_(inplace.copy_(t, c))),
    Update("copy_",    lambda t, b, c: inplace.copy_(t, b)),
    Update("copy_",    lambda t, b, c: inplace.copy_(t, b[1])),           # broadcast a row
    Update("fill_",    lambda t, b, c: inplace.fill_(t, -1.5)),
    Update("zero_",    lambda t, b, c: inplace.zero_(t)),
    Update("adam_",    lambda t, b, c: inplace.adam_(t, b, inplace.clone(c), inplace.clone(c),
                                                     lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8,
                                                     step=3)),
    Update("adam_",    lambda t, b, c: inplace.adam_(t, b, inplace.clone(b), inplace.clone(c),
                                                     lr=1e-2, beta1=0.3, beta2=0.99, eps=1e-8,
                                                     step=1, max_exp_avg_sq=inplace.clone(c))),
]
# fmt: on

#: how many in-place writes each row makes to ``t`` (sqrt_ after copy_)
WRITES = {"sqrt_": 2}


def _updated(row: Update, device: str) -> tuple[cr.Tensor, Any, int]:
    t, b, c = (cr.tensor(a).to(device) for a in (T, B, C))
    array, version = t.data, t.version
    assert row.call(t, b, c) is t
    return t, array, t.version - version


def test_every_inplace_function_has_a_row():
    missing = set(inplace.__all__) - {"clone"} - {row.name for row in INPLACE}
    assert not missing, f"add INPLACE rows for {sorted(missing)}"


@pytest.mark.parametrize("row", INPLACE, ids=[row.name for row in INPLACE])
def test_inplace_on_the_strict_backend_equals_numpy(row):
    expected, _, numpy_bumps = _updated(row, "cpu")
    ours, array, bumps = _updated(row, STRICT)
    assert ours.data is array, "the update must write into the same array"
    assert bumps == numpy_bumps == WRITES.get(row.name, 1)
    _same(ours, expected)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_updates_its_states_equally(amsgrad):
    def step(device):
        p, g, m, v, vmax = (cr.tensor(a).to(device) for a in (T, B, B / 3, C, C * 1.5))
        inplace.adam_(p, g, m, v, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=2,
                      max_exp_avg_sq=vmax if amsgrad else None)
        return p, m, v, vmax

    for ours, expected in zip(step(STRICT), step("cpu")):
        _same(ours, expected)


def test_clone_on_the_strict_backend():
    t = cr.tensor(T).to(STRICT)
    copy, wider = inplace.clone(t), inplace.clone(t, dtype=np.float64)
    assert copy.data is not t.data and copy.grad_fn is None
    _same(copy, cr.tensor(T))
    _same(wider, cr.tensor(T.astype(np.float64)))
    inplace.zero_(copy)
    np.testing.assert_array_equal(t.numpy(), T)  # the original is untouched


def test_integer_tensors_on_the_strict_backend():
    t = cr.tensor(np.array([1, 2, 3])).to(STRICT)
    inplace.mul_(inplace.add_(t, 2), 3)
    _same(t, cr.tensor(np.array([9, 12, 15])))
    with pytest.raises(TypeError, match="cannot be stored in place in a int64 tensor"):
        inplace.add_(t, 0.5)


def test_inplace_errors_on_the_strict_backend():
    t = cr.tensor(T).to(STRICT)
    with pytest.raises(BackendMismatchError):
        inplace.add_(t, cr.tensor(B))  # a cpu Tensor
    with pytest.raises(BackendMismatchError):
        inplace.add_(cr.tensor(T), cr.tensor(B).to(STRICT))
    with pytest.raises(ShapeError, match="other of shape"):
        inplace.add_(t, np.ones((2, 4), np.float32))
    with pytest.raises(BackendMismatchError):
        inplace.adam_(t, cr.tensor(B), cr.tensor(B).to(STRICT), cr.tensor(C).to(STRICT),
                      lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, step=1)
    assert t.version == 0  # refused before any write


# ------------------------------------------------------------------------------ signal
SHAPES = [((7,), (3,)), ((3,), (5,)), ((5, 4), (2, 3)), ((4, 3, 3), (2, 2, 1)), ((1,), (1,))]


def _signal(fn, mode, x_shape, k_shape, device):
    rng = np.random.default_rng(len(x_shape) + x_shape[0])
    x = cr.tensor(rng.normal(size=x_shape)).to(device).requires_grad_()
    k = cr.tensor(rng.normal(size=k_shape)).to(device).requires_grad_()
    out = fn(x, k, mode=mode)
    weights = cr.tensor(rng.normal(size=out.shape)).to(device)
    (out * weights).sum().backward()
    return out, x.grad, k.grad


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("fn", [convolve, correlate])
@pytest.mark.parametrize("x_shape, k_shape", SHAPES, ids=[f"{a}*{b}" for a, b in SHAPES])
def test_signal_values_and_gradients_equal_numpy(fn, mode, x_shape, k_shape):
    expected = _signal(fn, mode, x_shape, k_shape, "cpu")
    for ours, theirs in zip(_signal(fn, mode, x_shape, k_shape, STRICT), expected):
        assert ours.device == STRICT and ours.shape == theirs.shape
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_signal_mixes_dtypes_as_numpy():
    x, k = np.arange(5, dtype=np.float32), np.array([1.0, -1.0])  # float32 with float64
    expected = correlate(x, k)
    ours = correlate(cr.tensor(x).to(STRICT), cr.tensor(k).to(STRICT))
    assert ours.dtype == expected.dtype == np.float64
    np.testing.assert_allclose(ours.numpy(), expected.numpy())


@pytest.mark.parametrize("x_shape, k_shape",
                         [((7,), (3,)), ((5, 4), (2, 3)), ((4, 3, 3), (2, 2, 1)), ((), ())])
@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.float32, np.float64),
                                    (np.float32, np.float32)])
def test_correlate_valid_abstract_eval_matches_the_kernels(x_shape, k_shape, dtypes):
    rule = correlate_valid_p.rules["abstract_eval"]
    x = np.ones(x_shape, dtypes[0])
    k = np.ones(k_shape, dtypes[1])
    aval = rule(ShapeDtype(x_shape, np.dtype(dtypes[0])), ShapeDtype(k_shape, np.dtype(dtypes[1])))
    for device in DEVICES:
        out = correlate_valid_p.bind(cr.tensor(x).to(device), cr.tensor(k).to(device))
        assert of(out) == aval, device


def test_correlate_valid_abstract_eval_refuses_a_larger_kernel():
    rule = correlate_valid_p.rules["abstract_eval"]
    with pytest.raises(ShapeError, match="at least as large"):
        rule(ShapeDtype((3, 2), np.dtype(np.float64)), ShapeDtype((2, 3), np.dtype(np.float64)))

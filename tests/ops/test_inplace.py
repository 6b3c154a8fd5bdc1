"""chainrule.ops.inplace: really in place (same array), right values, dtype kept, clear errors."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.engine.errors import ShapeError
from chainrule.ops import inplace


def _pair(rng, shape=(3, 4), dtype="float64"):
    a = rng.normal(size=shape).astype(dtype)
    return cr.tensor(a), torch.tensor(a)


CASES = [
    # name, chainrule call, torch call (operands: b, c from the fixture; c is positive)
    ("add_", lambda t, b, c: inplace.add_(t, b), lambda t, b, c: t.add_(b)),
    ("add_alpha", lambda t, b, c: inplace.add_(t, b, alpha=-0.3),
     lambda t, b, c: t.add_(b, alpha=-0.3)),
    ("add_scalar", lambda t, b, c: inplace.add_(t, 2.5), lambda t, b, c: t.add_(2.5)),
    ("add_row", lambda t, b, c: inplace.add_(t, b[0]), lambda t, b, c: t.add_(b[0])),
    ("mul_", lambda t, b, c: inplace.mul_(t, b), lambda t, b, c: t.mul_(b)),
    ("mul_scalar", lambda t, b, c: inplace.mul_(t, 0.9), lambda t, b, c: t.mul_(0.9)),
    ("div_", lambda t, b, c: inplace.div_(t, c), lambda t, b, c: t.div_(c)),
    ("addcmul_", lambda t, b, c: inplace.addcmul_(t, b, c, value=0.1),
     lambda t, b, c: t.addcmul_(b, c, value=0.1)),
    ("addcmul_default", lambda t, b, c: inplace.addcmul_(t, b, b),
     lambda t, b, c: t.addcmul_(b, b)),
    ("addcdiv_", lambda t, b, c: inplace.addcdiv_(t, b, c, value=-0.01),
     lambda t, b, c: t.addcdiv_(b, c, value=-0.01)),
    ("lerp_small", lambda t, b, c: inplace.lerp_(t, b, 0.1), lambda t, b, c: t.lerp_(b, 0.1)),
    ("lerp_large", lambda t, b, c: inplace.lerp_(t, b, 0.8), lambda t, b, c: t.lerp_(b, 0.8)),
    ("lerp_one", lambda t, b, c: inplace.lerp_(t, b, 1.0), lambda t, b, c: t.lerp_(b, 1.0)),
    ("lerp_tensor", lambda t, b, c: inplace.lerp_(t, b, c / 4), lambda t, b, c: t.lerp_(b, c / 4)),
    ("maximum_", lambda t, b, c: inplace.maximum_(t, b),
     lambda t, b, c: torch.maximum(t, b, out=t)),
    ("sqrt_", lambda t, b, c: inplace.sqrt_(inplace.copy_(t, c)),
     lambda t, b, c: t.copy_(c).sqrt_()),
    ("copy_", lambda t, b, c: inplace.copy_(t, b), lambda t, b, c: t.copy_(b)),
    ("fill_", lambda t, b, c: inplace.fill_(t, -1.5), lambda t, b, c: t.fill_(-1.5)),
    ("zero_", lambda t, b, c: inplace.zero_(t), lambda t, b, c: t.zero_()),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_values_match_torch_in_place(rng, name, ours, theirs, dtype):
    t, t_torch = _pair(rng, dtype=dtype)
    b, b_torch = _pair(rng, dtype=dtype)
    c_np = rng.uniform(0.5, 2.0, size=(3, 4)).astype(dtype)
    c, c_torch = cr.tensor(c_np), torch.tensor(c_np)
    array = t.data
    result = ours(t, b, c)
    theirs(t_torch, b_torch, c_torch)
    assert result is t
    assert t.data is array, "the update must write into the same ndarray"
    assert t.dtype == np.dtype(dtype)
    tol = 1e-15 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(t.data, t_torch.numpy(), rtol=tol, atol=tol)


def test_wider_operand_is_rounded_into_the_tensor_dtype(rng):
    t = cr.tensor(np.ones(3, dtype=np.float32))
    array = t.data
    inplace.add_(t, cr.tensor(np.full(3, 1e-3)), alpha=2.0)  # float64 operand
    assert t.data is array and t.dtype == np.float32
    np.testing.assert_allclose(t.data, 1.002, rtol=1e-7)


def test_ndarray_operands_and_aliasing(rng):
    t = cr.tensor(rng.normal(size=4))
    before = t.data.copy()
    inplace.add_(t, t)  # the tensor with itself
    np.testing.assert_array_equal(t.data, 2 * before)
    inplace.mul_(t, np.full(4, 0.5))
    np.testing.assert_array_equal(t.data, before)


def test_maximum_propagates_nan():
    t = cr.tensor(np.array([1.0, np.nan, 3.0]))
    inplace.maximum_(t, np.array([2.0, 0.0, np.nan]))
    assert t.data[0] == 2.0 and np.isnan(t.data[1]) and np.isnan(t.data[2])


def test_integer_tensors_keep_their_dtype():
    t = cr.tensor([1, 2, 3])
    inplace.add_(t, 1)
    inplace.mul_(t, 2)
    inplace.addcmul_(t, t, t)
    assert t.dtype == np.int64 and t.tolist() == [20, 42, 72]


def test_leaves_requiring_grad_are_updated_without_a_graph(rng):
    p = cr.tensor(rng.normal(size=3), requires_grad=True)
    inplace.add_(p, 1.0)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


def test_clone_is_a_detached_copy(rng):
    p = cr.tensor(rng.normal(size=3), requires_grad=True)
    c = inplace.clone(p)
    assert c.data is not p.data and not c.requires_grad
    np.testing.assert_array_equal(c.data, p.data)
    assert inplace.clone(p, dtype="float32").dtype == np.float32
    with pytest.raises(TypeError, match="expected a Tensor"):
        inplace.clone(np.ones(2))


@pytest.mark.parametrize("call, argument", [
    (lambda t: inplace.add_(t, np.ones(4)), "other"),
    (lambda t: inplace.add_(t, np.ones((2, 3, 3))), "other"),  # would change the shape
    (lambda t: inplace.mul_(t, np.ones(2)), "value"),
    (lambda t: inplace.addcmul_(t, np.ones(3), np.ones((3, 2))), "tensor2"),
    (lambda t: inplace.addcdiv_(t, np.ones(5), np.ones(3)), "tensor1"),
    (lambda t: inplace.lerp_(t, np.ones(3), np.ones(4)), "weight"),
    (lambda t: inplace.maximum_(t, np.ones((3, 1))), "other"),
    (lambda t: inplace.copy_(t, np.ones(7)), "src"),
])
def test_shape_mismatch_names_the_argument(call, argument):
    t = cr.tensor(np.zeros((2, 3)))
    before = t.data.copy()
    with pytest.raises(ShapeError,
                       match=rf"{argument} of shape .* does not broadcast to .*\(2, 3\)"):
        call(t)
    np.testing.assert_array_equal(t.data, before)  # nothing written


def test_refuses_results_of_recorded_operations():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad_fn"):
        inplace.add_(y, 1.0)
    inplace.add_(y.detach(), 1.0)  # allowed: the user asked for it explicitly


def test_type_errors():
    with pytest.raises(TypeError, match="expected the Tensor"):
        inplace.add_(np.zeros(2), 1.0)
    with pytest.raises(TypeError, match="cannot be stored in place in a int64 tensor"):
        inplace.add_(cr.tensor([1, 2]), 0.5)
    with pytest.raises(TypeError, match="int64"):
        inplace.sqrt_(cr.tensor([1, 4]))
    with pytest.raises(TypeError, match="expected numbers"):
        inplace.add_(cr.tensor([1.0]), np.array(["a"]))


def test_read_only_data_is_refused():
    t = cr.Tensor(np.broadcast_to(np.zeros(3), (2, 3)))
    with pytest.raises(ValueError, match="read-only"):
        inplace.zero_(t)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_the_unfused_in_place_sequence_bit_for_bit(rng, amsgrad):
    """adam_ is the same arithmetic as lerp_/mul_/addcmul_/sqrt/add_/addcdiv_, only checked once."""
    shape, hyper = (5, 3), dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    fused = [cr.tensor(rng.normal(size=shape).astype("float32")) for _ in range(3)]
    fused_max = cr.tensor(np.zeros(shape, "float32")) if amsgrad else None
    plain = [inplace.clone(t) for t in fused]
    plain_max = inplace.clone(fused_max) if amsgrad else None
    inplace.mul_(fused[2], fused[2]), inplace.mul_(plain[2], plain[2])  # exp_avg_sq >= 0
    for step in range(1, 6):
        grad = cr.tensor(rng.normal(size=shape).astype("float32"))
        inplace.adam_(*fused[:1], grad, *fused[1:], step=step, max_exp_avg_sq=fused_max, **hyper)
        param, exp_avg, exp_avg_sq = plain
        inplace.lerp_(exp_avg, grad, 1 - hyper["beta1"])
        inplace.addcmul_(inplace.mul_(exp_avg_sq, hyper["beta2"]), grad, grad,
                         value=1 - hyper["beta2"])
        v = inplace.maximum_(plain_max, exp_avg_sq) if amsgrad else exp_avg_sq
        denom = inplace.add_(cr.sqrt(v) / (1 - hyper["beta2"] ** step) ** 0.5, hyper["eps"])
        inplace.addcdiv_(param, exp_avg, denom, value=-hyper["lr"] / (1 - hyper["beta1"] ** step))
        for ours, reference in zip(fused, plain):
            np.testing.assert_array_equal(ours.data, reference.data)
            assert ours.dtype == np.float32


def test_adam_names_a_mismatched_state():
    param = cr.tensor(np.zeros((2, 3)))
    ones, zeros = cr.tensor(np.ones((2, 3))), cr.tensor(np.zeros((2, 3)))
    hyper = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, step=1)
    with pytest.raises(ShapeError,
                       match=r"adam_: exp_avg_sq has shape \(3,\), the parameter \(2, 3\)"):
        inplace.adam_(param, ones, zeros, cr.tensor(np.zeros(3)), **hyper)
    with pytest.raises(TypeError, match="adam_: grad is float32, the parameter float64"):
        inplace.adam_(param, cr.tensor(np.ones((2, 3), "float32")), zeros, zeros, **hyper)
    with pytest.raises(TypeError, match="adam_: exp_avg must be a Tensor, got ndarray"):
        inplace.adam_(param, ones, np.zeros((2, 3)), zeros, **hyper)
    with pytest.raises(TypeError, match="must be floating"):
        inplace.adam_(cr.tensor([1, 2]), cr.tensor([1, 2]), cr.tensor([0, 0]), cr.tensor([0, 0]),
                      **hyper)
    np.testing.assert_array_equal(param.data, 0)  # nothing written

"""The engine on every backend: backward, hooks, anomaly mode, gradcheck and the transforms give on
array_api_strict (and CuPy where it runs) what they give on NumPy, and tensors of two devices in
one operation raise BackendMismatchError naming both.

Table-driven: each case is a function of tensors built from ops the standard has (add, mul, exp,
sum, matmul ...); a case runs once on NumPy and once on the other device, and the results (read
back to the host) must agree to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.gradcheck import gradgradcheck

#: devices other than NumPy's that run here: array_api_strict always (the test extra), CuPy
#: only with a GPU
DEVICES = ["array_api_strict"] + (["cuda"] if "cupy" in cr.backends.available() else [])
RTOL = 1e-12

RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 3))
W = RNG.standard_normal((3, 4))
B = RNG.standard_normal(3)
M = RNG.standard_normal((3, 3))

#: name -> (function, its inputs as host arrays); every function returns a scalar
SCALAR_CASES = {
    "poly":      (lambda x: cr.sum(x * x * x + x),                     (X,)),
    "exp_mul":   (lambda x: cr.sum(cr.exp(x) * x),                     (X,)),
    "scalars":   (lambda x: cr.sum(x * 2.0 + 1.0),                     (X,)),
    "matmul":    (lambda x, w: cr.sum(cr.exp(cr.matmul(x, w) * 0.1)), (X, W)),
    "broadcast": (lambda x, b: cr.sum((x + b) * x),                    (X, B)),
    "reuse":     (lambda x: cr.sum(x * x) + cr.sum(x),                 (X,)),
}
#: name -> (function, inputs): vector-valued functions for the Jacobians
VECTOR_CASES = {
    "exp_mul":   (lambda x: cr.exp(x) * x,                                 (B,)),
    "matvec":    (lambda x: cr.matmul(x, cr.tensor(W, device=x.device)),   (B,)),
}


def leaves(device: str, arrays: tuple, requires_grad: bool = True) -> list:
    """Fresh float64 leaf tensors of ``arrays`` on ``device``."""
    return [cr.tensor(a, dtype=np.float64, device=device, requires_grad=requires_grad)
            for a in arrays]


def host(value) -> np.ndarray:
    return np.asarray(value.numpy())


def assert_same(on_device, on_numpy, device: str) -> None:
    """Equal values, and ``on_device`` really lives on ``device``."""
    assert on_device.device.type == cr.backends.Device(device).type
    np.testing.assert_allclose(host(on_device), host(on_numpy), rtol=RTOL, atol=1e-14)


def backward_grads(device: str, name: str) -> list:
    f, arrays = SCALAR_CASES[name]
    xs = leaves(device, arrays)
    f(*xs).backward()
    return [x.grad for x in xs]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(SCALAR_CASES))
def test_backward_equals_numpy(device, name):
    for on_device, on_numpy in zip(backward_grads(device, name), backward_grads("cpu", name)):
        assert_same(on_device, on_numpy, device)


@pytest.mark.parametrize("device", DEVICES)
def test_retain_graph_accumulates_and_a_freed_graph_raises(device):
    f, arrays = SCALAR_CASES["exp_mul"]
    (x,), (x_np,) = leaves(device, arrays), leaves("cpu", arrays)
    out, out_np = f(x), f(x_np)
    for _ in range(2):
        out.backward(retain_graph=True)
        out_np.backward(retain_graph=True)
    assert_same(x.grad, x_np.grad, device)
    out.backward()
    with pytest.raises(cr.GraphFreedError):
        out.backward()


@pytest.mark.parametrize("device", DEVICES)
def test_create_graph_gives_second_derivatives(device):
    def second(where):
        (x,) = leaves(where, (B,))
        (g,) = cr.autograd_grad(cr.sum(cr.exp(x) * x * x), [x], create_graph=True)
        cr.sum(g * g).backward()
        return g, x.grad

    for on_device, on_numpy in zip(second(device), second("cpu")):
        assert_same(on_device, on_numpy, device)


@pytest.mark.parametrize("device", DEVICES)
def test_explicit_root_gradient_and_non_leaf_retain_grad(device):
    def run(where):
        (x,) = leaves(where, (X,))
        y = cr.exp(x) * x
        y.retain_grad()
        y.backward(cr.tensor(X * 0.5, device=where))
        return x.grad, y.grad

    for on_device, on_numpy in zip(run(device), run("cpu")):
        assert_same(on_device, on_numpy, device)


@pytest.mark.parametrize("device", DEVICES)
def test_hooks_see_and_replace_the_gradient_on_its_device(device):
    seen = []

    def run(where):
        (x,) = leaves(where, (X,))
        y = x * x
        y.register_hook(lambda g: seen.append(g.device) or g * 3.0)
        x.register_hook(lambda g: g + 1.0)
        cr.sum(y).backward()
        return x.grad

    assert_same(run(device), run("cpu"), device)
    assert [d.type for d in seen] == [cr.backends.Device(device).type, "cpu"]


#: name -> (function, inputs): each makes NaN or inf from finite values, forward or backward
ANOMALIES = {
    "forward exp overflow": (lambda x: cr.sum(cr.exp(x * 1000.0)), (np.array([1.0, 2.0]),)),
    "backward sqrt at 0":   (lambda x: cr.sum(cr.sqrt(x)),         (np.array([0.0, 4.0]),)),
}


@pytest.mark.parametrize("device", ["cpu"] + DEVICES)
@pytest.mark.parametrize("name", list(ANOMALIES))
def test_anomaly_mode_raises_on_every_backend(device, name):
    f, arrays = ANOMALIES[name]
    (x,) = leaves(device, arrays)
    with np.errstate(all="ignore"), cr.detect_anomaly(), pytest.raises(cr.AnomalyError):
        f(x).backward()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["poly", "matmul", "broadcast"])
def test_gradcheck_and_gradgradcheck_pass_on_the_device(device, name):
    f, arrays = SCALAR_CASES[name]
    inputs = leaves(device, arrays, requires_grad=False)
    assert cr.gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)
    assert all(x.device.type == cr.backends.Device(device).type for x in inputs)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_reports_a_wrong_gradient_on_the_device(device):
    def wrong(x):  # d/dx is 2x + 1, but the gradient seen is that of x*x only: detach() cuts it
        return cr.sum(x * x + x.detach())

    (x,) = leaves(device, (B,), requires_grad=False)
    with pytest.raises(cr.GradcheckError, match="input 0"):
        cr.gradcheck(wrong, [x])


def _transform_results(device: str) -> list:
    """grad, value_and_grad, jacobian, hessian, hvp, vjp and jvp of the cases, on ``device``."""
    results = []
    for f, arrays in SCALAR_CASES.values():
        xs = leaves(device, arrays, requires_grad=False)
        argnums = tuple(range(len(xs)))
        results += list(cr.grad(f, argnums=argnums)(*xs))
        value, _ = cr.value_and_grad(f)(*xs)
        results.append(value)
        results.append(cr.hessian(f)(*xs))
        v = cr.tensor(np.linspace(-1, 1, xs[0].size).reshape(xs[0].shape), device=device)
        results.append(cr.hvp(f)(*xs, v))
    for f, arrays in VECTOR_CASES.values():
        xs = leaves(device, arrays, requires_grad=False)
        results.append(cr.jacobian(f)(*xs))
        out, pullback = cr.vjp(f, *xs)
        (vj,) = pullback(cr.ones_like(out))
        results += [out, vj]
        _, jt = cr.jvp(f, tuple(xs), tuple(cr.ones_like(x) for x in xs))
        results.append(jt)
    return results


@pytest.mark.parametrize("device", DEVICES)
def test_transforms_equal_numpy(device):
    on_device, on_numpy = _transform_results(device), _transform_results("cpu")
    assert len(on_device) == len(on_numpy)
    for a, b in zip(on_device, on_numpy):
        assert_same(a, b, device)


@pytest.mark.parametrize("device", DEVICES)
def test_transforms_take_pytrees_on_the_device(device):
    def f(params):
        return cr.sum(cr.exp(params["w"]) * params["b"][0])

    def run(where):
        x = {"w": cr.tensor(B, device=where), "b": [cr.tensor(B * 2, device=where)]}
        g = cr.grad(f)(x)
        return [g["w"], g["b"][0]]

    for a, b in zip(run(device), run("cpu")):
        assert_same(a, b, device)


#: pairs of devices that must not meet in one operation
MISMATCHED = [("cpu", "array_api_strict"),
              ("array_api_strict", "array_api_strict:device1")]


@pytest.mark.parametrize(("first", "second"), MISMATCHED)
def test_mixing_devices_raises_naming_both(first, second):
    x = cr.tensor(M, device=first, requires_grad=True)
    y = cr.tensor(M, device=second)
    names = [str(cr.backends.Device(d)) for d in (first, second)]
    for combine in (lambda: x * y, lambda: cr.add(y, x), lambda: cr.matmul(x, y)):
        with pytest.raises(cr.BackendMismatchError) as info:
            combine()
        assert all(name in str(info.value) for name in names)


@pytest.mark.parametrize(("first", "second"), MISMATCHED)
def test_a_root_gradient_on_another_device_raises(first, second):
    x = cr.tensor(B, device=first, requires_grad=True)
    with pytest.raises(cr.BackendMismatchError) as info:
        (x * 2.0).backward(cr.tensor(B, device=second))
    assert str(cr.backends.Device(second)) in str(info.value)

"""Convolution and pooling on array_api_strict (the standard only) against NumPy, and conv's
scratch state per backend and per thread.

NumPy runs its fast kernels (strided windows, workspace buffers), array_api_strict the generic
ones (slices, stack, matmul, slice assignment): the two must agree to 1e-6 in float64 on values
and gradients, and the result must stay on the strict device. Every primitive's abstract_eval
rule must give the shape and dtype its kernel gives.
"""

import threading
from functools import partial

import numpy as np
import pytest

import chainrule as cr
from chainrule import backends
from chainrule.ops.abstract import of
from chainrule.ops.conv import pooling, primitives
from chainrule.ops.conv.workspace import scratch_of

pytest.importorskip("array_api_strict")

STRICT = "array_api_strict"
TOL = dict(rtol=1e-6, atol=1e-6)

# fmt: off
#: (function, keyword arguments, input shapes: x first, then the weight; all differentiable)
FUNCTIONS = [
    (cr.conv1d,            {},                                   [(2, 4, 11), (3, 4, 3)]),
    (cr.conv1d,            dict(stride=2, padding=(1, 2), dilation=2),
                                                                 [(2, 4, 11), (3, 4, 3)]),
    (cr.conv1d,            dict(padding="same", groups=2),       [(2, 4, 9), (6, 2, 4)]),
    (cr.conv2d,            dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
                                                                 [(2, 4, 9, 8), (6, 2, 3, 2)]),
    (cr.conv2d,            dict(padding="same"),                 [(2, 3, 7, 6), (5, 3, 3, 3)]),
    (cr.conv2d,            dict(padding="full", dilation=2),     [(1, 2, 6, 7), (3, 2, 2, 3)]),
    (cr.conv2d,            dict(stride=3, groups=3),             [(2, 3, 10, 9), (6, 1, 3, 3)]),
    (cr.conv2d,            dict(stride=2, padding="same"),       [(2, 2, 7, 8), (4, 2, 3, 2)]),
    (cr.conv_transpose1d,  dict(stride=2, padding=1, output_padding=1),
                                                                 [(2, 4, 6), (4, 3, 3)]),
    (cr.conv_transpose1d,  dict(groups=2, dilation=2),           [(2, 4, 5), (4, 2, 3)]),
    (cr.conv_transpose2d,  dict(stride=2, padding=1, output_padding=1, groups=2),
                                                                 [(2, 4, 5, 4), (4, 3, 3, 3)]),
    (cr.conv_transpose2d,  dict(dilation=(2, 1), padding=(1, 0)),
                                                                 [(1, 3, 4, 5), (3, 2, 2, 3)]),
    (cr.conv_transpose2d,  dict(stride=(3, 1)),                  [(2, 2, 3, 4), (2, 2, 2, 2)]),
    (cr.max_pool1d,        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                                                 [(2, 3, 10)]),
    (cr.max_pool1d,        dict(kernel_size=2, stride=1, dilation=2),
                                                                 [(2, 3, 9)]),
    (cr.max_pool2d,        dict(kernel_size=2),                  [(2, 3, 8, 6)]),
    (cr.max_pool2d,        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                                                 [(2, 3, 9, 8)]),
    (cr.max_pool2d,        dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                                                                 [(1, 2, 7, 7)]),
    (cr.avg_pool1d,        dict(kernel_size=3, stride=2, padding=1),
                                                                 [(2, 3, 10)]),
    (cr.avg_pool1d,        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                count_include_pad=False),        [(2, 3, 10)]),
    (cr.avg_pool2d,        dict(kernel_size=2),                  [(2, 3, 8, 6)]),
    (cr.avg_pool2d,        dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                                                 [(2, 3, 9, 8)]),
    (cr.avg_pool2d,        dict(kernel_size=(3, 2), stride=1, padding=(1, 0)),
                                                                 [(1, 2, 6, 5)]),
    (cr.adaptive_avg_pool1d, dict(output_size=3),                [(2, 3, 9)]),
    (cr.adaptive_avg_pool2d, dict(output_size=(2, 4)),           [(2, 3, 6, 8)]),
    (cr.adaptive_avg_pool2d, dict(output_size=1),                [(2, 3, 5, 4)]),
]
# fmt: on


def _function_cases() -> list:
    """pytest params (f, shapes), ids as "conv2d-stride=2-padding=same"."""
    return [pytest.param(partial(fn, **kwargs), shapes,
                         id="-".join([fn.__name__] + [f"{k}={v}" for k, v in kwargs.items()]))
            for fn, kwargs, shapes in FUNCTIONS]


def _inputs(shapes, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _value_and_grads(f, arrays, device):
    """f's value and the gradients of <f, p> for a fixed random p, all read back to the host."""
    leaves = [cr.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = f(*leaves)
    p = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(cr.tensor(p, device=device))
    return out, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("f, shapes", _function_cases())
def test_strict_equals_numpy_values_and_gradients(f, shapes):
    arrays = _inputs(shapes)
    out, grads = _value_and_grads(f, arrays, STRICT)
    want, want_grads = _value_and_grads(f, arrays, "cpu")
    assert out.device.type == STRICT and all(g.device.type == STRICT for g in grads)
    assert out.dtype == want.dtype and out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want.numpy(), **TOL)
    for grad, wanted in zip(grads, want_grads):
        np.testing.assert_allclose(grad.numpy(), wanted.numpy(), **TOL)


def test_ties_go_to_the_first_maximum_on_strict_too():
    x = np.array([[[1.0, 3.0, 3.0, 2.0, 2.0, 0.0]]])
    _, (grad,) = _value_and_grads(partial(cr.max_pool1d, kernel_size=3, stride=1), [x], STRICT)
    _, (want,) = _value_and_grads(partial(cr.max_pool1d, kernel_size=3, stride=1), [x], "cpu")
    np.testing.assert_array_equal(grad.numpy(), want.numpy())


# ---------------------------------------------------------------- every primitive, directly
def _conv_params(stride, padding, dilation, groups) -> dict:
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


# x (2, 4, 9, 8), w (6, 2, 3, 2) -> (2, 6, 5, 8); x (2, 3, 7), w (4, 3, 3) -> (2, 4, 6)
_GEOMETRY2 = _conv_params((2, 1), ((1, 1), (0, 2)), (1, 2), 2)
_GEOMETRY1 = _conv_params((1,), ((2, 1),), (2,), 1)
_C2, _C1 = {**_GEOMETRY2, "output_size": (5, 8)}, {**_GEOMETRY1, "output_size": (6,)}
_POOL = dict(kernel=(3, 2), stride=(2, 1), padding=((1, 2), (0, 0)), dilation=(1, 2),
             output_size=(5, 6))                          # x (2, 3, 9, 8)
_AVG = dict(kernel=(3, 2), stride=(2, 2), padding=((1, 1), (0, 1)), output_size=(5, 4),
            divisor=np.linspace(1.0, 6.0, 20).reshape(5, 4))  # x (2, 3, 9, 8)
_AVG_ADJOINT = {**_AVG, "input_size": (9, 8)}

_CT2, _CT1 = {**_GEOMETRY2, "input_size": (9, 8)}, {**_GEOMETRY1, "input_size": (7,)}
_CW2, _CW1 = {**_GEOMETRY2, "kernel_size": (3, 2)}, {**_GEOMETRY1, "kernel_size": (3,)}

# fmt: off
#: (id, primitive, input shapes, params)
PRIMITIVES = [
    ("conv-2d",           primitives.conv_p,           [(2, 4, 9, 8), (6, 2, 3, 2)], _C2),
    ("conv-1d",           primitives.conv_p,           [(2, 3, 7), (4, 3, 3)],       _C1),
    ("conv_transpose-2d", primitives.conv_transpose_p, [(2, 6, 5, 8), (6, 2, 3, 2)], _CT2),
    ("conv_transpose-1d", primitives.conv_transpose_p, [(2, 4, 6), (4, 3, 3)],       _CT1),
    ("conv_weight-2d",    primitives.conv_weight_p,    [(2, 4, 9, 8), (2, 6, 5, 8)], _CW2),
    ("conv_weight-1d",    primitives.conv_weight_p,    [(2, 3, 7), (2, 4, 6)],       _CW1),
    ("max_pool",          pooling.max_pool_p,          [(2, 3, 9, 8)],               _POOL),
    ("avg_pool",          pooling.avg_pool_p,          [(2, 3, 9, 8)],               _AVG),
    ("avg_pool_adjoint",  pooling.avg_pool_adjoint_p,  [(2, 3, 5, 4)],               _AVG_ADJOINT),
]
# fmt: on


def _bind_both(prim, arrays, params):
    """The primitive on NumPy and on strict (no graph)."""
    with cr.no_grad():
        on_numpy = prim.bind(*[cr.tensor(a) for a in arrays], **params)
        on_strict = prim.bind(*[cr.tensor(a, device=STRICT) for a in arrays], **params)
    return on_numpy, on_strict


def _check_primitive(prim, arrays, params):
    want, got = _bind_both(prim, arrays, params)
    assert got.device.type == STRICT
    np.testing.assert_allclose(got.numpy(), want.numpy(), **TOL)
    for result in (want, got):
        aval = prim.rules["abstract_eval"](*[of(a) for a in arrays], **params)
        assert (tuple(aval.shape), np.dtype(aval.dtype)) == (result.shape, result.dtype)


@pytest.mark.parametrize("prim, shapes, params",
                         [pytest.param(p, s, q, id=i) for i, p, s, q in PRIMITIVES])
def test_every_primitive_on_strict_equals_numpy_and_its_abstract_eval(prim, shapes, params):
    _check_primitive(prim, _inputs(shapes), params)


@pytest.mark.parametrize("prim", [pooling.max_pool_scatter_p, pooling.max_pool_gather_p],
                         ids=["max_pool_scatter", "max_pool_gather"])
def test_the_arg_max_primitives_on_strict_equal_numpy(prim):
    """g (or h) with the input x and the forward's maxima ``best``; ties in x (integer values)."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, (2, 3, 9, 8)).astype(np.float64)
    with cr.no_grad():
        best = pooling.max_pool_p.bind(cr.tensor(x), **_POOL).numpy()
    first = rng.standard_normal(x.shape if prim is pooling.max_pool_gather_p else best.shape)
    _check_primitive(prim, [first, x, best], _POOL)


def test_abstract_eval_gives_numpys_dtype_for_mixed_inputs():
    arrays = [np.ones((1, 2, 5), np.float32), np.ones((3, 2, 2), np.float64)]
    _check_primitive(primitives.conv_p, arrays, {**_conv_params((1,), ((0, 0),), (1,), 1),
                                                 "output_size": (4,)})


# ---------------------------------------------------------------- argument errors
@pytest.mark.parametrize("device", ["cpu", STRICT])
@pytest.mark.parametrize("call", [partial(cr.avg_pool1d, kernel_size=2),
                                  partial(cr.adaptive_avg_pool1d, output_size=2),
                                  partial(cr.adaptive_avg_pool1d, output_size=3)],
                         ids=["avg_pool1d", "adaptive_avg_pool1d", "adaptive_uneven"])
def test_integer_input_to_average_pooling_is_a_clear_type_error(call, device):
    x = cr.tensor(np.arange(8).reshape(1, 2, 4), device=device)
    with pytest.raises(TypeError, match=r"avg_pool1d: x has dtype int64.*floating"):
        call(x)


def test_integer_input_to_avg_pool2d_names_the_function():
    with pytest.raises(TypeError, match=r"^avg_pool2d: x has dtype int32"):
        cr.avg_pool2d(cr.tensor(np.ones((1, 1, 4, 4), np.int32)), 2)


# ---------------------------------------------------------------- scratch state
GEOMETRY = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1, (3, 3), (6, 6))


def _conv_on(device, grad: bool = True):
    x = cr.tensor(np.ones((2, 3, 6, 6)), device=device)
    w = cr.tensor(np.ones((4, 3, 3, 3)), device=device, requires_grad=grad)
    return x, w, cr.conv2d(x, w, padding=1)


def test_numpy_and_strict_do_not_share_scratch():
    numpy_scratch = scratch_of(backends.get("numpy"))
    strict_scratch = scratch_of(backends.get(STRICT))
    assert numpy_scratch is not strict_scratch
    assert numpy_scratch.workspace is not strict_scratch.workspace
    assert numpy_scratch.saved_columns is not strict_scratch.saved_columns
    x, w, out = _conv_on(STRICT)
    assert strict_scratch.saved_columns.find(x.data, GEOMETRY) is not None
    assert numpy_scratch.saved_columns.find(x.data, GEOMETRY) is None
    assert scratch_of(backends.get(STRICT)) is strict_scratch  # the same one at the next call


def test_strict_keeps_columns_only_where_a_graph_may_be_recorded():
    with cr.no_grad():
        x, _, _ = _conv_on(STRICT)
    assert scratch_of(backends.get(STRICT)).saved_columns.find(x.data, GEOMETRY) is None


@pytest.mark.parametrize("backend", ["numpy", STRICT])
def test_two_threads_do_not_share_scratch(backend):
    device = "cpu" if backend == "numpy" else STRICT
    seen, ready = [], threading.Barrier(2)

    def work():
        x, w, out = _conv_on(device)
        ready.wait()  # both threads alive at once: their scratch objects are distinct
        scratch = scratch_of(backends.get(backend))
        seen.append((scratch, scratch.saved_columns.find(x.data, GEOMETRY) is not None))
        ready.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (first, found_first), (second, found_second) = seen
    assert first is not second and found_first and found_second
    assert scratch_of(backends.get(backend)) not in (first, second)  # nor the main thread's

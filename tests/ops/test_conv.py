"""Convolution and pooling against torch.nn.functional on a random grid of configurations.

Outputs and gradients for input, weight and bias; float64 gradcheck including second order for
convolution; 'same' padding at every stride; float32 in, float32 out; clear errors.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.gradcheck import gradgradcheck

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _conv_configs(n_spatial: int, count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = tuple(int(k) for k in rng.integers(1, 4, n_spatial))
        stride = tuple(int(s) for s in rng.integers(1, 4, n_spatial))
        dilation = tuple(int(d) for d in rng.integers(1, 3, n_spatial))
        size = tuple(int(i) for i in rng.integers(4, 9, n_spatial))  # odd and even sizes
        padding = rng.choice(["int", "tuple", "same", "valid"])
        if padding == "same" and stride != (1,) * n_spatial:
            padding = "int"  # PyTorch refuses 'same' with stride > 1 (tested separately below)
        padding = {
            "int": int(rng.integers(0, 3)),
            "tuple": tuple(int(p) for p in rng.integers(0, 3, n_spatial)),
            "same": "same",
            "valid": "valid",
        }[str(padding)]
        batch = int(rng.choice([1, 3]))
        pads = (padding,) * n_spatial if isinstance(padding, int) else padding
        if not isinstance(pads, str) and any(
            i + 2 * p - d * (k - 1) - 1 < 0
            for i, p, d, k in zip(size, pads, dilation, kernel)
        ):
            continue
        if pads == "valid" and any(
            i - d * (k - 1) - 1 < 0 for i, d, k in zip(size, dilation, kernel)
        ):
            continue
        configs.append(dict(shape=(batch, c_in) + size, weight=(c_out, c_in // groups) + kernel,
                            stride=stride, padding=padding, dilation=dilation, groups=groups))
    return configs


def _compare(ours, theirs, arrays, rtol=1e-10, atol=1e-10):
    """Same output, and the same gradients for every input under a random output projection."""
    mine = [cr.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*mine), theirs(*ref)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    projection = np.random.default_rng(0).standard_normal(expected.shape)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.grad.numpy(), r.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("config", _conv_configs(2, 40, seed=0), ids=lambda c: str(c)[:80])
def test_conv2d_matches_torch(config):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    b = rng.standard_normal(config["weight"][0])
    kw = {k: config[k] for k in ("stride", "padding", "dilation", "groups")}
    _compare(lambda x, w, b: cr.conv2d(x, w, b, **kw), lambda x, w, b: F.conv2d(x, w, b, **kw),
             (x, w, b))


@pytest.mark.parametrize("config", _conv_configs(1, 25, seed=1), ids=lambda c: str(c)[:80])
def test_conv1d_matches_torch(config):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    b = rng.standard_normal(config["weight"][0])
    kw = {k: config[k] for k in ("stride", "padding", "dilation", "groups")}
    _compare(lambda x, w, b: cr.conv1d(x, w, b, **kw), lambda x, w, b: F.conv1d(x, w, b, **kw),
             (x, w, b))


def _transpose_configs(count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        groups = int(rng.choice([1, 2]))
        stride = tuple(int(s) for s in rng.integers(1, 4, 2))
        dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
        kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
        padding = tuple(int(p) for p in rng.integers(0, 2, 2))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        size = tuple(int(i) for i in rng.integers(2, 6, 2))
        out = [(i - 1) * s - 2 * p + d * (k - 1) + e + 1
               for i, s, p, d, k, e in zip(size, stride, padding, dilation, kernel, output_padding)]
        if min(out) < 1:
            continue
        c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        configs.append(dict(shape=(int(rng.choice([1, 2])), c_in) + size,
                            weight=(c_in, c_out // groups) + kernel, stride=stride,
                            padding=padding, output_padding=output_padding, dilation=dilation,
                            groups=groups))
    return configs


@pytest.mark.parametrize("config", _transpose_configs(30, seed=3), ids=lambda c: str(c)[:80])
def test_conv_transpose2d_matches_torch(config):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(config["shape"]), rng.standard_normal(config["weight"])
    b = rng.standard_normal(config["weight"][1] * config["groups"])
    kw = {k: config[k] for k in ("stride", "padding", "output_padding", "dilation", "groups")}
    _compare(lambda x, w, b: cr.conv_transpose2d(x, w, b, **kw),
             lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
             (x, w, b))


def _pool_configs(count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
        stride = tuple(int(s) for s in rng.integers(1, 4, 2))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
        size = tuple(int(i) for i in rng.integers(3, 9, 2))
        ceil_mode = bool(rng.integers(0, 2))
        if any(
            i + 2 * p - d * (k - 1) - 1 < 0
            for i, p, d, k in zip(size, padding, dilation, kernel)
        ):
            continue
        configs.append(dict(shape=(int(rng.choice([1, 2])), 2) + size, kernel_size=kernel,
                            stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                            count_include_pad=bool(rng.integers(0, 2))))
    return configs


@pytest.mark.parametrize("config", _pool_configs(40, seed=5), ids=lambda c: str(c)[:80])
def test_max_pool2d_matches_torch(config):
    size = int(np.prod(config["shape"]))
    x = np.random.default_rng(6).permutation(size).reshape(config["shape"]) * 1.0
    kw = {k: config[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}
    _compare(lambda x: cr.max_pool2d(x, **kw), lambda x: F.max_pool2d(x, **kw), (x,))


@pytest.mark.parametrize("config", _pool_configs(40, seed=7), ids=lambda c: str(c)[:80])
def test_avg_pool2d_matches_torch(config):
    x = np.random.default_rng(8).standard_normal(config["shape"])
    kw = {
        k: config[k]
        for k in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
    }
    _compare(lambda x: cr.avg_pool2d(x, **kw), lambda x: F.avg_pool2d(x, **kw), (x,))


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), (2, 1, 1), (3, 3, 0)])
def test_1d_pools_match_torch(kernel, stride, padding):
    x = np.random.default_rng(9).standard_normal((2, 3, 10))
    _compare(lambda x: cr.max_pool1d(x, kernel, stride, padding),
             lambda x: F.max_pool1d(x, kernel, stride, padding), (x,))
    _compare(lambda x: cr.avg_pool1d(x, kernel, stride, padding),
             lambda x: F.avg_pool1d(x, kernel, stride, padding), (x,))


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    x = cr.tensor([[[[1.0, 3.0], [3.0, 3.0]]]], requires_grad=True)
    cr.max_pool2d(x, 2).sum().backward()
    assert x.grad.numpy().ravel().tolist() == [0.0, 1.0, 0.0, 0.0]
    ties = np.round(np.random.default_rng(10).standard_normal((2, 2, 6, 6)))  # many ties
    _compare(lambda x: cr.max_pool2d(x, 3, stride=1), lambda x: F.max_pool2d(x, 3, stride=1),
             (ties,))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 3), (5, 2), (4, None)])
def test_adaptive_avg_pool2d_matches_torch(size):
    x = np.random.default_rng(11).standard_normal((2, 3, 7, 6))
    _compare(lambda x: cr.adaptive_avg_pool2d(x, size), lambda x: F.adaptive_avg_pool2d(x, size),
             (x,))


@pytest.mark.parametrize("stride", [1, 2, 3, 4])
@pytest.mark.parametrize("size, kernel, dilation", [(7, 3, 1), (8, 4, 1), (9, 2, 2), (5, 5, 1)])
def test_same_padding_at_every_stride(size, kernel, stride, dilation):
    """TensorFlow's 'same': output ceil(i / s), total pad split with the odd one on the far side."""
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((1, 2, size, size)), rng.standard_normal((3, 2, kernel, kernel))
    out = cr.conv2d(x, w, stride=stride, padding="same", dilation=dilation)
    assert out.shape[2:] == (-(-size // stride),) * 2
    total = max((-(-size // stride) - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    lo, hi = total // 2, total - total // 2
    expected = F.conv2d(F.pad(torch.tensor(x), (lo, hi, lo, hi)), torch.tensor(w), stride=stride,
                        dilation=dilation)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-12)


@pytest.mark.parametrize("fn, shapes", [
    (lambda x, w: cr.conv2d(x, w, stride=2, padding=1, groups=2), ((1, 4, 5, 4), (2, 2, 3, 2))),
    (lambda x, w: cr.conv2d(x, w, padding="same", dilation=2), ((2, 1, 4, 4), (2, 1, 2, 3))),
    (lambda x, w: cr.conv1d(x, w, stride=2, padding=(1, 2)), ((2, 2, 6), (3, 2, 3))),
    (lambda x, w: cr.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
     ((1, 2, 3, 3), (2, 2, 3, 3))),
])
def test_conv_gradcheck_first_and_second_order(fn, shapes):
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal(s) for s in shapes]
    assert cr.gradcheck(fn, arrays)
    assert gradgradcheck(fn, arrays)


def test_grad_of_grad_through_conv_matches_torch():
    rng = np.random.default_rng(14)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    xc, wc = cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)
    (gx,) = cr.autograd_grad(cr.sum(cr.tanh(cr.conv2d(xc, wc, padding=1))), xc, create_graph=True)
    cr.sum(gx * gx).backward()
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gxt,) = torch.autograd.grad(torch.tanh(F.conv2d(xt, wt, padding=1)).sum(), xt,
                                 create_graph=True)
    (gxt * gxt).sum().backward()
    np.testing.assert_allclose(wc.grad.numpy(), wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_float32_stays_float32_and_unbatched_input_works():
    x = cr.randn(3, 8, 8)
    w = cr.randn(4, 3, 3, 3)
    assert cr.conv2d(x, w, padding=1).shape == (4, 8, 8)
    assert cr.conv2d(x.reshape(1, 3, 8, 8), w).dtype == np.float32
    assert cr.max_pool2d(x, 2).dtype == np.float32 and cr.avg_pool2d(x, 2).shape == (3, 4, 4)
    assert cr.conv_transpose2d(cr.randn(1, 4, 3, 3), w, stride=2).dtype == np.float32


# fmt: off
BAD = [
    (lambda: cr.conv2d(cr.ones(1, 3, 5, 5), cr.ones(4, 2, 3, 3)),
     cr.ShapeError, "input channels"),
    (lambda: cr.conv2d(cr.ones(1, 4, 5, 5), cr.ones(3, 2, 3, 3), groups=2),
     cr.ShapeError, "divisible by groups"),
    (lambda: cr.conv2d(cr.ones(1, 3, 2, 2), cr.ones(4, 3, 3, 3)),
     cr.ShapeError, "conv2d: kernel_size=3"),
    (lambda: cr.conv2d(cr.ones(1, 3, 5, 5), cr.ones(4, 3, 3, 3), padding="half"),
     ValueError, "'valid', 'same', 'full'"),
    (lambda: cr.conv2d(cr.ones(1, 3, 5, 5), cr.ones(4, 3, 3, 3), stride=0),
     ValueError, "stride=0"),
    (lambda: cr.conv2d(cr.ones(5, 5), cr.ones(4, 3, 3, 3)),
     cr.ShapeError, "input must be"),
    (lambda: cr.conv2d(cr.ones(1, 3, 5, 5), cr.ones(4, 3, 3, 3), cr.ones(3)),
     cr.ShapeError, "bias must have shape (4,)"),
    (lambda: cr.max_pool2d(cr.ones(1, 1, 4, 4), 2, padding=2),
     cr.ShapeError, "more than half the pool window"),
    (lambda: cr.max_pool2d(cr.ones(1, 1, 2, 2), 3),
     cr.ShapeError, "larger than the padded input"),
    (lambda: cr.conv_transpose2d(cr.ones(1, 2, 3, 3), cr.ones(2, 2, 3, 3), stride=2,
                                 output_padding=2),
     cr.ShapeError, "output_padding"),
]
# fmt: on


@pytest.mark.parametrize("call, error, phrase", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_raise_clear_errors(call, error, phrase):
    with pytest.raises(error) as info:
        call()
    assert phrase in str(info.value)


def test_saved_columns_are_found_recycled_freed_and_bounded():
    """The im2col store: found only for the very array; once it dies its matrix serves the next
    forward with the same weight, and is freed when the weight dies too; capped in bytes."""
    from chainrule.ops.conv import _SavedColumns

    store = _SavedColumns(max_bytes=3 * 800)
    a, b, w, v = np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(1), np.zeros(1)
    cols_a = store.new(a, w, "g", (10, 20), np.float32)  # 800 bytes
    store.new(b, v, "g", (5, 4), np.float64)  # another weight and shape
    assert store.find(a, "g") is cols_a and store.find(a, "other") is None
    assert store.find(a.copy(), "g") is None
    assert store.new(a, w, "g", (10, 20), np.float32) is cols_a and len(store.entries) == 2
    del a  # the matrix now waits for w's next forward
    c, d = np.ones(1), np.ones(1)
    assert store.find(c, "g") is None
    assert store.new(c, v, "g", (10, 20), np.float32) is not cols_a  # another weight: fresh
    assert store.new(d, w, "g", (10, 20), np.float32) is cols_a and store.find(d, "g") is cols_a
    assert len(store.entries) == 3  # b, c, d
    del d, w, cols_a  # input and weight gone: freed at once, before any further call
    assert store.nbytes() == 5 * 4 * 8 + 800  # b's and c's matrices
    kept = [np.zeros(1) for _ in range(4)]
    for array in kept:  # past the cap the oldest entries go
        store.new(array, v, "g", (10, 20), np.float32)
    assert store.nbytes() <= 3 * 800 and store.find(kept[-1], "g") is not None
    assert store.find(b, "g") is None and store.find(kept[0], "g") is None


def test_changing_the_input_in_place_after_the_forward_refuses_backward():
    """dW needs x as it was at the forward: an in-place change of x raises, as in PyTorch (before
    version counters, conv's saved columns gave the old x's dW while Linear used the new x)."""
    rng = np.random.default_rng(3)
    x = cr.tensor(rng.normal(size=(2, 3, 6, 6)))
    w = cr.tensor(rng.normal(size=(4, 3, 3, 3)), requires_grad=True)
    y = cr.conv2d(x, w, padding=1)
    cr.ops.inplace.add_(x, 1.0)
    with pytest.raises(
        cr.InplaceModifiedError, match="convBackward.*version 1; expected version 0"
    ):
        (y * y).sum().backward()


@pytest.fixture
def numpy_kernels():
    """The NumPy (im2col) kernels, whose saved columns these tests inspect, even where the
    compiled kernels of the [fast] extra would run (chainrule.ops.conv.dispatch)."""
    from chainrule.ops.conv import dispatch

    with dispatch.prefer("numpy"):
        yield


def test_forward_under_no_grad_keeps_no_columns(numpy_kernels):
    from chainrule.ops import conv

    x = cr.tensor(np.ones((2, 3, 6, 6), "float32"))
    w = cr.tensor(np.ones((4, 3, 3, 3), "float32"), requires_grad=True)
    geometry = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1, (3, 3), (6, 6))
    with cr.no_grad():
        cr.conv2d(x, w, padding=1)
    assert conv._caches.saved_columns.find(x.data, geometry) is None
    cr.conv2d(x, w, padding=1)
    assert conv._caches.saved_columns.find(x.data, geometry) is not None


def test_saved_columns_serve_the_next_step_and_go_with_the_tensors(numpy_kernels):
    """Training steps of a big conv reuse one matrix; dropping the tensors frees it at once."""
    import gc

    from chainrule.ops import conv

    rng = np.random.default_rng(4)
    gc.collect()  # columns of earlier tests' dead cycles must go now, not in the middle of the loop
    before = conv._held_nbytes()[1]
    x = cr.tensor(rng.standard_normal((16, 16, 32, 32)).astype(np.float32), requires_grad=True)
    w = cr.tensor(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), requires_grad=True)
    matrix = 16 * 9 * 16 * 32 * 32 * 4  # 9.4 MB of columns
    geometry = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1, (3, 3), (32, 32))
    first = None
    for _ in range(3):  # the conv's input is an activation: a new array each step, dead after it
        y = cr.relu(x)
        out = cr.conv2d(y, w, padding=1)
        cols = conv._caches.saved_columns.find(y.data, geometry)
        first = cols if first is None else first
        assert cols is first and conv._held_nbytes()[1] == before + matrix
        del y, cols
        out.sum().backward()
    del x, w, out, first
    gc.collect()
    assert conv._held_nbytes()[1] <= before  # (near) zero: before is what earlier tests left alive


def _results(op_args):
    """Outputs and first and second-order gradients (create_graph) of each op, as arrays."""
    arrays = []
    for op, shapes in op_args:
        rng = np.random.default_rng(len(arrays))
        inputs = [cr.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
        out = op(*inputs)
        grads = cr.autograd_grad(cr.sum(out * out), inputs, create_graph=True)
        second = cr.autograd_grad(sum(cr.sum(g * g) for g in grads), inputs, allow_unused=True)
        arrays += [out.data] + [g.data for g in grads] + [g.data for g in second if g is not None]
    return arrays


OPS_USING_SCRATCH = [  # every path through the workspace: padding, stride 1 and 2, pooling
    (lambda x, w: cr.conv2d(x, w, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3)]),
    (lambda x, w: cr.conv2d(x, w, stride=2, padding=(1, 0)), [(2, 3, 7, 7), (4, 3, 3, 3)]),
    (lambda x, w: cr.conv_transpose2d(x, w, padding=1), [(2, 4, 5, 5), (4, 3, 3, 3)]),
    (lambda x, w: cr.conv_transpose2d(x, w, stride=2), [(2, 4, 5, 5), (4, 3, 3, 3)]),
    (lambda x: cr.max_pool2d(x, 3, stride=2, padding=1), [(2, 3, 6, 6)]),
    (lambda x: cr.avg_pool2d(x, 3, stride=1, padding=1), [(2, 3, 6, 6)]),
]


@pytest.mark.parametrize("kernels", ["compiled", "numpy"])
def test_returned_arrays_are_never_overwritten_by_later_calls(kernels):
    """What an op returns (outputs and gradients) owns its memory: no view into scratch buffers
    (both host kernels: the compiled ones of the [fast] extra where installed, and NumPy's)."""
    from chainrule.ops.conv import dispatch

    with dispatch.prefer(kernels):
        _check_returned_arrays_own_their_memory()


def _check_returned_arrays_own_their_memory():
    first = _results(OPS_USING_SCRATCH)
    kept = [a.copy() for a in first]
    later = _results(OPS_USING_SCRATCH[::-1]) + _results(OPS_USING_SCRATCH)  # same shapes again
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)
    assert not any(np.shares_memory(a, b) for a in first for b in later)

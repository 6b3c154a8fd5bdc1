"""DLPack and NumPy's array protocols: zero-copy exchange with NumPy and torch (CuPy on a GPU),
``__array__``'s copy rule (NumPy 2), and ``ndarray (op) Tensor`` giving a Tensor whose dtype is
torch's, while NumPy's ufuncs refuse Tensors (``__array_ufunc__ = None``)."""

import operator

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import inplace

RNG = np.random.default_rng(0)
FLOATS = [np.float32, np.float64]
numpy_2 = pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                             reason="np.asarray(copy=) is NumPy 2's")


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


class _Producer:
    """A DLPack producer that only says where its memory is (to test the device mapping)."""

    def __init__(self, device_type: int) -> None:
        self.device_type = device_type

    def __dlpack__(self, **kwargs):
        raise AssertionError("the device is checked before anything is exported")

    def __dlpack_device__(self):
        return self.device_type, 0


# ------------------------------------------------------------------------------ __dlpack__

@pytest.mark.parametrize("dtype", FLOATS)
def test_torch_and_numpy_read_the_tensors_memory_in_place(torch, dtype):
    t = cr.tensor(np.arange(6, dtype=dtype).reshape(2, 3))
    theirs, array = torch.from_dlpack(t), np.from_dlpack(t)
    assert theirs.dtype == getattr(torch, np.dtype(dtype).name) and array.dtype == dtype
    assert np.shares_memory(array, t.data)
    theirs[0, 0] = 10.0  # written through torch: seen by the tensor and the NumPy alias
    assert t.numpy()[0, 0] == 10.0 and array[0, 0] == 10.0
    inplace.fill_(t, -1.0)  # and back
    assert theirs.tolist() == [[-1.0] * 3] * 2 and (array == -1).all()


def test_views_export_their_strides(torch):
    base = np.arange(12.0).reshape(3, 4)
    t = cr.tensor(base)
    for view, expected in [(t.T, base.T), (t[:, ::2], base[:, ::2]), (t[1], base[1])]:
        np.testing.assert_array_equal(torch.from_dlpack(view).numpy(), expected)
        np.testing.assert_array_equal(np.from_dlpack(view), expected)


def test_dlpack_device_is_the_hosts():
    assert cr.tensor([1.0]).__dlpack_device__() == np.zeros(1).__dlpack_device__() == (1, 0)


def test_a_tensor_that_requires_grad_is_not_exported(torch):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    for consume in (torch.from_dlpack, np.from_dlpack, cr.from_dlpack):
        for tensor in (x, x * 2):  # a leaf and a result on the graph
            with pytest.raises(BufferError, match=r"requires? grad.*detach"):
                consume(tensor)
    alias = torch.from_dlpack(x.detach())  # the same memory, without the graph
    alias[1] = 5.0
    assert x.numpy().tolist() == [1.0, 5.0]


# ------------------------------------------------------------------------------ from_dlpack

def test_from_dlpack_shares_a_torch_tensors_memory(torch):
    theirs = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    ours = cr.from_dlpack(theirs)
    assert isinstance(ours, cr.Tensor) and ours.dtype == np.float32 and ours.shape == (2, 3)
    assert ours.device == "cpu" and ours.is_leaf and not ours.requires_grad
    theirs[0, 0] = 7.0
    assert ours.numpy()[0, 0] == 7.0
    inplace.add_(ours, 1.0)
    assert theirs.tolist() == [[8.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    w = ours.requires_grad_()  # a leaf like any other: gradients flow to it
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 2 * theirs.numpy())


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "int8", "int32", "int64",
                                  "uint8", "bool", "complex64"])
def test_from_dlpack_keeps_torchs_dtype_and_values(torch, name):
    theirs = (torch.arange(-2, 4) % 3).to(getattr(torch, name))
    ours = cr.from_dlpack(theirs)
    assert ours.dtype == np.dtype(name)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_from_dlpack_of_numpy_and_of_chainrule_shares_memory():
    array = np.arange(4.0)
    assert np.shares_memory(cr.from_dlpack(array).data, array)
    t = cr.tensor([1.0, 2.0])
    alias = cr.from_dlpack(t)
    assert np.shares_memory(alias.data, t.data)
    inplace.add_(alias, 1.0)  # one memory, one version counter, as t.detach()
    assert t.version == alias.version == 1 and t.numpy().tolist() == [2.0, 3.0]


def test_from_dlpack_copy_and_device():
    array = np.arange(3.0)
    assert np.shares_memory(cr.from_dlpack(array, copy=False).data, array)
    assert np.shares_memory(cr.from_dlpack(array, device="cpu").data, array)
    copied = cr.from_dlpack(array, copy=True)
    assert not np.shares_memory(copied.data, array)
    np.testing.assert_array_equal(copied.numpy(), array)
    pytest.importorskip("array_api_strict")
    moved = cr.from_dlpack(array, device="array_api_strict")
    assert moved.backend == "array_api_strict" and moved.numpy().tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="copy=False.*needs a copy"):
        cr.from_dlpack(array, device="array_api_strict", copy=False)


def test_from_dlpack_refuses_with_a_clear_error(torch):
    with pytest.raises(BufferError, match="torch.Tensor requires grad.*x.detach()"):
        cr.from_dlpack(torch.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="dtype bfloat16.*valid dtypes: bool"):
        cr.from_dlpack(torch.ones(2, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="must have __dlpack__.*got builtins.list"):
        cr.from_dlpack([1.0, 2.0])
    with pytest.raises(BufferError, match="ROCm device.*CPU memory.*CUDA memory"):
        cr.from_dlpack(_Producer(10))


def test_cuda_memory_goes_to_the_cupy_backend():
    try:
        import cupy  # noqa: F401
    except ImportError:  # the CUDA producer is recognised, and the missing package named
        with pytest.raises(ImportError, match="cupy backend needs cupy"):
            cr.from_dlpack(_Producer(2))
        return
    if "cupy" not in cr.backends.available():
        pytest.skip("CuPy without a working GPU")
    t = cr.tensor(np.arange(4.0), device="cuda")
    theirs = cupy.from_dlpack(t)
    assert theirs.data.ptr == t.data.data.ptr  # one GPU buffer
    back = cr.from_dlpack(theirs)
    assert back.device == "cuda:0" and back.data.data.ptr == t.data.data.ptr
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert torch.from_dlpack(t).data_ptr() == t.data.data.ptr
        assert cr.from_dlpack(torch.ones(3, device="cuda")).device == "cuda:0"


# ------------------------------------------------------------------------------ __array__

@numpy_2
def test_asarray_follows_numpy_2s_copy_rule():
    t = cr.tensor([1.0, 2.0])
    assert np.asarray(t) is t.data and np.asarray(t, copy=False) is t.data
    assert not np.shares_memory(np.array(t), t.data)  # np.array copies by default
    assert not np.shares_memory(t.__array__(copy=True), t.data)
    wide = np.asarray(t, dtype=np.float64)
    assert wide.dtype == np.float64 and wide.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="to float64 needs a copy"):
        np.asarray(t, dtype=np.float64, copy=False)
    assert np.asarray(cr.tensor([3.0], requires_grad=True)).tolist() == [3.0]  # the values


@numpy_2
def test_asarray_copy_false_from_another_backend_raises():
    pytest.importorskip("array_api_strict")
    t = cr.tensor([1.0, 2.0], device="array_api_strict")
    assert np.asarray(t).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="to host memory needs a copy"):
        np.asarray(t, copy=False)


# ------------------------------------------------------------------------------ ndarray (op) Tensor

OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
             operator.matmul, operator.eq, operator.ne, operator.lt, operator.le, operator.gt,
             operator.ge]


@pytest.mark.parametrize("op", OPERATORS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("left, right", [(a, b) for a in FLOATS for b in FLOATS],
                         ids=lambda d: np.dtype(d).name)
def test_ndarray_op_tensor_is_a_tensor_with_torchs_dtype(torch, op, left, right):
    a = RNG.uniform(0.5, 2.0, (3, 3)).astype(left)
    b = RNG.uniform(0.5, 2.0, (3, 3)).astype(right)
    a[0, 0] = b[0, 0]  # one tie for the comparisons
    result = op(a, cr.tensor(b))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    common = torch.promote_types(ta.dtype, tb.dtype)  # torch's matmul takes one dtype only
    expected = op(ta.to(common), tb.to(common))
    assert isinstance(result, cr.Tensor)
    assert result.dtype == np.dtype(str(expected.dtype).removeprefix("torch."))
    np.testing.assert_allclose(result.numpy(), expected.numpy(), rtol=1e-6)


def test_ndarray_op_tensor_stays_on_the_graph(torch):
    a, b = RNG.standard_normal((2, 3, 3))
    x = cr.tensor(b, requires_grad=True)
    (a * x + a @ x - a / (1 + x * x)).sum().backward()
    tx = torch.tensor(b, requires_grad=True)
    ta = torch.from_numpy(a)
    (ta * tx + ta @ tx - ta / (1 + tx * tx)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_numpy_scalars_on_the_left_give_tensors():
    t = cr.tensor([1.0, 2.0])  # float32
    assert (np.float32(2) * t).dtype == np.float32
    for scalar in (np.float64(2), np.int64(3), np.float32(0.5)):
        result = scalar + t
        assert isinstance(result, cr.Tensor)
        assert result.dtype == (cr.tensor(scalar) + t).dtype  # chainrule's promotion


def test_ufuncs_refuse_tensors_and_converting_functions_accept_them():
    a, t = np.ones(3), cr.tensor([1.0, 2.0, 3.0])
    for call in (lambda: np.add(a, t), lambda: np.exp(t), lambda: np.isnan(t),
                 lambda: np.maximum(t, 0)):
        with pytest.raises(TypeError, match="does not support ufuncs"):
            call()
    # functions that convert their arguments first read the values through __array__
    assert np.allclose(t, [1, 2, 3]) and np.isclose(t, a).tolist() == [True, False, False]
    np.testing.assert_allclose(t, [1, 2, 3])
    np.testing.assert_array_equal(t, np.array([1, 2, 3], np.float32))
    assert np.concatenate([t, a]).tolist() == [1, 2, 3, 1, 1, 1]


@pytest.mark.parametrize("op", [operator.iadd, operator.isub, operator.imul, operator.itruediv],
                         ids=lambda op: op.__name__)
def test_inplace_ndarray_op_tensor_raises_and_leaves_the_array(op):
    a, t = np.ones(3), cr.tensor([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="does not support ufuncs"):
        op(a, t)  # a += t: NumPy keeps its target's type, so it cannot take a Tensor
    assert type(a) is np.ndarray and a.tolist() == [1.0, 1.0, 1.0]
    assert type(op(a, t.numpy())) is np.ndarray  # the values: spelled out
    assert isinstance(operator.add(a, t), cr.Tensor)  # a = a + t: a Tensor

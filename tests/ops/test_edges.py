"""Exact at the edges: values, gradients, dtypes and errors where the easy cases end.

Each section is a table checked against torch (or NumPy where torch has no such call): pow at
0 to every order, boolean masks, dtype promotion, axis arguments on 0-d tensors, reductions over
empty axes, gradcheck's failure message and binary_cross_entropy's argument checks.
"""

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.errors import ShapeError

torch = pytest.importorskip("torch")

F64 = np.float64


def _params(table) -> list:
    """pytest params from (label, *values) rows."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


def _np_dtype(t) -> np.dtype:
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _derivatives(f, x, order, lib):
    """[f(x), f'(x), ..., f^(order)(x)] elementwise (each derivative of the sum of the last).

    0 ** y is inf for y < 0, so NumPy's divide-by-zero warning is expected; an invalid value
    (nan made of 0 * inf) is not, and fails the test.
    """
    with np.errstate(divide="ignore"):
        values = [f(x)]
        for _ in range(order):
            values.append(_next_derivative(values[-1], x, lib))
    return [v.detach().numpy() for v in values]


def _next_derivative(last, x, lib):
    if not last.requires_grad:  # a constant derivative (torch's rule for x ** 0 returns zeros)
        return lib.zeros_like(x)
    if lib is torch:
        (g,) = torch.autograd.grad(last.sum(), x, create_graph=True)
    else:
        (g,) = cr.autograd_grad(last.sum(), x, create_graph=True)
    return g


@pytest.fixture(autouse=True)
def no_numpy_warnings():
    """No RuntimeWarning (divide by zero, mean of empty slice ...) may escape an edge case."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ------------------------------------------------------------------ pow at zero
POINTS = np.array([0.0, 0.5, 2.0])
EXPONENTS = [0.0, 1.0, 2.0, 3.0, 0.5, -1.0, 2.5]


@pytest.mark.parametrize("tensor_exponent", [False, True], ids=["scalar", "tensor"])
@pytest.mark.parametrize("y", EXPONENTS)
def test_pow_derivatives_in_x_to_third_order_match_torch(y, tensor_exponent):
    """d^k/dx^k x**y at x = 0 (0 for x**0 at every order), as torch with a Python exponent.

    torch with a *tensor* exponent gives nan from the second order on at x = 0 (0 * inf in its
    rule): chainrule gives the exact value for both forms.
    """
    exponent = cr.tensor(y, dtype=F64) if tensor_exponent else y
    ours = _derivatives(lambda x: x ** exponent, cr.tensor(POINTS, requires_grad=True), 3, cr)
    theirs = _derivatives(lambda x: x ** y, torch.tensor(POINTS, requires_grad=True), 3, torch)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"order {k}")


ZERO_BASE_EXPONENTS = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])


def test_pow_exponent_gradient_of_zero_base_matches_torch():
    """d/dy 0**y: -inf for y < 0, 0 for y >= 0 (torch's values); d/dx there as torch too."""
    def first(lib, make):
        x = make(np.zeros_like(ZERO_BASE_EXPONENTS))
        y = make(ZERO_BASE_EXPONENTS)
        with np.errstate(divide="ignore"):  # 0 ** -2 = inf; nan (invalid) would fail the test
            return [g.detach().numpy() for g in lib_grad(lib, (x ** y).sum(), (x, y))]

    def lib_grad(lib, out, wrt):
        return (torch.autograd.grad if lib is torch else cr.autograd_grad)(out, wrt)

    ours = first(cr, lambda a: cr.tensor(a, requires_grad=True))
    theirs = first(torch, lambda a: torch.tensor(a, requires_grad=True))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    assert ours[1].tolist() == [-np.inf] * 3 + [0.0] * 4


def test_pow_higher_exponent_derivatives_of_zero_base():
    """d^k/dy^k 0**y: (+-)inf for y < 0 as torch; 0 for y >= 0 (torch: nan from order 2)."""
    base = cr.tensor(np.zeros(7))
    y = cr.tensor(ZERO_BASE_EXPONENTS, requires_grad=True)
    ours = _derivatives(lambda y: base ** y, y, 3, cr)
    tbase = torch.zeros(7, dtype=torch.float64)
    ty = torch.tensor(ZERO_BASE_EXPONENTS, requires_grad=True)
    theirs = _derivatives(lambda y: tbase ** y, ty, 3, torch)
    negative = ZERO_BASE_EXPONENTS < 0
    for k, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_array_equal(a[negative], b[negative], err_msg=f"order {k}")
        if k:
            assert a[~negative].tolist() == [0.0] * 4, f"order {k}"


def test_pow_mixed_second_derivative_is_exact_and_symmetric():
    """d2/dxdy x^y = x^(y-1) (1 + y log x), at y = 0 too (torch's mask gives 0 at x = 0.5,
    y = 0, where the value is 2); at x = y = 0 both orders give 0 (the Hessian stays symmetric).
    """
    xs, ys = np.array([0.5, 2.0, 0.5, 3.0, 0.0]), np.array([0.0, 0.0, 1.5, -2.0, 0.0])
    x, y = cr.tensor(xs, requires_grad=True), cr.tensor(ys, requires_grad=True)
    gx, gy = cr.autograd_grad((x ** y).sum(), (x, y), create_graph=True)
    (dy_dx,) = cr.autograd_grad(gx.sum(), y, retain_graph=True)
    (dx_dy,) = cr.autograd_grad(gy.sum(), x)
    expected = xs[:4] ** (ys[:4] - 1) * (1 + ys[:4] * np.log(xs[:4]))
    for mixed in (dy_dx.numpy(), dx_dy.numpy()):
        np.testing.assert_allclose(mixed[:4], expected, rtol=1e-14)
        assert mixed[4] == 0.0


# ------------------------------------------------------------------ boolean masks
X32 = np.arange(6.0).reshape(3, 2)

# (label, index): the value and the gradient (a scatter-add) must be NumPy's
MASK_INDEXES = [
    ("empty list", []),
    ("0-d True", np.array(True)),
    ("0-d False", np.array(False)),
    ("Python True", True),
    ("0-d True then int", (np.array(True), 0)),
    ("slice then 0-d True", (slice(None), np.array(True))),
    ("1-d mask", np.array([True, False, True])),
    ("list of bools", [False, True, True]),
    ("mask after ellipsis", (Ellipsis, np.array([False, True]))),
    ("2-d mask", np.array([[True, False], [False, True], [True, True]])),
    ("all-False mask", np.zeros(3, bool)),
    ("mask and int array", (np.array([True, False, True]), np.array([1, 1]))),
]


@pytest.mark.parametrize("index", _params(MASK_INDEXES))
def test_mask_values_and_gradients_match_numpy(index):
    x = cr.tensor(X32, requires_grad=True)
    out = x[index]
    expected = X32[index]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)
    weights = np.arange(1.0, expected.size + 1).reshape(expected.shape)
    cr.sum(out * weights).backward()
    want = np.zeros_like(X32)
    np.add.at(want, index, weights)
    np.testing.assert_array_equal(x.grad.numpy(), want)


BAD_MASKS = [
    ("too short", np.array([True, False])),
    ("too long", np.array([True, False, True, True])),
    ("second axis", (slice(None), np.array([True, False, True]))),
    ("2-d wrong shape", np.ones((2, 2), bool)),
    ("list too short", [True, False]),
]


@pytest.mark.parametrize("index", _params(BAD_MASKS))
def test_mask_of_wrong_length_raises_index_error(index):
    with pytest.raises(IndexError):
        X32[index]
    with pytest.raises(IndexError, match="shape \\(3, 2\\)"):
        cr.tensor(X32)[index]


# ------------------------------------------------------------------ dtype promotion
INT = np.array([1, 2, 3])
BOOL = np.array([True, False, True])


def ci():
    return cr.tensor(INT)


def ti():
    return torch.tensor(INT)


# ops that produce floats: integer and bool inputs promote to float32 (PyTorch's default dtype)
FLOAT_UNARY = {
    "exp": cr.exp, "log": cr.log, "log1p": cr.log1p, "expm1": cr.expm1, "sqrt": cr.sqrt,
    "sin": cr.sin, "cos": cr.cos, "tanh": cr.tanh, "sigmoid": cr.sigmoid, "softplus": cr.softplus,
    "log_sigmoid": cr.log_sigmoid, "softmax": cr.softmax, "log_softmax": cr.log_softmax,
    "logsumexp": cr.logsumexp, "mean": cr.mean, "var": cr.var, "pow_half": lambda x: x ** 0.5,
    "half_pow": lambda x: 2.5 ** x, "div_int": lambda x: x / 2, "rdiv_int": lambda x: 2 / x,
    "mul_float": lambda x: x * 1.5, "add_float": lambda x: x + 0.5, "sub_float": lambda x: 0.5 - x,
    "maximum_float": lambda x: cr.maximum(x, 1.5), "minimum_float": lambda x: cr.minimum(x, 1.5),
    "where_float": lambda x: cr.where(x > 1, x, 0.5), "clip_float": lambda x: cr.clip(x, 0.5, 2.5),
    "matmul_float": lambda x: x @ cr.ones(3),
    "einsum_float": lambda x: cr.einsum("i,i->", x, cr.ones(3)),
    "mse_loss": lambda x: cr.mse_loss(x, cr.ones(3) * 0.5),
    "bce_with_logits": lambda x: cr.binary_cross_entropy_with_logits(x, cr.ones(3) * 0.5),
    "cross_entropy": lambda x: cr.cross_entropy(cr.reshape(x, (1, 3)), [1]),
}


@pytest.mark.parametrize("data", [INT, BOOL], ids=["int64", "bool"])
@pytest.mark.parametrize("name", list(FLOAT_UNARY))
def test_integer_input_to_a_floating_op_gives_float32(name, data):
    with np.errstate(divide="ignore"):  # log(0), 2 / 0 of the bool case: values, not warnings
        out = FLOAT_UNARY[name](cr.tensor(data))
        expected = FLOAT_UNARY[name](cr.tensor(data.astype(np.float32)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


# (label, chainrule call, torch call): the result dtype must be torch's
MIXED = [
    ("int / int", lambda: ci() / ci(), lambda: ti() / ti()),
    ("int + f32", lambda: cr.tensor(INT) + cr.ones(3), lambda: torch.tensor(INT) + torch.ones(3)),
    ("int + f64", lambda: cr.tensor(INT) + cr.ones(3, dtype=F64),
     lambda: torch.tensor(INT) + torch.ones(3, dtype=torch.float64)),
    ("f16 * int", lambda: cr.ones(3, dtype=np.float16) * cr.tensor(INT),
     lambda: torch.ones(3, dtype=torch.float16) * torch.tensor(INT)),
    ("int ** 2", lambda: cr.tensor(INT) ** 2, lambda: torch.tensor(INT) ** 2),
    ("int + int", lambda: cr.tensor(INT) + 1, lambda: torch.tensor(INT) + 1),
    ("bool + int", lambda: cr.tensor(BOOL) + ci(), lambda: torch.tensor(BOOL) + ti()),
    ("maximum(int, f32)", lambda: cr.maximum(cr.tensor(INT), cr.ones(3)),
     lambda: torch.maximum(torch.tensor(INT), torch.ones(3))),
    ("where(c, int, f64)", lambda: cr.where(BOOL, ci(), cr.ones(3, dtype=F64)),
     lambda: torch.where(torch.tensor(BOOL), ti(), torch.ones(3, dtype=torch.float64))),
    ("clip(int, 0, 2)", lambda: cr.clip(ci(), 0, 2), lambda: torch.clamp(ti(), 0, 2)),
    ("cat(int, f32)", lambda: cr.concatenate([cr.tensor(INT), cr.ones(2)]),
     lambda: torch.cat([torch.tensor(INT), torch.ones(2)])),
    ("sum int", lambda: cr.sum(cr.tensor(INT)), lambda: torch.tensor(INT).sum()),
    ("max int", lambda: cr.max(cr.tensor(INT)), lambda: torch.tensor(INT).amax()),
    ("sigmoid f16", lambda: cr.sigmoid(cr.ones(3, dtype=np.float16)),
     lambda: torch.sigmoid(torch.ones(3, dtype=torch.float16))),
    ("softplus f16", lambda: cr.softplus(cr.ones(3, dtype=np.float16)),
     lambda: torch.nn.functional.softplus(torch.ones(3, dtype=torch.float16))),
    ("tanh f16", lambda: cr.tanh(cr.ones(3, dtype=np.float16)),
     lambda: torch.tanh(torch.ones(3, dtype=torch.float16))),
    ("softmax f16", lambda: cr.softmax(cr.ones(3, dtype=np.float16)),
     lambda: torch.softmax(torch.ones(3, dtype=torch.float16), 0)),
]


@pytest.mark.parametrize("ours, theirs", _params(MIXED))
def test_result_dtype_matches_torch(ours, theirs):
    assert ours().dtype == _np_dtype(theirs())


def test_float16_sigmoid_values_and_gradient():
    x = cr.tensor(np.array([-2.0, 0.0, 3.0], np.float16), requires_grad=True)
    out = cr.sigmoid(x)
    out.sum().backward()
    t = torch.tensor(np.array([-2.0, 0.0, 3.0], np.float16), requires_grad=True)
    torch.sigmoid(t).sum().backward()
    assert out.dtype == x.grad.dtype == np.float16
    np.testing.assert_allclose(out.numpy(), torch.sigmoid(t).detach().numpy(), rtol=1e-3)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-2)


# cr.tensor's dtype for nested data: Python floats are float32, NumPy leaves keep their dtype
TENSOR_DATA = [
    ("list of float64 arrays", lambda: [np.array([1.0]), np.array([2.0])]),
    ("np.float64 and a float", lambda: [np.float64(1.0), 2.0]),
    ("np.float64 scalars", lambda: [np.float64(1.0), np.float64(2.0)]),
    ("np.int32 and a float", lambda: [np.int32(1), 2.5]),
    ("list of int32 arrays", lambda: [np.array([1], dtype=np.int32)]),
    ("np.float16 and a float", lambda: [np.float16(1), 2.5]),
    ("float32 and float64 scalars", lambda: [np.float32(1), np.float64(2)]),
    ("np.int32 and an int", lambda: [np.int32(1), 2]),
    ("bool and int", lambda: [True, 2]),
    ("np.bool_ and a float", lambda: [np.bool_(True), 2.0]),
    ("nested floats", lambda: [[1.0, 2.0], [3.0, 4.5]]),
    ("float64 tensors", lambda: "tensors"),
    ("float64 array in a tuple", lambda: (np.zeros(2), np.ones(2))),
    ("-2**63", lambda: [-2 ** 63]),
]


@pytest.mark.parametrize("make", _params(TENSOR_DATA))
def test_tensor_dtype_of_nested_data_matches_torch(make):
    data = make()
    if data == "tensors":
        ours = cr.tensor([cr.tensor(1.0, dtype=F64), cr.tensor(2.0, dtype=F64)])
        theirs = torch.tensor([torch.tensor(v, dtype=torch.float64) for v in (1.0, 2.0)])
    else:
        ours = cr.tensor(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: "a list of ndarrays is slow"
            theirs = torch.tensor(data)
    assert ours.dtype == _np_dtype(theirs)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("data", [2 ** 63, [2 ** 63], [1, 2 ** 64], -2 ** 63 - 1, [[1], [2 ** 70]]])
def test_tensor_of_an_int_beyond_int64_raises_overflow_error(data):
    with pytest.raises((ValueError, RuntimeError)):
        torch.tensor(data)
    with pytest.raises(OverflowError, match="int64"):
        cr.tensor(data)


# ------------------------------------------------------------------ axes on 0-d tensors
S = 3.0

# (label, chainrule call on a 0-d tensor, torch call on one): values and gradients agree
ZERO_D = [
    ("sum 0", lambda x: cr.sum(x, 0), lambda x: x.sum(0)),
    ("sum -1 keepdims", lambda x: cr.sum(x, -1, keepdims=True), lambda x: x.sum(-1, keepdim=True)),
    ("sum (0,)", lambda x: cr.sum(x, (0,)), lambda x: x.sum((0,))),
    ("mean -1", lambda x: cr.mean(x, -1), lambda x: x.mean(-1)),
    ("var 0", lambda x: cr.var(x, 0), lambda x: x.var(0, unbiased=False)),
    ("max 0", lambda x: cr.max(x, 0), lambda x: x.amax(0)),
    ("min -1 keepdims", lambda x: cr.min(x, -1, keepdims=True), lambda x: x.amin(-1, keepdim=True)),
    ("logsumexp 0", lambda x: cr.logsumexp(x, 0), lambda x: torch.logsumexp(x, 0)),
    ("logsumexp -1 keepdims", lambda x: cr.logsumexp(x, -1, keepdims=True),
     lambda x: torch.logsumexp(x, -1, keepdim=True)),
    ("softmax 0", lambda x: cr.softmax(x, 0) * x, lambda x: torch.softmax(x, 0) * x),
    ("softmax -1", lambda x: cr.softmax(x) * x, lambda x: torch.softmax(x, -1) * x),
    ("log_softmax -1", lambda x: cr.log_softmax(x, -1) + x, lambda x: torch.log_softmax(x, -1) + x),
    ("squeeze 0", lambda x: cr.squeeze(x, 0), lambda x: x.squeeze(0)),
    ("squeeze -1", lambda x: cr.squeeze(x, -1), lambda x: x.squeeze(-1)),
    ("squeeze", lambda x: cr.squeeze(x), lambda x: x.squeeze()),
    ("expand_dims 0", lambda x: cr.expand_dims(x, 0), lambda x: x.unsqueeze(0)),
    ("expand_dims -1", lambda x: cr.expand_dims(x, -1), lambda x: x.unsqueeze(-1)),
    ("stack 0", lambda x: cr.stack([x, x * 2], 0), lambda x: torch.stack([x, x * 2], 0)),
    ("stack -1", lambda x: cr.stack([x, x * 2], -1), lambda x: torch.stack([x, x * 2], -1)),
    ("flatten", lambda x: cr.flatten(x), lambda x: x.flatten()),
    ("flatten -1 0", lambda x: cr.flatten(x, -1, 0), lambda x: x.flatten(-1, 0)),
    ("swapaxes 0 -1", lambda x: cr.swapaxes(x, 0, -1), lambda x: x.transpose(0, -1)),
    ("transpose", lambda x: cr.transpose(x), lambda x: x),
    ("maxout 1 -1", lambda x: cr.maxout(x, 1, -1), lambda x: x),
]


@pytest.mark.parametrize("ours, theirs", _params(ZERO_D))
def test_axis_0_and_minus_1_act_on_a_0d_tensor_as_torch(ours, theirs):
    x = cr.tensor(S, dtype=F64, requires_grad=True)
    t = torch.tensor(S, dtype=torch.float64, requires_grad=True)
    out, expected = ours(x), theirs(t)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-15)
    cr.sum(out * 1.5).backward()
    (expected * 1.5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-15)


ZERO_D_INDEX = [
    ("argmax 0", lambda x: cr.argmax(x, 0), lambda x: x.argmax(0)),
    ("argmin -1 keepdims", lambda x: cr.argmin(x, -1, keepdims=True),
     lambda x: x.argmin(-1, keepdim=True)),
]


@pytest.mark.parametrize("ours, theirs", _params(ZERO_D_INDEX))
def test_argmax_of_a_0d_tensor_as_torch(ours, theirs):
    out, expected = ours(cr.tensor(S)), theirs(torch.tensor(S))
    assert out.shape == tuple(expected.shape) and out.dtype == np.int64
    assert out.item() == expected.item() == 0


def test_softmax_of_a_0d_tensor_is_1_and_log_softmax_0():
    assert cr.softmax(cr.tensor(5.0)).item() == 1.0
    assert cr.log_softmax(cr.tensor(-7.0), 0).item() == 0.0


# (label, chainrule call that must raise, torch call that raises likewise)
BAD_AXES_0D = [
    ("sum 1", lambda x: cr.sum(x, 1), lambda x: x.sum(1)),
    ("sum -2", lambda x: cr.sum(x, -2), lambda x: x.sum(-2)),
    ("mean 1", lambda x: cr.mean(x, 1), lambda x: x.mean(1)),
    ("var 2", lambda x: cr.var(x, 2), lambda x: x.var(2)),
    ("max 1", lambda x: cr.max(x, 1), lambda x: x.amax(1)),
    ("min -2", lambda x: cr.min(x, -2), lambda x: x.amin(-2)),
    ("argmax 1", lambda x: cr.argmax(x, 1), lambda x: x.argmax(1)),
    ("argmin -2", lambda x: cr.argmin(x, -2), lambda x: x.argmin(-2)),
    ("logsumexp 1", lambda x: cr.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1)),
    ("softmax 1", lambda x: cr.softmax(x, 1), lambda x: torch.softmax(x, 1)),
    ("log_softmax -2", lambda x: cr.log_softmax(x, -2), lambda x: torch.log_softmax(x, -2)),
    ("squeeze 1", lambda x: cr.squeeze(x, 1), lambda x: x.squeeze(1)),
    ("flatten 1", lambda x: cr.flatten(x, 1), lambda x: x.flatten(1)),
    ("swapaxes 0 1", lambda x: cr.swapaxes(x, 0, 1), lambda x: x.transpose(0, 1)),
    ("maxout 1", lambda x: cr.maxout(x, 1, 1), lambda x: x.sum(1)),
]


@pytest.mark.parametrize("ours, theirs", _params(BAD_AXES_0D))
def test_other_axes_of_a_0d_tensor_raise_with_the_rule(ours, theirs):
    with pytest.raises(IndexError):
        theirs(torch.tensor(S))
    with pytest.raises(ShapeError) as info:
        ours(cr.tensor(S))
    assert isinstance(info.value, IndexError)  # NumPy's AxisError and torch's IndexError alike
    rule = "out of range for a 0-d tensor (valid: -1 .. 0; a 0-d tensor acts as one element)"
    assert rule in str(info.value)


BAD_AXES_RESULT = [
    ("expand_dims 1", lambda x: cr.expand_dims(x, 1), lambda x: x.unsqueeze(1), "-1 .. 0"),
    ("expand_dims -2", lambda x: cr.expand_dims(x, -2), lambda x: x.unsqueeze(-2), "-1 .. 0"),
    ("stack 1", lambda x: cr.stack([x, x], 1), lambda x: torch.stack([x, x], 1), "-1 .. 0"),
    ("2-d sum 2", lambda x: cr.sum(cr.ones(2, 3), 2), lambda x: torch.ones(2, 3).sum(2), "-2 .. 1"),
    ("2-d transpose", lambda x: cr.transpose(cr.ones(2, 3), (0, 5)),
     lambda x: torch.ones(2, 3).permute(0, 5), "-2 .. 1"),
    ("2-d flatten", lambda x: cr.flatten(cr.ones(2, 3), 0, 2),
     lambda x: torch.ones(2, 3).flatten(0, 2), "-2 .. 1"),
]


@pytest.mark.parametrize("ours, theirs, valid", _params(BAD_AXES_RESULT))
def test_axis_out_of_range_names_the_valid_range(ours, theirs, valid):
    with pytest.raises(IndexError):
        theirs(torch.tensor(S))
    with pytest.raises(ShapeError, match=f"out of range .*valid: {valid}") as info:
        ours(cr.tensor(S))
    assert isinstance(info.value, IndexError)


def test_repeated_axis_of_a_0d_tensor_raises_as_torch():
    with pytest.raises(RuntimeError, match="multiple times"):
        torch.tensor(S).sum((0, -1))
    with pytest.raises(ShapeError, match="repeats an axis"):
        cr.sum(cr.tensor(S), (0, -1))


def test_concatenate_of_0d_tensors_is_refused_as_torch():
    with pytest.raises(RuntimeError, match="zero-dimensional"):
        torch.cat([torch.tensor(S)] * 2)
    with pytest.raises(ShapeError, match="zero-dimensional"):
        cr.concatenate([cr.tensor(S)] * 2)


# ------------------------------------------------------------------ reductions over empty axes
# (label, chainrule call, torch call) on x of shape (2, 0): values (and gradients) as torch
EMPTY = [
    ("sum all", lambda x: cr.sum(x), lambda x: x.sum()),
    ("sum axis 1", lambda x: cr.sum(x, 1), lambda x: x.sum(1)),
    ("sum axis 0", lambda x: cr.sum(x, 0), lambda x: x.sum(0)),
    ("mean all", lambda x: cr.mean(x), lambda x: x.mean()),
    ("mean axis 1", lambda x: cr.mean(x, 1), lambda x: x.mean(1)),
    ("mean axis 1 keepdims", lambda x: cr.mean(x, 1, keepdims=True),
     lambda x: x.mean(1, keepdim=True)),
    ("mean axis 0", lambda x: cr.mean(x, 0), lambda x: x.mean(0)),
    ("var axis 1", lambda x: cr.var(x, 1), lambda x: x.var(1, unbiased=False)),
    ("var all", lambda x: cr.var(x), lambda x: x.var(unbiased=False)),
    ("max axis 0", lambda x: cr.max(x, 0), lambda x: x.amax(0)),
    ("argmax axis 0", lambda x: cr.argmax(x, 0), lambda x: x.argmax(0)),
    ("logsumexp axis 1", lambda x: cr.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1)),
    ("logsumexp all", lambda x: cr.logsumexp(x), lambda x: torch.logsumexp(x, (0, 1))),
    ("softmax axis 1", lambda x: cr.softmax(x, 1), lambda x: torch.softmax(x, 1)),
    ("log_softmax axis 1", lambda x: cr.log_softmax(x, 1), lambda x: torch.log_softmax(x, 1)),
]


@pytest.mark.parametrize("ours, theirs", _params(EMPTY))
def test_reduction_over_an_empty_axis_matches_torch(ours, theirs):
    x = cr.zeros(2, 0, dtype=F64, requires_grad=True)
    t = torch.zeros(2, 0, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's var warns about dof <= 0
        expected = theirs(t)
    out = ours(x)
    assert out.shape == tuple(expected.shape) and out.dtype == _np_dtype(expected)
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    if out.requires_grad:
        cr.sum(out).backward()
        assert x.grad.shape == (2, 0)


@pytest.mark.parametrize("call, theirs", [
    (lambda x: cr.max(x, 1), lambda x: x.amax(1)),
    (lambda x: cr.min(x), lambda x: x.amin()),
    (lambda x: cr.argmax(x), lambda x: x.argmax()),
    (lambda x: cr.argmin(x, -1), lambda x: x.argmin(-1)),
], ids=["max axis 1", "min all", "argmax all", "argmin axis -1"])
def test_max_over_an_empty_axis_raises_a_clear_error(call, theirs):
    with pytest.raises((IndexError, RuntimeError)):
        theirs(torch.zeros(2, 0))
    with pytest.raises(ShapeError, match="cannot reduce over an empty axis .* has no identity"):
        call(cr.zeros(2, 0))


def test_var_with_too_few_elements_for_ddof_is_nan_without_warning():
    assert np.isnan(cr.var(cr.ones(1), ddof=1).item())
    assert np.isnan(cr.var(cr.ones(3, 2), axis=0, ddof=3).numpy()).all()


def test_cross_entropy_of_an_empty_batch_is_nan_as_torch():
    nothing = torch.zeros(0, dtype=torch.long)
    expected = torch.nn.functional.cross_entropy(torch.zeros(0, 3), nothing)
    out = cr.cross_entropy(cr.zeros(0, 3), np.zeros(0, np.int64))
    assert np.isnan(out.item()) and np.isnan(expected.item())


# ------------------------------------------------------------------ gradcheck's message
def _failure(f, x) -> tuple[str, float, float]:
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(f, (x,))
    message = str(info.value)
    analytic = float(message.split("back-propagated ")[1].split(",")[0])
    numeric = float(message.split("finite differences ")[1].split(" ")[0])
    return message, analytic, numeric


def test_gradcheck_failure_shows_the_real_jacobian_entry():
    _, analytic, numeric = _failure(lambda x: x * x.detach(), np.array(1.5))
    assert analytic == pytest.approx(1.5, rel=1e-9) and numeric == pytest.approx(3.0, rel=1e-6)


def test_gradcheck_failure_names_the_worst_entry_and_the_output_element():
    x = np.array([[1.0, 4.0], [2.0, 0.5]])
    message, analytic, numeric = _failure(lambda x: x * x.detach(), x)
    assert "input 0" in message and "element (0, 1), output element (0, 1)" in message
    assert analytic == pytest.approx(4.0, rel=1e-9) and numeric == pytest.approx(8.0, rel=1e-6)


def test_gradcheck_failure_off_the_diagonal():
    """A rule that is wrong only in a cross term: the entry (output 1, input element 0)."""
    def f(x):
        return cr.stack([x[0], x[0].detach() * x[1]])

    message, analytic, numeric = _failure(f, np.array([2.0, 3.0]))
    assert "element (0,)" in message and "output element (1,)" in message
    assert analytic == 0.0 and numeric == pytest.approx(3.0, rel=1e-6)


# ------------------------------------------------------------------ binary_cross_entropy's checks
NAN = float("nan")
BCE_BAD = [
    ("nan probability", [0.5, NAN], [1.0, 0.0], "input"),
    ("probability above 1", [0.5, 1.5], [1.0, 0.0], "input"),
    ("negative probability", [-0.1, 0.5], [1.0, 0.0], "input"),
    ("target 2", [0.5, 0.5], [2.0, 0.0], "target"),
    ("nan target", [0.5, 0.5], [NAN, 0.0], "target"),
    ("negative target", [0.5, 0.5], [-1.0, 0.0], "target"),
]


@pytest.mark.parametrize("p, y, argument", _params(BCE_BAD))
def test_binary_cross_entropy_refuses_values_outside_0_1_as_torch(p, y, argument):
    with pytest.raises(RuntimeError, match=f"all elements of {argument} should be between 0 and 1"):
        torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(y))
    with pytest.raises(ValueError, match=f"all elements of {argument} should be between 0 and 1"):
        cr.binary_cross_entropy(cr.tensor(p), cr.tensor(y))


def test_binary_cross_entropy_accepts_the_ends():
    out = cr.binary_cross_entropy(cr.tensor([0.0, 1.0]), cr.tensor([0.0, 1.0]))
    ends = torch.tensor([0.0, 1.0])
    expected = torch.nn.functional.binary_cross_entropy(ends, ends)
    assert out.item() == expected.item()


# ---------------------------------------------------------------- no nan where the value is 0
ZERO_SPREAD = [
    # (label, chainrule function, torch function, input): the gradient at a point where a
    # sqrt-shaped formula sits at 0; torch's rule gives a finite number there, and so must ours
    ("std equal elements", lambda x: cr.std(x), lambda x: torch.std(x, correction=0),
     [1.0, 1.0, 1.0]),
    ("std ddof=1 equal rows", lambda x: cr.std(x, axis=1, ddof=1),
     lambda x: torch.std(x, dim=1), [[2.0, 2.0], [1.0, 3.0]]),
]


@pytest.mark.parametrize("f, f_torch, x", _params(ZERO_SPREAD))
def test_gradient_at_zero_spread_matches_torch(f, f_torch, x):
    got = cr.grad(lambda v: cr.sum(f(v)))(np.array(x, dtype=F64)).numpy()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    f_torch(t).sum().backward()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=0)


def test_std_of_too_few_elements_stays_nan():
    assert np.isnan(cr.std(cr.tensor([3.0]), ddof=1).item())


def test_cosine_similarity_gradient_at_a_zero_vector_is_finite():
    # d/dx1 of sum(x1 * x2) / max(||x1|| ||x2||, eps) at x1 = 0: x2 / eps (the denominator is eps)
    x2 = np.array([[1.0, 2.0]])
    got = cr.grad(lambda a: cr.sum(cr.cosine_similarity(a, x2)))(np.zeros((1, 2))).numpy()
    np.testing.assert_allclose(got, x2 / 1e-8, rtol=1e-12)

"""pad_nd, interpolate, unfold and fold against torch over varied arguments (the op-info rows
check gradients on fixed ones), fold as unfold's adjoint, and the errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine.errors import ShapeError

torch = pytest.importorskip("torch")
F = torch.nn.functional

_FAST = settings(max_examples=25, deadline=None)


def _both(x):
    return cr.tensor(x), torch.tensor(x)


# ------------------------------------------------------------------ pad_nd
@_FAST
@given(mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
       h=st.integers(1, 4), w=st.integers(1, 4), data=st.data())
def test_pad_nd_matches_torch(mode, h, w, data):
    x = np.random.default_rng(h * 7 + w).standard_normal((1, 2, h, w))
    pad = tuple(data.draw(st.integers(-n, n), label="width") for n in (w, w, h, h))
    ours, theirs = _both(x)
    try:
        expected = F.pad(theirs, pad, mode=mode, value=1.5 if mode == "constant" else None)
    except (RuntimeError, ValueError):
        with pytest.raises((ValueError, ShapeError)):
            cr.pad_nd(ours, pad, mode, 1.5)
        return
    if mode == "circular" and max(pad[:2]) > w + min(pad[0], 0) + min(pad[1], 0) or \
            mode == "circular" and max(pad[2:]) > h + min(pad[2], 0) + min(pad[3], 0):
        # torch reads outside the cropped input here (uninitialised values); chainrule refuses
        with pytest.raises(ValueError, match="wraps around"):
            cr.pad_nd(ours, pad, mode)
        return
    got = cr.pad_nd(ours, pad, mode, 1.5)
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_pad_nd_gradient_sums_copies():
    x = cr.tensor(np.arange(4.0).reshape(1, 1, 4), requires_grad=True)
    cr.sum(cr.pad_nd(x, (3, 2), "reflect")).backward()
    # output positions -3..5 read 3 2 1 0 1 2 3 2 1
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [1, 3, 3, 2])
    x.grad = None
    cr.sum(cr.pad_nd(x, (2, 1), "replicate")).backward()
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [3, 1, 1, 2])


def test_pad_nd_constant_any_rank_and_value():
    x = np.ones((2, 3, 1, 2, 2))
    got = cr.pad_nd(cr.tensor(x), (1, 0, 0, 0, 2, 1, 0, 0, 1, 1), value=-2.0)
    expected = F.pad(torch.tensor(x), (1, 0, 0, 0, 2, 1, 0, 0, 1, 1), value=-2.0)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert cr.pad_nd(cr.tensor(np.ones(3, np.float32)), (1, 1)).dtype == np.float32


@pytest.mark.parametrize("args, error, match", [
    (((1, 1, 1),), ValueError, "even length"),
    (((1, 1) * 5,), ShapeError, "more than"),
    (((1, 1), "wrap"), ValueError, "mode='wrap'"),
    (((1, 1), "reflect"), ShapeError, "needs a 2-D or 3-D"),
    (((3, 0, 0, 0), "reflect"), ValueError, "less than the length 3"),
    (((0, 0, 4, 0), "circular"), ValueError, "wraps around"),
    (((-3, -2),), ShapeError, "crops more"),
    (((1.5, 1),), TypeError, "ints"),
])
def test_pad_nd_errors(args, error, match):
    x = cr.tensor(np.zeros((1, 2, 3, 3)))
    with pytest.raises(error, match=match):
        cr.pad_nd(x, *args)


# ------------------------------------------------------------------ interpolate
@_FAST
@given(n_in=st.integers(1, 9), n_out=st.integers(1, 13),
       mode=st.sampled_from(["nearest", "nearest-exact", "linear"]),
       align=st.sampled_from([None, True, False]), by_scale=st.booleans(),
       scale=st.floats(0.3, 3.7), dtype=st.sampled_from([np.float32, np.float64]))
def test_interpolate_1d_matches_torch(n_in, n_out, mode, align, by_scale, scale, dtype):
    if mode != "linear":
        align = None
    x = np.random.default_rng(n_in).standard_normal((2, 1, n_in)).astype(dtype)
    kwargs = dict(scale_factor=scale) if by_scale else dict(size=n_out)
    if by_scale and int(np.floor(n_in * scale)) < 1:
        with pytest.raises(ValueError, match="positive"):
            cr.interpolate(cr.tensor(x), mode=mode, align_corners=align, **kwargs)
        return
    expected = F.interpolate(torch.tensor(x), mode=mode, align_corners=align, **kwargs)
    got = cr.interpolate(cr.tensor(x), mode=mode, align_corners=align, **kwargs)
    assert got.dtype == dtype and got.shape == tuple(expected.shape)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=tol, atol=tol)


@_FAST
@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 8), ow=st.integers(1, 8),
       mode=st.sampled_from(["nearest", "bilinear", "bicubic"]),
       align=st.sampled_from([None, True]))
def test_interpolate_2d_matches_torch(h, w, oh, ow, mode, align):
    align = None if mode == "nearest" else align
    x = np.random.default_rng(h + 5 * w).standard_normal((1, 2, h, w))
    expected = F.interpolate(torch.tensor(x), size=(oh, ow), mode=mode, align_corners=align)
    got = cr.interpolate(cr.tensor(x), size=(oh, ow), mode=mode, align_corners=align)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_interpolate_linear_clamps_negative_source_to_zero():
    # upsampling 2 -> 4 without align_corners: output 0 has src = -0.25, clamped to x[0]
    got = cr.interpolate(cr.tensor(np.array([[[1.0, 3.0]]])), size=4, mode="linear")
    np.testing.assert_allclose(got.numpy().ravel(), [1.0, 1.5, 2.5, 3.0])


def test_interpolate_recompute_scale_factor():
    x = np.random.default_rng(1).standard_normal((1, 1, 5))
    for recompute in (None, True):
        expected = F.interpolate(torch.tensor(x), scale_factor=1.7, mode="linear",
                                 recompute_scale_factor=recompute)
        got = cr.interpolate(cr.tensor(x), scale_factor=1.7, mode="linear",
                             recompute_scale_factor=recompute)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-13)


@pytest.mark.parametrize("shape, kwargs, error, match", [
    ((1, 1, 3), dict(size=4, scale_factor=2.0), ValueError, "exactly one"),
    ((1, 1, 3), dict(), ValueError, "exactly one"),
    ((1, 1, 3), dict(size=4, align_corners=True), ValueError, "align_corners"),
    ((1, 1, 3), dict(size=4, mode="bilinear"), ShapeError, "4-D"),
    ((1, 1, 3, 3), dict(size=4, mode="linear"), ShapeError, "3-D"),
    ((1, 1, 3), dict(size=4, mode="area"), ValueError, "mode='area'"),
    ((1, 3), dict(size=4), ShapeError, "spatial"),
    ((1, 1, 3, 3), dict(size=(4, 4, 4)), ValueError, "one per"),
    ((1, 1, 3), dict(size=0), ValueError, "positive"),
])
def test_interpolate_errors(shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        cr.interpolate(cr.tensor(np.zeros(shape)), **kwargs)


# ------------------------------------------------------------------ unfold / fold
_blocks = st.fixed_dictionaries({
    "kernel_size": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "padding": st.tuples(st.integers(0, 2), st.integers(0, 2)),
    "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
})


@_FAST
@given(kw=_blocks, h=st.integers(1, 6), w=st.integers(1, 6))
def test_unfold_fold_match_torch_and_are_adjoint(kw, h, w):
    rng = np.random.default_rng(h * 10 + w)
    x = rng.standard_normal((2, 3, h, w))
    try:
        expected = F.unfold(torch.tensor(x), **kw)
    except RuntimeError:
        with pytest.raises(ShapeError, match="no block"):
            cr.unfold(cr.tensor(x), **kw)
        return
    got = cr.unfold(cr.tensor(x), **kw)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    y = rng.standard_normal(got.shape)
    folded = cr.fold(cr.tensor(y), (h, w), **kw)
    np.testing.assert_allclose(folded.numpy(), F.fold(torch.tensor(y), (h, w), **kw).numpy(),
                               rtol=1e-12, atol=1e-12)
    # adjointness: <unfold(x), y> == <x, fold(y)>
    np.testing.assert_allclose(np.sum(got.numpy() * y), np.sum(x * folded.numpy()), rtol=1e-10)


def test_fold_of_unfold_counts_overlaps():
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4))
    kw = dict(kernel_size=2, stride=1)
    got = cr.fold(cr.unfold(cr.tensor(x), **kw), (4, 4), **kw).numpy()
    counts = np.outer([1, 2, 2, 1], [1, 2, 2, 1])  # blocks covering each pixel
    np.testing.assert_allclose(got, x * counts, rtol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda: cr.unfold(cr.tensor(np.zeros((2, 3))), 2), ShapeError, "3-D"),
    (lambda: cr.unfold(cr.tensor(np.zeros((1, 1, 2, 2))), 3), ShapeError, "no block"),
    (lambda: cr.unfold(cr.tensor(np.zeros((1, 1, 2, 2))), 0), ValueError, "kernel_size"),
    (lambda: cr.unfold(cr.tensor(np.zeros((1, 1, 2, 2))), 1, stride=(1, 2, 3)), TypeError,
     "stride"),
    (lambda: cr.fold(cr.tensor(np.zeros((1, 5, 4))), (3, 3), 2), ShapeError, "divisible"),
    (lambda: cr.fold(cr.tensor(np.zeros((1, 4, 5))), (3, 3), 2), ShapeError, "number of blocks"),
    (lambda: cr.fold(cr.tensor(np.zeros(4)), (3, 3), 2), ShapeError, "2-D"),
])
def test_unfold_fold_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_abstract_shapes_without_values():
    from chainrule.ops.abstract import ShapeDtype, eval_shape

    x = ShapeDtype((2, 3, 5, 4), np.float32)
    assert eval_shape(lambda v: cr.interpolate(v, size=(7, 3), mode="bicubic"), x).shape == \
        (2, 3, 7, 3)
    assert eval_shape(lambda v: cr.pad_nd(v, (1, 2, 3, 1), "reflect"), x).shape == (2, 3, 9, 7)
    unfolded = eval_shape(lambda v: cr.unfold(v, 2, padding=1), x)
    assert unfolded.shape == (2, 12, 30) and unfolded.dtype == np.float32
    assert eval_shape(lambda v: cr.fold(cr.unfold(v, 2, padding=1), (5, 4), 2, padding=1),
                      x).shape == (2, 3, 5, 4)

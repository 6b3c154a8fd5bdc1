"""The compiled convolution kernels (numba, the [fast] extra) against the NumPy reference kernels.

Every test runs the same call twice, under ``dispatch.prefer("compiled")`` (compiled wherever
the kernels can run, even where the table measured NumPy faster) and under
``dispatch.prefer("numpy")``, and compares outputs, first and second derivatives. Skipped where
numba is not installed (the test extra installs it).
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.ops.conv import dispatch

pytest.importorskip("numba")


def _run(fn, arrays, kernels: str, order: int = 1):
    """fn's output and the gradients of sum(out * r) (and of their squares' sum, order 2)."""
    with dispatch.prefer(kernels):
        inputs = [cr.tensor(a, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        weights = cr.tensor(np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype))
        grads = cr.autograd_grad(cr.sum(out * weights), inputs, create_graph=order > 1)
        results = [out.data] + [g.data for g in grads]
        if order > 1:
            second = cr.autograd_grad(sum(cr.sum(g * g) for g in grads), inputs, allow_unused=True)
            results += [g.data for g in second if g is not None]
    return results


def _assert_same(fn, arrays, rtol: float, order: int = 1) -> None:
    compiled, reference = _run(fn, arrays, "compiled", order), _run(fn, arrays, "numpy", order)
    assert len(compiled) == len(reference)
    for got, want in zip(compiled, reference):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = max(np.abs(want).max(), 1e-300)
        np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=rtol)


GEOMETRIES = [  # (x shape, w shape, conv2d keyword arguments)
    ((2, 3, 7, 9), (5, 3, 3, 3), dict(padding=1)),
    ((1, 2, 5, 5), (3, 2, 2, 2), dict()),  # 4 taps: a zero-padded block of 3
    ((3, 4, 10, 8), (6, 4, 5, 5), dict(padding=2)),  # 25 taps, 6 outputs: partial blocks
    ((2, 3, 11, 12), (7, 3, 3, 2), dict(padding=(1, 2), dilation=(2, 1))),
    ((2, 3, 6, 6), (4, 3, 3, 3), dict(padding="same")),
    ((1, 1, 4, 3), (1, 1, 4, 3), dict()),  # one output position
    ((2, 5, 9, 9), (9, 5, 3, 3), dict(padding=((2, 0), (0, 1)))),  # asymmetric, per side
]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", GEOMETRIES)
def test_conv2d_matches_the_numpy_kernels(x_shape, w_shape, kwargs, dtype, rtol):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    _assert_same(lambda x, w: cr.conv2d(x, w, **kwargs), [x, w], rtol)


def test_second_derivatives_match_the_numpy_kernels():
    """Every VJP of the three primitives is again one of them, so all run compiled here."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
    _assert_same(lambda x, w: cr.conv2d(x, w, padding=1), [x, w], 1e-12, order=2)
    g = rng.standard_normal((2, 4, 5, 5))
    _assert_same(lambda g, w: cr.conv_transpose2d(g, w, padding=1), [g, w], 1e-12, order=2)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 5), o=st.integers(1, 9), h=st.integers(1, 9),
       w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4), pad=st.integers(0, 2),
       dilation=st.integers(1, 2))
def test_random_geometries_match_the_numpy_kernels(n, c, o, h, w, kh, kw, pad, dilation):
    if h + 2 * pad < dilation * (kh - 1) + 1 or w + 2 * pad < dilation * (kw - 1) + 1:
        return  # no output position: conv2d refuses it on either path
    rng = np.random.default_rng(n * 1000 + c * 100 + o)
    x, k = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw))
    _assert_same(lambda x, k: cr.conv2d(x, k, padding=pad, dilation=dilation), [x, k], 1e-12)


def test_the_compiled_kernels_run_where_the_rules_hold(monkeypatch):
    from chainrule.ops.conv import compiled

    calls = []
    for name in ("conv", "conv_transpose", "conv_weight"):
        original = getattr(compiled, name)
        monkeypatch.setattr(compiled, name,
                            lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    x = cr.tensor(np.ones((2, 4, 16, 16), np.float32), requires_grad=True)
    w = cr.tensor(np.ones((4, 4, 3, 3), np.float32), requires_grad=True)
    cr.conv2d(x, w, padding=1).sum().backward()
    assert sorted(calls) == ["conv", "conv_transpose", "conv_weight"]
    calls.clear()
    cr.conv2d(x, w, stride=2).sum().backward()  # stride 2: NumPy's im2col
    cr.conv2d(x[:, :, :8, :8], w, padding=1).sum().backward()  # 10x10 planes: NumPy is faster
    with dispatch.prefer("numpy"):
        cr.conv2d(x, w, padding=1).sum().backward()
    assert calls == []
    with dispatch.prefer("compiled"):  # wherever the kernels can run
        cr.conv2d(x[:, :, :8, :8], w, padding=1).sum().backward()
    assert sorted(calls) == ["conv", "conv_transpose", "conv_weight"]


def _call(dtypes=("float32", "float32"), rank=2, stride=(1, 1), groups=1, taps=9, plane=1024):
    return dispatch.Call(tuple(np.dtype(d) for d in dtypes), rank, stride, groups, taps, plane)


SLOWER = [  # where the compiled kernels can run but measured slower
    (_call(taps=1), "at least 2 taps (1x1 is one GEMM)"),
    (_call(plane=10 * 10), "padded planes of at least 12x12 positions"),
    (_call(plane=11 * 13), "padded planes of at least 12x12 positions"),
]


@pytest.mark.parametrize("call, reason", SLOWER + [
    (_call(stride=(2, 2)), "stride 1"),
    (_call(stride=(1, 2)), "stride 1"),
    (_call(groups=2), "groups 1"),
    (_call(dtypes=("int64", "int64")), "one float dtype"),
    (_call(dtypes=("float32", "float64")), "one float dtype"),
    (_call(dtypes=("float16", "float16")), "one float dtype"),
    (_call(rank=1), "2-d"),
    (_call(rank=3), "2-d"),
])
def test_the_dispatch_table_names_why_numpy_runs(call, reason):
    assert dispatch.choice(call) == ("numpy", reason)
    assert dispatch.choice(_call()) == ("compiled", None)
    assert dispatch.choice(_call(dtypes=("float64", "float64"))) == ("compiled", None)
    with dispatch.prefer("compiled"):  # runs wherever it can, never where it cannot
        assert dispatch.choice(call)[0] == ("compiled" if (call, reason) in SLOWER else "numpy")


def test_the_preference_is_per_thread_and_checked():
    seen = []
    with dispatch.prefer("numpy"):
        assert dispatch.choice(_call())[0] == "numpy"
        thread = threading.Thread(target=lambda: seen.append(dispatch.choice(_call())[0]))
        thread.start()
        thread.join()
    assert seen == ["compiled"] and dispatch.choice(_call())[0] == "compiled"
    with pytest.raises(ValueError, match="prefer\\('cuda'\\): use 'auto', 'numpy' or 'compiled'"):
        with dispatch.prefer("cuda"):
            pass


def test_threads_running_compiled_convolutions_at_once_get_their_own_results():
    """numba's workqueue pool takes one launching thread at a time (compiled._LAUNCH)."""
    rng = np.random.default_rng(2)
    cases = [(rng.standard_normal((4, 4, 16, 16)).astype(np.float32),
              rng.standard_normal((8, 4, 3, 3)).astype(np.float32)) for _ in range(4)]
    assert dispatch.choice(_call(plane=18 * 18))[0] == "compiled"

    def step(x, w):
        xt, wt = cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)
        (cr.conv2d(xt, wt, padding=1) ** 2).sum().backward()
        return xt.grad.numpy(), wt.grad.numpy()

    want = [step(x, w) for x, w in cases]
    got: list = [None] * 4

    def worker(i):
        for _ in range(10):
            got[i] = step(*cases[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (gx, gw), (wx, ww) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gw, ww)


def test_nan_and_infinity_propagate_as_on_numpy():
    """fastmath is contraction and reassociation only: no 'no NaN' assumption."""
    x = np.ones((1, 2, 5, 5))
    x[0, 1, 2, 2], x[0, 0, 0, 4] = np.nan, np.inf
    w = np.ones((3, 2, 3, 3))
    with dispatch.prefer("numpy"):
        want = cr.conv2d(cr.tensor(x), cr.tensor(w), padding=1).numpy()
    with dispatch.prefer("compiled"):
        got = cr.conv2d(cr.tensor(x), cr.tensor(w), padding=1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isfinite(want)], want[np.isfinite(want)])
    assert np.isnan(got).sum() == 3 * 9 and np.isinf(got).any()


def test_the_environment_variable_turns_the_compiled_kernels_off():
    probe = ("import sys, numpy as np, chainrule as cr; "
             "cr.conv2d(cr.tensor(np.ones((1, 4, 16, 16))), cr.tensor(np.ones((4, 4, 3, 3)))); "
             "print('chainrule.ops.conv.compiled' in sys.modules, 'numba' in sys.modules)")
    for setting, imported in (("numpy", "False False"), ("auto", "True True")):
        env = {"CHAINRULE_CONV_KERNELS": setting, "PATH": ""}
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True, env=env)
        assert result.stdout.split() == imported.split()


def test_reused_buffers_never_leak_one_geometry_into_another():
    """Two geometries whose scratch buffers have the same size (grids 6x5 and 5x6): the second
    must not see the first's interior (the workspace keys hold the grid); found by hypothesis."""
    rng = np.random.default_rng(5)
    for shape in [(2, 2, 2, 1), (2, 2, 1, 2), (2, 2, 2, 1)]:
        x, k = rng.standard_normal(shape), rng.standard_normal((1, 2, 1, 1))
        _assert_same(lambda x, k: cr.conv2d(x, k, padding=2), [x, k], 1e-12)

"""Python floats in arithmetic become per-thread cached, read-only 0-d operands (elementwise.py,
``_constant``): reused, never conflating -0.0 with 0.0 or NaN with itself, never shared between
threads, never writable."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr


def _operand(y):
    """The constant operand a recorded ``x * c`` holds."""
    return y.grad_fn.inputs[1]


def test_a_float_constant_is_made_once_per_thread_and_dtype():
    x = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    first, second = _operand(x * 0.37), _operand(x * 0.37)
    assert first is second and first.dtype == np.float32
    x64 = cr.tensor(np.ones(3), requires_grad=True)
    assert _operand(x64 * 0.37) is not first and _operand(x64 * 0.37).dtype == np.float64
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_operand(x * 0.37)))
    thread.start()
    thread.join()
    assert seen[0] is not first and float(seen[0].data) == float(first.data)


def test_signed_zeros_and_nan_keep_their_meaning():
    x = cr.tensor(np.array([1.0, -2.0, 3.0], np.float32))
    np.testing.assert_array_equal(np.signbit((x * -0.0).numpy()), [True, False, True])
    np.testing.assert_array_equal(np.signbit((x * 0.0).numpy()), [False, True, False])
    np.testing.assert_array_equal(np.signbit((x * -0.0).numpy()), [True, False, True])
    assert np.isnan((x * float("nan")).numpy()).all()
    assert np.isnan((x + float("nan")).numpy()).all()


def test_the_shared_constant_cannot_be_written_and_results_can():
    x = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x * 0.25
    with pytest.raises(ValueError, match="read-only"):
        _operand(y).data[...] = 7.0
    z = (x * 0.25).detach()
    z.data[0] = 5.0  # a result owns writable memory
    assert float(_operand(x * 0.25).data) == 0.25
    (x * 0.25).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.25, 0.25, 0.25])

"""Initialisation of parameters in place, with PyTorch's names, formulas and defaults.

Each function draws from a chainrule ``Generator`` (the default one unless ``generator=``) and
writes into the tensor's data outside the graph; it returns the tensor.

The values are drawn and computed on the host (float64), then written onto the tensor's own device:
the same seed gives the same parameters on every device.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

import chainrule as cr
from chainrule import backends
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor
from chainrule.ops.creation import Generator

__all__ = [
    "calculate_gain", "uniform_", "normal_", "zeros_", "ones_", "constant_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The recommended gain: 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu),
    sqrt(2/(1+a^2)) (leaky_relu)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def _fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) for a weight (out, in, *kernel): in * receptive field,
    out * receptive field."""
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in/out need a tensor with at least 2 dimensions, got shape {tensor.shape}"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill(tensor: Tensor, values: Tensor) -> Tensor:
    """``tensor``'s values <- ``values`` (computed on the host), in place on NumPy."""
    host = values.numpy()
    with no_grad():
        if type(tensor.data) is np.ndarray:
            tensor.data[...] = host.astype(tensor.dtype, copy=False)
        else:  # a fresh array on the tensor's device (astype copies: nothing aliases the host)
            tensor.data = backends.move(host.astype(tensor.dtype), tensor.device)
    tensor._bump_version()  # an in-place change: a graph that saved the old values must not run
    return tensor


def _on_host() -> backends.default_device:
    """Draws and arithmetic on the host, whatever this thread's default device."""
    return backends.default_device("cpu")


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Optional[Generator] = None
) -> Tensor:
    """Fill with U(a, b)."""
    with no_grad(), _on_host():
        samples = cr.rand(*tensor.shape, generator=generator, dtype="float64")
        return _fill(tensor, samples * (b - a) + a)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Optional[Generator] = None
) -> Tensor:
    """Fill with N(mean, std^2)."""
    with no_grad(), _on_host():
        samples = cr.randn(*tensor.shape, generator=generator, dtype="float64")
        return _fill(tensor, samples * std + mean)


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with ``value``."""
    with _on_host():
        return _fill(tensor, cr.full(tensor.shape, float(value), dtype="float64"))


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: Optional[Generator] = None
) -> Tensor:
    """Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: Optional[Generator] = None
) -> Tensor:
    """Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode={mode!r}: use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _fans(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: Optional[Generator] = None,
) -> Tensor:
    """He: U(-b, b) with b = gain * sqrt(3 / fan).

    PyTorch's layers use a = sqrt(5): b = 1/sqrt(fan_in).
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: Optional[Generator] = None,
) -> Tensor:
    """He: N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)

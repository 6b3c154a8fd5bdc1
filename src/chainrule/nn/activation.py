"""Activation modules: one per activation function of chainrule, same formulas and conventions."""

from __future__ import annotations

from typing import Optional

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import DeviceLike, Module, Parameter, built_on_host, place

__all__ = [
    "ReLU", "LeakyReLU", "PReLU", "Abs", "Maxout", "Sigmoid", "Tanh", "Softplus", "Softmax",
    "LogSoftmax", "Heaviside", "Step", "Sign", "LogSigmoid",
]


class ReLU(Module):
    """max(x, 0); derivative 0 at 0."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return cr.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """x for x > 0, alpha_c x otherwise, with one trainable alpha per channel (axis 1) or one
    shared."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25,
                 device: DeviceLike = None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        with built_on_host():
            self.weight = Parameter(cr.full((num_parameters,), float(init)).data)
        place(self, device)

    def forward(self, x: Tensor) -> Tensor:
        if self.num_parameters == 1:
            return cr.prelu(x, self.weight)
        if x.ndim < 2 or x.shape[1] != self.num_parameters:
            raise ValueError(
                f"PReLU({self.num_parameters}): input needs {self.num_parameters} channels "
                f"on axis 1, got shape {x.shape}"
            )
        return cr.prelu(x, self.weight.reshape((1, -1) + (1,) * (x.ndim - 2)))

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Abs(Module):
    """|x|; derivative 0 at 0."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.abs(x)


class Maxout(Module):
    """Maximum over consecutive groups of ``pieces`` features along axis 1 (channels/features)."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: Tensor) -> Tensor:
        return cr.maxout(x, self.pieces, axis=1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return cr.sigmoid(x)


class LogSigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return cr.log_sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return cr.tanh(x)


class Softplus(Module):
    def forward(self, x: Tensor) -> Tensor:
        return cr.softplus(x)


class Softmax(Module):
    """softmax along ``dim`` (PyTorch's argument name for the axis)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return cr.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x: Tensor) -> Tensor:
        return cr.log_softmax(x, axis=self.dim)


class _Threshold(Module):
    def __init__(self, surrogate_slope: Optional[float] = None) -> None:
        super().__init__()
        self.surrogate_slope = surrogate_slope

    def extra_repr(self) -> str:
        return "" if self.surrogate_slope is None else f"surrogate_slope={self.surrogate_slope}"


class Heaviside(_Threshold):
    """H(x) with ``value_at_zero``; gradient 0, or the sigmoid surrogate with
    ``surrogate_slope``."""

    def __init__(self, value_at_zero: float = 0.5, surrogate_slope: Optional[float] = None) -> None:
        super().__init__(surrogate_slope)
        self.value_at_zero = value_at_zero

    def forward(self, x: Tensor) -> Tensor:
        return cr.heaviside(x, self.value_at_zero, self.surrogate_slope)


class Step(_Threshold):
    """The hard threshold unit 1[x >= 0]; gradient 0, or the sigmoid surrogate."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.step(x, self.surrogate_slope)


class Sign(_Threshold):
    """sign(x) with sign(0) = 0; gradient 0, or twice the sigmoid surrogate."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.sign(x, self.surrogate_slope)

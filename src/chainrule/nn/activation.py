"""Activation modules: one per activation function of chainrule, same formulas and conventions."""

from __future__ import annotations

from typing import Optional

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import DeviceLike, Module, Parameter, built_on_host, place

__all__ = [
    "ReLU", "LeakyReLU", "PReLU", "Abs", "Maxout", "Sigmoid", "Tanh", "Softplus", "Softmax",
    "LogSoftmax", "Heaviside", "Step", "Sign", "LogSigmoid",
    "GELU", "SiLU", "ELU", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6",
    "Softsign", "Softmin", "GLU",
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
    """``|x|``; derivative 0 at 0."""

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
    """(1/beta) log(1 + e^(beta x)), and x itself where beta x > threshold (PyTorch's
    defaults: beta=1, threshold=20)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        return cr.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


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


class GELU(Module):
    """x Phi(x) (``approximate="none"``) or PyTorch's tanh form (``approximate="tanh"``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return cr.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x sigmoid(x) (swish)."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.silu(x)


class _Alpha(Module):
    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class ELU(_Alpha):
    """x for x > 0, alpha (e^x - 1) otherwise; derivative alpha at 0."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.elu(x, self.alpha)


class CELU(_Alpha):
    """max(0, x) + min(0, alpha (e^(x/alpha) - 1)); derivative 1 at 0."""

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha == 0:
            raise ValueError("CELU: alpha must be nonzero (it divides x), got 0")
        super().__init__(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return cr.celu(x, self.alpha)


class SELU(Module):
    """scale * elu(x, alpha) with the self-normalising constants."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.selu(x)


class Mish(Module):
    """x tanh(softplus(x))."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.mish(x)


class Hardswish(Module):
    """x relu6(x + 3) / 6; derivative 0 at -3 and 1 at 3."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.hardswish(x)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6; derivative 0 at the kinks +-3."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.hardsigmoid(x)


class Hardtanh(Module):
    """x clipped to [min_val, max_val]; derivative 0 at the kinks."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, x: Tensor) -> Tensor:
        return cr.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Module):
    """min(max(x, 0), 6); derivative 0 at 0 and 6."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.relu6(x)


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.softsign(x)


class Softmin(Softmax):
    """softmax(-x) along ``dim``."""

    def forward(self, x: Tensor) -> Tensor:
        return cr.softmin(x, axis=self.dim)


class GLU(Module):
    """a * sigmoid(b), a and b the halves of the input along ``dim`` (default -1)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return cr.glu(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

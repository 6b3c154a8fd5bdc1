"""RMSprop (Hinton's lecture 6e), optionally centered and with momentum."""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import Optimizer, ParamsT, check_nonnegative, zeros_state

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    For each parameter theta with gradient g (eta = ``lr``, alpha the smoothing constant,
    lambda = ``weight_decay``, mu = ``momentum``)::

        g <- -g                                      if maximize
        g <- g + lambda theta                        if weight_decay != 0
        v <- alpha v + (1 - alpha) g^2               (state 'square_avg')
        gbar <- alpha gbar + (1 - alpha) g           if centered (state 'grad_avg')
        d <- sqrt(v - gbar^2) + eps   if centered,   else  d <- sqrt(v) + eps
        b <- mu b + g / d; theta <- theta - eta b    if momentum > 0 (state 'momentum_buffer')
        theta <- theta - eta g / d                   otherwise

    Centered RMSprop divides by an estimate of the gradient's standard deviation instead of its
    root mean square. ``state[p]['step']`` counts the updates.
    """

    _param_shaped_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "alpha", "eps", "weight_decay", "momentum")

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_state(param)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_state(param)
            if group["centered"]:
                state["grad_avg"] = zeros_state(param)
        return state

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self._init_state(param, group)
        alpha = group["alpha"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        square_avg = inplace.addcmul_(inplace.mul_(state["square_avg"], alpha), grad, grad,
                                      value=1 - alpha)
        if group["centered"]:
            grad_avg = inplace.lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = inplace.sqrt_(inplace.addcmul_(inplace.clone(square_avg), grad_avg, grad_avg,
                                                 value=-1))
        else:
            avg = ops.sqrt(square_avg)
        inplace.add_(avg, group["eps"])
        if group["momentum"] > 0:
            buf = inplace.mul_(state["momentum_buffer"], group["momentum"])
            inplace.addcdiv_(buf, grad, avg)
            inplace.add_(param, buf, alpha=-group["lr"])
        else:
            inplace.addcdiv_(param, grad, avg, value=-group["lr"])

"""Adadelta (Zeiler, 2012): step sizes from running averages of squared gradients and updates."""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_nonnegative,
    check_unit,
    zeros_state,
)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, as ``torch.optim.Adadelta``.

    For each parameter theta with gradient g, eta = ``lr`` (default 1), lambda =
    ``weight_decay``, rho in [0, 1]::

        g <- -g                                           if maximize
        g <- g + lambda theta                             if weight_decay != 0
        v <- rho v + (1 - rho) g^2                        (state 'square_avg')
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho u + (1 - rho) delta^2                    (state 'acc_delta')
        theta <- theta - eta delta

    ``state[p]['step']`` counts the updates.
    """

    _param_shaped_state = ("square_avg", "acc_delta")

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "eps", "weight_decay")
        check_unit(group, "rho", closed=True)

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_state(param)
            state["acc_delta"] = zeros_state(param)
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        square_avg = inplace.addcmul_(inplace.mul_(state["square_avg"], rho), grad, grad,
                                      value=1 - rho)
        std = ops.sqrt(square_avg + eps)
        delta = inplace.mul_(inplace.div_(ops.sqrt(state["acc_delta"] + eps), std), grad)
        inplace.addcmul_(inplace.mul_(state["acc_delta"], rho), delta, delta, value=1 - rho)
        inplace.add_(param, delta, alpha=-group["lr"])

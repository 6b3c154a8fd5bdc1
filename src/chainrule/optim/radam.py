"""RAdam (Liu et al., 2020): Adam with a rectified (variance-corrected) adaptive rate."""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_betas,
    check_nonnegative,
    zeros_state,
)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam, as ``torch.optim.RAdam``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (``state[p]['step']``),
    eta = ``lr``, lambda = ``weight_decay``, betas = (beta1, beta2)::

        g <- -g                                           if maximize
        theta <- theta (1 - eta lambda)                   if weight_decay and decoupled
        g <- g + lambda theta                             if weight_decay and not decoupled
        m <- beta1 m + (1 - beta1) g                      (state 'exp_avg')
        v <- beta2 v + (1 - beta2) g^2                    (state 'exp_avg_sq')
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            theta <- theta - eta m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t
        else:
            theta <- theta - eta m / (1 - beta1^t)        (plain momentum while v is unreliable)
    """

    _param_shaped_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "eps", "weight_decay")
        check_betas(group)

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_state(param)
            state["exp_avg_sq"] = zeros_state(param)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                inplace.mul_(param, 1 - lr * weight_decay)
            else:
                grad = grad + param * weight_decay
        exp_avg = inplace.lerp_(state["exp_avg"], grad, 1 - beta1)
        exp_avg_sq = inplace.addcmul_(inplace.mul_(state["exp_avg_sq"], beta2), grad, grad,
                                      value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = (bias_correction2**0.5) / inplace.add_(ops.sqrt(exp_avg_sq), group["eps"])
            inplace.add_(param, corrected * lr * adaptive * rect, alpha=-1.0)
        else:
            inplace.add_(param, corrected * lr, alpha=-1.0)

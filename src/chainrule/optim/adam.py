"""Adam (optionally AMSGrad) and AdamW (decoupled weight decay)."""

from __future__ import annotations

from typing import Any

from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import (
    Optimizer,
    ParamsT,
    check_betas,
    check_nonnegative,
    zeros_state,
)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (``state[p]['step']``)::

        g <- -g                                           if maximize
        theta <- theta (1 - eta lambda)                   if weight_decay and decoupled (AdamW)
        g <- g + lambda theta                             if weight_decay and not decoupled
        m <- beta1 m + (1 - beta1) g                      (state 'exp_avg')
        v <- beta2 v + (1 - beta2) g^2                    (state 'exp_avg_sq')
        v_max <- max(v_max, v); v <- v_max                if amsgrad (state 'max_exp_avg_sq')
        theta <- theta - eta / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    with eta = ``lr``, lambda = ``weight_decay``, ``betas = (beta1, beta2)`` each in [0, 1).
    Note that eps is added after the bias correction of sqrt(v), as in PyTorch.
    """

    _param_shaped_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "eps", "weight_decay")
        check_betas(group)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_state(param)
            state["exp_avg_sq"] = zeros_state(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_state(param)
        return state

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self._init_state(param, group)
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
        inplace.adam_(
            param, grad, state["exp_avg"], state["exp_avg_sq"], lr=lr, beta1=beta1, beta2=beta2,
            eps=group["eps"], step=step, max_exp_avg_sq=state.get("max_exp_avg_sq"),
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The parameters shrink directly, theta <- theta (1 - eta lambda), before the Adam step on the
    plain gradient, instead of lambda theta being added to the gradient (where Adam's scaling
    would weaken it for parameters with large gradients). Default ``weight_decay = 1e-2``.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["decoupled_weight_decay"] = True  # as torch's AdamW, whatever a loaded dict says
        super()._check_group(group)

"""NAdam (Dozat, 2016): Adam with Nesterov momentum and a warming momentum schedule."""

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

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam, as ``torch.optim.NAdam``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (``state[p]['step']``),
    eta = ``lr``, lambda = ``weight_decay``, psi = ``momentum_decay``, betas = (beta1, beta2)::

        g <- -g                                           if maximize
        theta <- theta (1 - eta lambda)                   if weight_decay and decoupled (NAdamW)
        g <- g + lambda theta                             if weight_decay and not decoupled
        mu_t = beta1 (1 - 0.96^(t psi) / 2),  mu_{t+1} likewise
        P_t = mu_1 mu_2 ... mu_t                          (state 'mu_product')
        m <- beta1 m + (1 - beta1) g                      (state 'exp_avg')
        v <- beta2 v + (1 - beta2) g^2                    (state 'exp_avg_sq')
        d = sqrt(v / (1 - beta2^t)) + eps
        theta <- theta - eta (1 - mu_t) / (1 - P_t) g / d
                       - eta mu_{t+1} / (1 - P_t mu_{t+1}) m / d

    ``state['mu_product']`` is a Python float here (PyTorch keeps a 0-d tensor of its default
    dtype, float32 unless changed, so its products round differently).
    """

    _param_shaped_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "eps", "weight_decay", "momentum_decay")
        check_betas(group)

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = zeros_state(param)
            state["exp_avg_sq"] = zeros_state(param)
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        psi = group["momentum_decay"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                inplace.mul_(param, 1 - lr * weight_decay)
            else:
                grad = grad + param * weight_decay
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        mu_product = state["mu_product"] = float(state["mu_product"]) * mu
        exp_avg = inplace.lerp_(state["exp_avg"], grad, 1 - beta1)
        exp_avg_sq = inplace.addcmul_(inplace.mul_(state["exp_avg_sq"], beta2), grad, grad,
                                      value=1 - beta2)
        denom = inplace.add_(ops.sqrt(exp_avg_sq / (1 - beta2**step)), group["eps"])
        inplace.addcdiv_(param, grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        inplace.addcdiv_(param, exp_avg, denom,
                         value=(-lr * mu_next) / (1.0 - mu_product * mu_next))

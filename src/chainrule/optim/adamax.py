"""Adamax (Kingma & Ba, 2015, section 7.1): Adam with an infinity-norm second moment."""

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

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax, as ``torch.optim.Adamax``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (``state[p]['step']``),
    eta = ``lr``, lambda = ``weight_decay``, ``betas = (beta1, beta2)`` each in [0, 1)::

        g <- -g                                      if maximize
        g <- g + lambda theta                        if weight_decay != 0
        m <- beta1 m + (1 - beta1) g                 (state 'exp_avg')
        u <- max(beta2 u, |g| + eps)                 (state 'exp_inf')
        theta <- theta - eta / (1 - beta1^t) * m / u

    eps is added to ``|g|`` before the maximum (PyTorch's form), so u > 0 whenever eps > 0.
    """

    _param_shaped_state = ("exp_avg", "exp_inf")

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "eps", "weight_decay")
        check_betas(group)

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_state(param)
            state["exp_inf"] = zeros_state(param)
        beta1, beta2 = group["betas"]
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        inplace.lerp_(state["exp_avg"], grad, 1 - beta1)
        bound = inplace.add_(ops.abs(grad), group["eps"])
        inplace.maximum_(inplace.mul_(state["exp_inf"], beta2), bound)
        clr = group["lr"] / (1 - beta1 ** state["step"])
        inplace.addcdiv_(param, state["exp_avg"], state["exp_inf"], value=-clr)

"""Adagrad (Duchi, Hazan & Singer, 2011): per-coordinate rates from the sum of squared gradients."""

from __future__ import annotations

from typing import Any

from chainrule import ops
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import Optimizer, ParamsT, check_nonnegative, zeros_state

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    For each parameter theta with gradient g, at step t = 1, 2, ... (``state[p]['step']``),
    with eta = ``lr``, lambda = ``weight_decay``::

        g <- -g                                      if maximize
        g <- g + lambda theta                        if weight_decay != 0
        eta_t = eta / (1 + (t - 1) lr_decay)
        s <- s + g^2                                 (state 'sum', starts at
                                                      initial_accumulator_value)
        theta <- theta - eta_t g / (sqrt(s) + eps)

    As in PyTorch the state of every parameter is made by the constructor (``step = 0``,
    ``sum`` filled with ``initial_accumulator_value``), so ``state_dict()`` lists parameters that
    never had a gradient; a group added later gets its state at its first step.
    """

    _param_shaped_state = ("sum",)

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value",
                          "eps")

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["sum"] = zeros_state(param)
            if group["initial_accumulator_value"] != 0:
                inplace.fill_(state["sum"], group["initial_accumulator_value"])
        return state

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self._init_state(param, group)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total = inplace.addcmul_(state["sum"], grad, grad)
        std = inplace.add_(ops.sqrt(total), group["eps"])
        inplace.addcdiv_(param, grad, std, value=-clr)

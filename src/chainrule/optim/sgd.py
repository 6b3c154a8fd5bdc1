"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace
from chainrule.optim.optimizer import Optimizer, ParamsT, check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    For each parameter theta with gradient g, learning rate eta (``lr``), weight decay lambda',
    momentum mu, dampening tau, at step t::

        g <- -g                          if maximize
        g <- g + lambda' * theta         if weight_decay != 0
        b <- g                           at the first step (momentum != 0)
        b <- mu * b + (1 - tau) * g      afterwards
        g <- g + mu * b  (nesterov)  or  g <- b
        theta <- theta - eta * g

    L2 regularisation: the course's penalised loss L(theta) + lambda * ||theta||^2 has gradient
    g + 2 lambda theta, so its update theta <- theta - eta (g + 2 lambda theta) is
    ``weight_decay = 2 * lambda`` here (``weight_decay`` multiplies theta itself, PyTorch's
    convention; a penalty written (lambda/2) ||theta||^2 is ``weight_decay = lambda``).

    The momentum buffer is ``state[p]['momentum_buffer']`` (only when ``momentum != 0``).
    Nesterov needs ``momentum > 0`` and ``dampening == 0``.
    """

    _param_shaped_state = ("momentum_buffer",)

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + param * group["weight_decay"]
        momentum = group["momentum"]
        if momentum != 0:
            state = self.state[param]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = inplace.clone(grad)
            else:
                inplace.add_(inplace.mul_(buf, momentum), grad, alpha=1 - group["dampening"])
            grad = grad + buf * momentum if group["nesterov"] else buf
        inplace.add_(param, grad, alpha=-group["lr"])

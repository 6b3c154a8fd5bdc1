"""Moving tensors between devices and backends: ``to_device`` (``Tensor.to``, ``.cpu()``).

Differentiable, as ``torch.Tensor.to``: the gradient of ``y = to_device(x, d)`` is ``g`` moved back
to ``x``'s device. The one primitive whose kernel crosses backends: it does not take the namespace
from its input but converts through :func:`chainrule.backends.move`.
"""

from __future__ import annotations

from typing import Any

from chainrule import backends
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.primitive import Primitive, as_tensor

__all__ = ["to_device"]


def _move(xp: Any, x: Any, *, device: backends.Device) -> Any:
    return backends.move(x, device)


def _abstract(x: ShapeDtype, *, device: backends.Device) -> ShapeDtype:
    return ShapeDtype(x.shape, x.dtype, device)


to_device_p = Primitive("to_device", generic=_move, abstract_eval=_abstract, saves=()).defvjp(
    lambda g, out, x, *, device: to_device(g, x.device))


def to_device(x: Any, device: Any) -> Tensor:
    """``x`` on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...); the gradient flows back."""
    x = as_tensor(x)
    target = backends.Device(device)
    if x.device == target:
        return x
    backends.get(target.backend)  # ImportError naming the missing package, before any work
    return to_device_p.bind(x, device=target)

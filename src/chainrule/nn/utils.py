"""``chainrule.nn.utils`` (``torch.nn.utils``): gradient clipping, parameters as one vector.

All of it acts on numbers outside the graph (under ``no_grad``), except ``parameters_to_vector``,
which is differentiable as torch's is.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Union

from chainrule import ops
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters"]

Parameters = Union[Tensor, Iterable[Tensor]]


def _tensors(parameters: Parameters, who: str) -> list[Tensor]:
    items = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameters[{i}] is a {type(p).__name__}, not a Tensor")
    return items


def _number(value: object, name: str, who: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a number, got {value!r}")
    return float(value)


def _norm(g: Tensor, p: float) -> Tensor:
    """||g||_p of all entries: max |g| for p = inf, (sum |g|^p)^(1/p) otherwise."""
    if math.isinf(p):
        return ops.max(ops.abs(g)) if g.size else ops.zeros((), dtype=g.dtype)
    if p == 2:
        return ops.sqrt(ops.sum(g * g))
    return ops.sum(ops.abs(g) ** p) ** (1.0 / p)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their joint norm is at most ``max_norm``; return that norm.

    total = || (||g_1||_p, ..., ||g_n||_p) ||_p over the parameters that have a gradient (the
    p-norm of all gradient entries together); every gradient is multiplied by
    min(1, max_norm / (total + 1e-6)), in place (torch's formula, the 1e-6 included). A NaN or
    infinite total raises RuntimeError when ``error_if_nonfinite`` (else the gradients become NaN,
    as in torch).
    """
    who = "clip_grad_norm_"
    grads = [p.grad for p in _tensors(parameters, who) if p.grad is not None]
    max_norm = _number(max_norm, "max_norm", who)
    norm_type = _number(norm_type, "norm_type", who)
    if not norm_type > 0:
        raise ValueError(f"{who}: norm_type={norm_type} must be > 0 (or inf)")
    with no_grad():
        if not grads:
            return ops.zeros(())
        norms = ops.stack([_norm(g, norm_type).astype(grads[0].dtype) for g in grads])
        total = _norm(norms, norm_type)
        if error_if_nonfinite and not math.isfinite(total.item()):
            raise RuntimeError(f"{who}: the total norm of order {norm_type} of the gradients is "
                               f"{total.item()}: pass error_if_nonfinite=False to scale anyway")
        factor = ops.minimum(max_norm / (total + 1e-6), 1.0)
        for g in grads:
            inplace.mul_(g, factor.astype(g.dtype))
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value], in place."""
    who = "clip_grad_value_"
    clip_value = _number(clip_value, "clip_value", who)
    if clip_value < 0:
        raise ValueError(f"{who}: clip_value={clip_value} must be >= 0")
    with no_grad():
        for p in _tensors(parameters, who):
            if p.grad is not None:
                inplace.copy_(p.grad, ops.clip(p.grad, -clip_value, clip_value))


def parameters_to_vector(parameters: Parameters) -> Tensor:
    """All parameters flattened and concatenated, in order (differentiable)."""
    tensors = _tensors(parameters, "parameters_to_vector")
    if not tensors:
        raise ValueError("parameters_to_vector: no parameters given")
    return ops.concatenate([ops.reshape(p, (-1,)) for p in tensors])


def vector_to_parameters(vector: Tensor, parameters: Parameters) -> None:
    """Copy consecutive slices of ``vector`` into the parameters (in place; outside the graph)."""
    who = "vector_to_parameters"
    tensors = _tensors(parameters, who)
    if not isinstance(vector, Tensor) or vector.ndim != 1:
        raise TypeError(f"{who}: vector must be a 1-D Tensor, got "
                        f"{getattr(vector, 'shape', type(vector).__name__)}")
    needed = sum(p.size for p in tensors)
    if vector.size != needed:
        raise ValueError(f"{who}: vector has {vector.size} entries, the parameters {needed}")
    offset = 0
    with no_grad():
        for p in tensors:
            inplace.copy_(p, ops.reshape(vector[offset:offset + p.size], p.shape))
            offset += p.size

"""In-place, non-differentiable updates of a tensor's values: the arithmetic optimizers need.

Each function overwrites ``t.data`` through a NumPy ufunc's ``out=`` argument, so afterwards
``t.data`` is the *same* ndarray object with the *same* dtype (values of a wider dtype are
rounded into it, as ``torch.Tensor.add_`` does), records nothing in any graph and returns ``t``.

They are meant for

* leaves -- parameters, updated by an optimizer (which calls them under ``no_grad``),
* tensors without history -- ``.grad`` arrays, optimizer state, buffers.

Every function bumps the tensor's version counter (``Tensor.version``) after its checks pass,
so a backward pass that needs the old values raises instead of using the new ones.

A tensor with a ``grad_fn`` (the result of a recorded operation) is refused with a
``RuntimeError``: its graph may have saved these very values for the backward pass, which would
then silently compute wrong gradients. ``detach()`` first if that is really what you want.

Operands (``other``, ``tensor1`` ...) may be Tensors, ndarrays or numbers; each must broadcast
to ``t``'s shape without changing it, otherwise :class:`~chainrule.ShapeError` names the
argument. A result that cannot be stored in ``t``'s dtype (a float into an integer tensor) is a
``TypeError``. The scalar factors ``alpha`` / ``value`` / ``weight`` follow PyTorch's names.

The functions (``t`` is modified, ``<-`` is elementwise)::

    add_(t, other, alpha=1)                  t <- t + alpha * other
    mul_(t, value)                           t <- t * value
    div_(t, value)                           t <- t / value
    addcmul_(t, tensor1, tensor2, value=1)   t <- t + value * tensor1 * tensor2
    addcdiv_(t, tensor1, tensor2, value=1)   t <- t + value * tensor1 / tensor2
    lerp_(t, end, weight)                    t <- t + weight * (end - t)
    maximum_(t, other)                       t <- max(t, other)   (NaN propagates)
    sqrt_(t)                                 t <- sqrt(t)
    copy_(t, src)                            t <- src
    fill_(t, value), zero_(t)                t <- value, t <- 0

plus ``clone(t, dtype=None)``, a detached copy in a new array (optimizer state, snapshots), and
``adam_``, Adam's whole update of one parameter fused into one call: the same arithmetic, in the
same order, as the sequence of the functions above, but checked once instead of at every step
(an optimizer step of a small model is otherwise mostly argument checking).
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor

__all__ = [
    "add_", "mul_", "div_", "addcmul_", "addcdiv_", "lerp_", "maximum_", "sqrt_",
    "copy_", "fill_", "zero_", "clone", "adam_",
]

#: What may be combined with the tensor being updated.
Operand = Union[Tensor, np.ndarray, float, int]


def _target(name: str, t: Any) -> np.ndarray:
    """``t.data``, after checking that ``t`` may be modified in place."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected the Tensor to update in place, got {type(t).__name__}")
    if t.grad_fn is not None:
        raise RuntimeError(
            f"{name}: refusing to modify a tensor that has a grad_fn ({t.grad_fn!r}): its graph "
            f"may have saved these values for backward. Update a leaf, a .grad or a detach()ed "
            f"tensor"
        )
    if not t.data.flags.writeable:
        raise ValueError(f"{name}: the tensor's data is a read-only array (a broadcast view?)")
    return t.data


def _operand(name: str, argument: str, value: Any, data: np.ndarray) -> Any:
    """``value`` as a NumPy operand (Python numbers stay weak scalars) broadcasting to ``data``."""
    if isinstance(value, Tensor):
        value = value.data
    elif isinstance(value, (bool, int, float)):
        return value
    else:
        value = np.asarray(value)
    if value.dtype == object or value.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {argument} holds {value.dtype} values, expected numbers")
    try:
        fits = np.broadcast_shapes(value.shape, data.shape) == data.shape
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"{name}: {argument} of shape {value.shape} does not broadcast to the updated tensor's "
            f"shape {data.shape} (an in-place update cannot change the shape)"
        )
    return value


def _check_dtype(name: str, data: np.ndarray, *operands: Any) -> None:
    """Refuse a result that ``data``'s dtype cannot hold (a float into an integer tensor)."""
    result = np.result_type(data, *operands)
    if not np.can_cast(result, data.dtype, casting="same_kind"):
        raise TypeError(
            f"{name}: the result has dtype {result}, which cannot be stored in place in a "
            f"{data.dtype} tensor"
        )


def _prepare(name: str, t: Tensor, scalars: tuple = (), **operands: Any) -> tuple:
    """(t.data, operand values...) checked for writability, shapes and dtype."""
    data = _target(name, t)
    values = [_operand(name, argument, value, data) for argument, value in operands.items()]
    _check_dtype(name, data, *values, *scalars)
    t._bump_version()
    return (data, *values)


def add_(t: Tensor, other: Operand, alpha: float = 1.0) -> Tensor:
    """t <- t + alpha * other (``torch.Tensor.add_``)."""
    data, other = _prepare("add_", t, () if alpha == 1 else (alpha,), other=other)
    if alpha != 1:
        other = np.multiply(other, alpha)
    np.add(data, other, out=data)
    return t


def mul_(t: Tensor, value: Operand) -> Tensor:
    """t <- t * value."""
    data, value = _prepare("mul_", t, value=value)
    np.multiply(data, value, out=data)
    return t


def div_(t: Tensor, value: Operand) -> Tensor:
    """t <- t / value (true division: ``t`` must be floating for a float result)."""
    data, value = _prepare("div_", t, (1.0,), value=value)
    np.true_divide(data, value, out=data)
    return t


def addcmul_(t: Tensor, tensor1: Operand, tensor2: Operand, value: float = 1.0) -> Tensor:
    """t <- t + value * tensor1 * tensor2 (products left to right, as PyTorch)."""
    scalars = () if value == 1 else (value,)
    data, tensor1, tensor2 = _prepare("addcmul_", t, scalars, tensor1=tensor1, tensor2=tensor2)
    if value != 1:
        tensor1 = np.multiply(tensor1, value)
    np.add(data, np.multiply(tensor1, tensor2), out=data)
    return t


def addcdiv_(t: Tensor, tensor1: Operand, tensor2: Operand, value: float = 1.0) -> Tensor:
    """t <- t + value * tensor1 / tensor2 (``(value * tensor1) / tensor2``, as PyTorch)."""
    data, tensor1, tensor2 = _prepare("addcdiv_", t, (value, 1.0), tensor1=tensor1, tensor2=tensor2)
    if value != 1:
        tensor1 = np.multiply(tensor1, value)
    np.add(data, np.true_divide(tensor1, tensor2), out=data)
    return t


def lerp_(t: Tensor, end: Operand, weight: Operand) -> Tensor:
    """t <- t + weight * (end - t), PyTorch's two-sided formula.

    Where |weight| < 0.5 it is ``t + weight * (end - t)``, elsewhere ``end - (end - t) * (1 -
    weight)``, so that weight 1 gives exactly ``end``. ``weight`` is a number or a tensor.
    """
    data, end, weight = _prepare("lerp_", t, (), end=end, weight=weight)
    diff = np.subtract(end, data)  # t's shape (end broadcasts to it)
    if np.ndim(weight) == 0:
        if abs(weight) < 0.5:
            np.add(data, np.multiply(diff, weight), out=data)
        else:
            np.subtract(end, np.multiply(diff, 1 - weight), out=data)
        return t
    small = np.abs(weight) < 0.5
    near_start = np.add(data, np.multiply(weight, diff))
    near_end = np.subtract(end, np.multiply(diff, np.subtract(1, weight)))
    np.copyto(data, np.where(small, near_start, near_end), casting="same_kind")
    return t


def maximum_(t: Tensor, other: Operand) -> Tensor:
    """t <- max(t, other) elementwise; a NaN on either side gives NaN (as ``torch.maximum``)."""
    data, other = _prepare("maximum_", t, other=other)
    np.maximum(data, other, out=data)
    return t


def sqrt_(t: Tensor) -> Tensor:
    """t <- sqrt(t) (NaN for negative entries, as NumPy and PyTorch)."""
    data = _target("sqrt_", t)
    _check_dtype("sqrt_", data, 1.0)
    t._bump_version()
    np.sqrt(data, out=data)
    return t


def copy_(t: Tensor, src: Operand) -> Tensor:
    """t <- src (broadcast to t's shape, converted to t's dtype)."""
    data, src = _prepare("copy_", t, src=src)
    np.copyto(data, src, casting="same_kind")
    return t


def fill_(t: Tensor, value: float) -> Tensor:
    """t <- value everywhere."""
    data, value = _prepare("fill_", t, value=value)
    np.copyto(data, value, casting="same_kind")
    return t


def zero_(t: Tensor) -> Tensor:
    """t <- 0 everywhere."""
    return fill_(t, 0)


def clone(t: Tensor, dtype: Any = None) -> Tensor:
    """A detached copy of ``t`` in a new array (optionally converted to ``dtype``)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"clone: expected a Tensor, got {type(t).__name__}")
    return Tensor._from_array(np.array(t.data, dtype=dtype, copy=True))


def adam_(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *, lr: float, beta1: float,
    beta2: float, eps: float, step: int, max_exp_avg_sq: Any = None,
) -> Tensor:
    """One Adam step of ``param`` in place, with the rounding of ``torch.optim.Adam``'s update::

        m <- lerp(m, g, 1 - beta1)                          (lerp_, as above)
        v <- beta2 v + ((1 - beta2) g) g
        v_max <- max(v_max, v); v <- v_max                  when max_exp_avg_sq is given (AMSGrad)
        theta <- theta + (-lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``) are updated too. All tensors must have
    ``param``'s shape and floating dtype.
    """
    data = _target("adam_", param)
    states = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, "grad": grad}
    if max_exp_avg_sq is not None:
        states["max_exp_avg_sq"] = max_exp_avg_sq
    if data.dtype.kind != "f":
        raise TypeError(f"adam_: the parameter must be floating, got {data.dtype}")
    for argument, tensor in states.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"adam_: {argument} must be a Tensor, got {type(tensor).__name__}")
        if tensor.shape != data.shape:
            raise ShapeError(
                f"adam_: {argument} has shape {tensor.shape}, the parameter {data.shape}"
            )
        if tensor.dtype != data.dtype:
            raise TypeError(f"adam_: {argument} is {tensor.dtype}, the parameter {data.dtype}")
    g, m, v = grad.data, _target("adam_", exp_avg), _target("adam_", exp_avg_sq)
    # all checked before any write
    v_max = None if max_exp_avg_sq is None else _target("adam_", max_exp_avg_sq)
    for written in (param, exp_avg, exp_avg_sq, max_exp_avg_sq):
        if written is not None:
            written._bump_version()
    scratch = np.empty_like(data)
    weight = 1 - beta1  # m <- lerp(m, g, weight), lerp_'s two-sided formula
    np.subtract(g, m, out=scratch)
    if abs(weight) < 0.5:
        np.multiply(scratch, weight, out=scratch)
        np.add(m, scratch, out=m)
    else:
        np.multiply(scratch, 1 - weight, out=scratch)
        np.subtract(g, scratch, out=m)
    np.multiply(v, beta2, out=v)
    np.multiply(g, 1 - beta2, out=scratch)
    np.multiply(scratch, g, out=scratch)
    np.add(v, scratch, out=v)
    if v_max is not None:
        v = np.maximum(v_max, v, out=v_max)
    denom = np.sqrt(v, out=scratch)
    np.true_divide(denom, (1 - beta2**step) ** 0.5, out=denom)
    np.add(denom, eps, out=denom)
    # out=: a 0-d result stays an array
    update = np.multiply(m, -lr / (1 - beta1**step), out=np.empty_like(data))
    np.true_divide(update, denom, out=update)
    np.add(data, update, out=data)
    return param

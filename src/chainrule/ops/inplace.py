"""In-place, non-differentiable updates of a tensor's values: the arithmetic optimizers need.

Each function overwrites ``t.data`` -- on NumPy and CuPy through a ufunc's ``out=`` argument
(the fast path), on other array-API backends by computing the new value with the standard and
writing it with ``t.data[...] = value`` (a new array only where the namespace refuses item
assignment) -- so afterwards ``t.data`` is the *same* array object with the *same* dtype (values
of a wider dtype are rounded into it, as ``torch.Tensor.add_`` does), records nothing in any
graph and returns ``t``.

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
argument. ndarrays and numbers go to ``t``'s backend and device; a Tensor on another device is a
:class:`~chainrule.BackendMismatchError`, as in any operation. A result that cannot be stored in
``t``'s dtype (a float into an integer tensor) is a ``TypeError``. The scalar factors
``alpha`` / ``value`` / ``weight`` follow PyTorch's names.

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

import sys
from typing import Any, Union

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor

__all__ = [
    "add_", "mul_", "div_", "addcmul_", "addcdiv_", "lerp_", "maximum_", "sqrt_",
    "copy_", "fill_", "zero_", "clone", "adam_",
]

#: What may be combined with the tensor being updated.
Operand = Union[Tensor, np.ndarray, float, int]


def _target(name: str, t: Any) -> Any:
    """``t.data``, after checking that ``t`` may be modified in place."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected the Tensor to update in place, got {type(t).__name__}")
    if t.grad_fn is not None:
        raise RuntimeError(
            f"{name}: refusing to modify a tensor that has a grad_fn ({t.grad_fn!r}): its graph "
            f"may have saved these values for backward. Update a leaf, a .grad or a detach()ed "
            f"tensor"
        )
    data = t.data
    if type(data) is np.ndarray and not data.flags.writeable:
        raise ValueError(f"{name}: the tensor's data is a read-only array (a broadcast view?)")
    return data


def _namespace(data: Any) -> Any:
    """The array namespace of ``data``: ``numpy`` itself on the hot path."""
    if type(data) is np.ndarray:
        return np
    backend = backends.backend_of(data)
    # CuPy's own namespace has out= (its array-API wrapper, backend.xp, does not promise it)
    return sys.modules["cupy"] if backend.name == "cupy" else backend.xp


def _has_out(xp: Any) -> bool:
    """Whether ``xp``'s functions write through ``out=`` (NumPy, CuPy): the fast path."""
    return xp is np or xp.__name__ == "cupy"


def _dtype_of(value: Any) -> Any:
    """The NumPy dtype of an array operand; a Python number itself (a weak scalar, NEP 50)."""
    if isinstance(value, (bool, int, float)):
        return value
    if type(value) is np.ndarray:
        return value.dtype
    return backends.backend_of(value).np_dtype(value.dtype)


def _on_backend_of(name: str, value: Any, data: Any, tensor: bool) -> Any:
    """An array operand on ``data``'s backend and device: ndarrays move there, Tensors must be."""
    if type(value) not in backends.BY_TYPE:
        value = np.asarray(value)
    source, backend = backends.backend_of(value), backends.backend_of(data)
    if tensor and (source is not backend or backend.device_of(value) != backend.device_of(data)):
        raise backends.mismatch(data, value, name)
    return backends.move(value, backend.device_of(data))


def _operand(name: str, argument: str, value: Any, data: Any) -> Any:
    """``value`` as an operand on ``data``'s backend (Python numbers stay weak scalars) that
    broadcasts to ``data``'s shape."""
    if isinstance(value, Tensor):
        value = value.data
        if type(value) is not type(data):
            value = _on_backend_of(name, value, data, tensor=True)
    elif isinstance(value, (bool, int, float)):
        return value
    elif type(data) is np.ndarray:
        value = np.asarray(value)
    else:
        value = _on_backend_of(name, value, data, tensor=False)
    dtype = value.dtype if type(value) is np.ndarray else _dtype_of(value)
    if dtype.kind not in "biuf":  # also refuses object arrays (kind "O")
        raise TypeError(f"{name}: {argument} holds {dtype} values, expected numbers")
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


def _check_dtype(name: str, data: Any, *operands: Any) -> np.dtype:
    """The result's dtype (NumPy's promotion of ``data`` -- an ndarray or a dtype -- and the
    operands: arrays, dtypes or Python numbers); refused when ``data``'s dtype cannot hold it (a
    float into an integer tensor)."""
    result = np.result_type(data, *operands)
    dtype = data.dtype if type(data) is np.ndarray else data
    if not np.can_cast(result, dtype, casting="same_kind"):
        raise TypeError(
            f"{name}: the result has dtype {result}, which cannot be stored in place in a "
            f"{dtype} tensor"
        )
    return result


def _in_dtype(xp: Any, value: Any, dtype: Any) -> Any:
    """An array ``value`` as ``dtype``; a Python number stays a weak scalar, as on NumPy (lerp's
    ``1 - weight`` is then computed in Python's float64 on every backend)."""
    if isinstance(value, (bool, int, float)) or value.dtype == dtype:
        return value
    return xp.astype(value, dtype)


def _prepare(name: str, t: Tensor, scalars: tuple = (), **operands: Any) -> tuple:
    """(xp, t.data, operand values...) checked for writability, shapes and dtype.

    On backends without ``out=`` the data and array operands come in the result's dtype (the
    standard does not mix dtypes), ready for arithmetic whose value :func:`_write` stores; Python
    numbers stay Python numbers, which the standard's functions take since its 2024.12 version.
    """
    data = _target(name, t)
    values = [_operand(name, argument, value, data) for argument, value in operands.items()]
    if type(data) is np.ndarray:  # the hot path: NumPy's promotion of the arrays themselves
        _check_dtype(name, data, *values, *scalars)
        t._bump_version()
        return (np, data, *values)
    result = _check_dtype(name, t.dtype, *[_dtype_of(v) for v in values], *scalars)
    t._bump_version()
    xp = _namespace(data)
    if _has_out(xp):
        return (xp, data, *values)
    dtype = backends.backend_of(data).dtype(result)
    return (xp, *[_in_dtype(xp, v, dtype) for v in (data, *values)])


def _store(t: Tensor, value: Any) -> None:
    """t <- value, cast to t's dtype and broadcast to its shape, in t's own array where the
    namespace allows item assignment (the standard's ``x[...] = v``), else as a new array."""
    data = t.data
    xp = backends.backend_of(data).xp
    if isinstance(value, (bool, int, float)):
        value = xp.asarray(value, dtype=data.dtype, device=data.device)
    elif value.dtype != data.dtype:
        value = xp.astype(value, data.dtype)
    try:
        data[...] = value
    except (TypeError, ValueError, NotImplementedError):  # immutable arrays (JAX)
        t.data = xp.asarray(xp.broadcast_to(value, data.shape), copy=True)


def _write(t: Tensor, xp: Any, function: Any, *args: Any) -> Tensor:
    """t <- function(*args): through ``out=t.data`` (NumPy, CuPy), else by :func:`_store`."""
    if xp is np or _has_out(xp):
        function(*args, out=t.data)
    else:
        _store(t, function(*args))
    return t


def add_(t: Tensor, other: Operand, alpha: float = 1.0) -> Tensor:
    """t <- t + alpha * other (``torch.Tensor.add_``)."""
    xp, data, other = _prepare("add_", t, () if alpha == 1 else (alpha,), other=other)
    if alpha != 1:
        other = xp.multiply(other, alpha)
    if xp is np:  # the fast path
        np.add(data, other, out=data)
    else:
        _write(t, xp, xp.add, data, other)
    return t


def mul_(t: Tensor, value: Operand) -> Tensor:
    """t <- t * value."""
    xp, data, value = _prepare("mul_", t, value=value)
    if xp is np:  # the fast path
        np.multiply(data, value, out=data)
    else:
        _write(t, xp, xp.multiply, data, value)
    return t


def div_(t: Tensor, value: Operand) -> Tensor:
    """t <- t / value (true division: ``t`` must be floating for a float result)."""
    xp, data, value = _prepare("div_", t, (1.0,), value=value)
    if xp is np:  # the fast path
        np.true_divide(data, value, out=data)
    else:
        _write(t, xp, xp.divide, data, value)
    return t


def addcmul_(t: Tensor, tensor1: Operand, tensor2: Operand, value: float = 1.0) -> Tensor:
    """t <- t + value * tensor1 * tensor2 (products left to right, as PyTorch)."""
    scalars = () if value == 1 else (value,)
    xp, data, tensor1, tensor2 = _prepare("addcmul_", t, scalars, tensor1=tensor1,
                                          tensor2=tensor2)
    if value != 1:
        tensor1 = xp.multiply(tensor1, value)
    if xp is np:  # the fast path
        np.add(data, np.multiply(tensor1, tensor2), out=data)
    else:
        _write(t, xp, xp.add, data, xp.multiply(tensor1, tensor2))
    return t


def addcdiv_(t: Tensor, tensor1: Operand, tensor2: Operand, value: float = 1.0) -> Tensor:
    """t <- t + value * tensor1 / tensor2 (``(value * tensor1) / tensor2``, as PyTorch)."""
    xp, data, tensor1, tensor2 = _prepare("addcdiv_", t, (value, 1.0), tensor1=tensor1,
                                          tensor2=tensor2)
    if value != 1:
        tensor1 = xp.multiply(tensor1, value)
    if xp is np:  # the fast path
        np.add(data, np.true_divide(tensor1, tensor2), out=data)
    else:
        _write(t, xp, xp.add, data, xp.divide(tensor1, tensor2))
    return t


def lerp_(t: Tensor, end: Operand, weight: Operand) -> Tensor:
    """t <- t + weight * (end - t), PyTorch's two-sided formula.

    Where |weight| < 0.5 it is ``t + weight * (end - t)``, elsewhere ``end - (end - t) * (1 -
    weight)``, so that weight 1 gives exactly ``end``. ``weight`` is a number or a tensor.
    """
    xp, data, end, weight = _prepare("lerp_", t, (), end=end, weight=weight)
    diff = xp.subtract(end, data)  # t's shape (end broadcasts to it)
    if getattr(weight, "ndim", 0) == 0:
        if abs(weight) < 0.5:
            return _write(t, xp, xp.add, data, xp.multiply(diff, weight))
        return _write(t, xp, xp.subtract, end, xp.multiply(diff, 1 - weight))
    small = xp.abs(weight) < 0.5
    near_start = xp.add(data, xp.multiply(weight, diff))
    near_end = xp.subtract(end, xp.multiply(diff, xp.subtract(1, weight)))
    if _has_out(xp):
        xp.copyto(data, xp.where(small, near_start, near_end), casting="same_kind")
    else:
        _store(t, xp.where(small, near_start, near_end))
    return t


def maximum_(t: Tensor, other: Operand) -> Tensor:
    """t <- max(t, other) elementwise; a NaN on either side gives NaN (as ``torch.maximum``)."""
    xp, data, other = _prepare("maximum_", t, other=other)
    if xp is np:  # the fast path
        np.maximum(data, other, out=data)
    else:
        _write(t, xp, xp.maximum, data, other)
    return t


def sqrt_(t: Tensor) -> Tensor:
    """t <- sqrt(t) (NaN for negative entries, as NumPy and PyTorch)."""
    xp, data = _prepare("sqrt_", t, (1.0,))
    if xp is np:  # the fast path
        np.sqrt(data, out=data)
    else:
        _write(t, xp, xp.sqrt, data)
    return t


def _assign(t: Tensor, xp: Any, data: Any, value: Any) -> Tensor:
    """t <- value, broadcast and cast (copy_, fill_): ``copyto`` on CuPy, else :func:`_store`."""
    if _has_out(xp):
        xp.copyto(data, value, casting="same_kind")
    else:
        _store(t, value)
    return t


def copy_(t: Tensor, src: Operand) -> Tensor:
    """t <- src (broadcast to t's shape, converted to t's dtype)."""
    xp, data, src = _prepare("copy_", t, src=src)
    if xp is np:  # the fast path
        np.copyto(data, src, casting="same_kind")
        return t
    return _assign(t, xp, data, src)


def fill_(t: Tensor, value: float) -> Tensor:
    """t <- value everywhere."""
    xp, data, value = _prepare("fill_", t, value=value)
    if xp is np:  # the fast path
        np.copyto(data, value, casting="same_kind")
        return t
    return _assign(t, xp, data, value)


def zero_(t: Tensor) -> Tensor:
    """t <- 0 everywhere."""
    return fill_(t, 0)


def clone(t: Tensor, dtype: Any = None) -> Tensor:
    """A detached copy of ``t`` in a new array (optionally converted to ``dtype``)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"clone: expected a Tensor, got {type(t).__name__}")
    xp = _namespace(t.data)
    if _has_out(xp):
        return Tensor._from_array(xp.array(t.data, dtype=dtype, copy=True))
    target = t.data.dtype if dtype is None else backends.backend_of(t.data).dtype(dtype)
    return Tensor._from_array(xp.astype(t.data, target, copy=True))


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
    _check_adam_states(param, states)
    g, m, v = grad.data, _target("adam_", exp_avg), _target("adam_", exp_avg_sq)
    # all checked before any write
    v_max = None if max_exp_avg_sq is None else _target("adam_", max_exp_avg_sq)
    for written in (param, exp_avg, exp_avg_sq, max_exp_avg_sq):
        if written is not None:
            written._bump_version()
    xp = np if type(data) is np.ndarray else _namespace(data)
    if xp is not np and not _has_out(xp):
        return _adam_generic(xp, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr=lr,
                             beta1=beta1, beta2=beta2, eps=eps, step=step)
    scratch = xp.empty_like(data)
    weight = 1 - beta1  # m <- lerp(m, g, weight), lerp_'s two-sided formula
    xp.subtract(g, m, out=scratch)
    if abs(weight) < 0.5:
        xp.multiply(scratch, weight, out=scratch)
        xp.add(m, scratch, out=m)
    else:
        xp.multiply(scratch, 1 - weight, out=scratch)
        xp.subtract(g, scratch, out=m)
    xp.multiply(v, beta2, out=v)
    xp.multiply(g, 1 - beta2, out=scratch)
    xp.multiply(scratch, g, out=scratch)
    xp.add(v, scratch, out=v)
    if v_max is not None:
        v = xp.maximum(v_max, v, out=v_max)
    denom = xp.sqrt(v, out=scratch)
    xp.true_divide(denom, (1 - beta2**step) ** 0.5, out=denom)
    xp.add(denom, eps, out=denom)
    # out=: a 0-d result stays an array
    update = xp.multiply(m, -lr / (1 - beta1**step), out=xp.empty_like(data))
    xp.true_divide(update, denom, out=update)
    xp.add(data, update, out=data)
    return param


def _check_adam_states(param: Tensor, states: dict) -> None:
    """Every state a Tensor of ``param``'s shape, floating dtype, backend and device."""
    data = param.data
    dtype = data.dtype if type(data) is np.ndarray else param.dtype
    if dtype.kind != "f":
        raise TypeError(f"adam_: the parameter must be floating, got {dtype}")
    for argument, tensor in states.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"adam_: {argument} must be a Tensor, got {type(tensor).__name__}")
        if tensor.shape != data.shape:
            raise ShapeError(
                f"adam_: {argument} has shape {tensor.shape}, the parameter {data.shape}"
            )
        if type(tensor.data) is not type(data) or (
                type(data) is not np.ndarray and tensor.device != param.device):
            raise backends.mismatch(data, tensor.data, "adam_")
        if tensor.dtype != dtype:
            raise TypeError(f"adam_: {argument} is {tensor.dtype}, the parameter {dtype}")


def _adam_generic(xp: Any, param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
                  max_exp_avg_sq: Any, *, lr: float, beta1: float, beta2: float, eps: float,
                  step: int) -> Tensor:
    """adam_ with the standard: the fast path's operations in its order, each a new value."""
    g, m, v = grad.data, exp_avg.data, exp_avg_sq.data
    weight = 1 - beta1
    diff = xp.subtract(g, m)
    if abs(weight) < 0.5:
        m = xp.add(m, xp.multiply(diff, weight))
    else:
        m = xp.subtract(g, xp.multiply(diff, 1 - weight))
    v = xp.add(xp.multiply(v, beta2), xp.multiply(xp.multiply(g, 1 - beta2), g))
    _store(exp_avg, m)
    _store(exp_avg_sq, v)
    if max_exp_avg_sq is not None:
        v = xp.maximum(max_exp_avg_sq.data, v)
        _store(max_exp_avg_sq, v)
    denom = xp.add(xp.divide(xp.sqrt(v), (1 - beta2**step) ** 0.5), eps)
    update = xp.divide(xp.multiply(m, -lr / (1 - beta1**step)), denom)
    _store(param, xp.add(param.data, update))
    return param

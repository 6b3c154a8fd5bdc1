"""JAX-style function transforms built on the engine: grad, value_and_grad, vjp, jvp, jacobian, hessian.

Each transform calls ``f`` on fresh leaves (or, when an argument already requires grad because an
outer transform is tracing it, on that very tensor with ``create_graph=True``), then asks the
engine for ``autograd.grad``. That is why they compose: ``grad(grad(f))``, ``jacobian(grad(f))``,
and ``hessian(f)`` is literally ``jacobian(jacobian(f))``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

from chainrule import ops
from chainrule.autograd import grad as autograd_grad
from chainrule.grad_mode import enable_grad
from chainrule.tensor import Tensor

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian"]

ArgNums = Union[int, Sequence[int]]


def _argnums_tuple(argnums: ArgNums, n_args: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise ValueError(f"argnums={argnums!r} is out of range for a call with {n_args} positional arguments")
    return tuple(i % n_args for i in nums)


def _variable(value: Any) -> tuple[Tensor, bool]:
    """The tensor to differentiate with respect to, and whether an outer trace is watching it."""
    if isinstance(value, Tensor) and value.requires_grad:
        return value, True
    x = ops.as_tensor(value)
    if x.dtype.kind != "f":
        raise TypeError(f"can only differentiate with respect to floating inputs, got dtype {x.dtype}")
    return Tensor._from_array(x.data).requires_grad_(), False


def _trace(f: Callable, args: tuple, kwargs: dict, argnums: tuple[int, ...]):
    """Call f with variables at ``argnums``; return (output, variables, nested)."""
    args = list(args)
    variables, nested = [], False
    for i in argnums:
        x, watched = _variable(args[i])
        args[i] = x
        variables.append(x)
        nested = nested or watched
    with enable_grad():
        out = f(*args, **kwargs)
    return out, variables, nested


def _split_aux(out: Any, has_aux: bool):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("has_aux=True needs f to return a pair (output, auxiliary data)")
    return out


def _zeros_for_unused(grads: Sequence, variables: Sequence[Tensor]) -> list[Tensor]:
    return [ops.zeros_like(x) if g is None else g for g, x in zip(grads, variables)]


def _scalar(out: Any, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.size != 1:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(f"{who} needs f to return a scalar Tensor, got {shape}; use jacobian or vjp otherwise")
    if out.dtype.kind != "f":
        raise TypeError(f"{who} needs a floating output, got dtype {out.dtype}")
    return out


def value_and_grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` -> a function returning (f(x), df/dx); with has_aux, ((f(x), aux), df/dx)."""

    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        out, variables, nested = _trace(f, args, kwargs, nums)
        out, aux = _split_aux(out, has_aux)
        out = _scalar(out, "grad")
        if out.requires_grad:
            grads = autograd_grad(out, variables, create_graph=nested, allow_unused=True)
        else:
            grads = [None] * len(variables)
        grads = _zeros_for_unused(grads, variables)
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = out if nested else out.detach()
        return ((value, aux) if has_aux else value), result

    return value_and_grad_f


def grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` (scalar-valued) -> its gradient function: grad(f)(x) = df/dx, shaped like x."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        (value_aux), gradient = value_and_grad_f(*args, **kwargs)
        return (gradient, value_aux[1]) if has_aux else gradient

    return grad_f


def vjp(f: Callable, *primals, has_aux: bool = False):
    """(f(primals), vjp_fn) where vjp_fn(v) = v^T J, one cotangent per primal (a tuple)."""
    out, variables, nested = _trace(f, primals, {}, tuple(range(len(primals))))
    out, aux = _split_aux(out, has_aux)

    def vjp_fn(cotangent) -> tuple:
        cotangent = ops.as_tensor(cotangent, like=out)
        if cotangent.shape != out.shape:
            raise ValueError(f"vjp: cotangent has shape {cotangent.shape}, the output has shape {out.shape}")
        if not out.requires_grad:
            return tuple(ops.zeros_like(x) for x in variables)
        grads = autograd_grad(out, variables, grad_outputs=cotangent, retain_graph=True,
                              create_graph=nested or cotangent.requires_grad, allow_unused=True)
        return tuple(_zeros_for_unused(grads, variables))

    value = out if nested else out.detach()
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(f: Callable, primals: Sequence, tangents: Sequence):
    """(f(primals), J t): the directional derivative, by the double-VJP trick.

    u -> J^T u is linear, so its own VJP with cotangent t is (J^T)^T t = J t.
    """
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    out, variables, nested = _trace(f, tuple(primals), {}, tuple(range(len(primals))))
    if not isinstance(out, Tensor):
        raise TypeError(f"jvp needs f to return a Tensor, got {type(out).__name__}")
    tangents = [ops.as_tensor(t, like=x) for t, x in zip(tangents, variables)]
    for i, (t, x) in enumerate(zip(tangents, variables)):
        if t.shape != x.shape:
            raise ValueError(f"jvp: tangent {i} has shape {t.shape}, its primal has shape {x.shape}")
    if not out.requires_grad:
        return out, ops.zeros_like(out)
    with enable_grad():
        dummy = ops.zeros_like(out, requires_grad=True)
        pulled = autograd_grad(out, variables, grad_outputs=dummy, create_graph=True, allow_unused=True)
        pairing = sum(ops.sum(g * t) for g, t in zip(pulled, tangents) if g is not None)
    if not isinstance(pairing, Tensor) or not pairing.requires_grad:
        return (out if nested else out.detach()), ops.zeros_like(out)
    (tangent_out,) = autograd_grad(pairing, dummy, create_graph=nested, allow_unused=True)
    tangent_out = ops.zeros_like(out) if tangent_out is None else tangent_out
    return (out if nested else out.detach()), tangent_out


def jacobian(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` -> its Jacobian function, shaped ``out.shape + in.shape`` (one backward per output element)."""

    def jacobian_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args))
        out, variables, nested = _trace(f, args, kwargs, nums)
        out, aux = _split_aux(out, has_aux)
        if not isinstance(out, Tensor):
            raise TypeError(f"jacobian needs f to return a Tensor, got {type(out).__name__}")
        rows = [[] for _ in variables]
        for k in range(out.size):
            if not out.requires_grad:
                grads = [None] * len(variables)
            else:
                onehot = ops.zeros_like(out)
                onehot.data.reshape(-1)[k] = 1
                grads = autograd_grad(out, variables, grad_outputs=onehot, retain_graph=True,
                                      create_graph=nested, allow_unused=True)
            for row, g in zip(rows, _zeros_for_unused(grads, variables)):
                row.append(g)
        jacobians = []
        for row, x in zip(rows, variables):
            stacked = ops.stack(row) if row else ops.zeros((0,) + x.shape, dtype=x.dtype)
            jacobians.append(ops.reshape(stacked, out.shape + x.shape))
        result = jacobians[0] if isinstance(argnums, int) else tuple(jacobians)
        return (result, aux) if has_aux else result

    return jacobian_f


def hessian(f: Callable, argnums: ArgNums = 0) -> Callable:
    """The matrix of second derivatives, ``jacobian(jacobian(f))``: shape out + in + in."""
    return jacobian(jacobian(f, argnums), argnums)

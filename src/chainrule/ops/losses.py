"""Loss functions (PyTorch names, layouts and ``reduction='mean'|'sum'|'none'``).

Inputs are floats (integer inputs become float32); a mean over no sample (an empty batch, or
every target ignored) is nan, as in PyTorch.

Two are primitives with fused rules: binary_cross_entropy (PyTorch's clamped log and
gradient) and softmax_cross_entropy, the per-sample -log softmax(z)[y] behind ``cross_entropy``
with integer targets, whose VJP is g (softmax(z) - onehot(y)), finite for any finite logits.
The rest are composites of primitives and need no rules of their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import backends
from chainrule.backends import Backend
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, broadcast
from chainrule.ops.activations import log_softmax, softmax, softplus
from chainrule.ops.elementwise import astype, floating, log, log1p, maximum
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import mean, sum
from chainrule.ops.shape import reshape

__all__ = [
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "nll_loss",
]

_REDUCTIONS = ("mean", "sum", "none")
# PyTorch clamps log(p) at -100 in binary_cross_entropy so that p = 0 or 1 gives a finite loss.
_LOG_FLOOR = -100.0


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    return loss


def _float_target(target, input: Tensor) -> Tensor:
    """A float target in the input's dtype, so a float64 target does not promote a float32 loss."""
    target = as_tensor(target, like=input)
    if target.dtype != input.dtype:
        target = astype(target, input.dtype)
    return target


def _weighted_mean(total: Tensor, weight_sum) -> Tensor:
    """total / weight_sum; nan when no sample counts (an empty batch, every target ignored), as
    PyTorch, without NumPy's 0/0 warning."""
    return total / weight_sum if weight_sum else total * np.nan


def _check_probabilities(name: str, argument: str, t: Tensor) -> None:
    """Every element in [0, 1] (nan is not), PyTorch's check and message, naming the argument."""
    xp = backends.backend_of(t.data).xp
    if not bool(xp.all(xp.logical_and(t.data >= 0, t.data <= 1))):
        host = t.numpy()  # the error's example element, read on the host
        bad = host[~((host >= 0) & (host <= 1))].flat[0]
        logits = "; for raw scores use binary_cross_entropy_with_logits"
        hint = logits if argument == "input" else ""
        raise ValueError(f"{name}: all elements of {argument} should be between 0 and 1 "
                         f"({argument} must hold probabilities in [0, 1], found {bad}){hint}")


def _check(name: str, input: Tensor, target: Tensor, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{name}: reduction={reduction!r}; valid values are 'mean', 'sum' and 'none'"
        )
    if input.shape != target.shape:
        raise ShapeError(
            f"{name}: input has shape {input.shape} but target has shape {target.shape}; "
            "they must match"
        )


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2); gradient 2 (input - target) / n."""
    input = floating(input)  # a loss is a float: integer input is float32
    target = _float_target(target, input)
    _check("mse_loss", input, target, reduction)
    diff = input - target
    return _reduce(diff * diff, reduction)


def _bce_impl(p, y):
    with np.errstate(divide="ignore"):  # log(0) = -inf is floored just below
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), _LOG_FLOOR)
    return -(y * log_p + (1 - y) * log_q)


def _bce(xp, p, y):
    """-(y log p + (1 - y) log(1 - p)), each log floored at -100; log is never evaluated at 0
    (where the floor is the value anyway), so no backend warns of a division by zero."""
    log_p = _floored(xp, xp.log, p > 0, p, 1.0)
    log_q = _floored(xp, xp.log1p, p < 1, -p, 0.0)
    return -(y * log_p + (1 - y) * log_q)


def _floored(xp, log, defined, u, neutral: float):
    """max(log(u), -100) where ``defined``, else -100; ``neutral`` stands in for u there."""
    value = xp.maximum(log(xp.where(defined, u, neutral)), _LOG_FLOOR)
    return xp.where(defined, value, _LOG_FLOOR)


def _bce_vjp_p(g, out, p, y):
    """(p - y) / (p (1 - p)), the denominator kept >= 1e-12 as PyTorch does, so p = 0 or 1 stays
    finite."""
    return g * (p - y) / maximum(p * (1 - p), _BCE_EPS)


def _bce_vjp_y(g, out, p, y):
    return g * (maximum(log1p(-p), _LOG_FLOOR) - maximum(log(p), _LOG_FLOOR))


_BCE_EPS = 1e-12
# NumPy keeps its kernel: errstate silences log(0) without the generic kernel's extra wheres.
bce_p = Primitive("binary_cross_entropy", _bce_impl, generic=_bce,
                  abstract_eval=broadcast).defvjp(_bce_vjp_p, _bce_vjp_y)


def _softmax_ce_impl(z, *, target, sample_weight):
    """Per-sample -w_n log softmax(z_n)[y_n], class axis 1, the log-softmax shifted by the max."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    if z.ndim == 2:  # the common (N, C) case: plain fancy indexing is several times faster
        picked = shifted[np.arange(len(target)), target]
    else:
        picked = np.take_along_axis(shifted, np.expand_dims(target, 1), axis=1).squeeze(1)
    return (log_norm - picked) * sample_weight


def _softmax_ce(xp, z, *, target, sample_weight):
    """Per-sample -w_n log softmax(z_n)[y_n] = w_n (log sum_c e^(z_nc - m) - (z_ny - m)),
    m = max_c z_nc, class axis 1."""
    shifted = z - xp.max(z, axis=1, keepdims=True)
    log_norm = xp.log(xp.sum(xp.exp(shifted), axis=1))
    picked = xp.take_along_axis(shifted, xp.expand_dims(target, axis=1), axis=1)
    return (log_norm - xp.squeeze(picked, axis=1)) * sample_weight


def _per_sample(z: ShapeDtype, **params: Any) -> ShapeDtype:
    """(N, C, d1, ...) logits give (N, d1, ...) losses in the logits' dtype."""
    return ShapeDtype(z.shape[:1] + z.shape[2:], z.dtype, z.device)


def _softmax_ce_vjp(g, out, z, *, target, sample_weight):
    """The fused gradient w_n g_n (softmax(z_n) - onehot(y_n)): finite for any finite logits."""
    backend = backends.backend_of(z.data)
    onehot = Tensor._from_array(_one_hot_along_1(backend, target, z.shape[1], z.dtype))
    weight = Tensor._from_array(backend.xp.expand_dims(sample_weight, axis=1))
    return g.reshape(weight.shape) * weight * (softmax(z, axis=1) - onehot)


# NumPy keeps its kernel: fancy indexing picks the (N, C) logits several times faster.
softmax_cross_entropy_p = Primitive("softmax_cross_entropy", _softmax_ce_impl,
                                    generic=_softmax_ce, abstract_eval=_per_sample).defvjp(
    _softmax_ce_vjp)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1].

    As PyTorch: each log is floored at -100, so p = 0 or 1 gives a finite loss, and the gradient
    (p - y) / (p (1 - p)) has its denominator kept >= 1e-12. An input or target element outside
    [0, 1], nan included, raises ValueError naming the argument (PyTorch's check).
    """
    input = floating(input)
    target = _float_target(target, input)
    _check("binary_cross_entropy", input, target, reduction)
    _check_probabilities("binary_cross_entropy", "input", input)
    _check_probabilities("binary_cross_entropy", "target", target)
    loss = bce_p.bind(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction: str = "mean", pos_weight=None
) -> Tensor:
    """BCE of sigmoid(z), computed stably as (1 - y) z + w_y softplus(-z),
    w_y = 1 + (pos_weight - 1) y.

    Without pos_weight this is softplus(z) - y z; its gradient is sigmoid(z) - y.
    """
    input = floating(input)
    target = _float_target(target, input)
    _check("binary_cross_entropy_with_logits", input, target, reduction)
    log_weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + log_weight * softplus(-input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _class_weights(backend: Backend, input: Tensor, target: Any, weight, ignore_index: int
                   ) -> Any:
    """Per-sample weight: weight[target] (1 without weights), 0 where target == ignore_index.

    A class outside 0..C-1 (other than ignore_index) raises ValueError on every backend.
    """
    xp, n_classes, dtype = backend.xp, input.shape[1], backend.dtype(input.dtype)
    valid = target != ignore_index
    out_of_range = xp.logical_and(valid, xp.logical_or(target < 0, target >= n_classes))
    if bool(xp.any(out_of_range)):
        host = backend.to_host(target)  # the error's example class, read on the host
        bad = host[(host != ignore_index) & ((host < 0) | (host >= n_classes))][0]
        raise ValueError(
            f"cross_entropy/nll_loss: target holds class {bad}, outside 0..{n_classes - 1} "
            f"(ignore_index={ignore_index})"
        )
    if weight is None:
        return xp.astype(valid, dtype)
    per_class = _array_like(weight, input)
    safe = xp.reshape(xp.where(valid, target, 0), (-1,))  # take wants 1-d indices
    picked = xp.reshape(xp.take(per_class, safe), target.shape)
    return xp.where(valid, picked, 0.0)


def _array_like(value, input: Tensor) -> Any:
    """``value`` (class weights) as an array in the input's dtype on its backend and device."""
    t = as_tensor(value, like=input)
    if t.device != input.device:
        raise backends.mismatch(input.data, t.data, "cross_entropy/nll_loss weight")
    return t.data if t.dtype == input.dtype else astype(t, input.dtype).data


def _one_hot_along_1(backend: Backend, target: Any, n_classes: int, dtype) -> Any:
    """onehot with the class axis at position 1: (N, d1, ...) -> (N, C, d1, ...)."""
    if type(target) is np.ndarray:  # NumPy: rows of the identity, faster than comparisons
        onehot = np.eye(n_classes, dtype=dtype)[target]  # (N, d1, ..., C)
        return onehot if target.ndim == 1 else np.moveaxis(onehot, -1, 1)
    xp = backend.xp
    classes = xp.arange(n_classes, dtype=target.dtype, device=target.device)
    classes = xp.reshape(classes, (1, n_classes) + (1,) * (target.ndim - 1))
    return xp.astype(xp.expand_dims(target, axis=1) == classes, backend.dtype(dtype))


def nll_loss(
    input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at integer ``target``
    (N, ...).

    loss_n = -w[y_n] input[n, y_n]; 'mean' divides by sum_n w[y_n] (PyTorch's weighted mean).
    """
    input = floating(input)
    target_array = _int_target("nll_loss", input, target)
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"nll_loss: reduction={reduction!r}; valid values are 'mean', 'sum' and 'none'"
        )
    backend = backends.backend_of(input.data)
    sample_weight = _class_weights(backend, input, target_array, weight, ignore_index)
    safe_target = backend.xp.where(target_array == ignore_index, 0, target_array)
    pick = _one_hot_along_1(backend, safe_target, input.shape[1], input.dtype)
    pick = pick * backend.xp.expand_dims(sample_weight, axis=1)
    loss = -sum(input * Tensor._from_array(pick), axis=1)
    if reduction == "mean":
        return _weighted_mean(sum(loss), float(backend.xp.sum(sample_weight)))
    return _reduce(loss, reduction)


def _int_target(name: str, input: Tensor, target) -> Any:
    """The class indices' array, on the input's backend (Python and NumPy data are moved there)."""
    target = _target_tensor(name, input, target)
    if input.ndim < 2:
        raise ShapeError(
            f"{name}: input must be (N, C) or (N, C, d1, ...), got shape {input.shape}"
        )
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {target.dtype}")
    expected = input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        raise ShapeError(
            f"{name}: input {input.shape} needs target of shape {expected}, got {target.shape}"
        )
    return target.data


def _target_tensor(name: str, input: Tensor, target) -> Tensor:
    """``target`` as a Tensor on the input's device; a Tensor on another device is an error."""
    was_tensor = isinstance(target, Tensor)
    target = as_tensor(target)
    kind = type(target.data)
    if kind is type(input.data) and (kind is np.ndarray or target.device == input.device):
        return target
    if was_tensor:
        raise backends.mismatch(input.data, target.data, name)
    return Tensor._from_array(backends.move(target.data, input.device))


def cross_entropy(
    input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C, ...), class axis 1 (PyTorch layout).

    ``target`` is integer class indices (N, ...) or class probabilities shaped like ``input``.
    loss_n = -sum_c q_nc log softmax(z_n)_c with q the (smoothed) target distribution:
    q = (1 - eps) onehot(y) + eps / C. The gradient w.r.t. z is softmax(z) - q (times 1/N for the
    mean).
    """
    input = floating(input)
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"cross_entropy: reduction={reduction!r}; valid values are 'mean', 'sum' and 'none'"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing={label_smoothing} must be in [0, 1]")
    if input.ndim < 2:
        raise ShapeError(
            f"cross_entropy: input must be (N, C) or (N, C, d1, ...), got shape {input.shape}"
        )
    n_classes = input.shape[1]
    target_t = as_tensor(target, like=input)
    if target_t.dtype.kind == "f":  # class probabilities
        target_t = _float_target(target_t, input)
        if target_t.shape != input.shape:
            raise ShapeError(
                "cross_entropy: probability target must have the input's shape "
                f"{input.shape}, got {target_t.shape}"
            )
        if label_smoothing:
            target_t = target_t * (1 - label_smoothing) + label_smoothing / n_classes
        terms = target_t * log_softmax(input, axis=1)
        if weight is not None:
            class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
            terms = terms * reshape(as_tensor(weight, like=input), class_shape)
        return _reduce(-sum(terms, axis=1), reduction)
    target_array = _int_target("cross_entropy", input, target_t)
    backend = backends.backend_of(input.data)
    xp = backend.xp
    sample_weight = _class_weights(backend, input, target_array, weight, ignore_index)
    weight_sum = float(xp.sum(sample_weight)) if reduction == "mean" else 0.0
    safe_target = xp.where(target_array == ignore_index, 0, target_array)
    losses = softmax_cross_entropy_p.bind(input, target=safe_target, sample_weight=sample_weight)
    if reduction == "mean":
        nll = _weighted_mean(sum(losses), weight_sum)
    else:
        nll = _reduce(losses, reduction)
    if not label_smoothing:
        return nll
    log_p = log_softmax(input, axis=1)
    # smoothing term: -sum_c w_c log p_c / C for every non-ignored sample
    valid = xp.astype(target_array != ignore_index, backend.dtype(input.dtype))
    coef = xp.expand_dims(valid, axis=1)  # (N, 1, d1, ...): times the class weights, if any
    if weight is not None:
        class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
        coef = coef * xp.reshape(_array_like(weight, input), class_shape)
    smooth = -sum(log_p * Tensor._from_array(coef), axis=1) / n_classes
    if reduction == "mean":
        smooth = _weighted_mean(sum(smooth), weight_sum)
    else:
        smooth = _reduce(smooth, reduction)
    return nll * (1 - label_smoothing) + smooth * label_smoothing

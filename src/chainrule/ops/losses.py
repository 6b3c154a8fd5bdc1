"""Loss functions (PyTorch names, layouts and ``reduction='mean'|'sum'|'none'``).

Inputs are floats (integer inputs become float32); a mean over no sample (an empty batch, or
every target ignored) is nan, as in PyTorch.

Two are primitives with fused rules: binary_cross_entropy (PyTorch's clamped log and
gradient) and softmax_cross_entropy, the per-sample -log softmax(z)[y] behind ``cross_entropy``
with integer targets, whose VJP is g (softmax(z) - onehot(y)), finite for any finite logits.
The rest (l1, smooth L1, Huber, KL divergence, margin ranking, cosine embedding, triplet margin,
Poisson NLL ...) are composites of primitives and need no rules of their own; at their kinks
(``|d| = 0`` for l1, a hinge at its margin) they follow PyTorch's gradient convention, said in each
docstring.
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
from chainrule.ops.elementwise import (
    abs,
    astype,
    exp,
    floating,
    log,
    log1p,
    maximum,
    minimum,
    sqrt,
    where,
)
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import max, mean, sum
from chainrule.ops.shape import reshape

__all__ = [
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "margin_ranking_loss",
    "cosine_embedding_loss", "triplet_margin_loss", "poisson_nll_loss",
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
    PyTorch, without NumPy's 0/0 warning, and then a zero gradient (PyTorch's: no sample counts)."""
    return total / weight_sum if weight_sum else total * 0.0 + np.nan


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


def _check_reduction(name: str, reduction: str, valid: tuple = _REDUCTIONS) -> None:
    if reduction not in valid:
        listed = ", ".join(repr(r) for r in valid[:-1]) + f" and {valid[-1]!r}"
        raise ValueError(f"{name}: reduction={reduction!r}; valid values are {listed}")


def _check(name: str, input: Tensor, target: Tensor, reduction: str,
           valid: tuple = _REDUCTIONS) -> None:
    _check_reduction(name, reduction, valid)
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

    loss_n = -w[y_n] input[n, y_n], 0 where y_n == ``ignore_index``; 'mean' divides by
    sum_n w[y_n] over the targets not ignored (PyTorch's weighted mean; nan when every target is
    ignored). An unbatched input (C,) takes a 0-d target and gives a 0-d loss. The gradient
    w.r.t. input is -w[y_n] at (n, y_n) (over the weight sum for 'mean'), 0 elsewhere; ``weight``
    (one per class) is a constant.
    """
    input = floating(input)
    _check_reduction("nll_loss", reduction)
    if input.ndim == 1:
        return _unbatched(nll_loss, "nll_loss", input, target, reduction,
                          weight=weight, ignore_index=ignore_index)
    target_array = _int_target("nll_loss", input, target)
    _check_weight("nll_loss", weight, input.shape[1])
    backend = backends.backend_of(input.data)
    sample_weight = _class_weights(backend, input, target_array, weight, ignore_index)
    safe_target = backend.xp.where(target_array == ignore_index, 0, target_array)
    pick = _one_hot_along_1(backend, safe_target, input.shape[1], input.dtype)
    pick = pick * backend.xp.expand_dims(sample_weight, axis=1)
    loss = -sum(input * Tensor._from_array(pick), axis=1)
    if reduction == "mean":
        return _weighted_mean(sum(loss), float(backend.xp.sum(sample_weight)))
    return _reduce(loss, reduction)


def _check_weight(name: str, weight, n_classes: int) -> None:
    """Class weights: one per class, shape (C,) (PyTorch's check)."""
    if weight is None:
        return
    shape = tuple(weight.shape) if isinstance(weight, Tensor) else np.shape(weight)
    if shape != (n_classes,):
        raise ValueError(
            f"{name}: weight must hold one value per class, shape ({n_classes},), got shape {shape}"
        )


def _class_target(target, input: Tensor) -> Tensor:
    """``target`` as a Tensor beside ``input``: a Python int is a class index (int64), not a
    number to take the input's float dtype."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        target = np.asarray(target, np.int64)
    return as_tensor(target, like=input)


def _unbatched(fn, name: str, input: Tensor, target, reduction: str, **options: Any) -> Tensor:
    """``fn`` on an unbatched input (C,): a batch of one, the target a 0-d class index or (for
    cross_entropy) class probabilities (C,); 'none' gives a 0-d loss, as PyTorch."""
    target = _class_target(target, input)
    probabilities = target.dtype.kind == "f"
    if probabilities and fn is nll_loss:
        raise TypeError(f"{name}: target must hold integer class indices, got dtype "
                        f"{target.dtype}")
    expected = input.shape if probabilities else ()
    if target.shape != expected:
        raise ShapeError(
            f"{name}: an unbatched input of shape {input.shape} (C,) needs a 0-d class index "
            f"or class probabilities of shape {input.shape}, got target of shape {target.shape}"
        )
    loss = fn(reshape(input, (1,) + input.shape), reshape(target, (1,) + target.shape),
              reduction=reduction, **options)
    return reshape(loss, ()) if reduction == "none" else loss


def _int_target(name: str, input: Tensor, target) -> Any:
    """The class indices' array, on the input's backend (Python and NumPy data are moved there)."""
    target = _target_tensor(name, input, target)
    if input.ndim < 2:
        raise ShapeError(
            f"{name}: input must be (C,), (N, C) or (N, C, d1, ...), got shape {input.shape}"
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
    """Softmax cross-entropy of logits ``input`` (N, C, ...), class axis 1 (PyTorch layout), or
    of one unbatched sample (C,).

    ``target`` is integer class indices (N, ...) (a 0-d index for an unbatched input) or class
    probabilities shaped like ``input`` (a float target). With log p = log_softmax(z) along the
    class axis, class weights w (default 1) and smoothing eps:

    - class indices: loss_n = (1 - eps) (-w[y_n] log p[n, y_n]) + eps (-sum_c w_c log p_nc / C),
      0 where y_n == ``ignore_index``; 'mean' divides the sum by sum_n w[y_n] over the targets
      not ignored (PyTorch's weighted mean; nan when every target is ignored). The gradient
      w.r.t. z is w[y_n] (softmax(z_n) - onehot(y_n)) plus the smoothing term's.
    - probabilities q: loss_n = -sum_c w_c q'_nc log p_nc, q' = (1 - eps) q + eps / C; 'mean'
      divides by the number of samples N (times d1 ...), as PyTorch. The gradient w.r.t. z is
      softmax(z) sum_c w_c q'_c - w q' (softmax(z) - q' without weights); w.r.t. q it is
      -(1 - eps) w log p. ``ignore_index`` does not apply (a non-negative one is an error).
    """
    input = floating(input)
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing={label_smoothing} must be in [0, 1]")
    if input.ndim == 1:
        return _unbatched(cross_entropy, "cross_entropy", input, target, reduction,
                          weight=weight, ignore_index=ignore_index,
                          label_smoothing=label_smoothing)
    if input.ndim < 2:
        raise ShapeError(
            "cross_entropy: input must be (C,), (N, C) or (N, C, d1, ...), "
            f"got shape {input.shape}"
        )
    n_classes = input.shape[1]
    _check_weight("cross_entropy", weight, n_classes)
    target_t = _class_target(target, input)
    if target_t.dtype.kind == "f":  # class probabilities
        return _cross_entropy_probabilities(input, target_t, weight, ignore_index, reduction,
                                            label_smoothing)
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


def _cross_entropy_probabilities(input: Tensor, target: Tensor, weight, ignore_index: int,
                                 reduction: str, label_smoothing: float) -> Tensor:
    """-sum_c w_c q'_nc log softmax(z_n)_c, q' the smoothed target; see :func:`cross_entropy`."""
    if ignore_index >= 0:
        raise ValueError(
            f"cross_entropy: ignore_index={ignore_index} is not supported with class-probability "
            "(float) targets; leave it at -100 or pass integer class indices"
        )
    target = _float_target(target, input)
    if target.shape != input.shape:
        raise ShapeError(
            "cross_entropy: probability target must have the input's shape "
            f"{input.shape}, got {target.shape}"
        )
    n_classes = input.shape[1]
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = target * log_softmax(input, axis=1)
    if weight is not None:
        class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
        per_class = Tensor._from_array(_array_like(weight, input))
        terms = terms * reshape(per_class, class_shape)
    return _reduce(-sum(terms, axis=1), reduction)


# ------------------------------------------------------------------ regression and ranking losses
def _pointwise_pair(name: str, input, target, reduction: str, valid: tuple = _REDUCTIONS
                    ) -> tuple[Tensor, Tensor]:
    """(input, target) of an elementwise loss: floats of one dtype and one shape."""
    input = floating(input)
    target = _float_target(target, input)
    _check(name, input, target, reduction, valid)
    return input, target


def _elementwise_weight(name: str, weight, input: Tensor) -> Tensor:
    """A weight per element: the input's shape (PyTorch's check), in its dtype."""
    weight = _float_target(weight, input)
    if weight.shape != input.shape:
        raise ShapeError(
            f"{name}: weight has shape {weight.shape}; it must have the input's shape {input.shape}"
        )
    return weight


def _hinge(h: Tensor) -> Tensor:
    """max(h, 0) with PyTorch's ``clamp_min`` gradient: 1 where h >= 0 (the kink h = 0 included),
    0 where h < 0."""
    return where(h >= 0, h, 0.0)


def l1_loss(input, target, reduction: str = "mean", weight=None) -> Tensor:
    """Mean absolute error: ``|input - target|`` per element, reduced.

    With ``weight`` (the input's shape) each term is ``weight * |input - target|`` and 'mean'
    divides by sum(weight) (PyTorch's weighted l1_loss). The gradient w.r.t. input is
    sign(input - target) (times the weight, over n or sum(weight) for 'mean'), with PyTorch's
    convention 0 where input == target.
    """
    input, target = _pointwise_pair("l1_loss", input, target, reduction)
    loss = abs(input - target)
    if weight is None:
        return _reduce(loss, reduction)
    weight = _elementwise_weight("l1_loss", weight, input)
    loss = loss * weight
    if reduction == "mean":
        return sum(loss) / sum(weight)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Smooth L1: with d = input - target, ``0.5 d^2 / beta`` where ``|d| < beta``, else
    ``|d| - 0.5 beta``.

    The gradient d / beta inside, sign(d) outside, is continuous (both are +-1 at ``|d| = beta``);
    the second derivative jumps from 1/beta to 0 there. ``beta`` = 0 is :func:`l1_loss`
    (gradient 0 at d = 0); a negative beta is an error (PyTorch's check).
    """
    input, target = _pointwise_pair("smooth_l1_loss", input, target, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta={beta} must be non-negative")
    if beta == 0:
        return l1_loss(input, target, reduction)
    diff = input - target
    size = abs(diff)
    loss = where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None
               ) -> Tensor:
    """Huber loss: with d = input - target, ``0.5 d^2`` where ``|d| < delta``, else
    ``delta (|d| - 0.5 delta)``, i.e. delta * smooth_l1_loss with beta = delta.

    The gradient (d inside, delta sign(d) outside) is continuous; the second derivative jumps
    at ``|d| = delta``. ``delta`` must be positive (PyTorch's check). With ``weight`` (the input's
    shape) each term is multiplied by it and 'mean' stays the plain mean (PyTorch's weighted
    huber_loss, unlike l1_loss's).
    """
    input, target = _pointwise_pair("huber_loss", input, target, reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta={delta} must be positive")
    diff = input - target
    size = abs(diff)
    loss = where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    if weight is not None:
        loss = loss * _elementwise_weight("huber_loss", weight, input)
    return _reduce(loss, reduction)


def kl_div(input, target, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Kullback-Leibler divergence terms with ``input`` log-probabilities (PyTorch's layout).

    Pointwise: target (log target - input), with 0 log 0 = 0 (PyTorch's ``xlogy``; a negative
    target gives nan as there); with ``log_target`` the target is log-probabilities too:
    e^target (target - input). d/d input = -target (-e^target); d/d target = log target + 1 -
    input (e^target (target - input + 1)); at target = 0 the target's gradient is not defined
    (the one-sided derivative is -inf): there the t log t term contributes 0, giving -input
    (PyTorch gives nan).

    ``reduction``: 'batchmean' divides the sum by input.shape[0] (the true KL divergence per
    sample; the sum for a 0-d input), 'mean' by the number of elements (PyTorch's default,
    which it warns is not the KL divergence), 'sum', 'none'.
    """
    valid = ("mean", "batchmean", "sum", "none")
    input, target = _pointwise_pair("kl_div", input, target, reduction, valid)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        zero = target == 0
        safe = where(zero, 1.0, target)  # log is never taken at 0: no warning, no nan gradient
        loss = where(zero, 0.0, target * log(safe)) - target * input
    if reduction == "batchmean":
        if input.ndim == 0:
            return sum(loss)
        return _weighted_mean(sum(loss), input.shape[0])
    return _reduce(loss, reduction)


def _ranking_shapes(name: str, *tensors: Tensor) -> None:
    """Inputs of one rank that broadcast together (PyTorch's check)."""
    if len({t.ndim for t in tensors}) != 1:
        ranks = ", ".join(str(t.shape) for t in tensors)
        raise ShapeError(f"{name}: all inputs must have the same number of dimensions, got "
                         f"shapes {ranks}")
    try:
        np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise ShapeError(f"{name}: shapes {shapes} do not broadcast") from None


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: str = "mean"
                        ) -> Tensor:
    """max(0, -y (x1 - x2) + margin) with y = +-1 saying which input should rank higher.

    All three have one rank and broadcast together (PyTorch's rule). The gradient w.r.t. x1 is
    -y where the hinge is active and 0 where it is not; at the kink -y (x1 - x2) + margin = 0 it
    is -y, PyTorch's ``clamp_min`` convention.
    """
    _check_reduction("margin_ranking_loss", reduction)
    input1 = floating(input1)
    input2 = _float_target(input2, input1)
    target = _float_target(target, input1)
    _ranking_shapes("margin_ranking_loss", input1, input2, target)
    return _reduce(_hinge(-target * (input1 - input2) + margin), reduction)


# PyTorch's guard on the squared norms of cosine_embedding_loss
_COSINE_EPS = 1e-12


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1, 0 for any other y.

    Inputs (N, D) with target (N,), or unbatched (D,) with a 0-d target. As PyTorch,
    ``cos = <x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))``, so zero vectors give cos = 0, not
    nan. The hinge's gradient at cos = margin is the active side's (PyTorch's ``clamp_min``);
    the target gets no gradient.
    """
    _check_reduction("cosine_embedding_loss", reduction)
    input1 = floating(input1)
    input2 = _float_target(input2, input1)
    target = _class_target(target, input1)
    if target.ndim not in (0, 1):
        raise ShapeError("cosine_embedding_loss: target must be 0-d or 1-d (N,), got shape "
                         f"{target.shape}")
    want = target.ndim + 1
    if input1.ndim != want or input2.ndim != want:
        raise ShapeError(
            f"cosine_embedding_loss: a {target.ndim}-d target needs {want}-d inputs, got shapes "
            f"{input1.shape} and {input2.shape}"
        )
    axis = want - 1
    dot = sum(input1 * input2, axis=axis)
    squares = (sum(input1 * input1, axis=axis) + _COSINE_EPS) * (
        sum(input2 * input2, axis=axis) + _COSINE_EPS)
    cos = dot / sqrt(squares)
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, _hinge(cos - margin), 0.0)
    return _reduce(loss, reduction)


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float, eps: float) -> Tensor:
    """||x1 - x2 + eps||_p over the last axis (PyTorch's ``pairwise_distance``).

    At a zero distance the gradient is 0 (PyTorch's norm subgradient), not 0 / 0.
    """
    diff = x1 - x2 + eps
    if p == np.inf:
        return max(abs(diff), axis=-1)
    if p == 1:
        return sum(abs(diff), axis=-1)
    powers = diff * diff if p == 2 else abs(diff) ** p
    total = sum(powers, axis=-1)
    zero = total == 0
    safe = where(zero, 1.0, total)  # the root is never taken at 0: its derivative is infinite
    root = sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return where(zero, 0.0, root)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: str = "mean"
                        ) -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)), d(x, y) = ||x - y + eps||_p over the last axis.

    Inputs (N, D) or unbatched (D,), one rank for all three. With ``swap`` the negative distance
    is min(d(a, n), d(p, n)) (the distance swap of Balntas et al.; ties split the gradient, as
    PyTorch's ``min``). The hinge's gradient at its kink is the active side's (PyTorch's
    ``clamp_min``). ``p`` is a positive number or inf.
    """
    _check_reduction("triplet_margin_loss", reduction)
    if not p > 0:
        raise ValueError(f"triplet_margin_loss: p={p} must be positive (or inf)")
    anchor = floating(anchor)
    positive = _float_target(positive, anchor)
    negative = _float_target(negative, anchor)
    if len({anchor.ndim, positive.ndim, negative.ndim}) != 1:
        raise ShapeError(
            "triplet_margin_loss: anchor, positive and negative must have the same number of "
            f"dimensions, got shapes {anchor.shape}, {positive.shape} and {negative.shape}"
        )
    if anchor.ndim == 0:
        raise ShapeError("triplet_margin_loss: inputs must be (N, D) or (D,), got 0-d tensors")
    d_positive = _pairwise_distance(anchor, positive, p, eps)
    d_negative = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_negative = minimum(d_negative, _pairwise_distance(positive, negative, p, eps))
    return _reduce(_hinge(margin + d_positive - d_negative), reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of a Poisson count ``target`` with rate given by ``input``.

    ``log_input``: input is the log rate, loss = e^input - target input (gradient
    e^input - target); otherwise input is the rate, loss = input - target log(input + eps)
    (gradient 1 - target / (input + eps)). ``full`` adds Stirling's approximation of
    log(target!), target log target - target + 0.5 log(2 pi target), where target > 1 (0 at
    target <= 1, as PyTorch; that masked term gives the target no gradient there, where
    PyTorch's gradient is nan at target = 0).
    """
    input, target = _pointwise_pair("poisson_nll_loss", input, target, reduction)
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        counted = target > 1
        safe = where(counted, target, 1.0)  # log is never taken at target <= 1
        stirling = safe * log(safe) - safe + 0.5 * log(2 * np.pi * safe)
        loss = loss + where(counted, stirling, 0.0)
    return _reduce(loss, reduction)

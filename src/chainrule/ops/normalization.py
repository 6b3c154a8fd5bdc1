"""Dropout, normalisation (batch, layer, group, instance norm) and embedding lookup, PyTorch's
semantics.

Dropout is a multiplication by a constant random mask. Layer, group and instance norm share one
primitive, ``standardize``: (x - mean) / sqrt(var + eps) over some axes (the population
variance), whose VJP is the textbook formula in chainrule operations

    dx = rstd (g - mean(g) - y mean(g y)),   y = standardize(x), rstd = 1 / sqrt(var + eps)

(one node forward instead of seven, about ten operations backward instead of twenty); the affine
weight and bias are ordinary multiplications and additions. Batch norm stays a composite. The
running statistics of batch and instance norm are updated in place, outside the graph.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import float_of
from chainrule.ops.creation import Generator, _rng, arange
from chainrule.ops.elementwise import sqrt, where
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.shape import reshape

__all__ = ["dropout", "dropout2d", "batch_norm", "layer_norm", "group_norm", "instance_norm",
           "embedding"]


def dropout(
    x, p: float = 0.5, training: bool = True, generator: Optional[Generator] = None
) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)
    (training only).

    The gradient passes through the kept elements with the same 1/(1-p) scale.
    """
    x = as_tensor(x)
    return _dropped(x, p, training, generator, x.shape, "dropout")


def dropout2d(x, p: float = 0.5, training: bool = True,
              generator: Optional[Generator] = None) -> Tensor:
    """Channel dropout of (N, C, H, W) or (C, H, W): zero whole channels with probability p,
    scale the others by 1/(1-p) (training only), as ``torch.nn.functional.dropout2d``."""
    x = as_tensor(x)
    if x.ndim not in (3, 4):
        raise ShapeError(f"dropout2d: input must be (N, C, H, W) or (C, H, W), got {x.shape}")
    return _dropped(x, p, training, generator, x.shape[:-2] + (1, 1), "dropout2d")


def _dropped(x: Tensor, p: float, training: bool, generator: Optional[Generator],
             mask_shape: tuple, name: str) -> Tensor:
    """x times a keep-mask of ``mask_shape`` (broadcast over x) scaled by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p={p} must be a probability in [0, 1]")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = _rng(generator).random(mask_shape) >= p  # drawn on the host: one stream per generator
    return x * as_tensor((keep / (1.0 - p)).astype(x.dtype), like=x)


def _stat_axes(x: Tensor, name: str) -> tuple:
    if x.ndim < 2:
        raise ShapeError(f"{name}: input must be (N, C) or (N, C, ...), got shape {x.shape}")
    return (0,) + tuple(range(2, x.ndim))


def batch_norm(
    x, running_mean: Optional[Tensor], running_var: Optional[Tensor], weight=None, bias=None,
    training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
) -> Tensor:
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the batch (and spatial) axes, channel
    axis 1.

    In training the batch's mean and biased variance normalise, and the running statistics move
    towards them: running = (1 - momentum) running + momentum * batch (the unbiased variance, as
    PyTorch). In evaluation the running statistics normalise.
    """
    x = as_tensor(x)
    axes = _stat_axes(x, "batch_norm")
    channels = x.shape[1]
    shape = (1, channels) + (1,) * (x.ndim - 2)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give running_mean and running_var together, or neither")
    if training or running_mean is None or running_var is None:  # the batch's statistics
        count = x.size // channels
        if count <= 1:
            raise ValueError(
                "batch_norm: expected more than 1 value per channel in training, "
                f"got input {x.shape}"
            )
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        if running_mean is not None and running_var is not None and training:
            _update_running(running_mean, running_var, mean, var, count, momentum)
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        centred = x - mean
    out = centred / sqrt(var + eps)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def _update_running(
    running_mean: Tensor, running_var: Tensor, mean: Tensor, var: Tensor, count: int,
    momentum: float,
) -> None:
    """In place, outside the graph: the buffers are state, not variables."""
    xp = backends.backend_of(running_mean.data).xp
    with no_grad():
        unbiased = xp.reshape(var.data, (-1,)) * (count / (count - 1))
        running_mean.data *= 1 - momentum
        running_mean.data += momentum * xp.reshape(mean.data, (-1,))
        running_var.data *= 1 - momentum
        running_var.data += momentum * unbiased


def _standardize_numpy(x: np.ndarray, *, axes: tuple, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=axes, keepdims=True)
    scale = np.square(centred).mean(axis=axes, keepdims=True)
    scale += eps
    np.sqrt(scale, out=scale)
    centred /= scale  # in place: the only full-size arrays are the result and one temporary
    return centred


def _standardize_generic(xp, x, *, axes: tuple, eps: float):
    centred = x - xp.mean(x, axis=axes, keepdims=True)
    return centred / xp.sqrt(xp.mean(centred * centred, axis=axes, keepdims=True) + eps)


def _standardize_vjp(g: Tensor, out: Tensor, x: Tensor, *, axes: tuple, eps: float) -> Tensor:
    centred = x - x.mean(axis=axes, keepdims=True)
    rstd = 1 / sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    return rstd * (g - g.mean(axis=axes, keepdims=True)
                   - out * (g * out).mean(axis=axes, keepdims=True))


standardize_p = Primitive("standardize", _standardize_numpy, generic=_standardize_generic,
                          abstract_eval=float_of).defvjp(_standardize_vjp)


def _standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (population variance); floats only."""
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return standardize_p.bind(x, axes=axes, eps=float(eps))


def layer_norm(
    x, normalized_shape: Union[int, Sequence[int]], weight=None, bias=None, eps: float = 1e-5
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` axes:
    (x - mean) / sqrt(var + eps) * weight + bias."""
    x = as_tensor(x)
    if isinstance(normalized_shape, (int, np.integer)):
        shape: tuple = (normalized_shape,)
    else:
        shape = tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape:
        raise ShapeError(
            f"layer_norm: normalized_shape {shape} must match the last axes of the input {x.shape}"
        )
    out = _standardize(x, tuple(range(x.ndim - len(shape), x.ndim)), eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample's channels in ``num_groups`` groups (over the group's channels and
    the spatial axes), then scale and shift per channel: torch.nn.functional.group_norm."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"group_norm: input must be (N, C, ...), got shape {x.shape}")
    n, channels = x.shape[0], x.shape[1]
    if not (isinstance(num_groups, (int, np.integer)) and num_groups >= 1
            and channels % num_groups == 0):
        raise ValueError(f"group_norm: num_groups={num_groups!r} must be a positive divisor of "
                         f"the {channels} channels")
    out = reshape(_standardize(reshape(x, (n, int(num_groups), -1)), (2,), eps), x.shape)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def instance_norm(x, running_mean: Optional[Tensor] = None, running_var: Optional[Tensor] = None,
                  weight=None, bias=None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """Normalise each sample's each channel over its spatial axes (torch's instance_norm);
    with ``use_input_stats=False`` the running statistics normalise instead. The running
    statistics, when given, move towards the batch's average of the instances' statistics."""
    x = as_tensor(x)
    if x.ndim < 3:
        raise ShapeError(f"instance_norm: input must be (N, C, L) or (N, C, H, W), got {x.shape}")
    channels = x.shape[1]
    shape = (1, channels) + (1,) * (x.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and "
                             "running_var")
        out = (x - reshape(running_mean, shape)) / sqrt(reshape(running_var, shape) + eps)
    else:
        axes = tuple(range(2, x.ndim))
        if running_mean is not None and running_var is not None:
            with no_grad():
                mean = x.mean(axis=axes, keepdims=True)
                centred = x - mean
                var = (centred * centred).mean(axis=axes, keepdims=True)
            count = x.size // (x.shape[0] * channels)
            _update_running(running_mean, running_var, mean.mean(axis=0, keepdims=True),
                            var.mean(axis=0, keepdims=True), count, momentum)
        out = _standardize(x, axes, eps)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def embedding(indices, weight, padding_idx: Optional[int] = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` of any shape:
    ``weight[indices]``. The row ``padding_idx`` receives no gradient (torch's convention)."""
    indices, weight = as_tensor(indices), as_tensor(weight)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {indices.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be (num_embeddings, dim), got {weight.shape}")
    rows = weight.shape[0]
    if indices.size and not (int(indices.min().item()) >= 0 and int(indices.max().item()) < rows):
        raise IndexError(f"embedding: indices must be in [0, {rows}), got values from "
                         f"{int(indices.min().item())} to {int(indices.max().item())}")
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise ValueError(f"embedding: padding_idx={padding_idx} must be in [-{rows}, {rows})")
        is_padding = reshape(arange(rows) == padding_idx % rows, (rows, 1))
        weight = where(as_tensor(is_padding.data, like=weight), weight.detach(), weight)
    return weight[indices]

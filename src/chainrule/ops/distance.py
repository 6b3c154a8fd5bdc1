"""Similarities and distances between vectors along an axis (torch.nn.functional's), as composites.

``cosine_similarity(x1, x2, axis=1, eps=1e-8)`` = x1.x2 / max(||x1|| ||x2||, eps), torch's
formula since 1.12 (one clamp on the product of the norms); ``pairwise_distance(x1, x2, p=2,
eps=1e-6)`` = ||x1 - x2 + eps||_p along the last axis. Both broadcast their inputs. Their
derivatives are those of the composites: at x1 = x2 + ... = 0 the eps keeps the norm's gradient
finite, as in torch.
"""

from __future__ import annotations

import math

from chainrule.engine.tensor import Tensor
from chainrule.ops.elementwise import abs, maximum, sqrt
from chainrule.ops.primitive import as_tensor
from chainrule.ops.reductions import max, sum

__all__ = ["cosine_similarity", "pairwise_distance"]


def cosine_similarity(x1, x2, axis: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2) / max(||x1|| * ||x2||, eps) along ``axis`` (torch's ``dim``)."""
    x1, x2 = as_tensor(x1), as_tensor(x2)
    if not eps > 0:
        raise ValueError(f"cosine_similarity: eps={eps} must be > 0")
    dot = sum(x1 * x2, axis=axis)
    # max(sqrt(p), eps) as sqrt(max(p, eps^2)): the same value, and no sqrt'(0) = inf times the
    # losing branch's 0 (a nan gradient) when a vector is zero
    squared_norms = sum(x1 * x1, axis=axis) * sum(x2 * x2, axis=axis)
    return dot / sqrt(maximum(squared_norms, eps * eps))


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p along the last axis (p = inf: the largest ``|difference|``)."""
    x1, x2 = as_tensor(x1), as_tensor(x2)
    if not p > 0:
        raise ValueError(f"pairwise_distance: p={p} must be > 0 (or inf)")
    difference = abs(x1 - x2 + eps)
    if math.isinf(p):
        return max(difference, axis=-1, keepdims=keepdim)
    return sum(difference ** p, axis=-1, keepdims=keepdim) ** (1.0 / p)

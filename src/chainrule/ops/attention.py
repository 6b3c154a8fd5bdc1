"""Scaled dot-product attention, torch.nn.functional's, as a composite.

    attention(Q, K, V) = softmax(Q K^T * scale + bias) V,   scale = 1 / sqrt(E) by default

over the last two axes (queries (..., L, E), keys (..., S, E), values (..., S, Ev)); leading axes
broadcast. ``attn_mask``: a bool mask where **True means "may attend"** (torch's convention for
this function; ``nn.MultiheadAttention`` uses the opposite one and converts) or a float mask added
to the scores; ``is_causal``: query i attends to keys 0..i only. ``dropout_p`` drops attention
weights (training). Differentiable through softmax and matmul; a row whose keys are all masked
gives NaN, as in torch.
"""

from __future__ import annotations

import math
from typing import Optional

from chainrule.engine.tensor import Tensor
from chainrule.ops.activations import softmax
from chainrule.ops.creation import arange
from chainrule.ops.elementwise import greater_equal, where
from chainrule.ops.linalg import matmul
from chainrule.ops.normalization import dropout
from chainrule.ops.primitive import as_tensor
from chainrule.ops.shape import reshape, swapaxes

__all__ = ["scaled_dot_product_attention"]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None) -> Tensor:
    """softmax(Q K^T scale + mask) V over the last two axes (see the module docstring)."""
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: expected query (..., L, E), key "
                         f"(..., S, E), value (..., S, Ev); got {q.shape}, {k.shape}, {v.shape}")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = matmul(q, swapaxes(k, -1, -2)) * factor
    if is_causal:
        rows = reshape(arange(q.shape[-2], device=q.device), (-1, 1))
        allowed = greater_equal(rows, arange(k.shape[-2], device=q.device))  # torch's tril
        scores = where(allowed, scores, float("-inf"))
    elif attn_mask is not None:
        mask = as_tensor(attn_mask, like=scores)
        if mask.dtype.kind == "b":
            scores = where(mask, scores, float("-inf"))
        else:
            scores = scores + mask
    weights = softmax(scores, axis=-1)
    if dropout_p:
        weights = dropout(weights, dropout_p)
    return matmul(weights, v)

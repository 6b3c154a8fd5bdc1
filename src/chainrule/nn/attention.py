"""Attention layers with PyTorch's names, layouts and masks: ``MultiheadAttention``,
``TransformerEncoderLayer``, ``TransformerEncoder``.

``MultiheadAttention(embed_dim, num_heads)`` keeps torch's packed input projection
``in_proj_weight`` (3E, E) = [W_q; W_k; W_v] and ``in_proj_bias`` (3E), and ``out_proj`` (a Linear),
so a torch ``state_dict`` loads as it is. Inputs are (L, N, E) (``batch_first``: (N, L, E)) or
unbatched (L, E). Masks follow ``nn.MultiheadAttention``: in a bool ``attn_mask`` (L, S) or
(N * heads, L, S) and in ``key_padding_mask`` (N, S), **True means "masked out"** (the opposite of
``scaled_dot_product_attention``'s bool mask); float masks are added to the scores. It returns
(output, weights) with the weights averaged over the heads (``average_attn_weights``), or
(output, None) with ``need_weights=False``.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Optional, Union

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn import init
from chainrule.nn.layers import Dropout, LayerNorm, Linear
from chainrule.nn.module import DeviceLike, Module, ModuleList, Parameter, built_on_host, place
from chainrule.ops import as_tensor

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder"]


def _additive(mask: Optional[Tensor], like: Tensor) -> Optional[Tensor]:
    """A mask in MultiheadAttention's convention as a float mask to add (True -> -inf)."""
    if mask is None:
        return None
    mask = as_tensor(mask, like=like)
    if mask.dtype.kind == "b":
        return cr.where(mask, float("-inf"), 0.0).astype(like.dtype)
    return mask.astype(like.dtype)


class MultiheadAttention(Module):
    """Multi-head attention: heads of size E / num_heads over projected queries, keys, values,
    concatenated and projected by ``out_proj``; ``dropout`` on the attention weights (training)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, device: DeviceLike = None) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: num_heads={num_heads} must divide "
                             f"embed_dim={embed_dim}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"MultiheadAttention: dropout={dropout} must be in [0, 1]")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        with built_on_host():
            self.in_proj_weight = Parameter(cr.zeros(3 * embed_dim, embed_dim).data)
            init.xavier_uniform_(self.in_proj_weight)
            self.register_parameter(
                "in_proj_bias", Parameter(cr.zeros(3 * embed_dim).data) if bias else None)
            self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
            if bias:
                init.zeros_(self.out_proj.bias)
        place(self, device)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Optional[Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        unbatched = query.ndim == 2
        if unbatched:  # (L, E): a batch of one, sequence first
            query, key, value = (cr.expand_dims(t, 1) for t in (query, key, value))
        if query.ndim != 3 or query.shape[-1] != self.embed_dim:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ValueError(f"MultiheadAttention: expected {layout} inputs with E = "
                             f"{self.embed_dim}, got query {query.shape}")
        # the work stays in the inputs' layout: batch_first needs no transposed copies
        batch_axis = 0 if self.batch_first and not unbatched else 1
        batch, length = query.shape[batch_axis], query.shape[1 - batch_axis]
        source = key.shape[1 - batch_axis]
        q, k, v = self._project(query, key, value)
        q, k, v = (self._heads(t, batch_axis) for t in (q, k, v))  # (N, heads, L or S, head_dim)
        scores = cr.matmul(q, cr.swapaxes(k, -1, -2)) / math.sqrt(self.head_dim)
        if is_causal and attn_mask is None:
            rows = cr.reshape(cr.arange(length), (-1, 1))
            attn_mask = cr.less(rows, cr.arange(source))  # True above the diagonal: masked
        bias = _additive(attn_mask, scores)
        if bias is not None:  # (L, S) or (N * heads, L, S)
            scores = scores + (bias if bias.ndim == 2 else
                               cr.reshape(bias, (batch, self.num_heads, length, source)))
        padding = _additive(key_padding_mask, scores)
        if padding is not None:
            if unbatched:
                padding = cr.expand_dims(padding, 0)
            scores = scores + cr.reshape(padding, (batch, 1, 1, source))
        weights = cr.softmax(scores, axis=-1)
        dropped = cr.dropout(weights, self.dropout, self.training) if self.dropout else weights
        heads = cr.matmul(dropped, v)  # (N, heads, L, head_dim)
        order = (0, 2, 1, 3) if batch_axis == 0 else (2, 0, 1, 3)
        merged = cr.reshape(cr.transpose(heads, order), query.shape)
        out = self.out_proj(merged)
        if unbatched:
            out = out[:, 0]
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = cr.mean(weights, axis=1)
        return out, (weights[0] if unbatched else weights)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple:
        """The input projections with the three blocks of the packed weight. (One GEMM with the
        packed weight for self-attention was slower here: slicing its result three ways makes
        the backward pass scatter three gradients into (N, L, 3E) zeros and add them.)"""
        weights = cr.split(self.in_proj_weight, 3)
        bias = self.in_proj_bias
        biases = (None, None, None) if bias is None else cr.split(bias, 3)
        return tuple(cr.matmul(t, w.T) if b is None else cr.matmul(t, w.T) + b
                     for t, w, b in zip((query, key, value), weights, biases))

    def _heads(self, x: Tensor, batch_axis: int) -> Tensor:
        """(N, L, E) (batch_axis 0) or (L, N, E) (batch_axis 1) -> (N, heads, L, head_dim)."""
        split = cr.reshape(x, x.shape[:2] + (self.num_heads, self.head_dim))
        return cr.transpose(split, (0, 2, 1, 3) if batch_axis == 0 else (1, 2, 0, 3))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"


_ACTIVATIONS: dict[str, Callable] = {"relu": lambda x: cr.relu(x), "gelu": lambda x: cr.gelu(x)}


def _activation(activation: Union[str, Callable], who: str) -> Callable:
    """'relu', 'gelu' or a callable, as torch's transformer layers take."""
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{who}: activation={activation!r}: choose 'relu', 'gelu' or a callable")
    return _ACTIVATIONS[activation]


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection, dropout and
    LayerNorm; ``norm_first`` puts the norms before the blocks (pre-norm) instead of after."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Union[str, Callable] = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: DeviceLike = None) -> None:
        super().__init__()
        self.activation = _activation(activation, "TransformerEncoderLayer")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, device=device)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, device=device)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._attend(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))

    def _attend(self, x: Tensor, mask: Optional[Tensor], padding: Optional[Tensor],
                is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=padding,
                             need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(out)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (each with its own weights), then ``norm``."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Optional[Module] = None) -> None:
        super().__init__()
        self.layers = ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Optional[Tensor] = None,
                src_key_padding_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask, is_causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoderLayer(Module):
    """Masked self-attention, attention over the encoder's ``memory``, then the feed-forward
    block; each with a residual connection, dropout and LayerNorm (after, or before with
    ``norm_first``): ``torch.nn.TransformerDecoderLayer``."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Union[str, Callable] = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: DeviceLike = None) -> None:
        super().__init__()
        self.activation = _activation(activation, "TransformerDecoderLayer")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, device=device)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, device=device)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, device=device)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, device=device)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None,
                tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        def self_block(x: Tensor) -> Tensor:
            return self.dropout1(self.self_attn(x, x, x, attn_mask=tgt_mask,
                                                key_padding_mask=tgt_key_padding_mask,
                                                need_weights=False, is_causal=tgt_is_causal)[0])

        def cross_block(x: Tensor) -> Tensor:
            return self.dropout2(self.multihead_attn(
                x, memory, memory, attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask, need_weights=False,
                is_causal=memory_is_causal)[0])

        def feed_forward(x: Tensor) -> Tensor:
            return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

        x = tgt
        if self.norm_first:
            x = x + self_block(self.norm1(x))
            x = x + cross_block(self.norm2(x))
            return x + feed_forward(self.norm3(x))
        x = self.norm1(x + self_block(x))
        x = self.norm2(x + cross_block(x))
        return self.norm3(x + feed_forward(x))


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer`` (each with its own weights), then ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Optional[Module] = None) -> None:
        super().__init__()
        self.layers = ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Optional[Tensor] = None,
                memory_mask: Optional[Tensor] = None,
                tgt_key_padding_mask: Optional[Tensor] = None,
                memory_key_padding_mask: Optional[Tensor] = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                      memory_key_padding_mask, tgt_is_causal, memory_is_causal)
        return x if self.norm is None else self.norm(x)

"""The LSTM recurrence over a whole sequence as one primitive, with its backward pass through time.

Given the input projections ``xw`` (L, N, 4H) (x_t W_ih^T + b_ih + b_hh for every step, computed
by one GEMM outside), the initial state h_0, c_0 (N, H) and the recurrent weight W_hh (4H, H),
PyTorch's gate order i, f, g, o:

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of  xw_t + h_{t-1} W_hh^T
    c_t = f c_{t-1} + i g,     h_t = o tanh(c_t)

The primitive's one output is (L, 7, N, H): per step the blocks h, c, tanh(c), i, f, g, o
(``BLOCKS``). The public :func:`lstm_scan` hands out (h_1 .. h_L, h_L, c_L); the other blocks are
what the backward pass reads (oneDNN keeps such a "workspace" too), and since they are part of the
output their gradients, when a caller uses them, are counted as well.

Why a primitive: unrolled into matmul, sigmoid, tanh and mul (``lstm_scan_reference``, the
definition), one step costs about 67 recorded operations forward and backward; here it is one
node. Its VJP is one **joint** rule (``Primitive.defvjp_joint``): back-propagation through time
runs once for all four inputs. Let G_t be the gradient of h_t, and dgates_t the gradient of
the pre-activations at step t; walking t = L .. 1:

    dh_t = G_t + dgates_{t+1} W_hh,       dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh(c_t)^2)
    dgates_t = [dc_t g_t i_t (1 - i_t),  dc_t c_{t-1} f_t (1 - f_t),  dc_t i_t (1 - g_t^2),
                dh_t tanh(c_t) o_t (1 - o_t)]

then d xw = dgates, d h_0 = dgates_1 W_hh, d c_0 = dc_1 f_1, d W_hh = sum_t dgates_t^T h_{t-1} (one
GEMM over all steps). The walk is the kernel of ``lstm_scan_backward``; the four gradients are
chainrule operations on its result. Under ``create_graph`` (grad mode on in the rule) the rule
differentiates the reference composite instead, so higher derivatives hold on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.autograd import grad
from chainrule.engine.errors import ShapeError
from chainrule.engine.grad_mode import is_grad_enabled
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.activations import sigmoid
from chainrule.ops.elementwise import tanh
from chainrule.ops.linalg import matmul
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.shape import concatenate, expand_dims, reshape, reshape_p, split, stack

__all__: list[str] = []  # used by nn.LSTM; not a torch function, so not in the flat namespace


# --------------------------------------------------------------------------- kernels
#: The blocks of one step of the primitive's output, each (N, H), in this order.
BLOCKS = ("h", "c", "tanh_c", "i", "f", "g", "o")
H_, C_, TANH_C, I_, F_, G_, O_ = range(7)


#: -1 for the sigmoid gates (i, f, o), -2 for g: exp(scale x) gives every gate from one exp call
_EXP_SCALE = (-1.0, -1.0, -2.0, -1.0)


def _lstm_scan_numpy(xw: np.ndarray, h0: np.ndarray, c0: np.ndarray,
                     w_hh: np.ndarray) -> np.ndarray:
    """The forward walk. One exp call per step gives all four gates: sigmoid(x) = 1 / (1 +
    exp(-x)) and tanh(x) = 2 sigmoid(2x) - 1 (identities; where exp overflows to inf a gate is
    exactly 0 or -1, as it should be; NumPy's float32 exp is twice as fast as its tanh here).
    The scales -1 and -2 are applied once to xw and W_hh (exact: powers of two)."""
    length, batch, width = xw.shape
    hidden = width // 4
    scale = np.repeat(np.asarray(_EXP_SCALE, dtype=xw.dtype), hidden)
    xw_scaled = xw * scale
    w_scaled = (w_hh * scale[:, None]).T
    out = np.empty((length, 7, batch, hidden), dtype=xw.dtype)
    pre = np.empty((batch, width), dtype=xw.dtype)
    gates = pre.reshape(batch, 4, hidden).transpose(1, 0, 2)  # (4, N, H) view of pre
    c_prev, h_prev = c0, h0
    with np.errstate(over="ignore"):
        for t in range(length):
            row = out[t]
            np.matmul(h_prev, w_scaled, out=pre)
            pre += xw_scaled[t]
            np.exp(pre, out=pre)
            act = row[I_:]
            np.add(gates, 1, out=act)
            np.reciprocal(act, out=act)  # i, f, sigmoid(2 g), o
            row[G_] *= 2
            row[G_] -= 1
            c = row[C_]
            np.multiply(row[F_], c_prev, out=c)
            c += row[I_] * row[G_]
            np.tanh(c, out=row[TANH_C])
            np.multiply(row[O_], row[TANH_C], out=row[H_])
            h_prev, c_prev = row[H_], c
    return out


def _lstm_scan_generic(xp: Any, xw: Any, h0: Any, c0: Any, w_hh: Any) -> Any:
    hidden = w_hh.shape[1]
    w_t, h, c, rows = xp.permute_dims(w_hh, (1, 0)), h0, c0, []
    for t in range(xw.shape[0]):
        i, f, g, o = _activations_generic(xp, xw[t, ...] + xp.matmul(h, w_t), hidden)
        c = f * c + i * g
        tanh_c = xp.tanh(c)
        h = o * tanh_c
        rows.append(xp.stack([h, c, tanh_c, i, f, g, o]))
    return xp.stack(rows)


def _activations_generic(xp: Any, gates: Any, hidden: int) -> tuple:
    def sig(z):
        return 1 / (1 + xp.exp(-z))
    return (sig(gates[..., :hidden]), sig(gates[..., hidden:2 * hidden]),
            xp.tanh(gates[..., 2 * hidden:3 * hidden]), sig(gates[..., 3 * hidden:]))


def _lstm_scan_backward_numpy(g: np.ndarray, out: np.ndarray, xw: np.ndarray, h0: np.ndarray,
                              c0: np.ndarray, w_hh: np.ndarray) -> np.ndarray:
    """(L + 1, N, 4H): rows 0 .. L-1 the gradients of the pre-activations, row L [dc_0, 0, 0, 0].

    ``g`` is the gradient of the whole (L, 7, N, H) output: besides h and c, the blocks tanh(c)
    and the gates enter where the forward used them (zero unless a caller read them). Whatever
    does not depend on the incoming gradient is computed for all steps at once, so the walk
    itself is a GEMM and six small operations per step."""
    length, batch, width = xw.shape
    hidden, dtype = width // 4, xw.dtype
    i, f, gate, o, tanh_c, c = (out[:, k] for k in (I_, F_, G_, O_, TANH_C, C_))
    c_prev = np.concatenate([c0[None], c[:-1]])
    through_tanh = 1 - tanh_c * tanh_c
    through = o * through_tanh  # dc += dh o (1 - tanh(c)^2)
    sig_i, sig_f, sig_o = i * (1 - i), f * (1 - f), o * (1 - o)
    tanh_g = 1 - gate * gate
    factors = np.empty((length, 4, batch, hidden), dtype=dtype)  # dgates = factors * [dc x 3, dh]
    np.multiply(gate, sig_i, out=factors[:, 0])
    np.multiply(c_prev, sig_f, out=factors[:, 1])
    np.multiply(i, tanh_g, out=factors[:, 2])
    np.multiply(tanh_c, sig_o, out=factors[:, 3])
    direct_c, direct = g[:, C_], None  # gradients that enter c_t and the gates directly
    if g[:, TANH_C:].any():
        direct_c = direct_c + g[:, TANH_C] * through_tanh
        direct = np.stack([g[:, I_] * sig_i, g[:, F_] * sig_f, g[:, G_] * tanh_g,
                           g[:, O_] * sig_o], axis=2)  # (L, N, 4, H)
    result = np.empty((length + 1, batch, 4, hidden), dtype=dtype)
    dc, dh = np.zeros((batch, hidden), dtype=dtype), np.empty((batch, hidden), dtype=dtype)
    product = np.empty((batch, hidden), dtype=dtype)
    for t in range(length - 1, -1, -1):
        d = result[t]
        if t + 1 < length:
            np.matmul(result[t + 1].reshape(batch, width), w_hh, out=dh)
            dh += g[t, H_]
        else:
            dh[...] = g[t, H_]
        np.multiply(dh, through[t], out=product)
        dc += product
        dc += direct_c[t]
        np.multiply(factors[t, :3], dc, out=d.transpose(1, 0, 2)[:3])
        np.multiply(factors[t, 3], dh, out=d[:, 3])
        if direct is not None:
            d += direct[t]
        dc *= f[t]
    result[length, :, 0] = dc
    result[length, :, 1:] = 0
    return result.reshape(length + 1, batch, width)


def _lstm_scan_backward_generic(xp: Any, g: Any, out: Any, xw: Any, h0: Any, c0: Any,
                                w_hh: Any) -> Any:
    length, batch, width = xw.shape
    hidden = width // 4
    dc, dgates, next_dgates = xp.zeros_like(c0), [], None
    for t in range(length - 1, -1, -1):
        i, f, gate, o, tanh_c = (out[t, k, ...] for k in (I_, F_, G_, O_, TANH_C))
        dh = g[t, H_, ...]
        if next_dgates is not None:
            dh = dh + xp.matmul(next_dgates, w_hh)
        dc = dc + g[t, C_, ...] + (dh * o + g[t, TANH_C, ...]) * (1 - tanh_c * tanh_c)
        c_prev = out[t - 1, C_, ...] if t else c0
        next_dgates = xp.concat([
            (dc * gate + g[t, I_, ...]) * i * (1 - i),
            (dc * c_prev + g[t, F_, ...]) * f * (1 - f),
            (dc * i + g[t, G_, ...]) * (1 - gate * gate),
            (dh * tanh_c + g[t, O_, ...]) * o * (1 - o)], axis=-1)
        dgates.append(next_dgates)
        dc = dc * f
    last = xp.concat([dc, xp.zeros((batch, width - hidden), dtype=dc.dtype,
                                   device=getattr(dc, "device", None))], axis=-1)
    return xp.stack(dgates[::-1] + [last])


# --------------------------------------------------------------------------- shape rules
def _scan_abstract(xw: ShapeDtype, h0: ShapeDtype, c0: ShapeDtype,
                   w_hh: ShapeDtype) -> ShapeDtype:
    length, batch, width = xw.shape
    return ShapeDtype((length, 7, batch, width // 4), xw.dtype, xw.device)


def _scan_backward_abstract(g: ShapeDtype, out: ShapeDtype, xw: ShapeDtype, *rest) -> ShapeDtype:
    length, batch, width = xw.shape
    return ShapeDtype((length + 1, batch, width), xw.dtype, xw.device)


lstm_scan_backward_p = Primitive("lstm_scan_backward", _lstm_scan_backward_numpy,
                                 generic=_lstm_scan_backward_generic,
                                 abstract_eval=_scan_backward_abstract)
lstm_scan_p = Primitive("lstm_scan", _lstm_scan_numpy, generic=_lstm_scan_generic,
                        abstract_eval=_scan_abstract)


# --------------------------------------------------------------------------- the definition
def lstm_scan_reference(xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor) -> Tensor:
    """What the ``lstm_scan`` primitive computes, unrolled into chainrule operations: its
    definition, the reference the tests hold the kernels to, and the graph its higher derivatives
    come from. (L, 7, N, H): per step the blocks of ``BLOCKS``."""
    h, c, rows = h0, c0, []
    w_t = w_hh.T
    for t in range(xw.shape[0]):
        i, f, g, o = split(xw[t] + matmul(h, w_t), 4, axis=-1)
        i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        c = f * c + i * g
        tanh_c = tanh(c)
        h = o * tanh_c
        rows.append(stack([h, c, tanh_c, i, f, g, o]))
    return stack(rows)


def _lstm_scan_vjp(g: Tensor, out: Tensor, xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor,
                   needs: tuple) -> tuple:
    if is_grad_enabled():  # create_graph: differentiate the definition, so the result has history
        return _reference_vjp(g, (xw, h0, c0, w_hh), needs)
    length, hidden = xw.shape[0], w_hh.shape[1]
    packed = lstm_scan_backward_p.bind(g, out, xw, h0, c0, w_hh)
    dgates = packed[:length]
    d_h0 = matmul(dgates[0], w_hh) if needs[1] else None
    d_c0 = packed[length, :, :hidden] if needs[2] else None
    d_w = None
    if needs[3]:
        h_prev = concatenate([expand_dims(h0, 0), out[:length - 1, H_]])
        d_w = matmul(reshape(dgates, (-1, 4 * hidden)).T, reshape(h_prev, (-1, hidden)))
    return dgates, d_h0, d_c0, d_w


lstm_scan_p.defvjp_joint(_lstm_scan_vjp)


def _reference_vjp(g: Tensor, inputs: tuple, needs: tuple) -> tuple:
    """The VJP of ``lstm_scan_reference`` at ``inputs``, as a graph (for create_graph=True).

    Each input enters through a fresh alias node, so the gradient stops there and its uses
    elsewhere in the caller's graph are not counted (as the transforms' trace levels do)."""
    aliases = [reshape_p.bind(x, shape=x.shape) if need else x.detach()
               for x, need in zip(inputs, needs)]
    wanted = [a for a, need in zip(aliases, needs) if need]
    found = iter(grad(lstm_scan_reference(*aliases), wanted, g, create_graph=True,
                      allow_unused=True))
    return tuple(next(found) if need else None for need in needs)


def lstm_scan(xw, h0, c0, w_hh) -> tuple[Tensor, Tensor, Tensor]:
    """The LSTM recurrence (module docstring): xw (L, N, 4H), h0 and c0 (N, H), W_hh (4H, H) ->
    (h_1 .. h_L as (L, N, H), h_L, c_L)."""
    xw, h0, c0, w_hh = (as_tensor(v) for v in (xw, h0, c0, w_hh))
    if xw.ndim != 3 or w_hh.ndim != 2 or xw.shape[-1] != w_hh.shape[0] \
            or w_hh.shape[0] != 4 * w_hh.shape[1] or xw.shape[0] < 1:
        raise ShapeError(f"lstm_scan: expected xw (L >= 1, N, 4H) and w_hh (4H, H), got "
                         f"{xw.shape} and {w_hh.shape}")
    state = (xw.shape[1], w_hh.shape[1])
    for name, value in (("h0", h0), ("c0", c0)):
        if value.shape != state:
            raise ShapeError(f"lstm_scan: {name} has shape {value.shape}, expected {state}")
    dtype = np.result_type(*(v.dtype for v in (xw, h0, c0, w_hh)))
    if dtype.kind != "f":
        dtype = np.dtype(np.float32)  # integer inputs compute in float32, as every float op
    xw, h0, c0, w_hh = (v if v.dtype == dtype else v.astype(dtype) for v in (xw, h0, c0, w_hh))
    packed = lstm_scan_p.bind(xw, h0, c0, w_hh)
    hs = packed[:, H_]
    return hs, hs[-1], packed[-1, C_]

"""The three convolution primitives and their rules: C(x, w), T(g, w), W(x, g).

With C(x, w) the convolution, T(g, w) its adjoint in x (the transposed convolution) and W(x, g)
its adjoint in w:

    C(x, w):  dx = T(g, w)            dw = W(x, g)
    T(g, w):  dg = C(h, w)            dw = W(h, g)
    W(x, g):  dx = T(g, k)            dg = C(x, k)

so every VJP is again a convolution and derivatives of any order work (``create_graph=True``).
Kernels per backend: :mod:`chainrule.ops.conv.kernels`.
"""

from __future__ import annotations

import numpy as np

from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.conv import dispatch, kernels
from chainrule.ops.primitive import Primitive

__all__ = ["conv_p", "conv_transpose_p", "conv_weight_p"]


# ---------------------------------------------------------------- abstract evaluation
def _convolved(x: ShapeDtype, w: ShapeDtype, *, output_size, **params) -> ShapeDtype:
    """C(x, w): (N, C_out, *output_size)."""
    return ShapeDtype((x.shape[0], w.shape[0]) + tuple(output_size),
                      np.result_type(x.dtype, w.dtype), x.device)


def _transposed(g: ShapeDtype, w: ShapeDtype, *, groups, input_size, **params) -> ShapeDtype:
    """T(g, w): (N, groups * w.shape[1], *input_size)."""
    return ShapeDtype((g.shape[0], groups * w.shape[1]) + tuple(input_size),
                      np.result_type(g.dtype, w.dtype), g.device)


def _weight_shaped(x: ShapeDtype, g: ShapeDtype, *, groups, kernel_size, **params) -> ShapeDtype:
    """W(x, g): (C_out, C_in / groups, *kernel_size), the weight's shape."""
    return ShapeDtype((g.shape[1], x.shape[1] // groups) + tuple(kernel_size),
                      np.result_type(x.dtype, g.dtype), x.device)


# fmt: off
conv_p           = Primitive("conv", dispatch.conv_host,
                             generic=kernels.conv_generic, cupy=kernels.conv_cupy,
                             abstract_eval=_convolved)
conv_transpose_p = Primitive("conv_transpose", dispatch.conv_transpose_host,
                             generic=kernels.conv_transpose_generic,
                             cupy=kernels.conv_transpose_cupy, abstract_eval=_transposed)
conv_weight_p    = Primitive("conv_weight", dispatch.conv_weight_host,
                             generic=kernels.conv_weight_generic, cupy=kernels.conv_weight_cupy,
                             abstract_eval=_weight_shaped)
conv_p.defvjp(
    lambda g, out, x, w, *, output_size, **p:
        conv_transpose_p.bind(g, w, input_size=x.shape[2:], **p),
    lambda g, out, x, w, *, output_size, **p:
        conv_weight_p.bind(x, g, kernel_size=w.shape[2:], **p))
conv_transpose_p.defvjp(
    lambda h, out, g, w, *, input_size, **p:
        conv_p.bind(h, w, output_size=g.shape[2:], **p),
    lambda h, out, g, w, *, input_size, **p:
        conv_weight_p.bind(h, g, kernel_size=w.shape[2:], **p))
conv_weight_p.defvjp(
    lambda k, out, x, g, *, kernel_size, **p:
        conv_transpose_p.bind(g, k, input_size=x.shape[2:], **p),
    lambda k, out, x, g, *, kernel_size, **p:
        conv_p.bind(x, k, output_size=g.shape[2:], **p))
# fmt: on

"""The primitive registry: every differentiable operation is declared here once.

A :class:`Primitive` has

* ``impl`` -- the forward computation on ndarrays (NumPy), with keyword-only static
  parameters (``axis=``, ``shape=`` ...), and
* ``vjps`` -- one vector-Jacobian product rule per input: ``rule(g, out, *inputs, **params)``
  returns the gradient for that input given ``g``, the gradient of the output. Rules take and
  return :class:`~chainrule.Tensor` objects and are written with chainrule operations, so the
  same rule yields numbers (symbol-to-number) or, under ``create_graph=True``, a new graph
  (symbol-to-symbol) that can be differentiated again. ``None`` marks an input with no
  gradient (an index, a condition). A rule may return ``None`` for "zero".

A rule may return a gradient with the *broadcast* shape of the output: the engine sums it back
to the input's shape in one place (``autograd._fit_to``), so no rule undoes broadcasting itself.

``bind`` runs the forward and, when grad mode is on and an input requires grad, records a
:class:`~chainrule.autograd.Node` on the result. That is the whole tracing mechanism.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from chainrule.autograd import Node
from chainrule.grad_mode import _GradMode
from chainrule.tensor import Tensor, to_array

__all__ = ["Primitive", "REGISTRY", "as_tensor"]

#: name -> Primitive, in declaration order. ``chainrule check`` walks it.
REGISTRY: dict[str, "Primitive"] = {}

VJPRule = Optional[Callable[..., Optional[Tensor]]]


class Primitive:
    """A differentiable operation: NumPy forward plus one VJP rule per input."""

    __slots__ = ("name", "impl", "vjps", "smooth", "variadic")

    def __init__(
        self, name: str, impl: Callable[..., np.ndarray], *, smooth: bool = True, variadic: bool = False
    ) -> None:
        if name in REGISTRY:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name = name
        self.impl = impl
        self.vjps: tuple[VJPRule, ...] = ()
        #: False where the function has kinks/jumps: gradcheck skips second order there.
        self.smooth = smooth
        #: True for any number of inputs (concatenate): its one rule also gets ``argnum=i``.
        self.variadic = variadic
        REGISTRY[name] = self

    def defvjp(self, *rules: VJPRule) -> "Primitive":
        """Attach the VJP rules, one per positional input (None: not differentiable)."""
        self.vjps = rules
        return self

    def bind(self, *inputs: Tensor, **params) -> Tensor:
        """Apply the primitive to Tensors; record the graph when it is needed."""
        out = self.impl(*[x.data for x in inputs], **params)
        if type(out) is not np.ndarray:  # NumPy reductions return scalars
            out = np.asarray(out)
        result = Tensor._from_array(out)
        if _GradMode.enabled:
            for x in inputs:
                if x.requires_grad:
                    result.requires_grad = True
                    result.grad_fn = Node(self, inputs, params)
                    break
        return result

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def as_tensor(value, like: Optional[Tensor] = None) -> Tensor:
    """``value`` as a Tensor; a Python scalar takes ``like``'s dtype as NumPy's weak scalars do.

    ``float32_tensor * 2.0`` must stay float32 (NEP 50): a Python number combined with a tensor
    adopts the tensor's dtype when it fits its kind.
    """
    if type(value) is Tensor or isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float, bool)) and not isinstance(value, np.generic):
        dtype = np.result_type(like.data.dtype, value)
        return Tensor._from_array(np.asarray(value, dtype=dtype))
    return Tensor._from_array(to_array(value))

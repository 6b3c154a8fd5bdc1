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
:class:`~chainrule.engine.autograd.Node` on the result. That is the whole tracing mechanism.

Version counters (PyTorch's): the node also records the version of every tensor its rules read
(``saves``: the inputs, by position, and ``"out"``; all of them unless the primitive declares
fewer). In-place operations bump a tensor's version, and the backward pass refuses a node whose
saved tensors changed since the forward. A result that is a NumPy *view* of an input shares that
input's counter (``Tensor._base``), so writing into a parameter is seen through ``W.T`` too.

Anomaly mode (``detect_anomaly``) adds, per call, a NaN/inf check of the result and the user's
source line on the node; off, it costs the one attribute read that grad mode costs anyway.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np

from chainrule.engine.autograd import Node, check_forward_anomaly, user_frame
from chainrule.engine.grad_mode import _state
from chainrule.engine.tensor import Tensor, to_array

__all__ = ["Primitive", "REGISTRY", "as_tensor"]

#: name -> Primitive, in declaration order. ``chainrule check`` walks it.
REGISTRY: dict[str, "Primitive"] = {}

VJPRule = Optional[Callable[..., Optional[Tensor]]]


class Primitive:
    """A differentiable operation: NumPy forward plus one VJP rule per input."""

    __slots__ = ("name", "impl", "vjps", "smooth", "variadic", "saves_inputs", "saves_out")

    def __init__(
        self,
        name: str,
        impl: Callable[..., np.ndarray],
        *,
        smooth: bool = True,
        variadic: bool = False,
        saves: Optional[Sequence[Union[int, str]]] = None,
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
        #: What the VJP rules read: input positions (None: every input) and whether the output.
        #: ``saves=()`` declares a linear map (add, reshape ...): nothing to protect from in-place.
        saved = None if saves is None else tuple(saves)
        self.saves_inputs = None if saved is None else tuple(i for i in saved if i != "out")
        self.saves_out = saved is None or "out" in saved
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
        if out.base is not None:  # a view of an input shares its version counter
            _link_view(result, inputs)
        recording, anomaly = _state.modes
        if anomaly:
            check_forward_anomaly(self, inputs, result)
        if recording:
            for x in inputs:
                if x.requires_grad:
                    result.requires_grad = True
                    node = result.grad_fn = Node(self, inputs, params, result)
                    if anomaly:
                        node.origin = user_frame()
                    break
        return result

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def _link_view(result: Tensor, inputs: Sequence[Tensor]) -> None:
    """Give ``result`` the version counter of the input whose memory its array views."""
    base = result.data.base
    for x in inputs:
        if base is x.data or base is x.data.base:
            result._base = x if x._base is None else x._base
            return


def as_tensor(value, like: Optional[Tensor] = None) -> Tensor:
    """``value`` as a Tensor; a Python scalar takes ``like``'s dtype as NumPy's weak scalars do.

    ``float32_tensor * 2.0`` must stay float32 (NEP 50): a Python number combined with a tensor
    adopts the tensor's dtype when it fits its kind.
    """
    if type(value) is Tensor or isinstance(value, Tensor):
        return value
    python_number = isinstance(value, (int, float, bool)) and not isinstance(value, np.generic)
    if like is not None and python_number:
        dtype = np.result_type(like.data.dtype, value)
        return Tensor._from_array(np.asarray(value, dtype=dtype))
    return Tensor._from_array(to_array(value))

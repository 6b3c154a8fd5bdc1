"""The primitive registry: every differentiable operation is declared here once.

A :class:`Primitive` is a backend-free definition plus open rule tables, as JAX's autodidax:

* ``kernels`` -- the forward computation, per array backend (``prim.kernels[name]``):

  - ``"array_api"``, the generic kernel, for every backend: ``kernel(xp, *arrays, **params)``
    using only the array API standard through the namespace ``xp`` -- or the *name* of a standard
    function (``"add"``, ``"exp"``), then called as ``xp.add(*arrays)`` with no wrapper at all;
  - ``"numpy"`` / ``"cupy"``, optional fast paths for one library where the standard has no
    equivalent (strided windows, ``add.at``): ``kernel(*arrays, **params)``.

  ``bind`` takes the backend from its inputs (:func:`chainrule.backends.backend_of`), refuses
  two backends or devices in one call (:class:`~chainrule.BackendMismatchError`), and runs that
  backend's fast kernel, else the generic one. The choice is resolved once per primitive and
  backend, so NumPy calls its ufunc as directly as before.
* ``rules`` -- the other rules, by kind:

  - ``"vjp"``: one vector-Jacobian product rule per input: ``rule(g, out, *inputs, **params)``
    returns the gradient for that input given ``g``, the gradient of the output. Rules take and
    return :class:`~chainrule.Tensor` objects and are written with chainrule operations, so the
    same rule yields numbers (symbol-to-number) or, under ``create_graph=True``, a new graph
    (symbol-to-symbol) that can be differentiated again. ``None`` marks an input with no
    gradient (an index, a condition). A rule may return ``None`` for "zero".
  - ``"abstract_eval"``: ``rule(*avals, **params) -> ShapeDtype``, the output's shape and dtype
    from the inputs' (:mod:`chainrule.ops.abstract`), without computing: ``summary``, the
    calculator's shape checks and export use it.

A rule may return a gradient with the *broadcast* shape of the output: the engine sums it back
to the input's shape in one place (``autograd._fit_to``), so no rule undoes broadcasting itself.

``bind`` runs the forward and, when grad mode is on and an input requires grad, records a
:class:`~chainrule.engine.autograd.Node` on the result. That is the whole tracing mechanism.

Version counters (PyTorch's): the node also records the version of every tensor its rules read
(``saves``: the inputs, by position, and ``"out"``; all of them unless the primitive declares
fewer). In-place operations bump a tensor's version, and the backward pass refuses a node whose
saved tensors changed since the forward. A result that is a *view* of an input (NumPy, CuPy)
shares that input's counter (``Tensor._base``), so writing into a parameter is seen through
``W.T`` too.

Anomaly mode (``detect_anomaly``) adds, per call, a NaN/inf check of the result and the user's
source line on the node; off, it costs the one attribute read that grad mode costs anyway.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from chainrule import backends
from chainrule.backends import Backend
from chainrule.engine.autograd import Node, check_forward_anomaly, user_frame
from chainrule.engine.grad_mode import _state
from chainrule.engine.tensor import Tensor, to_array
from chainrule.ops.abstract import ABSTRACT

__all__ = ["Primitive", "REGISTRY", "as_tensor"]

#: name -> Primitive, in declaration order. ``chainrule check`` walks it.
REGISTRY: dict[str, "Primitive"] = {}

VJPRule = Optional[Callable[..., Optional[Tensor]]]


class Primitive:
    """A differentiable operation: kernels per backend, VJP rules and an abstract-eval rule."""

    __slots__ = ("name", "kernels", "rules", "vjps", "smooth", "variadic", "saves_inputs",
                 "saves_out", "saves_nothing", "joint_vjp", "_resolved")

    def __init__(
        self,
        name: str,
        numpy: Optional[Callable[..., Any]] = None,
        *,
        generic: Union[str, Callable[..., Any], None] = None,
        cupy: Optional[Callable[..., Any]] = None,
        abstract_eval: Optional[Callable[..., Any]] = None,
        smooth: bool = True,
        variadic: bool = False,
        saves: Optional[Sequence[Union[int, str]]] = None,
    ) -> None:
        if name in REGISTRY:
            raise ValueError(f"primitive {name!r} is already registered")
        self.name = name
        #: backend kernel name ("array_api", "numpy", "cupy") -> kernel
        self.kernels: dict[str, Any] = {}
        for key, kernel in (("array_api", generic), ("numpy", numpy), ("cupy", cupy)):
            if kernel is not None:
                self.kernels[key] = kernel
        #: kind ("vjp", "abstract_eval", later "jvp", "onnx" ...) -> rule
        self.rules: dict[str, Any] = {"vjp": (), "abstract_eval": abstract_eval}
        #: The VJP rules, one per positional input: ``rules["vjp"]``, kept as an attribute too
        #: because the backward pass reads it once per input of every node
        self.vjps: tuple = ()
        #: backend name -> the callable bind runs (filled on first use per backend). Shared by all
        #: threads on purpose: each entry is written once with a value every thread would compute
        #: alike (a memo of the immutable kernel table, not state), and a dict store is atomic.
        self._resolved: dict[str, Callable[..., Any]] = {}
        #: False where the function has kinks/jumps: gradcheck skips second order there.
        self.smooth = smooth
        #: True for any number of inputs (concatenate): its one rule also gets ``argnum=i``.
        self.variadic = variadic
        #: What the VJP rules read: input positions (None: every input) and whether the output.
        #: ``saves=()`` declares a linear map (add, reshape ...): nothing to protect from in-place.
        saved = None if saves is None else tuple(saves)
        self.saves_inputs = None if saved is None else tuple(i for i in saved if i != "out")
        self.saves_out = saved is None or "out" in saved
        self.saves_nothing = self.saves_inputs == () and not self.saves_out
        #: One rule for every input at once (``defvjp_joint``), for a primitive whose inputs'
        #: gradients share their work (a recurrence run backwards once); None: ``rules["vjp"]``.
        self.joint_vjp: Optional[Callable[..., tuple]] = None
        REGISTRY[name] = self

    # ------------------------------------------------------------------ the tables
    def defvjp(self, *rules: VJPRule) -> "Primitive":
        """Attach the VJP rules, one per positional input (None: not differentiable)."""
        self.rules["vjp"] = self.vjps = rules
        return self

    def defvjp_joint(self, rule: Callable[..., tuple]) -> "Primitive":
        """Attach one rule for all inputs: ``rule(g, out, *inputs, needs=..., **params)`` returns
        a tuple with one gradient (or None) per input; ``needs[i]`` says whether input ``i``
        requires one. As ``autograd.Function.backward`` in PyTorch and ``defvjp_all`` in HIPS
        autograd: for operations whose gradients come out of one shared computation."""
        self.joint_vjp = rule
        return self

    def def_abstract_eval(self, rule: Callable[..., Any]) -> "Primitive":
        """Attach the shape/dtype rule: ``rule(*avals, **params) -> ShapeDtype``."""
        self.rules["abstract_eval"] = rule
        return self

    def def_kernel(self, backend: str, kernel: Any) -> "Primitive":
        """Add or replace the kernel for ``backend`` ("array_api", "numpy", "cupy")."""
        self.kernels[backend] = kernel
        self._resolved.clear()
        return self

    def kernel_for(self, backend: Backend) -> Callable[..., Any]:
        """The callable ``bind`` runs on ``backend``'s arrays: its fast kernel, else the generic
        one bound to its namespace."""
        found = self._resolved.get(backend.name)
        if found is not None:
            return found
        fast = self.kernels.get(backend.kernel_name) if backend.kernel_name != "array_api" else None
        if fast is not None:  # a library's own kernel: kernel(*arrays, **params)
            kernel = getattr(backend.xp, fast) if isinstance(fast, str) else fast
        else:
            generic = self.kernels.get("array_api")
            if generic is None:
                raise NotImplementedError(
                    f"{self.name} has no kernel for the {backend.name} backend (it has: "
                    f"{', '.join(self.kernels) or 'none'})")
            kernel = (getattr(backend.xp, generic) if isinstance(generic, str)
                      else functools.partial(generic, backend.xp))
        self._resolved[backend.name] = kernel
        return kernel

    # ------------------------------------------------------------------ applying it
    def bind(self, *inputs: Tensor, **params) -> Tensor:
        """Apply the primitive to Tensors; record the graph when it is needed."""
        arrays = [x.data for x in inputs]
        kind = type(arrays[0])
        backend = backends.BY_TYPE.get(kind) or backends.backend_of(arrays[0])
        for array in arrays:
            if type(array) is not kind and backends.backend_of(array) is not backend:
                if ABSTRACT not in (backend, backends.backend_of(array)):
                    raise backends.mismatch(arrays[0], array, self.name)
                backend = ABSTRACT  # eval_shape: concrete arrays join as their shapes
                break
        if backend is not backends.NUMPY:
            if backend is ABSTRACT:  # eval_shape: the abstract rule, no kernel, no graph
                return ABSTRACT.bind(self, inputs, params)
            if len(arrays) > 1:
                _check_devices(self.name, backend, arrays)
        kernel = self._resolved.get(backend.name)  # inline: a method call per op costs more
        if kernel is None:
            kernel = self.kernel_for(backend)
        out = kernel(*arrays, **params)
        if type(out) is not kind and type(out) not in backends.BY_TYPE:
            out = backend.xp.asarray(out)  # NumPy reductions return scalars
        result = Tensor._from_array(out)
        if (out.base if type(out) is np.ndarray else getattr(out, "base", None)) is not None:
            _link_view(result, inputs)  # a view of an input shares its version counter
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


def _check_devices(name: str, backend: Backend, arrays: list) -> None:
    """Refuse arrays of one backend on two devices (cuda:0 and cuda:1), naming both."""
    first = backend.device_of(arrays[0])
    for array in arrays[1:]:
        if backend.device_of(array) != first:
            raise backends.mismatch(arrays[0], array, name)


def _link_view(result: Tensor, inputs: Sequence[Tensor]) -> None:
    """Give ``result`` the version counter of the input whose memory its array views."""
    base = result.data.base
    for x in inputs:  # NumPy and CuPy arrays have .base (array_api_strict's have no views)
        if base is x.data or base is getattr(x.data, "base", None):
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
        dtype = np.result_type(like.dtype, value)
        if type(like.data) is np.ndarray:
            return Tensor._from_array(np.asarray(value, dtype=dtype))
        backend = backends.backend_of(like.data)
        return Tensor._from_array(backend.asarray(value, dtype, backend.device_of(like.data)))
    if like is not None and type(like.data) is not np.ndarray:  # an ndarray or list: to like's
        backend = backends.backend_of(like.data)
        array = to_array(value)
        if type(array) is np.ndarray:
            return Tensor._from_array(backend.from_host(array, backend.device_of(like.data)))
        return Tensor._from_array(array)
    return Tensor._from_array(to_array(value))

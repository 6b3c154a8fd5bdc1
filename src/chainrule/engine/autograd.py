"""The backward pass: reverse-mode differentiation over the recorded graph.

The graph is made of Tensors. A tensor produced by a primitive carries ``grad_fn``, a
:class:`Node` holding the primitive, its input tensors and its static parameters; a leaf has
``grad_fn = None``. Back-propagation is the textbook's general algorithm:

1. order every tensor that leads to the outputs topologically (iteratively, so a chain of
   100,000 operations needs no recursion),
2. walk that order from the outputs back, keeping a *gradient table* ``id(tensor) -> gradient``;
   when a tensor's turn comes its entry is complete, and each input's VJP rule adds its
   contribution to the input's entry,
3. leaves receive their entry in ``.grad`` (accumulating), or it is returned (``grad()``).

Under ``create_graph=True`` the VJP rules run with grad mode on, so the gradients are Tensors
with history: differentiating them again gives higher derivatives.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np

from chainrule import backends
from chainrule.engine.errors import AnomalyError, GraphFreedError, InplaceModifiedError
from chainrule.engine.grad_mode import ANOMALY, _state, set_detect_anomaly, set_grad_enabled

if TYPE_CHECKING:
    from chainrule.ops.primitive import Primitive

__all__ = ["Node", "backward", "grad", "queue_callback"]


class _Callbacks(threading.local):
    """This thread's callbacks for the end of the backward pass in progress (None outside one)."""

    queue: Optional[list] = None


_callbacks = _Callbacks()


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` once the backward pass in progress on this thread has finished.

    PyTorch's ``Variable._execution_engine.queue_callback``: called from a hook during
    ``backward``, the callback runs after every gradient of that pass is computed and accumulated
    (in the order queued). ``DistributedDataParallel`` waits there for its gradient reductions.
    """
    if _callbacks.queue is None:
        raise RuntimeError("queue_callback: no backward pass is running on this thread "
                           "(call it from a hook during backward)")
    _callbacks.queue.append(callback)


class Node:
    """How a tensor was made: ``prim.impl(*inputs, **params)``; ``inputs`` is None once freed.

    ``versions`` holds the version counters of the inputs and of the output as they were when the
    node was recorded (``check_versions`` compares those the rules read: ``prim.saves_*``; None
    for a primitive whose rules read none of them, ``saves=()``);
    ``origin`` is the user's source line, captured only in anomaly mode.
    """

    __slots__ = ("prim", "inputs", "params", "versions", "origin")

    def __init__(self, prim: "Primitive", inputs: tuple, params: dict, out: "Tensor") -> None:
        self.prim = prim
        self.inputs = inputs
        self.params = params
        # a linear map (add, reshape ...) reads no tensor in its rules: nothing to check later
        self.versions = None if prim.saves_nothing else _versions(inputs, out)
        self.origin: Optional[str] = None

    @property
    def name(self) -> str:
        return self.prim.name

    def __repr__(self) -> str:
        return f"<{self.prim.name}Backward>"


def _versions(inputs: tuple, out: "Tensor") -> list:
    """The version counters of ``inputs`` and ``out`` (a view reads the counter of its base).

    A plain loop: on Python 3.11 a list comprehension is a function call of its own, and this runs
    once per recorded operation.
    """
    versions = []
    for t in inputs:
        base = t._base
        versions.append(t._version if base is None else base._version)
    base = out._base
    versions.append(out._version if base is None else base._version)
    return versions


def check_versions(tensor: "Tensor") -> None:
    """Raise if an in-place operation changed a tensor that ``tensor``'s node saved for backward."""
    node: Node = tensor.grad_fn  # type: ignore[assignment]  # called on non-leaves only
    if node.versions is None:  # its rules read no tensor
        return
    now = _versions(node.inputs, tensor)
    if now == node.versions:  # the usual case: nothing changed in place since the forward
        return
    saved, n_inputs = node.prim.saves_inputs, len(node.inputs)
    tensors = (*node.inputs, tensor)
    for i, (x, recorded, current) in enumerate(zip(tensors, node.versions, now)):
        is_saved = node.prim.saves_out if i == n_inputs else saved is None or i in saved
        if is_saved and current != recorded:
            which = "its output" if i == n_inputs else f"input {i}"
            _modified(node, which, x, recorded, current)


def _modified(node: Node, which: str, x: "Tensor", recorded: int, current: int) -> None:
    raise InplaceModifiedError(
        f"one of the variables needed for gradient computation has been modified by an in-place "
        f"operation: {which} of {node!r} (a {x.dtype} tensor of shape {x.shape}) is at version "
        f"{current}; expected version {recorded} instead. Compute the loss again after the "
        f"in-place change (an optimizer step), or change a clone()"
    )


# ---------------------------------------------------------------- anomaly mode
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # chainrule/


def user_frame() -> str:
    """'file:line in function: source' of the innermost frame outside chainrule (anomaly mode)."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    import linecache

    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}: {line}"


def _all_finite(arrays) -> bool:
    return all(_finite(a) for a in arrays)


def _finite(a) -> bool:
    """Whether a floating array holds no NaN or inf (other dtypes always do), on its backend."""
    if type(a) is np.ndarray:
        return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())
    backend = backends.backend_of(a)
    if backend.np_dtype(a.dtype).kind not in "fc":
        return True
    xp = backend.xp
    return bool(xp.all(xp.isfinite(a)))


def _described(tensors) -> str:
    return ", ".join(f"{t.dtype}{list(t.shape)}" for t in tensors)


def check_forward_anomaly(prim: "Primitive", inputs: Sequence["Tensor"], out: "Tensor") -> None:
    """Anomaly mode: NaN/inf out of finite inputs in a forward operation raises AnomalyError."""
    if _all_finite([out.data]) or not _all_finite([x.data for x in inputs]):
        return
    raise AnomalyError(
        f"{prim.name} produced NaN or inf from finite inputs ({_described(inputs)}) at "
        f"{user_frame()}"
    )


def _check_backward_anomaly(tensor: "Tensor", i: int, g: "Tensor", gx: "Tensor") -> None:
    if _all_finite([gx.data]) or not _all_finite([g.data]):
        return
    node: Node = tensor.grad_fn  # type: ignore[assignment]  # called on non-leaves only
    raise AnomalyError(
        f"the VJP of {node.prim.name} returned NaN or inf for input {i} from a finite gradient "
        f"(inputs {_described(node.inputs)}); the node was created at {node.origin or '<unknown>'}"
    )


def graph_walk(roots: Sequence["Tensor"], *, constants: bool = False, freed_ok: bool = False,
               left_first: bool = False) -> list["Tensor"]:
    """The tensors that lead to ``roots``, each after the inputs it was made from.

    An explicit-stack depth-first search, so a chain of 100,000 operations needs no recursion.
    Only tensors that require grad, unless ``constants``. A node whose saved inputs were freed by
    ``backward()`` raises GraphFreedError, unless ``freed_ok`` (then it counts as having no inputs).
    ``left_first`` visits a node's first input first (numbering reads left to right); otherwise the
    last input is visited first, so the reversed order (the backward pass) follows the first input.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack = [(root, False) for root in roots if constants or root.requires_grad]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor.grad_fn
        if node is None:
            continue
        if node.inputs is None:
            if freed_ok:
                continue
            raise GraphFreedError(
                f"trying to backward through the graph a second time: the saved tensors of "
                f"{node!r} were freed by the first backward(); pass retain_graph=True to the "
                f"first call if you need to backward twice"
            )
        for parent in (reversed(node.inputs) if left_first else node.inputs):
            if (constants or parent.requires_grad) and id(parent) not in visited:
                stack.append((parent, False))
    return order


def topological_order(roots: Sequence["Tensor"]) -> list["Tensor"]:
    """Tensors that require grad and lead to ``roots``, each before the inputs it was made from."""
    order = graph_walk(roots)
    order.reverse()
    return order


def _fit_to(g: "Tensor", x: "Tensor") -> "Tensor":
    """The one place broadcasting is undone: sum ``g`` down to ``x``'s shape, cast to its dtype."""
    target = x.data
    if g.data.shape != target.shape:
        g = ops.reductions.sum_to_p.bind(g, shape=target.shape)
    # `is` first: the usual, cheap case
    if g.data.dtype is not target.dtype and g.data.dtype != target.dtype:
        g = g.astype(x.dtype)  # x.dtype: the NumPy dtype, which astype takes on every backend
    return g


def _run(
    roots: Sequence["Tensor"],
    root_grads: Sequence["Tensor"],
    *,
    retain_graph: bool,
    create_graph: bool,
    targets: Optional[Sequence["Tensor"]] = None,
) -> dict[int, "Tensor"]:
    """Fill the gradient table from ``roots``; return the entries of ``targets`` (by id).

    Without ``targets`` (``Tensor.backward``) leaves accumulate their entry into ``.grad``.
    """
    order = topological_order(roots)
    grad_table: dict[int, Tensor] = {}
    for root, g in zip(roots, root_grads):
        key = id(root)
        grad_table[key] = g if key not in grad_table else ops.add(grad_table[key], g)
    wanted = None if targets is None else {id(t) for t in targets}
    found: dict[int, Tensor] = {}
    handed_out = {id(g.data) for g in root_grads}  # arrays given out: never share one

    anomaly = _state.modes[ANOMALY]
    outer_queue, _callbacks.queue = _callbacks.queue, []  # a nested pass keeps its own queue
    try:
        _fill_table(order, grad_table, found, wanted, retain_graph, create_graph, handed_out,
                    anomaly)
        queued = _callbacks.queue
        done = 0
        while done < len(queued):  # a callback may queue another (run in this pass, as torch)
            queued[done]()
            done += 1
    finally:
        _callbacks.queue = outer_queue
    return found


def _fill_table(order: list["Tensor"], grad_table: dict, found: dict, wanted: Optional[set],
                retain_graph: bool, create_graph: bool, handed_out: set, anomaly: bool) -> None:
    """Step 2 of the algorithm over ``order``: pop each entry, run hooks, propagate, accumulate."""
    # In anomaly mode the rules' own operations are not checked as forward operations: each
    # rule's result is checked as a whole (``propagate``), naming the node and where it was made.
    with set_grad_enabled(create_graph), set_detect_anomaly(False):
        for tensor in order:
            if id(tensor) not in grad_table:
                continue
            g = grad_table.pop(id(tensor))
            if tensor._hooks:
                g = _apply_hooks(tensor, g)
            if wanted is not None and id(tensor) in wanted:
                found[id(tensor)] = g
            node = tensor.grad_fn
            if node is None:
                if wanted is None:
                    _accumulate(tensor, g, create_graph, handed_out)
                    if tensor._post_accumulate_hooks:
                        for hook in list(tensor._post_accumulate_hooks.values()):
                            hook(tensor)
                continue
            if tensor._retains_grad and wanted is None:
                _accumulate(tensor, g, create_graph, handed_out)
            propagate(tensor, g, grad_table, anomaly=anomaly)
            if not retain_graph:
                node.inputs = None  # type: ignore[assignment]  # freed: GraphFreedError later


def _apply_hooks(tensor: "Tensor", g: "Tensor") -> "Tensor":
    """Run ``tensor``'s hooks (``Tensor.register_hook``) on its complete gradient, in order."""
    for hook in list(tensor._hooks.values()):  # type: ignore[union-attr]  # called when set
        result = hook(g)
        if result is None:
            continue
        if not isinstance(result, Tensor) or result.shape != g.shape:
            got = f"shape {result.shape}" if isinstance(result, Tensor) else type(result).__name__
            name = getattr(hook, "__name__", hook)
            raise TypeError(f"hook {name!r} must return None or a Tensor of the gradient's shape "
                            f"{g.shape}, got {got}")
        g = result
    return g


def propagate(tensor: "Tensor", g: "Tensor", grad_table: dict, report=None,
              anomaly: bool = False) -> None:
    """One step of the algorithm: each input's VJP rule applied to ``g``, added to its entry.

    ``report(i, x, status, contribution, entry)``, when given, hears about every input: status is
    'ok', 'constant' (the input does not require grad), 'not differentiable' (no rule) or 'zero'
    (the rule returned None). ``explain`` uses it to show the table being filled. With
    ``anomaly``, a contribution with NaN/inf from a finite ``g`` raises AnomalyError.
    """
    node: Node = tensor.grad_fn  # type: ignore[assignment]  # called on non-leaves only
    inputs, params, prim = node.inputs, node.params, node.prim
    if node.versions is not None:
        check_versions(tensor)
    joint = None
    if prim.joint_vjp is not None:  # one rule for every input (a recurrence run backwards once)
        joint = prim.joint_vjp(g, tensor, *inputs,
                               needs=tuple(x.requires_grad for x in inputs), **params)
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            if report is not None:
                report(i, x, "constant", None, None)
            continue
        if joint is not None:
            gx = joint[i]
        elif prim.variadic:
            gx = prim.vjps[0](g, tensor, *inputs, argnum=i, **params)
        else:
            rule = prim.vjps[i]
            gx = None if rule is None else rule(g, tensor, *inputs, **params)
        if gx is None:
            if report is not None:
                has_rule = (prim.variadic or joint is not None
                            or prim.vjps[i] is not None)
                status = "zero" if has_rule else "not differentiable"
                report(i, x, status, None, grad_table.get(id(x)))
            continue
        if anomaly:
            _check_backward_anomaly(tensor, i, g, gx)
        if gx.data.shape != x.data.shape or gx.data.dtype is not x.data.dtype:
            gx = _fit_to(gx, x)
        previous = grad_table.get(id(x))
        entry = gx if previous is None else ops.add(previous, gx)
        grad_table[id(x)] = entry
        if report is not None:
            report(i, x, "ok", gx, entry)


def _accumulate(tensor: "Tensor", g: "Tensor", create_graph: bool, handed_out: set) -> None:
    """``tensor.grad += g``; a fresh array each time so no two ``.grad`` share memory."""
    if not create_graph:
        data = g.data
        if type(data) is np.ndarray:  # the hot path
            if id(data) in handed_out or data.base is not None:
                data = data.copy()
        elif id(data) in handed_out or getattr(data, "base", True) is not None:
            # a backend that does not say whether an array is a view: always a copy
            data = backends.backend_of(data).xp.asarray(data, copy=True)
        handed_out.add(id(data))
        g = Tensor._from_array(data)
    if tensor.grad is None:
        tensor.grad = g
    elif create_graph:
        tensor.grad = tensor.grad + g
    else:
        held = tensor.grad.data
        if type(held) is not type(g.data) or (
                type(held) is not np.ndarray and tensor.grad.device != g.device):
            raise backends.mismatch(held, g.data, "accumulating into a leaf's .grad")
        tensor.grad = Tensor._from_array(held + g.data)


def _default_root_grad(out: "Tensor") -> "Tensor":
    if out.size != 1:
        raise RuntimeError(
            f"grad can be implicitly created only for scalar outputs, but the output has shape "
            f"{out.shape}: pass gradient= (a tensor of that shape) to backward()"
        )
    data = out.data
    if type(data) is np.ndarray:
        return Tensor._from_array(np.ones_like(data))
    return Tensor._from_array(backends.backend_of(data).xp.ones_like(data))


def _check_root_grad(out: "Tensor", g) -> "Tensor":
    g = ops.as_tensor(g, like=out)
    if type(g.data) is not type(out.data) or (
            type(out.data) is not np.ndarray and g.device != out.device):
        raise backends.mismatch(out.data, g.data, "backward (the output and its gradient)")
    if g.shape != out.shape:
        raise ValueError(f"gradient has shape {g.shape} but the output has shape {out.shape}")
    return g


def backward(
    tensor: "Tensor",
    gradient=None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensor)/d(leaf) into every leaf's ``.grad`` (see ``Tensor.backward``)."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "element 0 of tensors does not require grad and does not have a grad_fn: "
            "nothing to differentiate (create a leaf with requires_grad=True)"
        )
    g = _default_root_grad(tensor) if gradient is None else _check_root_grad(tensor, gradient)
    _run([tensor], [g], retain_graph=retain_graph or create_graph, create_graph=create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: Optional[bool] = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """Gradients of ``outputs`` w.r.t. ``inputs``, leaving ``.grad`` alone (torch.autograd.grad).

    ``sum_k grad_outputs[k] . d outputs[k] / d inputs[i]`` for each input i. An input the outputs do
    not depend on raises unless ``allow_unused=True``, when its gradient is None.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("one of the inputs does not require grad: nothing to differentiate")
    roots, root_grads = [], []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            continue
        roots.append(out)
        root_grads.append(_default_root_grad(out) if g is None else _check_root_grad(out, g))
    if retain_graph is None:
        retain_graph = create_graph
    found = _run(roots, root_grads, retain_graph=retain_graph, create_graph=create_graph,
                 targets=inputs)
    results = []
    for i, x in enumerate(inputs):
        g = found.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {i} was not used to compute the outputs: pass allow_unused=True to get None"
            )
        results.append(g)
    return tuple(results)


# ops and Tensor import this module (for Node): bind them last.
from chainrule import ops  # noqa: E402
from chainrule.engine.tensor import Tensor  # noqa: E402

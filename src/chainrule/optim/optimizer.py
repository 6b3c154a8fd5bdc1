"""``Optimizer``: parameter groups, per-parameter state and PyTorch's ``state_dict`` format.

An optimizer holds

* ``param_groups`` -- a list of dicts, each with a ``'params'`` list of Tensors and that group's
  hyperparameters (``lr``, ``weight_decay`` ...; the constructor's values fill what a group
  leaves out),
* ``state`` -- a dict keyed by the parameter Tensor itself (Tensors hash by identity) holding
  that parameter's buffers (``momentum_buffer``, ``exp_avg`` ...) and counters (``step``).

``step(closure=None)`` updates every parameter whose ``.grad`` is not None, outside the graph
(under ``no_grad``, with the in-place operations of :mod:`chainrule.ops.inplace`); a parameter
without a gradient is skipped and gets no state. Subclasses implement ``_update(param, grad,
group)`` for one parameter (or override ``step``) and ``_check_group(group)`` to validate
hyperparameters, which runs on the constructor's defaults, on every added group and on every
loaded one.

``state_dict()`` is PyTorch's format: ``{'state': {index: {key: Tensor or number}},
'param_groups': [{..hyperparameters.., 'params': [index, ...]}]}``, parameters numbered in group
order. Unlike PyTorch it is a snapshot: the Tensors are copies, so later steps do not change a
saved dict. ``load_state_dict`` checks the structure first (number of groups, size of each
group, indices, state shapes) and changes nothing when it raises.

State lives with its parameter: each buffer is made on the parameter's backend and device
(:func:`zeros_state`), and ``load_state_dict`` moves loaded buffers there, so a state dict saved
on one device loads into an optimizer of parameters on another.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections import defaultdict
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from chainrule import backends, ops
from chainrule.engine.errors import ShapeError
from chainrule.engine.grad_mode import enable_grad, no_grad
from chainrule.engine.tensor import Tensor
from chainrule.ops import inplace

__all__ = ["Optimizer", "ParamsT", "check_betas", "check_nonnegative", "check_unit",
           "zeros_state"]

#: What an optimizer accepts: Tensors, or dicts (parameter groups) with a ``'params'`` entry.
ParamsT = Union[Iterable[Tensor], Iterable[dict]]


def check_nonnegative(group: dict, *names: str) -> None:
    """Raise ``ValueError`` naming the first of ``names`` that is not a real number >= 0."""
    for name in names:
        value = group[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r}: expected a real number")
        if not value >= 0:  # type: ignore[operator]  # catches NaN; numbers.Real's stub lacks >=
            raise ValueError(f"{name}={value!r}: must be >= 0")


def check_unit(group: dict, name: str, *, closed: bool = False) -> None:
    """Raise naming ``name`` unless ``group[name]`` is a number in [0, 1) ([0, 1] if closed)."""
    value = group[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r}: expected a real number")
    if not (0 <= value <= 1 if closed else 0 <= value < 1):  # type: ignore[operator]
        raise ValueError(f"{name}={value!r}: must lie in [0, 1{']' if closed else ')'}")


def check_betas(group: dict) -> None:
    """Check ``group['betas']``: a pair (beta1, beta2), each in [0, 1) (a list becomes a tuple)."""
    betas = group["betas"]
    if isinstance(betas, list):  # a state_dict that went through JSON
        betas = group["betas"] = tuple(betas)
    if not isinstance(betas, tuple) or len(betas) != 2:
        raise ValueError(f"betas={betas!r}: expected a pair (beta1, beta2)")
    for i, beta in enumerate(betas):
        if (
            isinstance(beta, bool)
            or not isinstance(beta, numbers.Real)
            or not 0 <= beta < 1  # type: ignore[operator]  # numbers.Real's stub lacks >=
        ):
            raise ValueError(f"betas={betas!r}: betas[{i}] must lie in [0, 1)")


def zeros_state(param: Tensor) -> Tensor:
    """A state buffer of zeros with ``param``'s shape and dtype, on its backend and device."""
    data = param.data
    if type(data) is np.ndarray:
        return ops.zeros_like(param)
    return Tensor._from_array(backends.backend_of(data).xp.zeros_like(data))


class Optimizer:
    """Base class: holds ``param_groups`` and ``state``; subclasses define the update rule."""

    #: State entries that have their parameter's shape (checked by ``load_state_dict``).
    _param_shaped_state: tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, (Tensor, dict)):
            raise TypeError(
                f"params should be an iterable of Tensors or of dicts (parameter groups), got a "
                f"single {type(params).__name__}: wrap it in a list"
            )
        self._check_group(defaults)
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups: list[Any] = list(params)  # Tensors, or dicts that add_param_group checks
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyperparameters (subclasses: ValueError naming the argument)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group (a dict with ``'params'``); missing hyperparameters come from defaults.

        The dict is copied (PyTorch stores and fills in the caller's dict itself).
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group needs a 'params' entry (the Tensors it holds)")
        group = dict(param_group)
        group["params"] = self._param_list(group["params"])
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters",
                          stacklevel=2)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    @staticmethod
    def _param_list(params: Any) -> list[Tensor]:
        if isinstance(params, Tensor):
            return [params]
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters must be an ordered collection (a list), not a "
                            "set: the order of a set changes between runs")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but params[{i}] is a "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (params[{i}] has a grad_fn)")
        return params

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items())
                      if key != "params"]
        return "\n".join(lines + [")"])

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (default) or zeros written in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if p.grad.grad_fn is not None:  # a gradient with history (create_graph=True)
                    p.grad = p.grad.detach()
                p.grad.requires_grad = False
                inplace.zero_(p.grad)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given.

        ``closure`` re-evaluates the model and returns the loss (it runs with grad mode on, before
        the update); the update itself runs under ``no_grad``.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad.detach(), group)
        return loss

    def _update(self, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        """Update one parameter in place from its gradient (runs under ``no_grad``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define its update rule")

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """A snapshot in PyTorch's format: state by parameter index, groups with index lists."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: {key: _snapshot(value) for key, value in entries.items()}
                 for p, entries in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an optimizer with the same group layout.

        Saved hyperparameters replace the current ones; state Tensors are copied and cast to
        their parameter's dtype (``step`` counters stay numbers). Raises ``ValueError`` (or
        ``ShapeError``) for a different number of groups, a group of another size, a state entry
        for an unknown index or a buffer (``_param_shaped_state``) whose shape is not its
        parameter's, and then changes nothing.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups: "
                f"{len(saved_groups)} saved, {len(self.param_groups)} in this optimizer"
            )
        id_map: dict[Any, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} holds {len(saved.get('params', ()))} "
                    f"parameters, this optimizer's group {i} holds {len(group['params'])}"
                )
            id_map.update(zip(saved.get("params", ()), group["params"]))
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for index, entries in state_dict["state"].items():
            if index not in id_map:
                raise ValueError(f"loaded state dict has state for parameter index {index!r}, "
                                 f"which none of its parameter groups lists")
            param = id_map[index]
            state[param] = {key: _restore(value, param, index, key, key in self._param_shaped_state)
                            for key, value in entries.items()}
        groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            for name, default in self.defaults.items():
                new.setdefault(name, default)
            self._check_group(new)
            groups.append(new)
        self.state, self.param_groups = state, groups


def _snapshot(value: Any) -> Any:
    """A saved copy of one state value: Tensors cloned, the rest deep-copied."""
    return inplace.clone(value) if isinstance(value, Tensor) else copy.deepcopy(value)


def _restore(value: Any, param: Tensor, index: Any, key: str, shaped: bool) -> Any:
    """A loaded state value for ``param``: a fresh Tensor in its dtype, or a number."""
    if not isinstance(value, Tensor) and hasattr(value, "shape") and hasattr(value, "dtype"):
        value = Tensor(value)  # an ndarray or NumPy scalar, dtype kept
    if not isinstance(value, Tensor):
        return copy.deepcopy(value)
    if key == "step":  # PyTorch keeps the counter in a 0-d tensor; here it is a number
        number = value.item()
        return int(number) if float(number).is_integer() else number
    if shaped and value.shape != param.shape:
        raise ShapeError(f"loaded state {key!r} of parameter {index} has shape {value.shape}, "
                         f"the parameter has shape {param.shape}")
    if value.device != param.device:  # saved on another device: state lives with its parameter
        value = Tensor._from_array(backends.move(value.data, param.device))
    floating = param.dtype.kind == "f" and value.dtype.kind == "f"
    return inplace.clone(value, dtype=param.dtype if floating else None)

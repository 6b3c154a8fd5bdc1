"""``Module`` and ``Parameter``: networks as trees of modules, parameters found from attributes.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it, as in PyTorch:
``parameters()``, ``state_dict()``, ``train()``/``eval()`` and the nested ``repr`` walk that tree.
``to(device)`` moves every parameter and buffer in place (the same Parameter objects, new arrays).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from chainrule import backends
from chainrule.engine.hooks import RemovableHandle
from chainrule.engine.tensor import Tensor, from_dlpack

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "RemovableHandle"]

#: A layer's ``device=`` argument: ``"cpu"``, ``"cuda:1"``, a Device, or None (the default device)
DeviceLike = Union[str, backends.Device, None]


#: the buffer of a norm layer's batch count (torch's name)
_COUNT_KEY = "num_batches_tracked"


class Parameter(Tensor):
    """A Tensor that is a module's learnable variable: ``requires_grad=True`` unless told
    otherwise.

    It holds a copy of ``data``: an array or Tensor stays on its backend and device, Python data
    goes to the thread's default device.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        if isinstance(data, Tensor):
            data = data.data
        if type(data) is not np.ndarray and _is_device_array(data):
            copy = backends.backend_of(data).xp.asarray(data, copy=True)
        else:
            copy = np.array(data, copy=True)
            if not isinstance(data, np.ndarray):
                copy = _to_default_device(copy)
        super().__init__(copy, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _is_device_array(value: Any) -> bool:
    """Whether ``value`` is an array of a backend other than NumPy (CuPy, array_api_strict ...)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return False
    return type(value) in backends.BY_TYPE or hasattr(value, "__array_namespace__")


def _to_default_device(host: np.ndarray) -> Any:
    device = backends.get_default_device()
    return host if device.backend == "numpy" else backends.move(host, device)


def _host(value: Any) -> Any:
    """``value`` (a Tensor, an array of any backend, a number, a list) readable by NumPy."""
    if isinstance(value, Tensor):
        return value.numpy()
    if _is_device_array(value):
        return backends.backend_of(value).to_host(value)
    return value


def _imported(key: str, value: Any) -> Any:
    """A state_dict value from another library (a ``torch.Tensor`` or ``Parameter``, a JAX
    array) as a Tensor on its memory (DLPack); anything else as it is. Errors name ``key``."""
    if isinstance(value, (Tensor, np.ndarray)) or _is_device_array(value) or not hasattr(
            value, "__dlpack__"):
        return value
    if getattr(value, "requires_grad", False) is True and hasattr(value, "detach"):
        value = value.detach()  # torch copies a Parameter's values too
    try:
        return from_dlpack(value)
    except (TypeError, BufferError) as error:
        raise type(error)(f"load_state_dict: {key}: {error}") from error


def _copy_into(target: Tensor, value: Any) -> None:
    """``target``'s values <- ``value`` (any backend; cast to target's dtype), on target's device.

    A NumPy target is written in place; elsewhere ``target.data`` becomes a new array there.
    """
    if type(target.data) is np.ndarray:
        target.data[...] = _host(value)
    else:
        values = np.array(_host(value), dtype=target.dtype)  # a fresh host copy, never aliased
        target.data = backends.move(np.broadcast_to(values, target.shape).copy(), target.device)
    target._bump_version()


class Module:
    """Base class of every layer and network.

    Subclasses set attributes in ``__init__`` and define ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        if name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value  # assigning to a buffer's name replaces the buffer
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True) -> None:
        """State that is not learned (running statistics): saved in ``state_dict`` unless not
        persistent."""
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register ``param`` (or None, an absent optional parameter such as a bias) under
        ``name``."""
        if param is None:
            self.__dict__.pop(name, None)
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        return ((name, m) for name, m in self._modules.items() if m is not None)

    def children(self) -> Iterator["Module"]:
        return (m for _, m in self.named_children())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module, depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def _named_members(self, table: str, recurse: bool) -> Iterator[tuple[str, Any]]:
        """(dotted name, value): Parameters from "_parameters", Tensors from "_buffers"."""
        seen: set[int] = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers(recurse))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Parameters and persistent buffers by dotted name (the tensors themselves, not copies)."""
        state: OrderedDict = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, value in module._parameters.items():
                if value is not None:
                    state[dot + name] = value
            for name, value in module._buffers.items():
                if value is not None and name not in module._non_persistent:
                    state[dot + name] = value
        return state

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> tuple[list, list]:
        """Copy values into this module's parameters and buffers (in place).

        Values may be Tensors, arrays of any backend, or any DLPack producer: a PyTorch
        ``state_dict()`` loads as it is (``model.load_state_dict(torch_model.state_dict())``;
        the names are torch's), read without a copy through DLPack; each value is cast to its
        parameter's dtype. With ``strict`` every key must match: missing keys, unexpected keys and
        shape mismatches are all listed in one ``KeyError``/``ValueError`` (a missing
        ``num_batches_tracked`` is allowed and keeps its value, as torch allows it in a state dict
        of an older version). Returns (missing, unexpected).
        """
        own = self.state_dict()
        # a norm layer's batch count is a record, not a value the forward reads: a checkpoint
        # saved before chainrule had it loads as torch loads one of its own older versions
        missing = [k for k in own if k not in state_dict and not k.endswith(_COUNT_KEY)]
        unexpected = [k for k in state_dict if k not in own]
        values = {key: _imported(key, value) for key, value in state_dict.items() if key in own}
        mismatched = []
        for key, target in own.items():
            if key in values:
                given = values[key]
                shape = given.shape if isinstance(given, Tensor) or _is_device_array(given) \
                    else np.shape(given)
                if tuple(shape) != target.shape:
                    mismatched.append(f"{key}: checkpoint {tuple(shape)}, model {target.shape}")
        if mismatched:
            raise ValueError("load_state_dict: shape mismatch for " + "; ".join(mismatched))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for key, target in own.items():
            if key in values:
                _copy_into(target, values[key])  # onto target's own device
        return missing, unexpected

    # ------------------------------------------------------------------ devices
    def to(self, device: Union[str, backends.Device]) -> "Module":
        """Move every parameter, gradient and buffer to ``device``, in place; returns self.

        As PyTorch's ``Module.to``: the Parameter objects stay the same (an optimizer made before
        keeps working), their ``.data`` becomes the moved array.
        """
        target = backends.Device(device)
        for tensor in (*self.parameters(), *self.buffers()):
            _move_tensor(tensor, target)
        return self

    def cpu(self) -> "Module":
        """``to("cpu")``: parameters and buffers in host memory (NumPy)."""
        return self.to("cpu")

    def cuda(self, device: Optional[int] = None) -> "Module":
        """``to("cuda")`` or ``to("cuda:N")``: parameters and buffers on a GPU (CuPy)."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active, batch norm on batch statistics) for this module and all
        below."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                xp = np if type(p.data) is np.ndarray else backends.backend_of(p.data).xp
                p.grad = Tensor._from_array(xp.zeros_like(p.data))

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        for module in self.modules():
            fn(module)
        return self

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after every forward; a non-None return replaces
        the output."""
        return RemovableHandle.add(self._forward_hooks, hook)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [
            f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self.named_children()
        ]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        return head + "\n  " + "\n  ".join(children) + "\n)"


def built_on_host() -> backends.default_device:
    """``with built_on_host(): ...`` -- a layer's parameters made and initialised on the host, so
    that the same seed gives the same values on every device (then :func:`place` moves them)."""
    return backends.default_device("cpu")


def place(module: Module, device: DeviceLike) -> None:
    """Move a module built on the host to ``device``; None means this thread's default device."""
    target = backends.get_default_device() if device is None else backends.Device(device)
    if target.backend != "numpy":
        module.to(target)


def _move_tensor(tensor: Tensor, device: backends.Device) -> None:
    """``tensor.data`` (and its ``.grad``'s) moved to ``device``, the Tensor objects kept."""
    tensor.data = backends.move(tensor.data, device)
    if tensor.grad is not None:
        tensor.grad.data = backends.move(tensor.grad.data, device)


class _Container(Module):
    """Modules held in order under the names "0", "1", ...: indexing, len and iteration."""

    def _append(self, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}: expected a Module, got {type(module).__name__}"
            )
        self.add_module(str(len(self._modules)), module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_Container):
    """Modules applied in order: ``Sequential(Linear(2, 4), ReLU(), Linear(4, 1))``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for module in modules:
                self._append(module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def append(self, module: Module) -> "Sequential":
        self._append(module)
        return self


class ModuleList(_Container):
    """A list of modules whose parameters are registered (it has no forward of its own)."""

    def __init__(self, modules=()) -> None:
        super().__init__()
        for module in modules:
            self._append(module)

    def append(self, module: Module) -> "ModuleList":
        self._append(module)
        return self


class ModuleDict(Module):
    """Modules under string keys, registered (``torch.nn.ModuleDict``; no forward of its own)."""

    def __init__(self, modules: Optional[Any] = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules: Any) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for key, module in items:
            self[key] = module

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not isinstance(module, Module):
            raise TypeError(f"ModuleDict: expected str -> Module, got {type(key).__name__} -> "
                            f"{type(module).__name__}")
        self.add_module(key, module)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Any:
        return self._modules.keys()

    def values(self) -> Any:
        return self._modules.values()

    def items(self) -> Any:
        return self._modules.items()


def _as_parameter(value: Any, who: str) -> Parameter:
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value.data)
    raise TypeError(f"{who}: expected a Parameter or Tensor, got {type(value).__name__}")


class ParameterList(Module):
    """Parameters in order under the names "0", "1", ... (``torch.nn.ParameterList``)."""

    def __init__(self, values: Any = ()) -> None:
        super().__init__()
        for value in values:
            self.append(value)

    def append(self, value: Any) -> "ParameterList":
        self.register_parameter(str(len(self._parameters)), _as_parameter(value, "ParameterList"))
        return self

    def __getitem__(self, index: int) -> Parameter:
        return list(self._parameters.values())[index]

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())


class ParameterDict(Module):
    """Parameters under string keys (``torch.nn.ParameterDict``)."""

    def __init__(self, values: Optional[Any] = None) -> None:
        super().__init__()
        if values is not None:
            items = values.items() if hasattr(values, "items") else values
            for key, value in items:
                self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def keys(self) -> Any:
        return self._parameters.keys()

    def items(self) -> Any:
        return self._parameters.items()

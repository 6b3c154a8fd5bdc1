"""``Tensor``: a thin handle on an array plus the graph bookkeeping autodiff needs.

A Tensor holds ``data`` (an array of one backend -- NumPy by default, CuPy, any array-API
namespace -- on one device), ``requires_grad``, ``grad`` and ``grad_fn`` (the
:class:`~chainrule.engine.autograd.Node` that made it, None for leaves). It computes nothing
itself: every method and operator forwards to a function in :mod:`chainrule.ops`. ``dtype`` is a
NumPy dtype on every backend; ``device`` is PyTorch's spelling (``"cpu"``, ``"cuda:0"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from chainrule import backends
from chainrule.backends import dlpack as _dlpack
from chainrule.engine.hooks import RemovableHandle

if TYPE_CHECKING:
    from chainrule.engine.autograd import Node

__all__ = ["Tensor", "tensor", "from_dlpack", "to_array"]

_FLOAT_KINDS = ("f",)


#: The dtype of a Python number in a tensor (PyTorch's: its default dtype for floats).
_PYTHON_DTYPES = {bool: np.dtype(np.bool_), int: np.dtype(np.int64), float: np.dtype(np.float32)}
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """``data`` as an ndarray, with PyTorch's dtype rules for Python values.

    NumPy arrays, NumPy scalars and Tensors keep their dtype, also inside lists; Python floats
    become float32, Python ints int64 (an int beyond int64 raises OverflowError, as PyTorch
    refuses it, instead of wrapping), bools stay bool. The leaves of a list promote as in
    PyTorch: the highest kind wins (bool < int < float) and within it NumPy's result type, so
    ``[1, 2.5]`` is float32 and a list of float64 arrays stays float64. ``dtype=`` overrides.
    """
    if isinstance(data, Tensor):
        array = data.data
    elif isinstance(data, (np.ndarray, np.generic)):
        array = np.asarray(data)
    elif type(data) in backends.BY_TYPE or hasattr(data, "__array_namespace__"):
        backend = backends.backend_of(data)  # an array of another backend stays there
        return data if dtype is None else backend.xp.astype(data, backend.dtype(dtype))
    elif dtype is not None:  # straight to the requested dtype: no float32 detour for Python floats
        array = _on_default_device(np.asarray(data, dtype=np.dtype(dtype)))
    else:
        return _on_default_device(_python_data(data))
    if dtype is not None:
        if type(array) is not np.ndarray:
            backend = backends.backend_of(array)
            return backend.xp.astype(array, backend.dtype(dtype))
        array = array.astype(np.dtype(dtype), copy=False)
    return array


def _on_default_device(array: np.ndarray) -> Any:
    """A host array made from Python data, moved to this thread's default device (if not cpu)."""
    device = backends.get_default_device()
    if device.backend == "numpy":
        return array
    return backends.get(device.backend).from_host(array, device)


def _python_data(data: Any) -> np.ndarray:
    """A Python number or (nested) list as an ndarray of PyTorch's dtype for it."""
    scalar_dtype = _PYTHON_DTYPES.get(type(data))
    if scalar_dtype is not None:  # the common case, a Python number
        if type(data) is int and not -(2 ** 63) <= data < 2 ** 63:
            raise OverflowError(f"cannot make a tensor from {data}: Python ints become int64, "
                                f"whose range is -2**63 .. 2**63 - 1 (pass dtype= for another)")
        return np.asarray(data, dtype=scalar_dtype)
    array = np.asarray(data)
    leaves: set = set()
    if isinstance(data, (list, tuple)):
        _leaf_dtypes(data, leaves)
    target = _promote_leaves(leaves) if leaves else array.dtype
    if target.kind not in _KIND_RANK or array.dtype.kind in "USV":
        raise TypeError(
            f"cannot make a tensor from {type(data).__name__} holding {array.dtype} values: "
            f"expected numbers, nested lists of numbers or an ndarray"
        )
    if target.kind in "iu" and not np.can_cast(array.dtype, target):  # NumPy widened: too big
        raise OverflowError(f"cannot make a tensor from {type(data).__name__} holding an int "
                            f"beyond {target}'s range (Python ints become int64, as in PyTorch)")
    if not leaves and array.dtype == np.float64:  # an empty list: PyTorch's default dtype
        target = _PYTHON_DTYPES[float]
    return array.astype(target, copy=False)


def _leaf_dtypes(data: Any, found: set) -> None:
    """Add to ``found`` the dtype of each leaf of nested lists (Python numbers: _PYTHON_DTYPES)."""
    types = set(map(type, data))
    found.update(_PYTHON_DTYPES[t] for t in types if t in _PYTHON_DTYPES)
    if types.issubset(_PYTHON_DTYPES):
        return
    for item in data:
        if isinstance(item, (list, tuple)):
            _leaf_dtypes(item, found)
        elif isinstance(item, (np.ndarray, np.generic, Tensor)):
            found.add(item.dtype)
        elif type(item) not in _PYTHON_DTYPES:
            found.add(np.asarray(item).dtype)  # complex, None, strings ...: judged by the caller


def _promote_leaves(dtypes: set) -> np.dtype:
    """PyTorch's promotion of leaf dtypes: the highest kind wins, then NumPy's result type in it.

    (NumPy alone widens int64 with float32 to float64 and turns Python floats into float64.)
    """
    if any(d.kind not in _KIND_RANK for d in dtypes):
        return np.dtype(object)
    top = max(_KIND_RANK[d.kind] for d in dtypes)
    return np.result_type(*[d for d in dtypes if _KIND_RANK[d.kind] == top])


def tensor(data: Any, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> "Tensor":
    """A new leaf tensor holding a copy of ``data`` (dtype rules as ``torch.tensor``).

    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...) places it; by default an array keeps
    its backend and device, and Python data goes to the thread's default device (``"cpu"``).
    """
    array = to_array(data, dtype)
    if device is not None:
        array = backends.move(array, backends.Device(device))
    if type(array) is np.ndarray:
        array = np.array(array, copy=True)
    else:
        backend = backends.backend_of(array)
        array = backend.xp.asarray(array, copy=True)
    return Tensor(array, requires_grad=requires_grad)


def from_dlpack(x: Any, *, device: Any = None, copy: Optional[bool] = None) -> "Tensor":
    """A leaf tensor on ``x``'s memory, through DLPack (``torch.from_dlpack``, the array API's).

    ``x`` is any object with ``__dlpack__``: a ``torch.Tensor``, a NumPy or CuPy array, a JAX
    array, a chainrule Tensor. Host memory becomes a NumPy tensor (``"cpu"``), CUDA memory a CuPy
    one (``"cuda:n"``), shared, not copied: writes through ``x`` show in the tensor and back (see
    ``Tensor.__dlpack__`` on version counters). ``copy=True`` copies; ``device=`` puts the result
    there (a copy when it differs from ``x``'s, so ``copy=False`` then raises ValueError). From a
    chainrule Tensor the result is ``x.detach()``'s alias, sharing its version counter.

    Raises BufferError when ``x`` requires grad (pass ``x.detach()``: DLPack carries no graph) or
    lives on a device no backend reads, TypeError for a dtype chainrule lacks (``bfloat16``).
    """
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"from_dlpack: x must have __dlpack__ (a torch.Tensor, NumPy or CuPy "
                        f"array, JAX array), got {_dlpack.describe(x)}; use cr.tensor() for data")
    if getattr(x, "requires_grad", False) is True:
        raise BufferError(f"from_dlpack: this {_dlpack.describe(x)} requires grad, and DLPack "
                          f"carries the values only: pass x.detach()")
    array = _dlpack.from_dlpack(x)
    here = backends.backend_of(array).device_of(array)
    if device is not None and backends.Device(device) != here:
        if copy is False:
            raise ValueError(f"from_dlpack(copy=False): x is on {here}; moving it to "
                             f"device={device!r} needs a copy")
        return Tensor._from_array(backends.move(array, backends.Device(device)))
    if copy:
        return Tensor._from_array(backends.backend_of(array).xp.asarray(array, copy=True))
    result = Tensor._from_array(array)
    if isinstance(x, Tensor):  # one memory, one version counter (as x.detach())
        result._base = x if x._base is None else x._base
    return result


class Tensor:
    """An ndarray that remembers how it was computed, so gradients can flow back through it."""

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_retains_grad", "_hooks",
                 "_post_accumulate_hooks", "_version", "_base", "__weakref__")
    # NumPy never computes on a Tensor (NEP 13's opt-out): ``ndarray + t``, ``ndarray @ t``,
    # ``ndarray == t`` ... call the Tensor's reflected operator (a Tensor, on the graph), and
    # ufuncs (``np.add(a, t)``, ``np.exp(t)``, ``a += t``) raise TypeError instead of silently
    # dropping the graph. Functions that convert first (``np.asarray``, ``np.allclose``,
    # ``np.testing``) go through ``__array__``. The priority, NumPy's older spelling of the same
    # wish, stays for code that still compares priorities.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        self.data = to_array(data)
        self.grad: Optional[Tensor] = None
        self.grad_fn: Optional[Node] = None
        self._retains_grad = False
        self._hooks: Optional[dict] = None
        self._post_accumulate_hooks: Optional[dict] = None
        self._version = 0  # bumped by every in-place operation (see `version`)
        self._base: Optional[Tensor] = None  # the tensor whose memory (and counter) this views
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_array(cls, array: np.ndarray) -> "Tensor":
        """Wrap an ndarray without checks or copies (the hot path of every operation)."""
        t = cls.__new__(cls)
        t.data = array
        t.grad = None
        t.grad_fn = None
        t.requires_grad = False
        t._retains_grad = False
        t._hooks = None
        t._post_accumulate_hooks = None
        t._version = 0
        t._base = None
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data, on every backend."""
        dtype = self.data.dtype
        if type(dtype) is np.dtype or isinstance(dtype, np.dtype):
            return dtype
        return backends.backend_of(self.data).np_dtype(dtype)

    @property
    def device(self) -> backends.Device:
        """Where the data lives: ``device('cpu')``, ``device('cuda:0')`` (equal to the string)."""
        return backends.backend_of(self.data).device_of(self.data)

    @property
    def backend(self) -> str:
        """The array library of the data: ``"numpy"``, ``"cupy"``, ``"array_api_strict"``."""
        return backends.backend_of(self.data).name

    @property
    def version(self) -> int:
        """How many in-place operations have changed this tensor's memory (PyTorch's ``_version``).

        Views (``detach()``, a reshape or transpose that NumPy returns as a view) share the counter
        of the tensor they view. Writing into ``.data`` directly is the escape hatch: not counted.
        """
        return self._version if self._base is None else self._base._version

    def _bump_version(self) -> None:
        """Record an in-place change (called by ``ops.inplace`` and the optimizers)."""
        owner = self if self._base is None else self._base
        owner._version += 1

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user created (no ``grad_fn``); only leaves get ``.grad``."""
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        """All axes reversed, as ``ndarray.T``."""
        return _ops.transpose(self)

    # ----------------------------------------------------------------- autograd handles
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark this leaf as a variable to differentiate with respect to (in place)."""
        if requires_grad and self.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}: "
                f"use dtype=float32 or float64"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be turned off on a leaf: use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` for this non-leaf tensor too during ``backward``."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True
        return self

    def register_hook(self, hook: Callable[["Tensor"], Optional["Tensor"]]) -> RemovableHandle:
        """Call ``hook(grad)`` whenever the gradient with respect to this tensor has been computed.

        As ``torch.Tensor.register_hook``: ``grad`` is the tensor's complete gradient in this
        backward pass (or ``chainrule.autograd_grad`` call), before it flows on to the tensor's
        inputs or, for a leaf, is added to ``.grad``. A hook that returns a Tensor of the same shape
        replaces the gradient from there on; returning None leaves it as it is. Hooks run in the
        order they were registered; ``handle.remove()`` unregisters one.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook() on a tensor that does not require grad: "
                               "no gradient will reach it")
        if not callable(hook):
            raise TypeError(
                f"hook must be callable (grad -> Tensor or None), got {type(hook).__name__}"
            )
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle.add(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]
                                           ) -> RemovableHandle:
        """Call ``hook(tensor)`` after ``backward`` has added this leaf's gradient to ``.grad``.

        As ``torch.Tensor.register_post_accumulate_grad_hook``: for leaves only, run once per
        backward pass in which the leaf receives a gradient, when its ``.grad`` is complete (it
        already includes this pass). ``DistributedDataParallel`` uses it to start reducing a bucket
        of gradients while the rest of the backward pass runs. The hook's return value is ignored.
        """
        if self.grad_fn is not None or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook() needs a leaf that requires "
                               "grad (a parameter): only leaves accumulate into .grad")
        if not callable(hook):
            raise TypeError(f"hook must be callable (tensor -> None), got {type(hook).__name__}")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = {}
        return RemovableHandle.add(self._post_accumulate_hooks, hook)

    def detach(self) -> "Tensor":
        """The same data (shared, not copied; the same version counter), cut out of the graph."""
        t = Tensor._from_array(self.data)
        t._base = self if self._base is None else self._base
        return t

    def backward(self, gradient: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Back-propagate from this tensor, accumulating into every leaf's ``.grad``.

        ``gradient`` is d(loss)/d(self), required unless this tensor has one element. The saved
        tensors are freed afterwards unless ``retain_graph``; ``create_graph`` records the
        backward pass itself so that the gradients can be differentiated again.
        """
        from chainrule.engine.autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a host ndarray: shared memory on the CPU, a copy from a GPU."""
        if type(self.data) is np.ndarray:
            return self.data
        return backends.backend_of(self.data).to_host(self.data)

    def to(self, device: Any = None, dtype: Any = None) -> "Tensor":
        """This tensor on ``device`` and/or in ``dtype`` (itself when nothing changes).

        ``t.to("cuda")``, ``t.to("cpu")``, ``t.to(float64)``, ``t.to("cuda", float32)``. Both
        are differentiable: the gradient goes back to this tensor's device and dtype.
        """
        if dtype is None and device is not None and not isinstance(device, (str, backends.Device)):
            device, dtype = None, device  # t.to(np.float64)
        result = self
        if device is not None and backends.Device(device) != self.device:
            result = _ops.to_device(result, device)
        if dtype is not None and np.dtype(dtype) != result.dtype:
            result = _ops.astype(result, dtype)
        return result

    def cpu(self) -> "Tensor":
        """This tensor in host memory (NumPy): ``to("cpu")``."""
        return self.to("cpu")

    def cuda(self, device: Any = None) -> "Tensor":
        """This tensor on a CUDA GPU (CuPy): ``to("cuda")`` or ``to("cuda:N")``."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    def item(self) -> Any:
        """The single element as a Python number."""
        if self.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, this one has shape {self.shape}"
            )
        return self.numpy().item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def astype(self, dtype: Any) -> "Tensor":
        """A copy converted to ``dtype``; differentiable between floating dtypes."""
        return _ops.astype(self, dtype)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        """``np.asarray(t)``: the data as a host ndarray, with NumPy 2's ``copy`` rule.

        ``copy=None`` copies only when needed (another dtype, or memory off the host); ``True``
        always copies; ``False`` never does and raises ValueError when a copy is needed. A
        tensor that requires grad converts too (its values; the graph stays behind).
        """
        convert = dtype is not None and np.dtype(dtype) != self.dtype
        if copy is False and (convert or type(self.data) is not np.ndarray):
            reason = f"to {np.dtype(dtype)}" if convert else f"from {self.device} to host memory"
            raise ValueError(f"__array__(copy=False): converting this {self.dtype} tensor "
                             f"{reason} needs a copy; pass copy=None or copy=True")
        host = self.numpy()
        if convert:
            return host.astype(dtype)
        return host.copy() if copy and host is self.data else host

    def __dlpack__(self, *, stream: Any = None, max_version: Optional[tuple] = None,
                   dl_device: Optional[tuple] = None, copy: Optional[bool] = None) -> Any:
        """A DLPack capsule of the data (the array API standard's protocol, 2023.12): the
        memory is shared, not copied, unless ``copy=True``.

        ``torch.from_dlpack(t)``, ``np.from_dlpack(t)`` and ``cupy.from_dlpack(t)`` alias ``t``'s
        memory: a write through either side shows in the other. Writes from outside are not
        counted by ``t.version`` (as writing into ``.data``), so do not change, through the alias,
        a tensor that a graph still needs for its backward pass. A tensor that requires grad
        raises BufferError, as in PyTorch: export ``t.detach()`` (the same memory, no graph).
        """
        if self.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach(): "
                              "DLPack carries the values only, not the graph")
        export = getattr(self.data, "__dlpack__", None)
        if export is None:
            raise BufferError(f"a tensor of the {self.backend} backend has no DLPack export")
        # only what the consumer asked for: a producer older than the 2023.12 standard takes
        # stream= alone, and its TypeError for the rest is the consumer's cue to retry without
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                 "copy": copy}
        return export(**{key: value for key, value in given.items() if value is not None})

    def __dlpack_device__(self) -> tuple:
        """(DLPack device type, index) of the data: ``(1, 0)`` for the host, ``(2, n)`` for
        ``cuda:n``."""
        device = getattr(self.data, "__dlpack_device__", None)
        if device is None:
            raise BufferError(f"a tensor of the {self.backend} backend has no DLPack export")
        return device()

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.numpy())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        if type(self.data) is not np.ndarray and backends.backend_of(self.data).name == "abstract":
            return f"tensor(abstract, shape={self.shape}, dtype={self.dtype})"  # eval_shape
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extra = [f"dtype={self.dtype}"]
        if type(self.data) is not np.ndarray:
            extra.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extra.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extra)})"

    # ----------------------------------------------------------------- operators
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    # comparisons: bool tensors outside the graph
    def __lt__(self, other): return _ops.less(self, other)
    def __le__(self, other): return _ops.less_equal(self, other)
    def __gt__(self, other): return _ops.greater(self, other)
    def __ge__(self, other): return _ops.greater_equal(self, other)
    def __eq__(self, other): return _ops.equal(self, other)
    def __ne__(self, other): return _ops.not_equal(self, other)

    # ----------------------------------------------------------------- methods mirroring ops
    def exp(self) -> Tensor: return _ops.exp(self)
    def log(self) -> Tensor: return _ops.log(self)
    def log1p(self) -> Tensor: return _ops.log1p(self)
    def expm1(self) -> Tensor: return _ops.expm1(self)
    def sqrt(self) -> Tensor: return _ops.sqrt(self)
    def sin(self) -> Tensor: return _ops.sin(self)
    def cos(self) -> Tensor: return _ops.cos(self)
    def tanh(self) -> Tensor: return _ops.tanh(self)
    def abs(self) -> Tensor: return _ops.abs(self)
    def sign(self) -> Tensor: return _ops.sign(self)
    def sigmoid(self) -> Tensor: return _ops.sigmoid(self)
    def relu(self) -> Tensor: return _ops.relu(self)
    def softplus(self) -> Tensor: return _ops.softplus(self)
    def softmax(self, axis=-1) -> Tensor: return _ops.softmax(self, axis=axis)
    def log_softmax(self, axis=-1) -> Tensor: return _ops.log_softmax(self, axis=axis)
    def pow(self, exponent) -> Tensor: return _ops.pow(self, exponent)
    def clip(self, min=None, max=None) -> Tensor: return _ops.clip(self, min, max)
    def maximum(self, other) -> Tensor: return _ops.maximum(self, other)
    def minimum(self, other) -> Tensor: return _ops.minimum(self, other)
    def matmul(self, other) -> Tensor: return _ops.matmul(self, other)
    def dot(self, other) -> Tensor: return _ops.dot(self, other)

    def sum(self, axis=None, keepdims=False) -> Tensor:
        return _ops.sum(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False) -> Tensor:
        return _ops.mean(self, axis=axis, keepdims=keepdims)
    def var(self, axis=None, keepdims=False, ddof=0) -> Tensor:
        return _ops.var(self, axis=axis, keepdims=keepdims, ddof=ddof)
    def max(self, axis=None, keepdims=False) -> Tensor:
        return _ops.max(self, axis=axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False) -> Tensor:
        return _ops.min(self, axis=axis, keepdims=keepdims)
    def argmax(self, axis=None, keepdims=False) -> Tensor:
        return _ops.argmax(self, axis=axis, keepdims=keepdims)
    def argmin(self, axis=None, keepdims=False) -> Tensor:
        return _ops.argmin(self, axis=axis, keepdims=keepdims)
    def logsumexp(self, axis=None, keepdims=False) -> Tensor:
        return _ops.logsumexp(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape) -> Tensor:
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, *axes) -> Tensor:
        return _ops.transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def permute(self, *axes) -> Tensor:
        return _ops.transpose(self, axes[0] if len(axes) == 1 else axes)
    def flatten(self, start_axis=0, end_axis=-1) -> Tensor:
        return _ops.flatten(self, start_axis, end_axis)
    def squeeze(self, axis=None) -> Tensor: return _ops.squeeze(self, axis)
    def expand_dims(self, axis) -> Tensor: return _ops.expand_dims(self, axis)
    def broadcast_to(self, shape) -> Tensor: return _ops.broadcast_to(self, shape)


from chainrule import ops as _ops  # noqa: E402  (ops import Tensor: bind it last)

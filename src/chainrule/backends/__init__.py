"""Array backends: the array library (namespace) and device that a tensor's data lives on.

The backend is a property of the data, not of the code. Every :class:`~chainrule.Tensor` holds one
array; its type says its :class:`Backend`:

=====================  ================================  ==============================
backend                arrays                            devices (PyTorch's spelling)
=====================  ================================  ==============================
``numpy`` (default)    ``numpy.ndarray``                 ``"cpu"``
``cupy``               ``cupy.ndarray``                  ``"cuda"``, ``"cuda:1"``
``array_api_strict``   ``array_api_strict.Array``        ``"array_api_strict"``,
                                                         ``"array_api_strict:device1"``
=====================  ================================  ==============================

``array_api_strict`` allows only the array API standard: the test-suite runs on it to prove that
the generic kernels use nothing else. A primitive takes the backend from its inputs
(:func:`backend_of`) and raises :class:`BackendMismatchError`, naming both, when they differ, as
PyTorch refuses a cpu and a cuda tensor in one operation. Dtypes are reported as NumPy dtypes on
every backend (``t.dtype == np.float32``), so code that inspects them is backend-free.

Only ``numpy`` is imported with chainrule; the others import on first use. :func:`available`
lists the backends that import and work here. :func:`default_device` is the per-thread device of
new tensors made from Python data (``cr.tensor([1.0])``, ``cr.zeros(3)``), as
``torch.set_default_device`` but scoped to a ``with`` block and a thread.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Union

import numpy as np

from chainrule.backends import host_memory
from chainrule.engine.errors import BackendMismatchError

__all__ = ["Backend", "Device", "BackendMismatchError", "available", "get", "backend_of",
           "device", "default_device", "get_default_device"]

#: dtype names of the standard, for mapping NumPy dtypes to a namespace's dtype objects
_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "complex64", "complex128")


class Device:
    """A device in PyTorch's spelling: ``Device("cuda:1")``; equal to its string, ``== "cpu"``.

    ``backend`` names the array library (``numpy`` for ``"cpu"``, ``cupy`` for ``"cuda"``);
    ``index`` is the backend's own device (a CUDA ordinal, an array_api_strict device name).
    """

    __slots__ = ("backend", "index")
    backend: str
    index: Union[int, str, None]

    def __init__(self, spec: Union[str, "Device"]) -> None:
        if isinstance(spec, Device):
            self.backend, self.index = spec.backend, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, index = spec.partition(":")
        if kind == "cpu" and not index:
            self.backend, self.index = "numpy", None
        elif kind == "cuda":
            if index and not index.isdigit():
                raise ValueError(f"device {spec!r}: the CUDA index must be a number, as in "
                                 f"'cuda:0' (or use 'cpu')")
            self.backend, self.index = "cupy", int(index or 0)
        elif kind == "array_api_strict":
            self.backend, self.index = "array_api_strict", index or "CPU_DEVICE"
        else:
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda', 'cuda:N' or "
                             f"'array_api_strict[:name]'")

    @property
    def type(self) -> str:
        """``"cpu"``, ``"cuda"`` or ``"array_api_strict"`` (``torch.device.type``)."""
        return {"numpy": "cpu", "cupy": "cuda"}.get(self.backend) or self.backend

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device('{self}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return False
        return (isinstance(other, Device) and self.backend == other.backend
                and self.index == other.index)

    def __hash__(self) -> int:
        return hash((self.backend, self.index))


def device(spec: Union[str, Device]) -> Device:
    """``cr.device("cuda:0")``: a :class:`Device` from its string (``torch.device``)."""
    return Device(spec)


class Backend:
    """One array library: its namespace ``xp``, its array type and its ways to and from the host.

    ``kernel_name`` is the key of its fast kernels in a primitive's table (``"numpy"``,
    ``"cupy"``); backends without fast kernels (``array_api_strict``) use the generic
    ``"array_api"`` kernels only. ``scratch`` is per-thread state owned by the backend (conv's
    workspaces), never shared between threads or backends.
    """

    def __init__(self, name: str, xp: Any, array_type: type, *,
                 device_of: Callable[[Any], Device], to_host: Callable[[Any], np.ndarray],
                 from_host: Callable[[np.ndarray, Device], Any], fast: bool) -> None:
        self.name = name
        self.xp = xp
        self.array_type = array_type
        self.device_of = device_of
        self.to_host = to_host
        self.from_host = from_host
        self.kernel_name = name if fast else "array_api"
        self.scratch = threading.local()
        self._dtypes = {np.dtype(n): getattr(xp, n) for n in _DTYPE_NAMES if hasattr(xp, n)}
        self._np_dtypes = {v: k for k, v in self._dtypes.items()}

    def dtype(self, dtype: Any) -> Any:
        """The namespace's dtype object for a NumPy dtype (or anything ``np.dtype`` accepts)."""
        dtype = np.dtype(dtype)
        try:
            return self._dtypes[dtype]
        except KeyError:
            raise TypeError(f"the {self.name} backend has no dtype {dtype}") from None

    def np_dtype(self, dtype: Any) -> np.dtype:
        """The NumPy dtype of one of the namespace's dtypes (what ``Tensor.dtype`` reports)."""
        found = self._np_dtypes.get(dtype)
        return found if found is not None else np.dtype(dtype)

    def asarray(self, value: Any, dtype: Any = None, device: Optional[Device] = None) -> Any:
        """``value`` (a host ndarray, number or nested list) as an array of this backend."""
        host = np.asarray(value, dtype=None if dtype is None else np.dtype(dtype))
        return self.from_host(host, device or self.default())

    def default(self) -> Device:
        """The device new arrays of this backend go to when none is named."""
        return Device({"numpy": "cpu", "cupy": "cuda"}.get(self.name, self.name))

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


# ------------------------------------------------------------------------------ the backends

def _numpy() -> Backend:
    cpu = Device("cpu")
    return Backend("numpy", np, np.ndarray, device_of=lambda a: cpu, to_host=lambda a: a,
                   from_host=lambda a, d: a, fast=True)


def _cupy() -> Backend:
    import cupy  # noqa: PLC0415 -- optional: the [cuda12] / [cuda13] extra

    def device_of(a: Any) -> Device:
        return Device(f"cuda:{a.device.id}")

    def from_host(a: np.ndarray, where: Device) -> Any:
        with cupy.cuda.Device(where.index or 0):
            return cupy.asarray(a)

    # the generic kernels need the standard's spellings (zeros(..., device=), permute_dims ...):
    # array_api_compat's wrapper of the cupy namespace has them (the [cuda12]/[cuda13] extras)
    try:
        from array_api_compat import cupy as xp  # noqa: PLC0415
    except ImportError:
        xp = cupy
    return Backend("cupy", xp, cupy.ndarray, device_of=device_of, to_host=cupy.asnumpy,
                   from_host=from_host, fast=True)


def _array_api_strict() -> Backend:
    import array_api_strict as xp  # noqa: PLC0415 -- optional: the test extra

    def device_of(a: Any) -> Device:
        return Device(f"array_api_strict:{a.device._device}")

    def from_host(a: np.ndarray, where: Device) -> Any:
        return xp.asarray(a, device=xp.Device(str(where.index)))

    array_type = type(xp.asarray(0.0))  # array_api_strict._array_object.Array (not exported)
    return Backend("array_api_strict", xp, array_type, device_of=device_of,
                   to_host=lambda a: np.asarray(a.to_device(xp.Device("CPU_DEVICE"))),
                   from_host=from_host, fast=False)


_MAKERS: dict[str, Callable[[], Backend]] = {
    "numpy": _numpy, "cupy": _cupy, "array_api_strict": _array_api_strict}
_LOADED: dict[str, Backend] = {}
#: array type -> backend, filled as backends load (the hot path of every primitive)
BY_TYPE: dict[type, Backend] = {}
_lock = threading.Lock()


def get(name: str) -> Backend:
    """The backend called ``name`` (``"numpy"``, ``"cupy"``, ``"array_api_strict"``), imported on
    first use; ImportError says which package is missing."""
    found = _LOADED.get(name)
    if found is not None:
        return found
    if name not in _MAKERS:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(_MAKERS)}")
    with _lock:
        if name not in _LOADED:
            try:
                made = _MAKERS[name]()
            except ImportError as error:
                extra = {"cupy": "pip install 'chainrule[cuda12]' (or [cuda13])",
                         "array_api_strict": "pip install array-api-strict"}.get(name, "")
                raise ImportError(f"the {name} backend needs {error.name}: {extra}") from error
            BY_TYPE[made.array_type] = made
            _LOADED[name] = made
    return _LOADED[name]


def available() -> list[str]:
    """The backends that import and can make an array here, e.g. ``['numpy', 'array_api_strict']``.

    CuPy counts only with a working GPU (it imports without one, then fails on the first array).
    """
    usable = []
    for name in _MAKERS:
        try:
            backend = get(name)
            backend.asarray([0.0])
        except Exception:  # noqa: BLE001 -- any failure (no driver, no GPU) means "not usable"
            continue
        usable.append(name)
    return usable


NUMPY = get("numpy")
host_memory.tune_allocator()  # freed NumPy buffers stay for reuse (no page faults every step)


def backend_of(array: Any) -> Backend:
    """The backend of one array (NumPy for NumPy scalars); TypeError for other objects."""
    found = BY_TYPE.get(type(array))
    if found is not None:
        return found
    if isinstance(array, (np.generic, np.ndarray)):
        return NUMPY
    module = type(array).__module__.split(".")[0]
    if module in ("cupy", "array_api_strict"):
        return get(module)
    raise TypeError(f"{type(array).__module__}.{type(array).__name__} is not an array of a "
                    f"chainrule backend (numpy, cupy, array_api_strict)")


def mismatch(first: Any, other: Any, what: str = "an operation") -> BackendMismatchError:
    """The error for two arrays of different backends or devices meeting in ``what``."""
    a, b = backend_of(first), backend_of(other)
    da, db = a.device_of(first), b.device_of(other)
    return BackendMismatchError(
        f"{what} got tensors on two devices, {da} ({a.name}) and {db} ({b.name}): move one with "
        f".to('{da}') or .to('{db}') first")


# ------------------------------------------------------------------------------ default device

_state = threading.local()


def get_default_device() -> Device:
    """This thread's device for new tensors made from Python data (``"cpu"`` unless changed)."""
    return getattr(_state, "device", None) or _CPU


_CPU = Device("cpu")


class default_device:  # noqa: N801 -- used like a function, as torch.device is
    """``with cr.backends.default_device("cuda"): ...``: new tensors of this thread go there.

    Tensors made from Python numbers or lists, creation functions (``zeros``, ``randn`` ...)
    and the scalars of arithmetic with no tensor operand. Threads do not see each other's.
    """

    def __init__(self, spec: Union[str, Device]) -> None:
        self.device = Device(spec)
        get(self.device.backend)  # fail here, not at the first tensor, when it is missing

    def __enter__(self) -> Device:
        self._previous = getattr(_state, "device", None)
        _state.device = self.device
        return self.device

    def __exit__(self, *exc: object) -> None:
        _state.device = self._previous


def move(array: Any, to: Device) -> Any:
    """``array`` on device ``to`` (the same object when it is there already).

    Within one backend the backend moves it (CuPy between GPUs); across backends it goes through
    host memory (DLPack between devices is left to the libraries' own ``to_host``/``from_host``).
    """
    source = backend_of(array)
    if source.name == to.backend:
        if source.device_of(array) == to:
            return array
        return source.from_host(source.to_host(array), to)
    return get(to.backend).from_host(source.to_host(array), to)

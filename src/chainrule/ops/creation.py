"""Tensor creation and random numbers (not differentiable: these make leaves).

Floating results default to float32 (PyTorch's default dtype). Every function takes ``device``
in PyTorch's spelling (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"array_api_strict"``); without it
a tensor goes to this thread's default device (:func:`chainrule.backends.default_device`,
``"cpu"`` unless changed) and ``*_like`` functions to their model tensor's device. NumPy builds
the arrays exactly as before; other backends build them with their own namespace (``zeros``,
``ones``, ``full``, ``eye``) or from the same host values (``arange``, ``linspace``), so every
backend holds the same numbers.

Random functions draw from a :class:`Generator`; ``manual_seed(n)`` reseeds the default ones,
``generator=`` passes your own. On ``cpu`` and ``array_api_strict`` the numbers are drawn on the
host by NumPy's PCG64 and moved, so one seed gives the same numbers on both. On ``cuda`` a CuPy
generator seeded with the same seed draws them on the GPU: reproducible from the seed, but a
different stream from the host's -- as in PyTorch, where CUDA and CPU streams differ.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Union

import numpy as np

from chainrule import backends
from chainrule.backends import Device
from chainrule.engine.tensor import Tensor
from chainrule.ops.primitive import as_tensor

__all__ = [
    "Generator", "manual_seed", "default_generator", "zeros", "ones", "full", "empty",
    "zeros_like", "ones_like", "full_like", "empty_like", "arange", "linspace", "logspace", "eye",
    "tril_indices", "triu_indices", "rand", "randn", "randint", "rand_like", "randn_like",
]

_DEFAULT_FLOAT = np.float32


DeviceLike = Union[str, Device, None]


class Generator:
    """A seedable source of random numbers for one device (``torch.Generator(device=...)``).

    For ``cpu`` and ``array_api_strict`` it wraps ``numpy.random.Generator`` (PCG64) and the
    numbers are drawn on the host; for ``cuda`` a CuPy generator made from the same seed draws
    them on the GPU (its stream differs from the host's, as in PyTorch). ``device`` defaults to
    this thread's default device.
    """

    def __init__(self, seed: Optional[int] = None, device: DeviceLike = None) -> None:
        self.device = _device(device)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._cupy_rng: Any = None

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns the generator."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        self._cupy_rng = None  # remade from the new seed on its next draw
        return self

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying NumPy generator (the host stream)."""
        return self._rng

    def cupy(self) -> Any:
        """The CuPy generator of a ``cuda`` generator, ``cupy.random.default_rng(seed)``."""
        if self._cupy_rng is None:
            import cupy  # noqa: PLC0415 -- optional: only cuda generators need it

            with cupy.cuda.Device(self.device.index or 0):
                self._cupy_rng = cupy.random.default_rng(self._seed)
        return self._cupy_rng


def _device(device: DeviceLike) -> Device:
    """``device`` as a Device; None is this thread's default device."""
    return backends.get_default_device() if device is None else backends.Device(device)


#: The generator of the host-drawn devices, cpu and array_api_strict (``torch.default_generator``).
default_generator = Generator(0, device="cpu")
#: cuda device -> its default generator, made on first use from the last ``manual_seed``
_cuda_generators: dict[Device, Generator] = {}
_seed = {"all": 0}
_seed_lock = threading.Lock()


def _default_for(where: Device) -> Generator:
    """The default generator that serves device ``where``."""
    if where.backend != "cupy":
        return default_generator
    with _seed_lock:
        found = _cuda_generators.get(where)
        if found is None:
            found = _cuda_generators[where] = Generator(_seed["all"], device=where)
        return found


def manual_seed(seed: int, device: DeviceLike = None) -> Generator:
    """Reseed the default generators: the same seed gives the same random tensors.

    Without ``device`` every device's (``torch.manual_seed``) and returns the cpu one; with a
    device only the one serving it (cpu and array_api_strict share the host generator).
    """
    if device is not None:
        return _default_for(backends.Device(device)).manual_seed(seed)
    default_generator.manual_seed(seed)
    with _seed_lock:
        _seed["all"] = int(seed)
        for generator in _cuda_generators.values():
            generator.manual_seed(seed)
    return default_generator


def _shape(shape: tuple) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape {shape!r} must be non-negative ints")
    return tuple(int(n) for n in shape)


def _leaf(array: Any, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def _create(where: Device, dtype: Any, make: Callable[[Any, Any], Any]) -> Any:
    """``make(xp, dtype)`` with the namespace of device ``where`` and its dtype object, there."""
    backend = backends.get(where.backend)
    if backend is backends.NUMPY:
        return make(np, np.dtype(dtype))
    if backend.name == "cupy":
        import cupy  # noqa: PLC0415 -- optional

        with cupy.cuda.Device(where.index or 0):
            return make(backend.xp, backend.dtype(dtype))
    return backends.move(make(backend.xp, backend.dtype(dtype)), where)  # e.g. a second device


def _place(host: np.ndarray, where: Device) -> Any:
    """A host array on device ``where`` (itself on cpu)."""
    return host if where.backend == "numpy" else backends.move(host, where)


def zeros(*shape, dtype: Any = None, device: DeviceLike = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    shape = _shape(shape)
    array = _create(_device(device), dtype or _DEFAULT_FLOAT,
                    lambda xp, dt: xp.zeros(shape, dtype=dt))
    return _leaf(array, requires_grad)


def ones(*shape, dtype: Any = None, device: DeviceLike = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    shape = _shape(shape)
    array = _create(_device(device), dtype or _DEFAULT_FLOAT,
                    lambda xp, dt: xp.ones(shape, dtype=dt))
    return _leaf(array, requires_grad)


def _filled(shape: tuple, fill_value: Any, dtype: Any, where: Device) -> Any:
    """``fill_value`` everywhere; NumPy's ``np.full`` (which casts the value unsafely), and for
    other backends that cast value as a Python scalar, so every backend holds the same number."""
    if where.backend == "numpy":
        return np.full(shape, fill_value, dtype)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.numpy()
    value = np.full((), fill_value, dtype).item()
    return _create(where, dtype, lambda xp, dt: xp.full(shape, value, dtype=dt))


def full(shape, fill_value, dtype: Any = None, device: DeviceLike = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype from the value, as ``tensor()`` would choose
    it)."""
    shape = _shape((shape,) if isinstance(shape, (int, np.integer)) else (tuple(shape),))
    dtype = dtype or as_tensor(fill_value).dtype
    return _leaf(_filled(shape, fill_value, dtype, _device(device)), requires_grad)


def empty(*shape, dtype: Any = None, device: DeviceLike = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor to be written before it is read (``torch.empty``): only its shape, dtype
    (float32 by default) and device are promised. Its values are zeros today (filled, unlike
    PyTorch's, so that every backend and run holds the same numbers), not part of the contract."""
    shape = _shape(shape)
    array = _create(_device(device), dtype or _DEFAULT_FLOAT,
                    lambda xp, dt: xp.zeros(shape, dtype=dt))
    return _leaf(array, requires_grad)


def _model(x: Any, device: DeviceLike) -> tuple[Tensor, Device]:
    """The model tensor of a ``*_like`` function and the device: ``device``, else the model's."""
    x = as_tensor(x)
    return x, x.device if device is None else backends.Device(device)


def zeros_like(x, dtype: Any = None, device: DeviceLike = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with ``x``'s shape, dtype and device."""
    x, where = _model(x, device)
    array = _create(where, dtype or x.dtype, lambda xp, dt: xp.zeros(x.shape, dtype=dt))
    return _leaf(array, requires_grad)


def ones_like(x, dtype: Any = None, device: DeviceLike = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with ``x``'s shape, dtype and device."""
    x, where = _model(x, device)
    array = _create(where, dtype or x.dtype, lambda xp, dt: xp.ones(x.shape, dtype=dt))
    return _leaf(array, requires_grad)


def full_like(x, fill_value, dtype: Any = None, device: DeviceLike = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``x``'s shape, dtype and device."""
    x, where = _model(x, device)
    return _leaf(_filled(x.shape, fill_value, dtype or x.dtype, where), requires_grad)


def empty_like(x, dtype: Any = None, device: DeviceLike = None,
               requires_grad: bool = False) -> Tensor:
    """A tensor to be written before it is read (see :func:`empty`) with ``x``'s shape, dtype
    and device."""
    x, where = _model(x, device)
    array = _create(where, dtype or x.dtype, lambda xp, dt: xp.zeros(x.shape, dtype=dt))
    return _leaf(array, requires_grad)


def arange(start, stop=None, step=1, dtype: Any = None, device: DeviceLike = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop); int64 for ints, float32 if any bound is a float.

    Computed on the host by NumPy (start + i * step in float64, then cast) on every device.
    """
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        all_ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if all_ints else _DEFAULT_FLOAT
    host = np.arange(start, stop, step).astype(dtype)
    return _leaf(_place(host, _device(device)), requires_grad)


def linspace(start, end, steps: int, dtype: Any = None, device: DeviceLike = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (``torch.linspace``),
    float32 by default: start + i * (end - start) / (steps - 1), computed in float64 by NumPy on
    the host and cast, on every device."""
    _check_size("linspace", "steps", steps)
    host = np.linspace(start, end, int(steps)).astype(dtype or _DEFAULT_FLOAT)
    return _leaf(_place(host, _device(device)), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype: Any = None,
             device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """``steps`` values base^t for t evenly spaced from ``start`` to ``end`` inclusive
    (``torch.logspace``), float32 by default; computed in float64 by NumPy on the host and cast,
    on every device."""
    _check_size("logspace", "steps", steps)
    host = np.logspace(start, end, int(steps), base=base).astype(dtype or _DEFAULT_FLOAT)
    return _leaf(_place(host, _device(device)), requires_grad)


def _check_size(name: str, argument: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name}: {argument} must be a non-negative int, got {value!r}")


def eye(n: int, m: Optional[int] = None, k: int = 0, dtype: Any = None,
        device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """The n x m matrix (m = n by default) with ones on diagonal ``k`` (0 the main one, k > 0
    above it, k < 0 below: NumPy's ``eye``; ``torch.eye`` is k = 0), float32 by default."""
    _check_size("eye", "n", n)
    if m is not None:
        _check_size("eye", "m", m)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise ValueError(f"eye: k must be an int (the diagonal's offset), got {k!r}")
    array = _create(_device(device), dtype or _DEFAULT_FLOAT,
                    lambda xp, dt: xp.eye(int(n), None if m is None else int(m), k=int(k),
                                          dtype=dt))
    return _leaf(array, requires_grad)


def _triangle_indices(name: str, indices: Callable, n: int, k: int, m: Optional[int],
                      dtype: Any, device: DeviceLike, as_tuple: bool) -> Any:
    _check_size(name, "n", n)
    if m is not None:
        _check_size(name, "m", m)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise ValueError(f"{name}: k must be an int (the diagonal's offset), got {k!r}")
    dtype = np.dtype(dtype or np.int64)
    if dtype.kind not in "iu":
        raise TypeError(f"{name}: dtype must be an integer type, got {dtype}")
    rows, cols = indices(int(n), int(k), None if m is None else int(m))
    host = np.stack([rows, cols]).astype(dtype)
    where = _device(device)
    if as_tuple:
        return tuple(Tensor(_place(np.ascontiguousarray(part), where)) for part in host)
    return Tensor(_place(host, where))


def tril_indices(n: int, k: int = 0, m: Optional[int] = None, *, dtype: Any = None,
                 device: DeviceLike = None, as_tuple: bool = False) -> Any:
    """The (row, column) indices of the lower triangle of an n x m matrix (m = n by default):
    the elements on and below diagonal ``k``, row by row.

    NumPy's arguments (``np.tril_indices(n, k, m)``, which is ``torch.tril_indices(n, m, k)``:
    mind the order) and PyTorch's result: a (2, count) int64 tensor, rows first;
    ``as_tuple=True`` gives NumPy's form, a tuple of two 1-D tensors, so that
    ``x[tril_indices(3, as_tuple=True)]`` picks the triangle. Not differentiable.
    """
    return _triangle_indices("tril_indices", np.tril_indices, n, k, m, dtype, device, as_tuple)


def triu_indices(n: int, k: int = 0, m: Optional[int] = None, *, dtype: Any = None,
                 device: DeviceLike = None, as_tuple: bool = False) -> Any:
    """The (row, column) indices of the upper triangle of an n x m matrix: the elements on and
    above diagonal ``k``, row by row; see :func:`tril_indices` for the arguments and result."""
    return _triangle_indices("triu_indices", np.triu_indices, n, k, m, dtype, device, as_tuple)


def _rng(generator: Optional[Generator]) -> np.random.Generator:
    """The host NumPy stream of ``generator`` (the default one when None): dropout's masks."""
    if generator is None:
        return default_generator.numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a chainrule.Generator, got {type(generator).__name__}")
    return generator.numpy


def _generator(generator: Optional[Generator], where: Device) -> Generator:
    """The generator that draws for device ``where``: ``generator``, else that device's default.

    A host generator serves cpu and array_api_strict; a cuda one only its own GPU.
    """
    if generator is None:
        return _default_for(where)
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a chainrule.Generator, got {type(generator).__name__}")
    on_gpu = generator.device.backend == "cupy"
    if on_gpu != (where.backend == "cupy") or (on_gpu and generator.device != where):
        raise RuntimeError(f"a generator for device '{generator.device}' cannot draw numbers "
                           f"for device '{where}': make one with Generator(device='{where}')")
    return generator


def _draw(generator: Optional[Generator], device: DeviceLike, method: str, *args: Any,
          **kwargs: Any) -> Any:
    """``generator.<method>(*args, **kwargs)`` for ``device``: drawn on the host by NumPy and
    moved there, or on a GPU by the generator's CuPy stream."""
    where = _device(device)
    source = _generator(generator, where)
    if where.backend == "cupy":
        import cupy  # noqa: PLC0415 -- optional

        with cupy.cuda.Device(where.index or 0):
            return getattr(source.cupy(), method)(*args, **kwargs)
    return _place(getattr(source.numpy, method)(*args, **kwargs), where)


def rand(
    *shape, generator: Optional[Generator] = None, dtype: Any = None, device: DeviceLike = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples on [0, 1)."""
    dtype = np.dtype(dtype or _DEFAULT_FLOAT)
    return _leaf(_draw(generator, device, "random", _shape(shape), dtype=dtype), requires_grad)


def randn(
    *shape, generator: Optional[Generator] = None, dtype: Any = None, device: DeviceLike = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples."""
    dtype = np.dtype(dtype or _DEFAULT_FLOAT)
    array = _draw(generator, device, "standard_normal", _shape(shape), dtype=dtype)
    return _leaf(array, requires_grad)


def randint(low: int, high: int, shape, generator: Optional[Generator] = None,
            device: DeviceLike = None) -> Tensor:
    """Uniform integers in [low, high), int64."""
    shape = _shape((shape,) if isinstance(shape, (int, np.integer)) else (tuple(shape),))
    return Tensor(_draw(generator, device, "integers", low, high, shape, dtype=np.int64))


def _like_float(name: str, x: Any, dtype: Any, device: DeviceLike) -> tuple:
    """(shape, dtype, device) of a random ``*_like`` tensor: ``x``'s, a floating dtype."""
    x, where = _model(x, device)
    dtype = np.dtype(dtype or x.dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: draws floats; x has dtype {dtype}: pass a floating dtype=")
    return x.shape, dtype, where


def rand_like(x, generator: Optional[Generator] = None, dtype: Any = None,
              device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1) with ``x``'s shape, dtype (a float) and device."""
    shape, dtype, where = _like_float("rand_like", x, dtype, device)
    return _leaf(_draw(generator, where, "random", shape, dtype=dtype), requires_grad)


def randn_like(x, generator: Optional[Generator] = None, dtype: Any = None,
               device: DeviceLike = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples with ``x``'s shape, dtype (a float) and device."""
    shape, dtype, where = _like_float("randn_like", x, dtype, device)
    return _leaf(_draw(generator, where, "standard_normal", shape, dtype=dtype), requires_grad)

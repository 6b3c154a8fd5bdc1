"""DLPack import: which backend reads a producer's memory, and the zero-copy import itself.

A DLPack producer (``torch.Tensor``, ``numpy.ndarray``, ``cupy.ndarray``, a JAX array, a chainrule
Tensor) says where its memory lives with ``__dlpack_device__()``, a pair (DLPack device type,
index). The backend whose library reads that memory in place imports it with its namespace's
``from_dlpack`` (``numpy.from_dlpack``, ``cupy.from_dlpack``): the array shares the producer's
memory, nothing is copied. Memory no backend reads (ROCm, Metal, oneAPI ...) raises BufferError
naming the device, as ``numpy.from_dlpack`` refuses a GPU array.

Imports only NumPy; CuPy loads when a CUDA producer arrives (see :func:`chainrule.backends.get`).
"""

from __future__ import annotations

from typing import Any

from chainrule.backends import _DTYPE_NAMES, get

__all__ = ["DEVICE_TYPES", "backend_for", "describe", "dtype_name", "from_dlpack"]

#: DLPack device type (``DLDeviceType``) -> the backend that reads such memory in place
DEVICE_TYPES = {
    1: "numpy",  # kDLCPU
    3: "numpy",  # kDLCUDAHost: pinned host memory, the CPU reads it
    2: "cupy",  # kDLCUDA
    13: "cupy",  # kDLCUDAManaged: unified memory, CuPy reads it on its device
}
#: names of the other DLPack device types, for the error message
_OTHER_TYPES = {4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 10: "ROCm", 11: "ROCm host",
                12: "ExtDev", 14: "oneAPI", 15: "WebGPU", 16: "Hexagon", 17: "MAIA"}


def describe(x: Any) -> str:
    """``x``'s type with its library: ``torch.Tensor``, ``numpy.ndarray``, ``chainrule.Tensor``."""
    return f"{type(x).__module__.partition('.')[0]}.{type(x).__name__}"


def dtype_name(x: Any) -> str:
    """The name of ``x``'s dtype without a library prefix (``torch.bfloat16`` -> ``bfloat16``);
    "" when ``x`` has none."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return ""
    name = getattr(dtype, "name", None)  # NumPy dtypes ('>f4' is 'float32'); torch's have none
    return (name if isinstance(name, str) else str(dtype)).rpartition(".")[2]


def backend_for(x: Any) -> str:
    """The backend that reads the memory of DLPack producer ``x`` in place (``"numpy"``,
    ``"cupy"``); BufferError for a device none of them reads."""
    try:
        kind, _ = x.__dlpack_device__()
    except AttributeError:  # a producer from before the device query: its memory is the host's
        return "numpy"
    found = DEVICE_TYPES.get(int(kind))
    if found is None:
        where = _OTHER_TYPES.get(int(kind), f"DLPack device type {int(kind)}")
        raise BufferError(f"from_dlpack: {describe(x)} lives on a {where} device; chainrule "
                          f"reads CPU memory (NumPy) and CUDA memory (CuPy): copy it to one first")
    return found


def from_dlpack(x: Any) -> Any:
    """``x``'s memory as an array of the backend that reads it in place (no copy).

    TypeError when ``x``'s dtype has no chainrule dtype (``bfloat16``, ``float8_*``), naming it
    and the valid ones; BufferError when the producer refuses to export (the consumer's message).
    """
    name = dtype_name(x)
    if name and name not in _DTYPE_NAMES:
        raise TypeError(f"from_dlpack: {describe(x)} has dtype {name}, which chainrule does "
                        f"not have; valid dtypes: {', '.join(_DTYPE_NAMES)} (convert it first, "
                        f"e.g. x.float())")
    backend = get(backend_for(x))
    try:
        return backend.xp.from_dlpack(x)
    except (RuntimeError, TypeError, ValueError) as error:  # NumPy: "Unsupported dtype in ..."
        raise BufferError(f"from_dlpack: {backend.name} cannot import this {describe(x)} "
                          f"(dtype {name or 'unknown'}): {error}") from error

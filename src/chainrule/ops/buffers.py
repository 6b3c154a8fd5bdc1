"""Flat host buffers for communication: where ``chainrule.distributed`` meets the arrays.

MPI reads and writes memory, so every collective works on a C-contiguous NumPy array on the host:
the tensor's own memory when it already is one (the collective then changes the tensor in place,
without a copy), otherwise a copy that :func:`write_back` stores into the tensor afterwards. Arrays
of another backend (CuPy) are staged through host memory: chainrule does not assume a CUDA-aware
MPI. Gradients travel in flat buckets: :func:`pack` lays several tensors end to end in one buffer,
:func:`unpack` gives them back as views of it.

Not differentiable: these functions move numbers between processes; they are not part of a graph.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from chainrule import backends
from chainrule.engine.tensor import Tensor

__all__ = ["host_buffer", "write_back", "pack", "unpack", "empty", "host_array"]

_HOST = backends.Device("cpu")


def host_array(data: Any) -> np.ndarray:
    """``data`` as a NumPy array on the host (itself when it already is one)."""
    if type(data) is np.ndarray:
        return data
    return np.asarray(backends.move(data, _HOST))


def host_buffer(t: Tensor, write: bool = True) -> np.ndarray:
    """``t``'s numbers as a C-contiguous host array: ``t.data`` itself when it is one, else a
    copy. ``write``: the collective will change ``t`` in place, so read-only memory (a
    ``broadcast_to`` view, a read-only NumPy array) is refused with a clear error."""
    data = t.data
    if type(data) is np.ndarray:
        if write and not data.flags.writeable:
            raise ValueError("the tensor's memory is read-only (a broadcast view or a read-only "
                             "array): a collective cannot change it in place; pass a copy")
        if data.flags.c_contiguous:
            return data
        return np.ascontiguousarray(data)
    return np.ascontiguousarray(host_array(data))


def write_back(t: Tensor, buffer: np.ndarray) -> Tensor:
    """Store ``buffer`` (from :func:`host_buffer`) into ``t`` in place; bump its version counter."""
    data = t.data
    if buffer is not data:
        if type(data) is np.ndarray:
            np.copyto(data, buffer.reshape(data.shape))
        else:  # another backend: its arrays support item assignment (the array API's __setitem__)
            data[...] = backends.move(buffer.reshape(data.shape), t.device)
    t._bump_version()
    return t


def empty(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised host buffer (the receiving side of a gather)."""
    return np.empty(shape, dtype=dtype)


def pack(tensors: Sequence[Optional[Tensor]], sizes: Sequence[int], dtype: Any) -> np.ndarray:
    """One flat host buffer holding the tensors end to end (a None is ``size`` zeros)."""
    flat = np.empty(sum(sizes), dtype=dtype)
    offset = 0
    for t, size in zip(tensors, sizes):
        part = flat[offset:offset + size]
        if t is None:
            part.fill(0)
        else:
            part[...] = host_array(t.data).reshape(-1)
        offset += size
    return flat


def unpack(flat: np.ndarray, like: Sequence[Tensor]) -> list[Tensor]:
    """Tensors shaped (and placed) as ``like``, read from ``flat``: views of it on the host."""
    out, offset = [], 0
    for t in like:
        size = int(np.prod(t.shape, dtype=np.int64))
        part = flat[offset:offset + size].reshape(t.shape)
        if type(t.data) is not np.ndarray:
            part = backends.move(part, t.device)
        out.append(Tensor._from_array(part))
        offset += size
    return out

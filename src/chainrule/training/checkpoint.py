"""Checkpoints as safetensors files (never pickle), written atomically.

A file is written to a temporary name in the same folder and renamed over the target with
``os.replace``, so a crash mid-save leaves the previous checkpoint intact, never half a file.
Reading a corrupt or truncated file raises :class:`CheckpointError` naming the file.

The bytes of a file depend only on its tensors and metadata: the header is written here with
sorted keys (the safetensors library writes its metadata in hash order, different each run), so
identical runs write byte-identical checkpoints.

Devices: tensors are saved from host memory (a GPU tensor is copied to the host first), so a file
never depends on where it was written. Loading gives host arrays; ``map_location=`` ("cpu",
"cuda", ...) puts them on a device instead (PyTorch's name). ``load_model`` copies each value onto
its parameter's own device, wherever the model lives.

Optimizer state (nested dicts of tensors and numbers) is flattened to tensors named
``state.<param index>.<key>`` plus the parameter groups and scalar entries as JSON metadata.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Union

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load

from chainrule import backends
from chainrule.data.files import atomic_write
from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor

__all__ = ["CheckpointError", "atomic_write", "read_limited", "save_tensors", "load_tensors",
           "save_model", "load_model", "save_optimizer", "load_optimizer", "MAX_CHECKPOINT_BYTES"]

PathLike = Union[str, os.PathLike]

#: the largest checkpoint file read (a run's model is capped far below: this stops /dev/zero & co)
MAX_CHECKPOINT_BYTES = 4 << 30


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint file that cannot be read back (missing, truncated, corrupt, or not what was
    expected)."""


def read_limited(path: PathLike, max_bytes: int, error: type | None = None) -> bytes:
    """The bytes of the regular file ``path``, refusing devices, FIFOs and files over ``max_bytes``.

    Checked with ``stat`` before opening, so ``/dev/zero`` or a FIFO never blocks or fills memory.
    Raises ``error`` (CheckpointError by default) for those; OSError when the file cannot be read.
    """
    error = error or CheckpointError
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path} is not a regular file")
    if info.st_size > max_bytes:
        raise error(f"{path} is {info.st_size:,} bytes, more than the {max_bytes:,} allowed")
    with path.open("rb") as file:
        data = file.read(max_bytes + 1)  # the file may have grown since stat
    if len(data) > max_bytes:
        raise error(f"{path} is more than the {max_bytes:,} bytes allowed")
    return data


def _array(value: Any) -> np.ndarray:
    """A host ndarray of a Tensor on any device, or of an array-like."""
    return np.ascontiguousarray(value.numpy() if isinstance(value, Tensor) else np.asarray(value))


def _placed(arrays: dict, map_location: Any) -> dict:
    """``arrays`` as Tensors on ``map_location`` (None: the host ndarrays as they are)."""
    if map_location is None:
        return arrays
    device = backends.Device(map_location)
    return {name: Tensor._from_array(backends.move(array, device))
            for name, array in arrays.items()}


_SAFETENSORS_DTYPES = {np.dtype(name): code for name, code in (
    ("float64", "F64"), ("float32", "F32"), ("float16", "F16"), ("int64", "I64"), ("int32", "I32"),
    ("int16", "I16"), ("int8", "I8"), ("uint64", "U64"), ("uint32", "U32"), ("uint16", "U16"),
    ("uint8", "U8"), ("bool", "BOOL"))}


def serialize_tensors(arrays: dict, metadata: dict) -> bytes:
    """The safetensors bytes of ``arrays`` (name -> ndarray) and string ``metadata``, deterministic.

    Layout (the format's): 8-byte little-endian header size, the JSON header (sorted keys, padded
    with spaces to 8 bytes), then each tensor's little-endian bytes in the header's order.
    """
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    # the library's order: widest dtype first, then by name
    for name in sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n)):
        array = arrays[name]
        code = _SAFETENSORS_DTYPES.get(array.dtype.newbyteorder("="))
        if code is None:
            raise CheckpointError(f"cannot save tensor {name!r}: safetensors has no "
                                  f"{array.dtype} type")
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def save_tensors(tensors: dict, path: PathLike, metadata: dict | None = None) -> None:
    """Save named tensors/arrays (and string metadata) atomically as one safetensors file."""
    arrays = {name: _array(value) for name, value in tensors.items()}
    atomic_write(path, serialize_tensors(arrays, {k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: PathLike, map_location: Any = None) -> tuple[dict, dict]:
    """(name -> ndarray, metadata) from a safetensors file; CheckpointError if it cannot be read.

    With ``map_location`` ("cpu", "cuda" ...) the values are Tensors on that device.
    """
    path = Path(path)
    try:
        data = read_limited(path, MAX_CHECKPOINT_BYTES)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    arrays, metadata = parse_tensors(data, path)
    return _placed(arrays, map_location), metadata


#: the safetensors dtypes NumPy holds (bfloat16 and the float8 types have no NumPy dtype)
NUMPY_DTYPES = frozenset({"F64", "F32", "F16", "I64", "I32", "I16", "I8", "U64", "U32", "U16",
                          "U8", "BOOL"})


def parse_tensors(data: bytes, path: PathLike) -> tuple[dict, dict]:
    """(name -> ndarray, metadata) from the bytes of a safetensors file named ``path``."""
    try:
        header_size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_size])
    except (ValueError, UnicodeDecodeError):
        header = None  # the reader below names what is wrong
    _check_dtypes(header, path)
    try:
        arrays = load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error}); "
                              f"it is not a readable safetensors file") from None
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"checkpoint {path}: its metadata is not a map of strings")
    return arrays, metadata


def _check_dtypes(header: Any, path: PathLike) -> None:
    """Refuse a tensor whose dtype NumPy cannot hold (a bfloat16 file written by torch), by name,
    before the safetensors reader fails on it with a bare KeyError."""
    if not isinstance(header, dict):
        return  # not a header at all: the reader says the file is corrupt
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) and name != "__metadata__" else None
        if isinstance(dtype, str) and dtype not in NUMPY_DTYPES:
            raise CheckpointError(
                f"checkpoint {path}: tensor {name!r} is {dtype}, which NumPy (and so chainrule) "
                f"cannot hold; valid dtypes are {', '.join(sorted(NUMPY_DTYPES))}: convert it "
                f"before saving (in torch: tensor.float())")


def save_model(model, path: PathLike, metadata: dict | None = None) -> None:
    """The model's state_dict (parameters and persistent buffers) as a safetensors file."""
    save_tensors(model.state_dict(), path, metadata)


def load_model(model, path: PathLike, strict: bool = True, map_location: Any = None) -> dict:
    """Load a checkpoint written by :func:`save_model` into ``model``; returns its metadata.

    Values land on each parameter's own device (``map_location`` only says where they are read
    to first, as in ``torch.load``).
    """
    arrays, metadata = load_tensors(path, map_location)
    try:
        model.load_state_dict(arrays, strict=strict)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {error}") from None
    return metadata


def save_optimizer(optimizer, path: PathLike, metadata: dict | None = None) -> None:
    """An optimizer's state_dict: per-parameter tensors flattened, groups and scalars as JSON
    metadata."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, (Tensor, np.ndarray)):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    extra = dict(metadata or {})
    # sorted: a resumed optimizer's state comes back in another order, but must write the same bytes
    extra["param_groups"] = json.dumps(state["param_groups"], sort_keys=True)
    extra["scalars"] = json.dumps(scalars, sort_keys=True)
    save_tensors(tensors, path, extra)


def load_optimizer(optimizer, path: PathLike, map_location: Any = None) -> dict:
    """Restore an optimizer saved by :func:`save_optimizer`; returns the remaining metadata.

    State tensors go to ``map_location`` (None: the device of each one's parameter).
    """
    arrays, metadata = load_tensors(path)
    arrays = _on_parameters(optimizer, arrays) if map_location is None else _placed(
        arrays, map_location)
    try:
        groups = json.loads(metadata.pop("param_groups"))
        scalars = json.loads(metadata.pop("scalars"))
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"optimizer checkpoint {path} lacks its parameter groups "
                              f"({error})") from None
    # the metadata is the user's file: any shape of JSON may come back, so every misfit is one error
    try:
        state = _optimizer_state(arrays, scalars, groups)
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise CheckpointError(f"optimizer checkpoint {path} does not fit this optimizer: "
                              f"{type(error).__name__}: {error}") from None
    return metadata


def _optimizer_state(arrays: dict, scalars: Any, groups: Any) -> dict:
    """state_dict()["state"] from the flattened tensors and scalars; ValueError when malformed."""
    if not isinstance(scalars, dict) or not isinstance(groups, list) or not all(
            isinstance(g, dict) for g in groups):
        raise ValueError("param_groups must be a JSON list of objects and scalars a JSON object")
    state: dict = {}
    for name, array in arrays.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = array  # a Tensor, on its device already
    for name, value in scalars.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"the scalar {name} is {value!r}, not a number")
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return state


def _on_parameters(optimizer: Any, arrays: dict) -> dict:
    """Each ``state.<index>.<key>`` array as a Tensor on the device of parameter ``index``."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    placed = {}
    for name, array in arrays.items():
        index = name.split(".", 2)[1]
        if index.isdigit() and int(index) < len(params):
            array = backends.move(array, params[int(index)].device)
        placed[name] = Tensor._from_array(array)
    return placed

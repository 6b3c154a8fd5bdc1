"""Checkpoints as safetensors files (never pickle), written atomically.

A file is written to a temporary name in the same folder and renamed over the target with
``os.replace``, so a crash mid-save leaves the previous checkpoint intact, never half a file.
Reading a corrupt or truncated file raises :class:`CheckpointError` naming the file.

Optimizer state (nested dicts of tensors and numbers) is flattened to tensors named
``state.<param index>.<key>`` plus the parameter groups and scalar entries as JSON metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from chainrule.errors import ChainruleError
from chainrule.tensor import Tensor

__all__ = ["CheckpointError", "atomic_write", "save_tensors", "load_tensors", "save_model", "load_model",
           "save_optimizer", "load_optimizer"]

PathLike = Union[str, os.PathLike]


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint file that cannot be read back (missing, truncated, corrupt, or not what was expected)."""


def atomic_write(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes 0600: keep an existing file's mode, else the usual one
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _array(value: Any) -> np.ndarray:
    return np.ascontiguousarray(value.data if isinstance(value, Tensor) else np.asarray(value))


def save_tensors(tensors: dict, path: PathLike, metadata: dict | None = None) -> None:
    """Save named tensors/arrays (and string metadata) atomically as one safetensors file."""
    arrays = {name: _array(value) for name, value in tensors.items()}
    atomic_write(path, save(arrays, metadata={k: str(v) for k, v in (metadata or {}).items()}))


def load_tensors(path: PathLike) -> tuple[dict, dict]:
    """(name -> ndarray, metadata) from a safetensors file; CheckpointError if it cannot be read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    try:
        arrays = load(data)
        header_size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_size])
    except (SafetensorError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({error}); "
                              f"it is not a readable safetensors file") from None
    return arrays, header.get("__metadata__", {})


def save_model(model, path: PathLike, metadata: dict | None = None) -> None:
    """The model's state_dict (parameters and persistent buffers) as a safetensors file."""
    save_tensors(model.state_dict(), path, metadata)


def load_model(model, path: PathLike, strict: bool = True) -> dict:
    """Load a checkpoint written by :func:`save_model` into ``model``; returns the file's metadata."""
    arrays, metadata = load_tensors(path)
    try:
        model.load_state_dict(arrays, strict=strict)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit this model: {error}") from None
    return metadata


def save_optimizer(optimizer, path: PathLike, metadata: dict | None = None) -> None:
    """An optimizer's state_dict: per-parameter tensors flattened, groups and scalars as JSON metadata."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, (Tensor, np.ndarray)):
                tensors[f"state.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    extra = dict(metadata or {})
    extra["param_groups"] = json.dumps(state["param_groups"])
    extra["scalars"] = json.dumps(scalars)
    save_tensors(tensors, path, extra)


def load_optimizer(optimizer, path: PathLike) -> dict:
    """Restore an optimizer saved by :func:`save_optimizer`; returns the remaining metadata."""
    arrays, metadata = load_tensors(path)
    try:
        groups = json.loads(metadata.pop("param_groups"))
        scalars = json.loads(metadata.pop("scalars"))
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"optimizer checkpoint {path} lacks its parameter groups ({error})") from None
    state: dict = {}
    for name, array in arrays.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = Tensor(array)
    for name, value in scalars.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"optimizer checkpoint {path} does not fit this optimizer: {error}") from None
    return metadata

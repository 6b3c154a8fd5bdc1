"""Datasets: scikit-learn's 8x8 digits, MNIST-style IDX files, and the course's small synthetic
sets.

Every loader returns ``(inputs, targets)`` as chainrule Tensors, ready for
``TensorDataset(inputs, targets)``. Images follow PyTorch's layout ``(N, channels, height, width)``,
float32 in [0, 1]; class labels are int64.

IDX (the format of MNIST and Fashion-MNIST) is a 4-byte big-endian magic number ``0x0000TTDD``
(``TT`` the element type, ``DD`` the number of dimensions), one big-endian uint32 per dimension,
then the elements in C order, big-endian. Images files are ``0x00000803`` (unsigned bytes,
N x H x W), labels files ``0x00000801`` (unsigned bytes, N). Files may be gzip-compressed.

Reading is bounded: only regular files are opened, the header's sizes are checked (against the
file's size, and against :data:`MAX_IDX_BYTES`) before anything is allocated, and a gzip stream
is never inflated past what the header declares (a decompression bomb stops there).
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from chainrule.data.files import atomic_write
from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor
from chainrule.ops.creation import Generator

__all__ = ["DatasetError", "load_digits", "load_idx", "read_idx", "write_idx", "xor", "four_points",
           "two_spirals"]

PathLike = Union[str, os.PathLike]


class DatasetError(ChainruleError, ValueError):
    """A data file that cannot be used: not IDX, corrupt, truncated, or inconsistent with its
    partner."""


# ---------------------------------------------------------------------------------------- digits
def load_digits() -> tuple[Tensor, Tensor]:
    """The 1797 8x8 handwritten digits that scikit-learn ships (no download needed).

    Returns ``(images, labels)``: images ``(1797, 1, 8, 8)`` float32 in [0, 1] (the original 0..16
    grey levels divided by 16), labels ``(1797,)`` int64 in 0..9. Source: the UCI "Optical
    Recognition of Handwritten Digits" test set, the file scikit-learn ships
    (``sklearn/datasets/data/digits.csv.gz``), read directly: importing ``sklearn.datasets``
    takes about 2 s, reading the file 0.25 s. Should a scikit-learn release move or change the
    file, ``sklearn.datasets.load_digits`` reads it instead.
    """
    table = _digits_table()
    if table is None:
        try:
            from sklearn.datasets import load_digits as sklearn_load_digits
        except ImportError as error:  # pragma: no cover - scikit-learn is a dependency
            raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from error
        bunch = sklearn_load_digits()
        table = np.column_stack([bunch.data, bunch.target])
    images = (table[:, :64].astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    labels = table[:, 64].astype(np.int64)
    return Tensor._from_array(np.ascontiguousarray(images)), Tensor._from_array(labels)


def _digits_file() -> Optional[str]:
    """Where scikit-learn keeps digits.csv.gz, found without importing scikit-learn."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")


def _digits_table() -> Optional[np.ndarray]:
    """The (1797, 65) table (64 grey levels 0..16, then the label 0..9), or None when the file
    is missing or not what this function expects."""
    path = _digits_file()
    if path is None or not os.path.isfile(path):
        return None
    try:
        table = np.loadtxt(path, delimiter=",")
    except (OSError, ValueError):
        return None
    expected = (table.shape == (1797, 65) and np.array_equal(table, np.round(table))
                and table[:, :64].min() >= 0 and table[:, :64].max() <= 16
                and set(np.unique(table[:, 64])) == set(range(10)))
    return table if expected else None


# ---------------------------------------------------------------------------------------- IDX
_IDX_TYPES: dict[int, np.dtype] = {  # type code -> big-endian dtype
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_TYPES.items()}
_IMAGES_MAGIC, _LABELS_MAGIC = 0x00000803, 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
#: the most data read from one IDX file, after decompression (MNIST's training images: 47 MB)
MAX_IDX_BYTES = 1 << 30
_TRAILING_SHOWN = 1 << 20  # trailing bytes counted exactly up to this, so a bomb is not inflated
_CHUNK = 16 << 20


def _open_stream(path: Path, file):
    """``file`` itself, or a gzip reader over it when it starts with gzip's magic bytes.

    A ``.gz`` file that is not gzip-compressed is read as is (browsers often decompress MNIST's
    files on download but keep the name).
    """
    compressed = file.read(2) == _GZIP_MAGIC
    file.seek(0)
    return gzip.GzipFile(fileobj=file, mode="rb") if compressed else file


def _read_exactly(path: Path, stream, size: int) -> bytearray:
    """Up to ``size`` bytes (fewer at the end of the data); a corrupt gzip stream is a DatasetError.

    Read in chunks: never more than ``size`` bytes, so a gzip bomb inflates no further, and no
    buffer of the header's size before the data is there (a gzip reader allocates what it is
    asked for).
    """
    data = bytearray()
    try:
        while len(data) < size:
            chunk = stream.read(min(size - len(data), _CHUNK))
            if not chunk:
                break
            data += chunk
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt gzip data ({error})") from None
    return data


def _check_regular(path: Path) -> int:
    """The size of ``path``, a regular file (stat first: /dev/zero or a FIFO is refused unread)."""
    info = path.stat()  # a missing file stays FileNotFoundError
    if not stat.S_ISREG(info.st_mode):
        raise DatasetError(f"{path}: not a regular file (an IDX file is needed)")
    return info.st_size


def _describe_magic(magic: int) -> str:
    dtype = _IDX_TYPES.get((magic >> 8) & 0xFF)
    kind = f"{dtype.newbyteorder('=').name}" if dtype is not None else "unknown type"
    return f"0x{magic:08X} ({kind}, {magic & 0xFF} dimensions)"


def _check_magic(path: Path, head: bytes, expected_magic: Optional[int],
                 role: str) -> tuple[int, int]:
    """(type code, dimensions) from the first 4 bytes, or a DatasetError naming the problem."""
    if len(head) < 4:
        raise DatasetError(f"{path}: truncated: {len(head)} bytes, "
                           f"not even the 4-byte IDX magic number")
    magic = int.from_bytes(head, "big")
    if head[0] != 0 or head[1] != 0:
        raise DatasetError(
            f"{path}: bad magic number 0x{magic:08X}: not an IDX file (an IDX file starts "
            "with two zero bytes, then a type code and the number of dimensions)"
        )
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        codes = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DatasetError(f"{path}: bad dtype code 0x{code:02X} in magic number 0x{magic:08X} "
                           f"(IDX type codes are {codes})")
    if expected_magic is not None and magic != expected_magic:
        swapped = magic in (_IMAGES_MAGIC, _LABELS_MAGIC)
        hint = " (are the images and labels files swapped?)" if swapped else ""
        raise DatasetError(
            f"{path}: bad magic number {_describe_magic(magic)}: an IDX {role} file has "
            f"{_describe_magic(expected_magic)}{hint}"
        )
    if ndim == 0:
        raise DatasetError(f"{path}: magic number 0x{magic:08X} declares 0 dimensions")
    return code, ndim


def _parse_idx(path: Path, expected_magic: Optional[int] = None, role: str = "") -> np.ndarray:
    """Read an IDX file in bounded memory: sizes are checked against the header first."""
    file_size = _check_regular(path)
    with path.open("rb") as file:
        stream = _open_stream(path, file)
        code, ndim = _check_magic(path, bytes(_read_exactly(path, stream, 4)), expected_magic, role)
        dims = _read_exactly(path, stream, 4 * ndim)
        if len(dims) < 4 * ndim:
            raise DatasetError(f"{path}: truncated header: {ndim} dimensions need "
                               f"{4 + 4 * ndim} bytes, the file has {4 + len(dims)}")
        shape = struct.unpack(f">{ndim}I", dims)
        dtype = _IDX_TYPES[code]
        expected = math.prod(shape) * dtype.itemsize
        if expected > MAX_IDX_BYTES:
            raise DatasetError(f"{path}: the header declares shape {shape} ({expected:,} bytes), "
                               f"more than the {MAX_IDX_BYTES:,} bytes chainrule reads from an "
                               f"IDX file")
        if stream is file:  # raw data: its size is known before reading
            present = file_size - 4 - 4 * ndim
            data = _read_exactly(path, stream, expected) if present >= expected else b""
        else:
            data = _read_exactly(path, stream, expected)
            present = len(data)
        if present < expected:
            raise DatasetError(f"{path}: truncated data: the header declares shape {shape} "
                               f"({expected} bytes) but only {present} bytes follow it")
        extra = len(_read_exactly(path, stream, _TRAILING_SHOWN + 1))
    if extra:
        count = f"{extra}" if extra <= _TRAILING_SHOWN else f"more than {_TRAILING_SHOWN:,}"
        raise DatasetError(f"{path}: {count} unexpected bytes after the data of shape {shape} "
                           f"({expected} bytes)")
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: PathLike) -> np.ndarray:
    """The array stored in an IDX file (raw or gzip), in native byte order.

    Raises :class:`DatasetError` naming the file and the problem: not a regular file, bad magic
    number, unknown type code, truncated header or data, trailing bytes, more data than
    :data:`MAX_IDX_BYTES`, corrupt gzip stream.
    """
    return _parse_idx(Path(path))


def load_idx(images_path: PathLike, labels_path: PathLike) -> tuple[Tensor, Tensor]:
    """MNIST / Fashion-MNIST style IDX files (raw or gzip) as ``(images, labels)``.

    ``images_path`` must hold ``0x00000803`` (unsigned bytes, N x H x W) and ``labels_path``
    ``0x00000801`` (unsigned bytes, N) with the same N. Returns images ``(N, 1, H, W)`` float32 in
    [0, 1] (divided by 255) and labels ``(N,)`` int64. Raises :class:`DatasetError` naming the file
    and what is wrong (bad magic number or type code, truncated file, count mismatch).
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = _parse_idx(images_path, _IMAGES_MAGIC, "images")
    labels = _parse_idx(labels_path, _LABELS_MAGIC, "labels")
    if len(images) != len(labels):
        raise DatasetError(
            f"count mismatch: {images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels"
        )
    pixels = images.astype(np.float32)[:, None, :, :]
    pixels /= np.float32(255.0)
    return Tensor._from_array(pixels), Tensor._from_array(labels.astype(np.int64))


def _checked_cast(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if array.dtype == dtype:
        return array
    if dtype.kind in "iu" and array.size:
        if array.dtype.kind == "f":
            if not np.isfinite(array).all() or not (array == np.round(array)).all():
                raise ValueError(
                    f"write_idx: cannot store non-integer {array.dtype} values as {dtype} "
                    "(round or scale them first)"
                )
        elif array.dtype.kind not in "biu":
            raise TypeError(f"write_idx: cannot store {array.dtype} values as {dtype}")
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise ValueError(f"write_idx: values in [{low}, {high}] do not fit in {dtype} "
                             f"([{info.min}, {info.max}])")
    elif array.dtype.kind not in "biuf":
        raise TypeError(f"write_idx: cannot store {array.dtype} values as {dtype}")
    return array.astype(dtype)


def write_idx(
    path: PathLike, array: Any, dtype: Any = None, compress: Optional[bool] = None
) -> None:
    """Write ``array`` (Tensor or array-like, at least 1-d) as an IDX file, atomically.

    ``dtype`` is the stored element type: uint8, int8, int16, int32, float32 or float64 (IDX has no
    others); by default the array's own, which must be one of those. Converting checks that the
    values fit (``write_idx(p, labels, dtype="uint8")`` for int64 labels). ``compress`` gzips the
    file; by default when ``path`` ends in ``.gz``. The file appears complete or not at all.
    """
    path = Path(path)
    array = np.asarray(array.data if isinstance(array, Tensor) else array)
    target = np.dtype(dtype) if dtype is not None else array.dtype
    if target.newbyteorder("=") not in _IDX_CODES:
        hint = " (pass dtype='uint8' or 'int32')" if target.kind in "iub" else ""
        raise TypeError(
            f"write_idx: IDX cannot store {target}: use uint8, int8, int16, int32, float32 "
            f"or float64{hint}"
        )
    target = target.newbyteorder("=")
    if not 1 <= array.ndim <= 255:
        raise ValueError(
            f"write_idx: an IDX array has 1 to 255 dimensions, got shape {array.shape}"
        )
    if any(n >= 2 ** 32 for n in array.shape):
        raise ValueError(f"write_idx: dimension sizes must fit in 32 bits, got shape {array.shape}")
    array = _checked_cast(array, target)
    header = bytes([0, 0, _IDX_CODES[target], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=target.newbyteorder(">")).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)


# ---------------------------------------------------------------------------------------- synthetic
def xor() -> tuple[Tensor, Tensor]:
    """The XOR problem: X (4, 2) float32 = (0,0), (0,1), (1,0), (1,1); y (4,) int64 = 0, 1, 1, 0.

    Not linearly separable: the smallest problem a single-layer perceptron cannot solve.
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return Tensor._from_array(X), Tensor._from_array(y)


def four_points() -> tuple[Tensor, Tensor]:
    """Four points with sign targets: X = (-2,0), (2,0), (0,2), (0,-2) float32;
    y = +1, +1, -1, -1 float32.

    The points on the x axis are +1, those on the y axis -1: no line separates them, but a
    feature such as x1^2 - x2^2 does (the course's example for hidden units / feature maps).
    """
    X = np.array([[-2, 0], [2, 0], [0, 2], [0, -2]], dtype=np.float32)
    y = np.array([1, 1, -1, -1], dtype=np.float32)
    return Tensor._from_array(X), Tensor._from_array(y)


def two_spirals(n: int = 100, noise: float = 0.0, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaved spirals (Lang and Witbrock's benchmark, 1988), ``n`` points each.

    Point i of spiral 0, with s = i / (n - 1) running from 0 to 1, is (r sin a, r cos a) at angle
    a = 6 pi s (three full turns) and radius r = (104 - 96 s) / 104 (from 1 down to 1/13, so the
    two spirals never meet); spiral 1 is spiral 0 turned by 180 degrees (-x, -y). ``noise`` is the
    standard deviation of Gaussian noise added to every coordinate, drawn from
    ``chainrule.Generator(seed)``: the same arguments always give the same points.

    Returns X (2n, 2) float32 (spiral 0 first) and y (2n,) int64: 0 for spiral 0, 1 for spiral 1.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"two_spirals: n must be a positive int, got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(
            f"two_spirals: noise must be a finite standard deviation >= 0, got {noise!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"two_spirals: seed must be a non-negative int, got {seed!r}")
    s = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    angle = 6.0 * np.pi * s
    radius = (104.0 - 96.0 * s) / 104.0
    first = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    X = np.concatenate([first, -first])
    if noise > 0:
        X = X + noise * Generator(seed).numpy.standard_normal(X.shape)
    y = np.repeat(np.array([0, 1], dtype=np.int64), n)
    return Tensor._from_array(X.astype(np.float32)), Tensor._from_array(y)

"""Tensor creation and random numbers (not differentiable: these make leaves).

Floating results default to float32 (PyTorch's default dtype). Random functions draw from a
:class:`Generator`; ``manual_seed(n)`` reseeds the default one, ``generator=`` passes your own.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from chainrule.engine.tensor import Tensor
from chainrule.ops.primitive import as_tensor

__all__ = [
    "Generator", "manual_seed", "default_generator", "zeros", "ones", "full", "zeros_like",
    "ones_like", "full_like", "arange", "eye", "rand", "randn", "randint",
]

_DEFAULT_FLOAT = np.float32


class Generator:
    """A seedable source of random numbers (wraps ``numpy.random.Generator``, PCG64)."""

    def __init__(self, seed: Optional[int] = None) -> None:
        self._rng = np.random.default_rng(seed)

    def manual_seed(self, seed: int) -> "Generator":
        """Restart the stream from ``seed``; returns the generator."""
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._rng = np.random.default_rng(int(seed))
        return self

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying NumPy generator."""
        return self._rng


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator: the same seed gives the same random tensors."""
    return default_generator.manual_seed(seed)


def _shape(shape: tuple) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape {shape!r} must be non-negative ints")
    return tuple(int(n) for n in shape)


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _leaf(np.zeros(_shape(shape), dtype or _DEFAULT_FLOAT), requires_grad)


def ones(*shape, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _leaf(np.ones(_shape(shape), dtype or _DEFAULT_FLOAT), requires_grad)


def full(shape, fill_value, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype from the value, as ``tensor()`` would choose
    it)."""
    shape = _shape((shape,) if isinstance(shape, (int, np.integer)) else (tuple(shape),))
    dtype = dtype or as_tensor(fill_value).dtype
    return _leaf(np.full(shape, fill_value, dtype), requires_grad)


def zeros_like(x, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``x``'s shape and dtype."""
    x = as_tensor(x)
    return _leaf(np.zeros(x.shape, dtype or x.dtype), requires_grad)


def ones_like(x, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with ``x``'s shape and dtype."""
    x = as_tensor(x)
    return _leaf(np.ones(x.shape, dtype or x.dtype), requires_grad)


def full_like(x, fill_value, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``x``'s shape and dtype."""
    x = as_tensor(x)
    return _leaf(np.full(x.shape, fill_value, dtype or x.dtype), requires_grad)


def arange(start, stop=None, step=1, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, stop); int64 for ints, float32 if any bound is a float."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        all_ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if all_ints else _DEFAULT_FLOAT
    return _leaf(np.arange(start, stop, step).astype(dtype), requires_grad)


def eye(n: int, m: Optional[int] = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix."""
    return _leaf(np.eye(n, m, dtype=dtype or _DEFAULT_FLOAT), requires_grad)


def _rng(generator: Optional[Generator]) -> np.random.Generator:
    if generator is None:
        return default_generator.numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a chainrule.Generator, got {type(generator).__name__}")
    return generator.numpy


def rand(
    *shape, generator: Optional[Generator] = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Uniform samples on [0, 1)."""
    dtype = np.dtype(dtype or _DEFAULT_FLOAT)
    return _leaf(_rng(generator).random(_shape(shape), dtype=dtype), requires_grad)


def randn(
    *shape, generator: Optional[Generator] = None, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples."""
    dtype = np.dtype(dtype or _DEFAULT_FLOAT)
    return _leaf(_rng(generator).standard_normal(_shape(shape), dtype=dtype), requires_grad)


def randint(low: int, high: int, shape, generator: Optional[Generator] = None) -> Tensor:
    """Uniform integers in [low, high), int64."""
    shape = _shape((shape,) if isinstance(shape, (int, np.integer)) else (tuple(shape),))
    return Tensor(_rng(generator).integers(low, high, shape, dtype=np.int64))

"""Abstract evaluation: an operation's output shape and dtype from its inputs', computing nothing.

Each primitive's ``rules["abstract_eval"]`` maps :class:`ShapeDtype` inputs (and the primitive's
keyword parameters) to the output's :class:`ShapeDtype`, as JAX's ``abstract_eval``. The helpers
below are the common rules, one line per family: ``same`` (unary elementwise), ``broadcast``
(binary elementwise, NumPy promotion), ``reduce`` (axis, keepdims), ``as_dtype``.
:func:`eval_shape` runs a whole function on shapes alone (``summary``, the calculator, export).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np

from chainrule.engine.errors import ShapeError

__all__ = ["ShapeDtype", "of", "same", "float_of", "broadcast", "compare", "reduce", "as_dtype",
           "broadcast_shapes", "reduced_shape"]


class ShapeDtype(NamedTuple):
    """The abstract value of an array: its shape, its NumPy dtype and (optionally) its device."""

    shape: tuple
    dtype: np.dtype
    device: Any = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def of(array: Any) -> ShapeDtype:
    """The abstract value of a concrete array (or Tensor)."""
    dtype = array.dtype  # a Tensor's is NumPy's already; a namespace's prints as "xp.float32"
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return ShapeDtype(tuple(array.shape), dtype)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple:
    """NumPy's broadcast of ``shapes``; ShapeError naming them when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(f"shapes {', '.join(map(str, shapes))} do not broadcast") from None


def reduced_shape(shape: Sequence[int], axis: Union[None, int, Sequence[int]],
                  keepdims: bool) -> tuple:
    """``shape`` after reducing ``axis`` (None: all), keeping length-1 axes with ``keepdims``."""
    ndim = len(shape)
    listed = range(ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    axes = {a % ndim if ndim else a for a in listed}
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def same(x: ShapeDtype, **params: Any) -> ShapeDtype:
    """Unary elementwise: the input's shape and dtype."""
    return x


def float_of(x: ShapeDtype, **params: Any) -> ShapeDtype:
    """Unary elementwise with a floating result: integers become float32 (PyTorch's default)."""
    return x if x.dtype.kind in "fc" else ShapeDtype(x.shape, np.dtype(np.float32), x.device)


def broadcast(*inputs: ShapeDtype, **params: Any) -> ShapeDtype:
    """Elementwise of several inputs: the broadcast shape and NumPy's result dtype."""
    dtype = np.result_type(*[x.dtype for x in inputs])
    return ShapeDtype(broadcast_shapes(*[x.shape for x in inputs]), dtype, inputs[0].device)


def compare(*inputs: ShapeDtype, **params: Any) -> ShapeDtype:
    """Comparisons: the broadcast shape, bool."""
    shape = broadcast_shapes(*[x.shape for x in inputs])
    return ShapeDtype(shape, np.dtype(bool), inputs[0].device)


def reduce(x: ShapeDtype, *, axis: Any = None, keepdims: bool = False,
           dtype: Optional[Any] = None, **params: Any) -> ShapeDtype:
    """Reductions over ``axis``: the reduced shape, the input's dtype (or ``dtype``)."""
    return ShapeDtype(reduced_shape(x.shape, axis, keepdims),
                      x.dtype if dtype is None else np.dtype(dtype), x.device)


def as_dtype(dtype: Any) -> Any:
    """A rule giving the input's shape in a fixed ``dtype`` (``argmax`` ... use ``reduce``)."""
    target = np.dtype(dtype)

    def rule(x: ShapeDtype, **params: Any) -> ShapeDtype:
        return ShapeDtype(x.shape, target, x.device)

    return rule

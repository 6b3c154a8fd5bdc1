"""Shape operations: reshape, transpose, squeeze/expand_dims, concatenate/stack/split, pad, getitem.

All are linear, so each VJP is another shape operation: reshape's is reshape back, transpose's
the inverse permutation, pad's a slice, getitem's a scatter-add (``index_add``) and the other
way round.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import normalize_axis, normalize_one_axis

__all__ = [
    "reshape", "transpose", "permute", "swapaxes", "squeeze", "expand_dims", "flatten",
    "concatenate", "stack", "split", "pad", "getitem", "index_add",
]


def _concat_vjp(g, out, *inputs, argnum, axis):
    start = sum(x.shape[axis] for x in inputs[:argnum])
    index = (slice(None),) * axis + (slice(start, start + inputs[argnum].shape[axis]),)
    return getitem(g, index)


def _index_add_impl(g, *, index, shape, advanced):
    out = np.zeros(shape, dtype=g.dtype)
    if advanced:
        np.add.at(out, index, g)  # repeated indices must accumulate
    else:
        out[index] = g  # basic indexing never repeats an element
    return out


def _pad_impl(x, *, pad_width, value):
    return np.pad(x, pad_width, constant_values=value)


def _pad_vjp(g, out, x, *, pad_width, value):
    return getitem(g, tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))


# fmt: off
reshape_p     = Primitive("reshape", lambda x, *, shape: x.reshape(shape), saves=()).defvjp(
    lambda g, out, x, *, shape: reshape(g, x.shape))
transpose_p   = Primitive("transpose", lambda x, *, axes: x.transpose(axes), saves=()).defvjp(
    lambda g, out, x, *, axes: transpose(g, tuple(np.argsort(axes))))
concatenate_p = Primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                          variadic=True, saves=()).defvjp(_concat_vjp)
pad_p         = Primitive("pad", _pad_impl, saves=()).defvjp(_pad_vjp)
getitem_p     = Primitive("getitem", lambda x, *, index, advanced: x[index], saves=()).defvjp(
    lambda g, out, x, *, index, advanced: index_add(g, index, x.shape, advanced))
index_add_p   = Primitive("index_add", _index_add_impl, saves=()).defvjp(
    lambda g, out, y, *, index, shape, advanced: getitem_p.bind(g, index=index, advanced=advanced))
# fmt: on


def reshape(x, shape) -> Tensor:
    """The same elements in a new shape (one entry may be -1), C order as NumPy."""
    x = as_tensor(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    if shape == x.shape:
        return x
    try:  # resolve -1 and validate on a zero-cost broadcast view
        target = np.broadcast_to(np.empty((), np.bool_), x.shape).reshape(shape).shape
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape {x.shape} ({x.size} elements) into {shape}"
        ) from None
    return reshape_p.bind(x, shape=target)


def transpose(x, axes=None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None), as ``numpy.transpose``.

    A 0-d tensor acts as one element: ``()``, ``(0,)`` or ``(-1,)`` leave it as it is.
    """
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    given = tuple(axes)
    axes = tuple(normalize_one_axis(a, x.ndim, "axes") for a in given)
    if x.ndim == 0 and len(axes) <= 1:
        return x
    if x.ndim == 0 or sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {given} are not a permutation of 0..{x.ndim - 1}")
    if axes == tuple(range(x.ndim)):
        return x
    return transpose_p.bind(x, axes=axes)


def permute(x, *axes) -> Tensor:
    """PyTorch's name for ``transpose(x, axes)``."""
    return transpose(x, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes)


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (``torch.transpose``); a 0-d tensor takes 0 or -1 and stays as it is."""
    x = as_tensor(x)
    a, b = normalize_one_axis(axis1, x.ndim, "axis1"), normalize_one_axis(axis2, x.ndim, "axis2")
    if a is None or b is None:  # a 0-d tensor
        return x
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def squeeze(x, axis=None) -> Tensor:
    """Remove axes of length 1 (all of them, or those in ``axis``, which must have length 1).

    A 0-d tensor accepts axis 0 or -1 (one element) and stays as it is, as ``torch.squeeze``.
    """
    x = as_tensor(x)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axis(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ShapeError(
                    f"squeeze: axis {a} has length {x.shape[a]}, not 1 (shape {x.shape})"
                )
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def expand_dims(x, axis) -> Tensor:
    """Insert axes of length 1 at ``axis`` (positions in the result: NumPy, ``torch.unsqueeze``).

    Valid positions are -m .. m-1 for a result of m dimensions (so 0 and -1 for a 0-d ``x``).
    """
    x = as_tensor(x)
    added = 1 if isinstance(axis, (int, np.integer)) else len(axis)
    axes = normalize_axis(axis, x.ndim + added)
    shape = iter(x.shape)
    return reshape(x, tuple(1 if i in axes else next(shape) for i in range(x.ndim + len(axes))))


def flatten(x, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes start_axis..end_axis (inclusive) into one, as ``torch.flatten``.

    A 0-d tensor (axes 0 or -1 only) becomes shape (1,), as in PyTorch.
    """
    x = as_tensor(x)
    start = normalize_one_axis(start_axis, x.ndim, "start_axis")
    end = normalize_one_axis(end_axis, x.ndim, "end_axis")
    if start is None or end is None:  # a 0-d tensor
        return reshape(x, (1,))
    if start > end:
        raise ShapeError(f"flatten: start_axis ({start_axis}) comes after end_axis ({end_axis})")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def concatenate(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the gradient is split back by slicing."""
    tensors = list(promote(*[as_tensor(t) for t in tensors]))  # int with float: the float dtype
    if not tensors:
        raise ValueError("concatenate: need at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ShapeError("concatenate: zero-dimensional tensors cannot be concatenated (use stack)")
    ax = normalize_one_axis(axis, ndim)
    assert ax is not None  # ndim > 0
    others = tensors[0].shape[:ax] + tensors[0].shape[ax + 1:]
    for i, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1:] != others:
            raise ShapeError(
                f"concatenate: tensor {i} has shape {t.shape}, incompatible with "
                f"{tensors[0].shape} along axis {axis} (all axes but the joined one must match)"
            )
    return concatenate_p.bind(*tensors, axis=ax)


def stack(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors of equal shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ShapeError(
                f"stack: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}"
            )
    return concatenate([expand_dims(t, axis) for t in tensors], axis=axis)


def split(x, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> list:
    """Split into a list of tensors, as ``numpy.split``: N equal sections, or at the given indices.

    A 0-d tensor cannot be split (as in PyTorch).
    """
    x = as_tensor(x)
    ax = normalize_one_axis(axis, x.ndim)
    if ax is None:
        raise ShapeError("split: a 0-d tensor cannot be split (it has no axis to split along)")
    length = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or length % sections:
            raise ShapeError(
                f"split: axis {axis} of length {length} does not divide into {sections} "
                "equal sections"
            )
        bounds = list(range(0, length + 1, length // sections))
    else:
        bounds = [0, *indices_or_sections, length]
    leading = (slice(None),) * ax
    return [getitem(x, leading + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]


def pad(x, pad_width, constant_values: float = 0.0) -> Tensor:
    """Constant padding with ``numpy.pad``'s ``pad_width`` (an int, a pair, or a pair per axis)."""
    x = as_tensor(x)
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad: pad_width={pad_width!r} must be an int, a (before, after) pair "
                         f"or {x.ndim} such pairs") from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width={pad_width!r} must not be negative")
    return pad_p.bind(x, pad_width=tuple(map(tuple, widths.tolist())), value=constant_values)


def _normalize_index(index) -> tuple[tuple, bool]:
    """Index as a tuple with Tensors and lists turned into ndarrays; and whether it is advanced.

    Boolean masks stay masks, so NumPy checks their shape against the axes they index (a mask
    of the wrong length is an IndexError, as in NumPy and PyTorch) and a 0-d mask adds an axis;
    ``np.add.at`` scatters through them alike. An empty list is an empty integer index.
    """
    if not isinstance(index, tuple):
        index = (index,)
    parts, advanced = [], False
    for part in index:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) and not part:
            part = np.array([], np.intp)  # NumPy reads [] as an empty integer index
        if isinstance(part, (list, np.ndarray)):
            part = np.asarray(part)
            if part.dtype.kind not in "iub":
                raise TypeError(f"index arrays must hold integers or bools, got {part.dtype}")
            advanced = True
        parts.append(part)
    return tuple(parts), advanced


def getitem(x, index) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing.

    The gradient is a scatter-add into zeros: an element picked twice gets both contributions.
    """
    x = as_tensor(x)
    index, advanced = _normalize_index(index)
    try:
        return getitem_p.bind(x, index=index, advanced=advanced)
    except IndexError as error:
        raise IndexError(
            f"index {index!r} is invalid for a tensor of shape {x.shape}: {error}"
        ) from None


def index_add(values, index, shape, advanced: bool = True) -> Tensor:
    """zeros(shape) with ``values`` added at ``index`` (repeated indices accumulate): getitem's
    adjoint."""
    return index_add_p.bind(as_tensor(values), index=index, shape=tuple(shape), advanced=advanced)


from chainrule.ops.elementwise import promote  # noqa: E402  (families import each other last)

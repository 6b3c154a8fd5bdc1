"""Shape operations: reshape, transpose, squeeze/expand_dims, concatenate/stack/split, pad, getitem.

All are linear, so each VJP is another shape operation: reshape's is reshape back, transpose's
the inverse permutation, pad's a slice, getitem's a scatter-add (``index_add``) and the other
way round.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype
from chainrule.ops.elementwise import promote, where
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import broadcast_to, normalize_axis, normalize_one_axis
from chainrule.ops.reductions import sum as reduce_sum

__all__ = [
    "reshape", "transpose", "permute", "swapaxes", "squeeze", "expand_dims", "flatten",
    "concatenate", "stack", "split", "pad", "getitem", "index_add",
    "flip", "roll", "tile", "repeat", "repeat_interleave", "tril", "triu", "diag", "diagonal",
    "trace", "chunk", "unflatten", "moveaxis", "meshgrid",
]


def _concat_vjp(g, out, *inputs, argnum, axis):
    start = sum(x.shape[axis] for x in inputs[:argnum])
    index = (slice(None),) * axis + (slice(start, start + inputs[argnum].shape[axis]),)
    return getitem(g, index)


def _index_add_impl(g, *, index, shape, advanced):
    out = np.zeros(shape, dtype=g.dtype)
    if not advanced:
        out[index] = g  # basic indexing never repeats an element
    elif len(index) == 1 and getattr(index[0], "dtype", None) is not None \
            and index[0].dtype.kind in "iu" and g.size:
        _add_rows(out, index[0], g)  # rows picked by one integer array: an embedding's gradient
    else:
        np.add.at(out, index, g)  # repeated indices must accumulate
    return out


def _add_rows(out: np.ndarray, rows: np.ndarray, g: np.ndarray) -> None:
    """out[rows] += g with repeated rows accumulating, as np.add.at, by sorting the rows and
    summing each one's runs with np.add.reduceat: 5x faster than np.add.at for (2048, 64)
    gradients into a 65-row table (np.add.at walks element by element)."""
    flat = rows.ravel()
    flat = np.where(flat < 0, flat + out.shape[0], flat)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    values = g.reshape((flat.size,) + out.shape[1:])[order]
    out[ordered[starts]] = np.add.reduceat(values, starts, axis=0)


def _index_add_cupy(g: Any, *, index: tuple, shape: tuple, advanced: bool) -> Any:
    """CuPy's ``np.add.at``: ``cupyx.scatter_add`` (the same rule as :func:`_index_add_impl`)."""
    import cupy  # noqa: PLC0415 -- only ever called on CuPy arrays
    import cupyx  # noqa: PLC0415

    with g.device:
        out = cupy.zeros(shape, dtype=g.dtype)
        if advanced:
            cupyx.scatter_add(out, index, g)  # repeated indices must accumulate
        else:
            out[index] = g
    return out


def _pad_impl(x, *, pad_width, value):
    return np.pad(x, pad_width, constant_values=value)


def _pad_generic(xp: Any, x: Any, *, pad_width: tuple, value: float) -> Any:
    """full(padded shape, value), then x written into its middle (slice assignment)."""
    shape = tuple(lo + n + hi for (lo, hi), n in zip(pad_width, x.shape))
    out = xp.full(shape, _fill_value(xp, x.dtype, value), dtype=x.dtype, device=x.device)
    out[tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)) + (...,)] = x
    return out


def _fill_value(xp: Any, dtype: Any, value: float) -> Union[bool, int, float]:
    """``value`` as a Python scalar of ``dtype``'s kind (NumPy casts, the standard does not)."""
    if xp.isdtype(dtype, "bool"):
        return bool(value)
    return int(value) if xp.isdtype(dtype, "integral") else value


def _pad_vjp(g, out, x, *, pad_width, value):
    return getitem(g, tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))


# ------------------------------------------------------------------ indexing on any backend
#: Elements of the one-hot matrix the generic scatter builds at a time (32 MiB of float64).
_ONE_HOT_ELEMENTS = 1 << 22


def _is_array(part: Any) -> bool:
    return isinstance(part, np.ndarray) or hasattr(part, "__array_namespace__")


def _kind(array: Any) -> str:
    """The NumPy kind ("b", "i", "u", "f" ...) of any backend's array."""
    if isinstance(array, np.ndarray):
        return array.dtype.kind
    return backends.backend_of(array).np_dtype(array.dtype).kind


def _is_int(part: Any) -> bool:
    return isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_))


def _index_form(index: tuple) -> str:
    """How the standard indexes with ``index``: "basic" (ints, slices, None, ...), "mask" (a
    boolean array as the sole index), "gather" (ints and integer arrays on the leading axes, then
    basic entries only), or "other" (NumPy's rules only)."""
    if len(index) == 1 and _is_array(index[0]) and _kind(index[0]) == "b":
        return "mask"
    rest = index[_leading(index):]
    if any(not _is_basic(p) for p in rest) or sum(p is Ellipsis for p in rest) > 1:
        return "other"
    if len(rest) == len(index):
        return "basic"
    return "gather" if all(_kind(p) != "b" for p in index if _is_array(p)) else "other"


def _is_basic(part: Any) -> bool:
    return _is_int(part) or part is None or part is Ellipsis or isinstance(part, slice)


def _leading(index: tuple) -> int:
    """How many entries of ``index`` are leading integer arrays and ints (0: none is an array)."""
    lead = 0
    while lead < len(index) and (_is_int(index[lead]) or _is_array(index[lead])):
        lead += 1
    return lead if any(_is_array(p) for p in index[:lead]) else 0


def _is_whole(key: tuple) -> bool:
    """Whether the basic ``key`` keeps every element in place (only ':' and '...')."""
    return all(p is Ellipsis or (isinstance(p, slice) and p == slice(None)) for p in key)


def _full_key(index: tuple) -> tuple:
    """``index`` naming every axis: the standard has no NumPy's implicit trailing ``...``."""
    return index if any(p is Ellipsis for p in index) else index + (Ellipsis,)


def _gather_plan(xp: Any, index: tuple, shape: tuple) -> tuple:
    """Integer-array indexing as one ``take`` on the leading axes flattened into rows.

    Returns ``(rows, flat, rest)``: x reshaped to ``(rows,) + rest`` and taken at ``flat`` (the
    row-major position of each indexed element, with the indices' broadcast shape) is
    ``x[index[:lead]]`` with ``flat.shape + rest`` as its shape.
    """
    lead = _leading(index)
    if lead > len(shape):
        raise IndexError(f"too many indices: {lead} for {len(shape)} axes")
    flat: Any = 0
    stride = 1
    for axis in reversed(range(lead)):
        part, n = index[axis], shape[axis]
        if _is_array(part):
            position = xp.astype(part, xp.int64)
            if bool(xp.any((position < -n) | (position >= n))):
                raise IndexError(f"an index in axis {axis} is out of bounds for size {n}")
            position = xp.where(position < 0, position + n, position)
        else:
            if not -n <= part < n:
                raise IndexError(f"index {part} is out of bounds for axis {axis} with size {n}")
            position = int(part) % n
        try:
            flat = flat + position * stride
        except ValueError:
            raise IndexError("the index arrays do not broadcast together") from None
        stride *= n
    return math.prod(shape[:lead]), flat, tuple(shape[lead:])


def _after_gather(index: tuple, batch: tuple) -> tuple:
    """The basic entries after the leading arrays, as a key of the gathered array (whose
    ``batch`` axes come first: NumPy puts them there when the arrays lead)."""
    return (slice(None),) * len(batch) + _full_key(index[_leading(index):])


def _getitem_generic(xp: Any, x: Any, *, index: tuple, advanced: bool) -> Any:
    """x[index] in the standard: basic keys and masks directly, leading integer arrays by one
    ``take`` (then the basic rest of the index)."""
    if not advanced:
        return x[_full_key(index)]
    if _index_form(index) == "mask":
        return x[index]
    rows, flat, rest = _gather_plan(xp, index, x.shape)
    picked = xp.take(xp.reshape(x, (rows,) + rest), xp.reshape(flat, (-1,)), axis=0)
    picked = xp.reshape(picked, tuple(flat.shape) + rest)
    key = _after_gather(index, tuple(flat.shape))
    return picked if _is_whole(key) else picked[key]


def _index_add_generic(xp: Any, g: Any, *, index: tuple, shape: tuple, advanced: bool) -> Any:
    """zeros(shape) with g added at ``index`` in the standard: a slice assignment (basic keys),
    a gather from g (a mask), a one-hot matmul (integer arrays: repeated indices add up)."""
    form = _index_form(index)
    if form == "basic":
        return _basic_scatter(xp, g, index, shape)
    if form == "mask":
        return _mask_scatter(xp, g, index[0], shape)
    rows, flat, rest = _gather_plan(xp, index, shape)
    batch = tuple(flat.shape)
    key = _after_gather(index, batch)
    if not _is_whole(key):  # undo the basic rest first: g into the gathered array's shape
        g = _basic_scatter(xp, g, key, batch + rest)
    values = xp.reshape(g, (math.prod(batch), math.prod(rest)))
    return xp.reshape(_scatter_rows(xp, values, xp.reshape(flat, (-1,)), rows), shape)


def _basic_scatter(xp: Any, g: Any, index: tuple, shape: tuple) -> Any:
    """zeros(shape) with ``out[index] = g`` (basic indexing never repeats an element)."""
    out = xp.zeros(shape, dtype=g.dtype, device=g.device)
    key = _full_key(tuple(p for p in index if p is not None))  # None: g's length-1 axes
    out[key] = xp.reshape(g, out[key].shape)
    return out


def _mask_scatter(xp: Any, g: Any, mask: Any, shape: tuple) -> Any:
    """out[mask] = g: the k-th True element takes row k of g (k = running count of Trues - 1)."""
    picked_rows = xp.reshape(g, (g.shape[0], math.prod(shape[mask.ndim:])))
    if g.shape[0] == 0:
        return xp.zeros(shape, dtype=g.dtype, device=g.device)
    where = xp.reshape(mask, (-1,))
    row = xp.clip(xp.cumulative_sum(xp.astype(where, xp.int64)) - 1, min=0)
    taken = xp.take(picked_rows, row, axis=0)
    return xp.reshape(xp.where(where[:, None], taken, xp.zeros_like(taken)), shape)


def _scatter_rows(xp: Any, values: Any, rows_of: Any, rows: int) -> Any:
    """out[r] = sum of values[k] over k with rows_of[k] == r, as one-hot @ values in blocks.

    Non-finite values go one row at a time: 0 * inf in the matmul would be nan elsewhere.
    """
    out = xp.zeros((rows, values.shape[1]), dtype=values.dtype, device=values.device)
    floating = xp.isdtype(values.dtype, "real floating")
    if floating and not bool(xp.all(xp.isfinite(values))):
        for k in range(values.shape[0]):
            row = int(rows_of[k])
            out[row, ...] = out[row, ...] + values[k, ...]
        return out
    targets = xp.arange(rows, dtype=xp.int64, device=values.device)[:, None]
    block = max(1, _ONE_HOT_ELEMENTS // max(rows, 1))
    for start in range(0, values.shape[0], block):
        stop = min(start + block, values.shape[0])  # the standard has no stops past the end
        one_hot = xp.astype(targets == rows_of[None, start:stop], values.dtype)
        out = out + xp.matmul(one_hot, values[start:stop, ...])
    return out


def _getitem_abstract(x: ShapeDtype, *, index: tuple, advanced: bool) -> ShapeDtype:
    host = tuple(backends.backend_of(p).to_host(p) if _is_array(p) else p for p in index)
    shape = np.broadcast_to(np.zeros((), x.dtype), x.shape)[host].shape
    return ShapeDtype(shape, x.dtype, x.device)


def _index_add_abstract(g: ShapeDtype, *, index: tuple, shape: tuple,
                        advanced: bool) -> ShapeDtype:
    return ShapeDtype(tuple(shape), g.dtype, g.device)


def _reshape_abstract(x: ShapeDtype, *, shape: tuple) -> ShapeDtype:
    return ShapeDtype(tuple(shape), x.dtype, x.device)


def _transpose_abstract(x: ShapeDtype, *, axes: tuple) -> ShapeDtype:
    return ShapeDtype(tuple(x.shape[a] for a in axes), x.dtype, x.device)


def _concatenate_abstract(*xs: ShapeDtype, axis: int) -> ShapeDtype:
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return ShapeDtype(tuple(shape), np.result_type(*[x.dtype for x in xs]), xs[0].device)


def _pad_abstract(x: ShapeDtype, *, pad_width: tuple, value: float) -> ShapeDtype:
    shape = tuple(lo + n + hi for (lo, hi), n in zip(pad_width, x.shape))
    return ShapeDtype(shape, x.dtype, x.device)


def _getitem_numpy(x, *, index, advanced):
    return x[index]


def _getitem_vjp(g: Tensor, out: Tensor, x: Tensor, *, index: tuple, advanced: bool) -> Tensor:
    """Scatter-add g into zeros of x's shape (the index is normalized already: bind directly)."""
    return index_add_p.bind(g, index=index, shape=x.shape, advanced=advanced)


# fmt: off
reshape_p     = Primitive("reshape", lambda x, *, shape: x.reshape(shape), generic="reshape",
                          abstract_eval=_reshape_abstract, saves=()).defvjp(
    lambda g, out, x, *, shape: reshape(g, x.shape))
transpose_p   = Primitive("transpose", lambda x, *, axes: x.transpose(axes), generic="permute_dims",
                          abstract_eval=_transpose_abstract, saves=()).defvjp(
    lambda g, out, x, *, axes: transpose(g, tuple(int(a) for a in np.argsort(axes))))
concatenate_p = Primitive("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                          generic=lambda xp, *xs, axis: xp.concat(xs, axis=axis),
                          abstract_eval=_concatenate_abstract, variadic=True, saves=()).defvjp(
    _concat_vjp)
pad_p         = Primitive("pad", _pad_impl, generic=_pad_generic, abstract_eval=_pad_abstract,
                          saves=()).defvjp(_pad_vjp)
getitem_p     = Primitive("getitem", _getitem_numpy, generic=_getitem_generic, cupy=_getitem_numpy,
                          abstract_eval=_getitem_abstract, saves=()).defvjp(_getitem_vjp)
index_add_p   = Primitive("index_add", _index_add_impl, generic=_index_add_generic,
                          cupy=_index_add_cupy, abstract_eval=_index_add_abstract, saves=()).defvjp(
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


def _normalize_index(index, x: Tensor) -> tuple[tuple, bool]:
    """Index as a tuple with Tensors and lists turned into arrays of ``x``'s backend and device;
    and whether it is advanced.

    Boolean masks stay masks, so NumPy checks their shape against the axes they index (a mask
    of the wrong length is an IndexError, as in NumPy and PyTorch) and a 0-d mask adds an axis;
    ``np.add.at`` scatters through them alike. An empty list is an empty integer index.
    """
    if not isinstance(index, tuple):
        index = (index,)
    backend = backends.backend_of(x.data)
    on_device = backend.kernel_name in ("array_api", "cupy")  # else: host (NumPy) arrays
    parts, advanced = [], False
    for part in index:
        if isinstance(part, Tensor):
            part = part.data
        if isinstance(part, list) and not part:
            part = np.array([], np.intp)  # NumPy reads [] as an empty integer index
        if isinstance(part, list):
            part = np.asarray(part)
        if _is_array(part):
            if _kind(part) not in "iub":
                raise TypeError(f"index arrays must hold integers or bools, got {part.dtype}")
            if on_device:
                part = backends.move(part, backend.device_of(x.data))
            elif type(part) is not np.ndarray:  # another backend's index for a NumPy tensor
                part = backends.backend_of(part).to_host(part)
            advanced = True
        elif on_device and _is_int(part):
            part = int(part)  # NumPy integers are no index of other namespaces
        parts.append(part)
    return tuple(parts), advanced


def _check_standard_index(index: tuple, x: Tensor, backend: str) -> None:
    """On a standard-only backend, refuse (naming it) an index the array API does not define."""
    if _index_form(index) != "other":
        return
    raise IndexError(
        f"index {index!r} is not supported on the {backend} backend (tensor of shape {x.shape}): "
        "the array API standard indexes with ints, slices, None and '...', or one boolean mask "
        "as the sole index; integer arrays (with ints) go on the leading axes, before any slice "
        "or None; for NumPy's full indexing use x.cpu()")


def getitem(x, index) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing (the standard's on other backends).

    The gradient is a scatter-add into zeros: an element picked twice gets both contributions.
    """
    x = as_tensor(x)
    index, advanced = _normalize_index(index, x)
    backend = backends.backend_of(x.data)
    generic = backend.kernel_name == "array_api"
    if generic:
        _check_standard_index(index, x, backend.name)
    try:
        return getitem_p.bind(x, index=index, advanced=advanced)
    except IndexError as error:
        where = f" on the {backend.name} backend" if generic else ""
        raise IndexError(
            f"index {index!r} is invalid for a tensor of shape {x.shape}{where}: {error}"
        ) from None
    except (TypeError, ValueError) as error:
        if not generic:
            raise
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {x.shape} on the "
                         f"{backend.name} backend: {error}") from None


def index_add(values, index, shape, advanced: bool = True) -> Tensor:
    """zeros(shape) with ``values`` added at ``index`` (repeated indices accumulate): getitem's
    adjoint. ``index`` as getitem's (its arrays go to ``values``' device)."""
    values = as_tensor(values)
    index, _ = _normalize_index(index, values)
    backend = backends.backend_of(values.data)
    if backend.kernel_name == "array_api":
        _check_standard_index(index, values, backend.name)
    return index_add_p.bind(values, index=index, shape=tuple(shape), advanced=advanced)


# ------------------------------------------------------------------ issue 12: composites
# Every function below is a composite of the primitives above (getitem, reshape, transpose,
# concatenate, broadcast_to, where): exact, on every backend, differentiable to any order.
def _axes_list(axis, ndim: int, name: str = "axis") -> tuple:
    """``axis`` (an int or a sequence) as a tuple of axes in ``range(ndim)``, in the given order."""
    given = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalize_axis(given, ndim, name)  # range and repeats, with the library's messages
    return tuple(int(a) % max(ndim, 1) for a in given)


def _ints(values, name: str) -> tuple:
    """A sequence of ints (or one int) as a tuple, refusing anything else by name."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        values = (values,)
    values = tuple(values)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name}={values!r} must be an int or a sequence of ints")
    return tuple(int(v) for v in values)


def flip(x, axis=None) -> Tensor:
    """Reverse the order of the elements along ``axis`` (all axes when None): ``torch.flip``.

    out[..., i, ...] = x[..., n-1-i, ...]; the gradient is g flipped back.
    """
    x = as_tensor(x)
    axes = normalize_axis(axis, x.ndim)
    if not axes:
        return x
    return getitem(x, tuple(slice(None, None, -1) if a in axes else slice(None)
                            for a in range(x.ndim)))


def roll(x, shift, axis=None) -> Tensor:
    """Shift the elements cyclically by ``shift`` along ``axis``, as ``torch.roll``.

    out[(i + shift) mod n] = x[i]; with ``axis=None`` the tensor is flattened, rolled and given
    its shape back. ``shift`` and ``axis`` may be sequences of equal length. The gradient is g
    rolled by -shift.
    """
    x = as_tensor(x)
    shifts = _ints(shift, "shift")
    if axis is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: shift={shift!r} must be one int when axis is None")
        return reshape(roll(reshape(x, (-1,)), shifts[0], 0), x.shape)
    axes = _ints(axis, "axis")
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift={shift!r} and axis={axis!r} must have the same length")
    for s, a in zip(shifts, axes):
        ax = normalize_one_axis(a, x.ndim)
        if ax is None or x.shape[ax] == 0:
            continue
        k = s % x.shape[ax]
        if k:
            lead = (slice(None),) * ax
            x = concatenate([getitem(x, lead + (slice(-k, None),)),
                             getitem(x, lead + (slice(None, -k),))], axis=ax)
    return x


def tile(x, reps) -> Tensor:
    """Repeat the whole tensor ``reps[d]`` times along each axis d, as ``torch.tile``.

    ``reps`` shorter than ``x.ndim`` is padded with leading 1s; longer, ``x`` gets leading axes
    of length 1. Built as a broadcast of x reshaped to (1, n0, 1, n1, ...) to (r0, n0, r1, n1,
    ...) then merged, so the gradient sums the copies.
    """
    x = as_tensor(x)
    reps = _ints(reps, "reps")
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps={reps!r} must not be negative")
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    interleaved = tuple(v for n in shape for v in (1, n))
    target = tuple(v for r, n in zip(reps, shape) for v in (r, n))
    out = broadcast_to(reshape(x, interleaved), target)
    return reshape(out, tuple(r * n for r, n in zip(reps, shape)))


def repeat(x, *sizes) -> Tensor:
    """``torch.Tensor.repeat``: the tensor repeated ``sizes[d]`` times along each axis (a tile).

    ``sizes`` (ints, or one sequence) must name at least ``x.ndim`` axes, as in PyTorch.
    """
    x = as_tensor(x)
    if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)):
        sizes = tuple(sizes[0])
    sizes = _ints(sizes, "sizes")
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: sizes={sizes!r} name {len(sizes)} axes, fewer than the "
                         f"tensor's {x.ndim} (shape {x.shape})")
    return tile(x, sizes)


def repeat_interleave(x, repeats, axis: Optional[int] = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis``, as ``torch.repeat_interleave``.

    ``repeats`` is an int or one count per element along ``axis`` (a list, array or 1-D tensor
    of non-negative ints); ``axis=None`` flattens first. The gradient sums each element's
    copies.
    """
    x = as_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = normalize_one_axis(axis, x.ndim)
    if ax is None:
        x, ax = reshape(x, (1,)), 0
    n = x.shape[ax]
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats={repeats} must not be negative")
        stretched = x.shape[:ax + 1] + (int(repeats),) + x.shape[ax + 1:]
        out = broadcast_to(expand_dims(x, ax + 1), stretched)
        return reshape(out, x.shape[:ax] + (n * int(repeats),) + x.shape[ax + 1:])
    counts = _host_ints(repeats, "repeats")
    if counts.ndim == 0:
        return repeat_interleave(x, int(counts), ax)
    if counts.ndim != 1 or counts.shape[0] not in (1, n):
        raise ShapeError(f"repeat_interleave: repeats of shape {counts.shape} must hold one "
                         f"count, or one per element ({n}) along axis {axis}")
    if (counts < 0).any():
        raise ValueError("repeat_interleave: repeats must not be negative")
    counts = np.broadcast_to(counts, (n,))
    return _take(x, np.repeat(np.arange(n), counts), ax)


def _host_ints(value, name: str) -> np.ndarray:
    """Integer data (list, array, Tensor on any backend) as a host int64 array."""
    if isinstance(value, Tensor):
        value = value.data
    if _is_array(value) and type(value) is not np.ndarray:
        value = backends.backend_of(value).to_host(value)
    array = np.asarray(value)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got {array.dtype}")
    return array.astype(np.int64)


def _take(x: Tensor, index: np.ndarray, axis: int) -> Tensor:
    """x's entries at the (valid) integer ``index`` along ``axis``: the axis moved to the front,
    one leading-array getitem (the standard's form on every backend), and moved back."""
    front = moveaxis(x, axis, 0)
    return moveaxis(getitem(front, (index,)), tuple(range(index.ndim)),
                    tuple(range(axis, axis + index.ndim)))


def _triangle(x, k: int, name: str, keep: Callable) -> Tensor:
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"{name}: needs a tensor of at least 2 dimensions, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    mask = keep(np.arange(cols)[None, :] - np.arange(rows)[:, None], int(k))
    zero = as_tensor(np.zeros((), x.dtype), like=x)
    return where(as_tensor(mask, like=x), x, zero)


def tril(x, k: int = 0) -> Tensor:
    """The lower triangle of the last two axes: out[i, j] = x[i, j] if j - i <= k else 0.

    As ``torch.tril`` (``diagonal=k``). A where, not a product, so an inf above stays out; the
    gradient is g on the triangle, 0 elsewhere.
    """
    return _triangle(x, k, "tril", lambda d, k: d <= k)


def triu(x, k: int = 0) -> Tensor:
    """The upper triangle of the last two axes: out[i, j] = x[i, j] if j - i >= k else 0."""
    return _triangle(x, k, "triu", lambda d, k: d >= k)


def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal out[..., i] = x[..., i, i + offset] of axes ``axis1``, ``axis2`` (removed;
    the diagonal is the last axis), as ``torch.diagonal``/``numpy.diagonal``.

    An offset past the matrix gives an empty diagonal. The gradient puts g back on the diagonal.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ShapeError(f"diagonal: needs a tensor of at least 2 dimensions, got shape {x.shape}")
    a = normalize_one_axis(axis1, x.ndim, "axis1")
    b = normalize_one_axis(axis2, x.ndim, "axis2")
    if a == b:
        raise ShapeError(f"diagonal: axis1 and axis2 name the same axis ({axis1}, {axis2})")
    front = moveaxis(x, (a, b), (0, 1))
    rows, cols = front.shape[:2]
    offset = int(offset)
    length = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    i = np.arange(length) + max(-offset, 0)
    picked = getitem(front, (i, i + offset))
    return moveaxis(picked, 0, -1)


def diag(x, k: int = 0) -> Tensor:
    """``torch.diag``: a 1-D x becomes the square matrix with x on its k-th diagonal; a 2-D x
    gives its k-th diagonal. The gradient of the first is the diagonal of g, of the second g
    placed on the diagonal (the two are each other's adjoint)."""
    x = as_tensor(x)
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise ShapeError(f"diag: needs a 1-D or 2-D tensor, got shape {x.shape}")
    n, k = x.shape[0], int(k)
    size = n + abs(k)
    i = np.arange(n)
    return index_add(x, (i + max(-k, 0), i + max(k, 0)), (size, size))


def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the diagonal, sum_i x[i, i + offset] (``torch.trace`` for a matrix; NumPy's
    offset and axes). The gradient is g on the diagonal."""
    return reduce_sum(diagonal(x, offset, axis1, axis2), axis=-1)


def chunk(x, chunks: int, axis: int = 0) -> list:
    """Split into ``chunks`` pieces as ``torch.chunk``: each ceil(n / chunks) long, the last
    shorter; fewer pieces when the length runs out first (torch.chunk(arange(5), 4): 3 pieces)."""
    x = as_tensor(x)
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks={chunks!r} must be a positive int")
    ax = normalize_one_axis(axis, x.ndim)
    if ax is None:
        raise ShapeError("chunk: a 0-d tensor cannot be chunked (it has no axis)")
    n = x.shape[ax]
    size = -(-n // int(chunks)) if n else 0
    if size == 0:  # an empty axis: torch gives `chunks` empty pieces
        return [x for _ in range(int(chunks))]
    lead = (slice(None),) * ax
    return [getitem(x, lead + (slice(start, min(start + size, n)),)) for start in range(0, n, size)]


def unflatten(x, axis: int, sizes) -> Tensor:
    """Split ``axis`` into axes of ``sizes`` (one may be -1), as ``torch.unflatten``."""
    x = as_tensor(x)
    ax = normalize_one_axis(axis, x.ndim)
    if ax is None:
        raise ShapeError("unflatten: a 0-d tensor has no axis to unflatten")
    sizes = _ints(sizes, "sizes")
    n = x.shape[ax]
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ValueError(f"unflatten: sizes={sizes!r} may hold one -1, and no other negatives")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0 or n % known:
            raise ShapeError(f"unflatten: axis {axis} of length {n} does not split into {sizes}")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    elif known != n:
        raise ShapeError(f"unflatten: sizes {sizes} (product {known}) do not match axis {axis} "
                         f"of length {n}")
    return reshape(x, x.shape[:ax] + sizes + x.shape[ax + 1:])


def moveaxis(x, source, destination) -> Tensor:
    """Move axes to new positions, the others keeping their order (``numpy.moveaxis``)."""
    x = as_tensor(x)
    src = _axes_list(source, x.ndim, "source")
    dst = _axes_list(destination, x.ndim, "destination")
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source={source!r} and destination={destination!r} must "
                         "name as many axes")
    if x.ndim == 0:
        return x
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def meshgrid(*xs, indexing: str = "ij") -> tuple:
    """Coordinate grids of 0-d/1-D tensors, as ``torch.meshgrid`` (``indexing="ij"``, torch's
    default: out[k] has shape (n0, n1, ...)) or NumPy's ``"xy"`` (the first two axes swapped).

    Each grid is a broadcast of its input, so its gradient sums over the other axes.
    """
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        xs = tuple(xs[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing={indexing!r} must be 'ij' or 'xy'")
    tensors = [as_tensor(t) for t in xs]
    for k, t in enumerate(tensors):
        if t.ndim > 1:
            raise ShapeError(f"meshgrid: input {k} has shape {t.shape}; inputs must be 0-d or 1-D")
    tensors = [reshape(t, (-1,)) for t in tensors]
    shape = [t.shape[0] for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        shape[0], shape[1] = shape[1], shape[0]
    grids = []
    for k, t in enumerate(tensors):
        position = {0: 1, 1: 0}.get(k, k) if swap else k
        along = [1] * len(tensors)
        along[position] = shape[position]
        grids.append(broadcast_to(reshape(t, tuple(along)), tuple(shape)))
    return tuple(grids)


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {
    "flip": flip, "roll": roll, "tile": tile, "repeat": repeat,
    "repeat_interleave": repeat_interleave, "tril": tril, "triu": triu, "diag": diag,
    "diagonal": diagonal, "trace": trace, "chunk": chunk, "unflatten": unflatten,
    "moveaxis": moveaxis,
}

"""The arithmetic of convolution shapes, with PyTorch's conventions (cross-correlation layers).

Per spatial axis, with input size ``i``, kernel ``k``, stride ``s``, padding ``p`` and dilation
``d``:

* effective kernel          ``d(k-1) + 1``
* convolution               ``floor((i + 2p - d(k-1) - 1) / s) + 1``
* pooling                   the same, ``ceil`` instead of ``floor`` under ``ceil_mode`` (and then
  the last window must start inside the input or the left padding); the stride defaults to ``k``
* transposed convolution    ``(i-1)s - 2p + d(k-1) + output_padding + 1``

Every configuration PyTorch rejects raises :class:`chainrule.ShapeError` naming the argument and
what would be valid. :func:`solve` inverts the convolution formula.
This module is pure integer arithmetic: it imports neither NumPy nor PyTorch. The layer planner
of ``chainrule shapes`` (:mod:`chainrule.course.shapes`) is built on it.
"""

from __future__ import annotations

import operator
from itertools import product
from typing import (
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from chainrule.engine.errors import ShapeError

__all__ = [
    "effective_kernel", "same_padding", "conv_output_size", "pool_output_size",
    "conv_transpose_output_size", "ConvParams", "solve",
]

Padding = Union[int, Tuple[int, int], str]
Shape = Union[int, Sequence[int]]


def _integer(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused), else ShapeError naming
    ``name``."""
    if isinstance(value, bool):
        raise ShapeError(f"{name} must be an integer >= {minimum}, got the bool {value}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # any object: TypeError refuses it
    except TypeError:
        raise ShapeError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ShapeError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def effective_kernel(k: int, d: int = 1) -> int:
    """The span of a kernel of size ``k`` with dilation ``d``: ``d(k-1) + 1``."""
    return _integer("dilation", d, 1) * (_integer("kernel_size", k, 1) - 1) + 1


def same_padding(i: int, k: int, stride: int = 1, dilation: int = 1) -> Tuple[int, int]:
    """TensorFlow's 'same' padding ``(lo, hi)``, for every stride: the output is ``ceil(i / s)``.

    total = max((ceil(i/s) - 1)s + d(k-1) + 1 - i, 0); lo = total // 2; hi = total - lo (the extra
    pad goes on the far side, as in TensorFlow and PyTorch's stride-1 ``padding='same'``).
    """
    i, s = _integer("input size", i, 1), _integer("stride", stride, 1)
    total = max((-(-i // s) - 1) * s + effective_kernel(k, dilation) - i, 0)
    return total // 2, total - total // 2


def _pads(padding: Padding, i: int, k: int, s: int, d: int) -> Tuple[int, int]:
    """The per-side pads ``(lo, hi)`` that ``padding`` means (int, pair, 'valid', 'same' or
    'full')."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0
        if mode == "same":
            return same_padding(i, k, s, d)
        if mode == "full":
            return (effective_kernel(k, d) - 1,) * 2
        raise ShapeError(f"padding must be an integer >= 0, a pair (lo, hi) or one of 'valid', "
                         f"'same', 'full'; got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ShapeError(f"padding as a sequence must be a pair (lo, hi), "
                             f"got {tuple(padding)!r}")
        return _integer("padding lo", padding[0], 0), _integer("padding hi", padding[1], 0)
    p = _integer("padding", padding, 0)
    return p, p


def conv_output_size(i: int, k: int, stride: int = 1, padding: Padding = 0,
                     dilation: int = 1) -> int:
    """Output size of a convolution: ``floor((i + lo + hi - d(k-1) - 1) / s) + 1``.

    ``padding`` is ``p`` (``lo = hi = p``), a pair ``(lo, hi)``, ``'valid'`` (0), ``'same'``
    (:func:`same_padding`, output ``ceil(i/s)``) or ``'full'`` (``d(k-1)`` each side).
    Raises ShapeError when the effective kernel is larger than the padded input (PyTorch's rule).
    """
    i, k = _integer("input size", i, 1), _integer("kernel_size", k, 1)
    s, d = _integer("stride", stride, 1), _integer("dilation", dilation, 1)
    lo, hi = _pads(padding, i, k, s, d)
    span = effective_kernel(k, d)
    if i + lo + hi < span:
        raise ShapeError(f"kernel_size={k} (effective size {span} with dilation={d}) is larger "
                         f"than the padded input {i + lo + hi} (input {i} + padding {lo + hi}); "
                         f"valid: an effective kernel <= {i + lo + hi}, or at least {span - i} "
                         f"padding in total")
    return (i + lo + hi - span) // s + 1


def pool_output_size(i: int, k: int, stride: Optional[int] = None, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output size of max/avg pooling: ``floor((i + 2p - d(k-1) - 1) / s) + 1``, stride defaulting
    to k.

    With ``ceil_mode``, ``ceil`` replaces ``floor``, then PyTorch's rule: the last window must start
    inside the input or the left padding (``if (out-1)s >= i + p: out -= 1``).
    PyTorch requires ``padding <= k // 2`` and an output of at least 1; both raise ShapeError.
    """
    i, k = _integer("input size", i, 1), _integer("kernel_size", k, 1)
    s = k if stride is None else _integer("stride", stride, 1)
    p, d = _integer("padding", padding, 0), _integer("dilation", dilation, 1)
    if ceil_mode not in (True, False):
        raise ShapeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    if p > k // 2:
        raise ShapeError(f"padding={p} is more than half the pool window kernel_size={k}; "
                         f"valid: padding <= {k // 2}")
    span = effective_kernel(k, d)
    out = (i + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    if out < 1:
        raise ShapeError(f"kernel_size={k} (effective size {span} with dilation={d}) is larger "
                         f"than the padded input {i + 2 * p} (input {i} + padding {p} each side); "
                         f"valid: an effective kernel <= {i + 2 * p}")
    return out


def conv_transpose_output_size(i: int, k: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output size of a transposed convolution: ``(i-1)s - 2p + d(k-1) + output_padding + 1``.

    PyTorch requires ``output_padding < max(stride, dilation)`` and an output of at least 1.
    """
    i, k = _integer("input size", i, 1), _integer("kernel_size", k, 1)
    s, p = _integer("stride", stride, 1), _integer("padding", padding, 0)
    op, d = _integer("output_padding", output_padding, 0), _integer("dilation", dilation, 1)
    if op >= max(s, d):
        raise ShapeError(f"output_padding={op} must be smaller than stride={s} or dilation={d}; "
                         f"valid: 0 <= output_padding <= {max(s, d) - 1}")
    full = (i - 1) * s + effective_kernel(k, d) + op
    if full - 2 * p < 1:
        raise ShapeError(f"padding={p} leaves an output of size {full - 2 * p}; "
                         f"valid: padding <= {(full - 1) // 2}")
    return full - 2 * p


# ---------------------------------------------------------------------------------------- solve

class ConvParams(NamedTuple):
    """One convolution (kernel ``k``, stride ``s``, padding ``p`` each side, dilation ``d``)."""

    k: int
    s: int
    p: int
    d: int


def _spatial(name: str, shape: Shape) -> Tuple[int, ...]:
    """The spatial sizes of an int, ``(L,)``, ``(H, W)`` or ``(C, H, W)`` (channels are dropped)."""
    sizes = (shape,) if not isinstance(shape, (tuple, list)) else tuple(shape)
    if not 1 <= len(sizes) <= 3:
        raise ShapeError(f"{name} must be an int, (H, W) or (C, H, W), got {shape!r}")
    sizes = sizes[1:] if len(sizes) == 3 else sizes
    return tuple(_integer(f"{name} size", n, 1) for n in sizes)


def _choices(name: str, fixed: Optional[int], low: int, bound: str, high: int) -> range:
    """``[fixed]`` when fixed (its bound ignored), else ``low..high``."""
    if fixed is not None:
        value = _integer(name, fixed, low)
        return range(value, value + 1)
    return range(low, _integer(bound, high, low) + 1)


#: the most (kernel, stride, dilation) combinations :func:`solve` tries, and solutions it lists
MAX_SEARCH = 1_000_000
MAX_SOLUTIONS = 100_000


def _paddings(i: int, o: int, k: int, s: int, d: int) -> Tuple[int, int]:
    """The paddings ``lo..hi`` (maybe empty) with ``conv_output_size(i, k, s, p, d) == o``.

    ``floor((i + 2p - span) / s) == o - 1`` means ``(o-1)s <= i + 2p - span <= (o-1)s + s - 1``:
    solved for p in O(1), so a huge padding bound or kernel costs nothing.
    """
    if o < 1:
        return 1, 0
    base = (o - 1) * s + d * (k - 1) + 1 - i
    return -(-base // 2), (base + s - 1) // 2


def solve(input_shape: Shape, output_shape: Shape, kernel_size: Optional[int] = None,
          stride: Optional[int] = None, padding: Optional[int] = None,
          dilation: Optional[int] = None, max_kernel: int = 11, max_stride: int = 4,
          max_padding: Optional[int] = None, max_dilation: int = 3) -> List[ConvParams]:
    """Every convolution ``(k, s, p, d)`` within the bounds mapping each spatial size to the
    output's.

    Shapes are ints, ``(H, W)`` or ``(C, H, W)`` (channels are free); the same parameters serve
    every spatial axis. Fixed arguments are used as given (their bound is ignored); padding
    defaults to ``0..effective_kernel(k, d) - 1`` unless ``max_padding`` is given. Sorted by
    ``(k, s, p, d)``. Time and memory are bounded: more than :data:`MAX_SEARCH` (k, s, d)
    combinations within the bounds, or more than :data:`MAX_SOLUTIONS` solutions, raise ShapeError.
    """
    sizes_in = _spatial("input_shape", input_shape)
    sizes_out = _spatial("output_shape", output_shape)
    if len(sizes_in) != len(sizes_out):
        raise ShapeError(f"input_shape {input_shape!r} and output_shape {output_shape!r} have "
                         f"different numbers of spatial axes")
    if max_padding is not None:
        max_padding = _integer("max_padding", max_padding, 0)
    ranges = (_choices("kernel_size", kernel_size, 1, "max_kernel", max_kernel),
              _choices("stride", stride, 1, "max_stride", max_stride),
              _choices("dilation", dilation, 1, "max_dilation", max_dilation))
    combinations = len(ranges[0]) * len(ranges[1]) * len(ranges[2])
    if combinations > MAX_SEARCH:
        raise ShapeError(f"max_kernel, max_stride and max_dilation allow {combinations:,} "
                         f"combinations, more than the limit of {MAX_SEARCH:,}: lower a bound "
                         f"or fix a value")
    results: List[ConvParams] = []
    for k, s, d in product(*ranges):
        top = effective_kernel(k, d) - 1 if max_padding is None else max_padding
        allowed = _choices("padding", padding, 0, "max_padding", top)
        low, high = allowed.start, allowed.stop - 1
        for i, o in zip(sizes_in, sizes_out):
            lo, hi = _paddings(i, o, k, s, d)
            low, high = max(low, lo), min(high, hi)
        if len(results) + max(high - low + 1, 0) > MAX_SOLUTIONS:
            raise ShapeError(f"more than {MAX_SOLUTIONS:,} solutions: "
                             f"lower max_padding or fix a value")
        results.extend(ConvParams(k, s, p, d) for p in range(low, high + 1))
    return sorted(results)

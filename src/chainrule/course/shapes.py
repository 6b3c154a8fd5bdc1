"""The layer planner of ``chainrule shapes``: parse layer specs and follow a shape through them.

:func:`parse_layer` and :func:`plan` read specs such as ``conv 16 k=3 p=1`` (layout ``(C, H, W)``
or ``(C, L)``, no batch axis) and give each layer's output shape and parameter counts, with the
arithmetic of :mod:`chainrule.ops.conv.sizes` (re-exported here: ``conv_output_size`` ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from chainrule.engine.errors import ShapeError
from chainrule.ops.conv.sizes import (
    ConvParams,
    _integer,
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    pool_output_size,
    same_padding,
    solve,
)

__all__ = [
    "effective_kernel", "same_padding", "conv_output_size", "pool_output_size",
    "conv_transpose_output_size", "ConvParams", "solve",
    "Layer", "Row", "parse_shape", "parse_layer", "plan",
]


# ------------------------------------------------------------------------------ layer specs, plan

class Row(NamedTuple):
    """One line of a plan: the layer's spec, its output shape and its parameter counts."""

    layer: str
    shape: Tuple[int, ...]
    weights: int
    biases: int


_REQUIRED = None  # an option's default meaning "must be given"
_AUTO = "auto"    # maxpool/avgpool's stride: defaults to the kernel size


@dataclass(frozen=True)
class _Kind:
    """A layer kind: the meaning of its leading positional value ``out`` (if any), its options with
    defaults (_REQUIRED: must be given) and the words an option may take instead of an integer."""

    positional: Optional[str]
    options: Dict[str, object]
    apply: Callable[["Layer", Tuple[int, ...]], Row]
    words: Dict[str, Tuple[str, ...]] = field(default_factory=dict)

    def describe(self, name: str) -> str:
        listed = ([f"the {self.positional} first"] if self.positional else []) + list(self.options)
        return f"{name} takes {', '.join(listed) or 'no options'}"


@dataclass(frozen=True)
class Layer:
    """A parsed layer spec: ``kind`` (conv, convT, maxpool, avgpool, flatten, linear) and
    ``options`` (``out`` holds the leading output channels / features)."""

    kind: str
    spec: str
    options: Dict[str, object]

    def apply(self, shape: Tuple[int, ...]) -> Row:
        """The row this layer gives for an input of ``shape`` (ShapeError if it cannot)."""
        return _KINDS[self.kind].apply(self, shape)


def _need_spatial(layer: Layer, shape: Tuple[int, ...]) -> None:
    if len(shape) not in (2, 3):
        raise ShapeError(f"{layer.kind} needs a (C, L) or (C, H, W) input, got {_show(shape)}")


def _show(shape: Tuple[int, ...]) -> str:
    return "x".join(f"{n:,}" for n in shape)


def _flag(layer: Layer, name: str) -> bool:
    value = layer.options[name]
    if value not in (0, 1):
        raise ShapeError(f"{name} must be 0 or 1, got {value}")
    return bool(value)


def _grouped_weights(layer: Layer, c_in: int, c_out: int, k: int, axes: int) -> int:
    """``c_in * c_out / g * k^axes`` (conv and convT alike), after PyTorch's checks on groups."""
    g = _integer("g (groups)", layer.options["g"], 1)
    if c_in % g or c_out % g:
        raise ShapeError(f"g={g} must divide the input channels {c_in:,} "
                         f"and the output channels {c_out:,}")
    return c_in * (c_out // g) * k ** axes


def _conv(layer: Layer, shape: Tuple[int, ...]) -> Row:
    _need_spatial(layer, shape)
    o: Dict[str, Any] = layer.options  # the size functions check each value
    c_out = _integer("output channels", o["out"], 1)
    sizes = tuple(conv_output_size(i, o["k"], o["s"], o["p"], o["d"]) for i in shape[1:])
    weights = _grouped_weights(layer, shape[0], c_out, o["k"], len(sizes))
    return Row(layer.spec, (c_out, *sizes), weights, c_out if _flag(layer, "bias") else 0)


def _conv_t(layer: Layer, shape: Tuple[int, ...]) -> Row:
    _need_spatial(layer, shape)
    o: Dict[str, Any] = layer.options  # the size functions check each value
    c_out = _integer("output channels", o["out"], 1)
    sizes = tuple(conv_transpose_output_size(i, o["k"], o["s"], o["p"], o["op"], o["d"])
                  for i in shape[1:])
    weights = _grouped_weights(layer, shape[0], c_out, o["k"], len(sizes))
    return Row(layer.spec, (c_out, *sizes), weights, c_out if _flag(layer, "bias") else 0)


def _pool(layer: Layer, shape: Tuple[int, ...]) -> Row:
    _need_spatial(layer, shape)
    o: Dict[str, Any] = layer.options  # the size functions check each value
    ceil = _flag(layer, "ceil")
    stride = None if o["s"] == _AUTO else o["s"]
    sizes = tuple(pool_output_size(i, o["k"], stride, o["p"], o.get("d", 1), ceil)
                  for i in shape[1:])
    return Row(layer.spec, (shape[0], *sizes), 0, 0)


def _flatten(layer: Layer, shape: Tuple[int, ...]) -> Row:
    return Row(layer.spec, (math.prod(shape),), 0, 0)


def _linear(layer: Layer, shape: Tuple[int, ...]) -> Row:
    """PyTorch's Linear: maps the last axis (flatten first for the usual classifier head)."""
    n = _integer("output features", layer.options["out"], 1)
    return Row(layer.spec, (*shape[:-1], n), shape[-1] * n, n if _flag(layer, "bias") else 0)


_KINDS: Dict[str, _Kind] = {
    "conv": _Kind("output channels",
                  {"k": _REQUIRED, "s": 1, "p": 0, "d": 1, "g": 1, "bias": 1}, _conv,
                  {"p": ("same", "valid", "full")}),
    "convT": _Kind("output channels",
                   {"k": _REQUIRED, "s": 1, "p": 0, "op": 0, "d": 1, "g": 1, "bias": 1}, _conv_t),
    "maxpool": _Kind(None, {"k": _REQUIRED, "s": _AUTO, "p": 0, "d": 1, "ceil": 0}, _pool),
    "avgpool": _Kind(None, {"k": _REQUIRED, "s": _AUTO, "p": 0, "ceil": 0}, _pool),
    "flatten": _Kind(None, {}, _flatten),
    "linear": _Kind("output features", {"bias": 1}, _linear),
}
_LOWER = {name.lower(): name for name in _KINDS}  # kinds are matched case-insensitively


def _quoted(text: str) -> str:
    """repr of a user's text, cut short (an argument may be thousands of characters long)."""
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


_SIZE = re.compile(r"[0-9]{1,30}")  # ASCII digits only ('²'.isdigit() is true), and a sane length


def parse_shape(text: str) -> Tuple[int, ...]:
    """``'3x256x256'`` -> ``(3, 256, 256)``: sizes >= 1 joined by ``x``."""
    parts = text.lower().split("x")
    if not all(_SIZE.fullmatch(part) and int(part) >= 1 for part in parts):
        raise ShapeError(f"shape {_quoted(text)} must be sizes >= 1 (at most 30 digits) "
                         f"joined by 'x', like 3x256x256 or 3x100")
    return tuple(int(part) for part in parts)


def _value(kind: _Kind, name: str, text: str, spec: str) -> object:
    """An option's value: an integer, or one of the words the option takes (p=same)."""
    if text.lower() in kind.words.get(name, ()):
        return text.lower()
    if re.fullmatch(r"[+-]?[0-9]{1,30}", text.strip()):
        return int(text)
    allowed = " or ".join(["an integer (at most 30 digits)", *kind.words.get(name, ())])
    what = "the leading value" if name == "out" else f"option {name}"
    raise ShapeError(f"{what} in {_quoted(spec)} must be {allowed}, got {_quoted(text)}")


def parse_layer(spec: str) -> Layer:
    """Read a layer spec ``kind[:value,key=value,...]``, like ``conv:64,k=3,s=2,p=same`` or
    ``flatten``.

    Kinds: conv (out channels, k, s, p: int/same/valid/full, d, g, bias=0/1), convT (out channels,
    k, s, p, op, d, g, bias), maxpool (k, s, p, d, ceil=0/1), avgpool (k, s, p, ceil), flatten,
    linear:N.
    """
    head, _, rest = spec.partition(":")
    name = _LOWER.get(head.lower())
    if name is None:
        raise ShapeError(f"unknown layer kind {_quoted(head)} in {_quoted(spec)}; "
                         f"known: {', '.join(_KINDS)}")
    kind = _KINDS[name]
    options: Dict[str, object] = {}
    for position, item in enumerate(filter(None, rest.split(","))):
        key, equals, text = item.partition("=")
        if not equals and position == 0 and kind.positional:
            key, text = "out", item
        elif key not in kind.options or key in options:
            problem = "repeated" if key in options else ("unknown" if equals else "unexpected")
            raise ShapeError(f"{problem} option {_quoted(item)} in {_quoted(spec)}; "
                             f"{kind.describe(name)}")
        options[key] = _value(kind, key, text, spec)
    required = ((["out"] if kind.positional else [])
                + [k for k, v in kind.options.items() if v is _REQUIRED])
    # "out" is required only where the kind has a positional value, which then names it
    missing = [(kind.positional or key) if key == "out" else key
               for key in required if key not in options]
    if missing:
        raise ShapeError(f"{_quoted(spec)} is missing {' and '.join(missing)}; "
                         f"{kind.describe(name)}")
    return Layer(name, spec, {**kind.options, **options})


def plan(input_shape: Sequence[int], layers: Iterable[Union[str, Layer]]) -> List[Row]:
    """The row (spec, output shape, weights, biases) of each layer applied in turn to
    ``input_shape``.

    ``input_shape`` is ``(C, H, W)`` or ``(C, L)``; layers are specs (see :func:`parse_layer`) or
    :class:`Layer` objects. A layer that cannot take its input raises ShapeError naming it.
    """
    shape = tuple(_integer("input size", n, 1) for n in input_shape)
    rows = []
    for number, layer in enumerate(layers, start=1):
        layer = parse_layer(layer) if isinstance(layer, str) else layer
        try:
            rows.append(layer.apply(shape))
        except ShapeError as error:
            raise ShapeError(f"layer {number} {_quoted(layer.spec)} on input {_show(shape)}: "
                             f"{error}") from None
        shape = rows[-1].shape
    return rows

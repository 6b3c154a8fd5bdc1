"""``summary(model, input_shape)``: per layer, the output shape and the parameters it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import chainrule as cr
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor
from chainrule.nn.module import Module
from chainrule.ops.abstract import AbstractValueError, ShapeDtype, eval_shape

__all__ = ["summary", "Summary", "LayerRow"]


@dataclass(frozen=True)
class LayerRow:
    name: str  # dotted path in the model
    kind: str  # class name
    output_shape: tuple  # per sample (batch axis removed)
    trainable: int  # parameters with requires_grad
    non_trainable: int  # frozen parameters and buffers (running statistics)
    counts: tuple = ()  # (parameter name, number of entries) for each parameter of the layer

    @property
    def breakdown(self) -> str:
        return " + ".join(f"{name} {n:,}" for name, n in self.counts)


@dataclass(frozen=True)
class Summary:
    input_shape: tuple
    rows: tuple
    batch_size: int
    activation_bytes: int  # forward outputs of every layer for one batch (what backward keeps)

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def non_trainable(self) -> int:
        return sum(r.non_trainable for r in self.rows)

    def __str__(self) -> str:
        header = ("layer", "type", "output shape", "trainable", "non-trainable", "parameters")
        body = [
            (r.name, r.kind, "x".join(map(str, r.output_shape)), f"{r.trainable:,}",
             f"{r.non_trainable:,}", r.breakdown)
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(6)]
        aligns = ["<", "<", "<", ">", ">", "<"]
        lines = ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, aligns, widths)).rstrip()
                 for row in [header, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        mib = self.activation_bytes / 2**20
        lines += [
            "",
            f"input: {'x'.join(map(str, self.input_shape))} (batch of {self.batch_size})",
            f"parameters: {self.trainable + self.non_trainable:,} ({self.trainable:,} trainable, "
            f"{self.non_trainable:,} non-trainable)",
            f"activation memory (forward outputs kept for backward, batch of {self.batch_size}): "
            f"{mib:.2f} MiB",
        ]
        return "\n".join(lines)

    __repr__ = __str__


def _leaves(model: Module) -> list[tuple[str, Module]]:
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    return leaves or [("", model)]


def _leaf_outputs(model: Module, inputs: ShapeDtype) -> dict[int, Tensor]:
    """id(leaf module) -> its output in one forward pass in eval mode: abstract tensors from
    ``eval_shape``, else (the forward reads values) concrete ones computed on zeros."""
    outputs: dict[int, Tensor] = {}

    def recorder(key: int) -> Callable[..., None]:
        def record(m, inputs, output):
            outputs[key] = output
        return record

    handles = [module.register_forward_hook(recorder(id(module))) for _, module in _leaves(model)]
    was_training = model.training
    try:
        model.eval()
        try:
            eval_shape(model, inputs)
        except (NotImplementedError, AbstractValueError):
            outputs.clear()
            with no_grad():
                model(cr.zeros(inputs.shape, dtype=inputs.dtype))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return outputs


def summary(
    model: Module, input_shape: Sequence[int], batch_size: int = 1, dtype="float32"
) -> Summary:
    """Tabulate every leaf layer of ``model`` for inputs of shape ``(batch_size, *input_shape)``.

    The output shapes come from one abstract forward pass (:func:`~chainrule.eval_shape`):
    shapes and dtypes only, so no batch is too large. A model whose forward reads values (or
    uses a primitive without an abstract rule) is run on zeros instead, as before.
    """
    input_shape = tuple(int(n) for n in input_shape)
    outputs = _leaf_outputs(model, ShapeDtype((batch_size,) + input_shape, np.dtype(dtype)))
    rows, activation = [], 0
    for name, module in _leaves(model):
        out = outputs.get(id(module))
        shape = tuple(out.shape[1:]) if isinstance(out, Tensor) else ()
        if isinstance(out, Tensor):
            activation += out.size * out.dtype.itemsize
        params = list(module.parameters(recurse=False))
        trainable = sum(p.size for p in params if p.requires_grad)
        frozen = sum(p.size for p in params if not p.requires_grad) + sum(
            b.size for b in module.buffers(recurse=False))
        counts = tuple((n, p.size) for n, p in module.named_parameters(recurse=False))
        kind = type(module).__name__
        rows.append(LayerRow(name or kind, kind, shape, trainable, frozen, counts))
    return Summary(input_shape, tuple(rows), batch_size, int(activation))

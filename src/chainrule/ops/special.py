"""Special functions and the rest of the math of a PyTorch user (issue 12): erf, erfinv,
the inverse and hyperbolic trigonometric functions, rounding, remainders, logaddexp, lerp ..."""

from __future__ import annotations

from typing import Callable

__all__: list[str] = []

#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {}

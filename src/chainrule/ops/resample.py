"""Resampling: torch's padding modes, interpolation, unfold/fold (issue 12)."""

from __future__ import annotations

from typing import Callable

__all__: list[str] = []

#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {}

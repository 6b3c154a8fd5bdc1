"""Resampling layers with PyTorch's names: Upsample, Unfold, Fold, the padding layers."""

from __future__ import annotations

__all__: list[str] = []

"""``RemovableHandle``: what registering a hook returns (tensor hooks, module forward hooks)."""

from __future__ import annotations

import itertools
from typing import Callable

__all__ = ["RemovableHandle"]

_next_key = itertools.count()  # keys are never reused, so a stale handle cannot remove a newer hook


class RemovableHandle:
    """``handle.remove()`` unregisters the hook it was returned for (removing twice is harmless)."""

    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks, self._key = hooks, key

    @classmethod
    def add(cls, hooks: dict, hook: Callable) -> "RemovableHandle":
        """Append ``hook`` to ``hooks`` (run in insertion order) under a fresh key; return its
        handle."""
        key = next(_next_key)
        hooks[key] = hook
        return cls(hooks, key)

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

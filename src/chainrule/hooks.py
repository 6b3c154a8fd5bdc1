"""``RemovableHandle``: what registering a hook returns (tensor hooks, module forward hooks)."""

from __future__ import annotations

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """``handle.remove()`` unregisters the hook it was returned for (removing twice is harmless)."""

    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

"""Whether operations record a graph: ``no_grad`` / ``enable_grad`` / ``set_grad_enabled``.

The switch is one flag read by every primitive call (``Primitive.bind``). It is changed only
through these context managers (also usable as decorators) so that it is always restored,
even when the body raises.
"""

from __future__ import annotations

import contextlib
import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


class _GradMode:
    """Holds the flag; a class attribute is the cheapest thing for ``bind`` to read."""

    enabled: bool = True


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad record the graph."""
    return _GradMode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager (and decorator) that sets graph recording on or off inside its body."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._saved.pop()

    def __call__(self, func):  # decorator use: a fresh manager per call keeps it reentrant
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return func(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """``with chainrule.no_grad(): ...`` -- results have no history and need no memory for it."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """``with chainrule.enable_grad(): ...`` -- record the graph again inside a ``no_grad`` block."""

    def __init__(self) -> None:
        super().__init__(True)

"""Per-thread modes: whether operations record a graph, and anomaly detection.

``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` switch graph recording; ``detect_anomaly`` /
``set_detect_anomaly`` switch the NaN/inf checks of the forward and backward passes. Both are
*per thread*, as PyTorch's grad mode: ``no_grad`` in one thread never stops another thread's
recording, and a new thread starts with recording on and anomaly detection off.

The flags live on one ``threading.local`` object, ``_state``, as one pair ``modes = (grad
enabled, anomaly)`` that every primitive call (``Primitive.bind``) reads at once: a thread-local
attribute read costs about twice a class attribute's, so there is one per operation, not two.
They are changed only through the context managers here (also usable as decorators) so that they
are always restored, even when the body raises.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, TypeVar

__all__ = [
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
]

F = TypeVar("F", bound=Callable[..., Any])


GRAD, ANOMALY = 0, 1  # positions in ``_state.modes``


class _ThreadState(threading.local):
    """The modes of the current thread; the class attribute is each new thread's default."""

    modes: tuple[bool, bool] = (True, False)  # (grad enabled, anomaly detection)


_state = _ThreadState()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad record the graph (in this thread)."""
    return _state.modes[GRAD]


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` or after ``set_detect_anomaly(True)`` (in this thread)."""
    return _state.modes[ANOMALY]


def _set(flag: int, value: bool) -> None:
    modes = list(_state.modes)
    modes[flag] = value
    _state.modes = (modes[0], modes[1])


class _Mode(contextlib.ContextDecorator):
    """Sets one flag of ``_state`` inside a ``with`` body (or a decorated call), then restores."""

    flag = GRAD  # which position of ``_state.modes``

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(_state.modes[self.flag])
        _set(self.flag, self.mode)

    def __exit__(self, *exc: object) -> None:
        _set(self.flag, self._saved.pop())  # only this flag: the other may have changed inside

    def __call__(self, func: F) -> F:  # decorator use: a fresh manager per call keeps it reentrant
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Mode._of(self.flag, mode):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @staticmethod
    def _of(flag: int, mode: bool) -> "_Mode":
        manager = _Mode(mode)
        manager.flag = flag
        return manager


class _Switch(_Mode):
    """A mode that also takes effect as a plain call, as ``torch.set_grad_enabled(False)`` does.

    The constructor sets the flag; ``with`` keeps that setting for its body and restores the old
    one on exit; as a decorator it restores at once and sets the mode around each call instead.
    """

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        super().__enter__()
        self._pending = True  # the constructor's change, not yet claimed by a ``with``

    def __enter__(self) -> None:
        if self._pending:
            self._pending = False
        else:
            super().__enter__()

    def __call__(self, func: F) -> F:
        if self._pending:
            self._pending = False
            self.__exit__()
        return super().__call__(func)


class set_grad_enabled(_Switch):
    """Graph recording on or off in this thread: a call, a context manager or a decorator."""

    flag = GRAD


class no_grad(_Mode):
    """``with chainrule.no_grad(): ...`` -- results have no history and need no memory for it."""

    flag = GRAD

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_Mode):
    """``with chainrule.enable_grad(): ...`` -- record the graph again inside ``no_grad``."""

    flag = GRAD

    def __init__(self) -> None:
        super().__init__(True)


class set_detect_anomaly(_Switch):
    """Anomaly detection on or off in this thread: a call, a context manager or a decorator.

    While on, the first forward operation that makes NaN or inf out of finite inputs, and the
    first VJP rule that does so in backward, raise :class:`~chainrule.AnomalyError` naming
    the operation, its input shapes and dtypes and the line of user code that created the node.
    The stack is captured only in this mode; off, it costs one attribute read per operation.
    """

    flag = ANOMALY


class detect_anomaly(_Mode):
    """``with chainrule.detect_anomaly(): ...`` -- see :class:`set_detect_anomaly`."""

    flag = ANOMALY

    def __init__(self) -> None:
        super().__init__(True)

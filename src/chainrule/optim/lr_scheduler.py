"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: call ``step()`` once per epoch.

A scheduler rewrites ``group['lr']`` of every parameter group of its optimizer. Creating one
records each group's starting rate as ``group['initial_lr']`` (kept if already there, as when
resuming) and ``base_lrs``; ``get_last_lr()`` lists the rates it set last, one per group.
``state_dict()`` / ``load_state_dict()`` save and restore everything but the optimizer (whose
own ``state_dict`` carries the current ``lr`` and ``initial_lr`` of each group).

The recursive forms are PyTorch's, so sequences agree with it to rounding:

* :class:`StepLR` -- lr_t = base_lr * gamma ** (t // step_size)
* :class:`CosineAnnealingLR` -- lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2,
  applied recursively (so changes made to ``lr`` from outside carry on), continuing as a cosine
  of period 2 T_max after T_max
* :class:`ReduceLROnPlateau` -- lr <- max(lr * factor, min_lr) after more than ``patience``
  epochs without improvement of the metric given to ``step(metric)``.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Union

from chainrule.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


def _check_number(name: str, value: Any, low: float, *, integer: bool = False,
                  strict: bool = False) -> None:
    """Raise naming ``name`` unless ``value`` is a (integer) number >= low (> low if strict)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name}={value!r}: expected {'an integer' if integer else 'a number'}")
    # the ignore: numbers.Real's stub declares < and <= only, not > and >=
    if not (value > low if strict else value >= low):  # type: ignore[operator]
        raise ValueError(f"{name}={value!r}: must be {'>' if strict else '>='} {low}")


class LRScheduler:
    """Base class: subclasses define ``get_lr()``, the rates of the epoch ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a chainrule.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        _check_number("last_epoch", last_epoch, -1, integer=True)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param_groups[{i}] has no 'initial_lr' to resume from "
                               f"(last_epoch={last_epoch}): load the optimizer's state first")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates of epoch ``last_epoch``, one per parameter group."""
        raise NotImplementedError

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def get_last_lr(self) -> list[float]:
        """The rates set by the last ``step()`` (or at creation), one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (copies)."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; its rate lists must have one entry per group."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr", "min_lrs"):
            if key in state_dict and len(state_dict[key]) != groups:
                raise ValueError(f"state_dict[{key!r}] has {len(state_dict[key])} entries, the "
                                 f"optimizer has {groups} parameter groups")
        self.__dict__.update(copy.deepcopy(state_dict))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


class StepLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` every ``step_size`` epochs.

    lr_t = base_lr * gamma ** (t // step_size) (applied as one multiplication every
    ``step_size`` epochs to the current rate).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        _check_number("step_size", step_size, 1, integer=True)
        _check_number("gamma", gamma, 0)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from base_lr down to ``eta_min`` over ``T_max`` epochs (no restarts).

    lr_t = eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2, computed recursively as
    PyTorch does: lr_t = eta_min + (lr_{t-1} - eta_min) (1 + cos(pi t/T_max)) / (1 + cos(pi
    (t-1)/T_max)), with the closed form when resuming and the rise after T_max handled
    separately (where the ratio would be 0/0).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check_number("T_max", T_max, 0, strict=True)
        _check_number("eta_min", eta_min, 0)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resuming: the closed form
            return [eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:  # just past the minimum: restart the rise
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class ReduceLROnPlateau(LRScheduler):
    """Divide the rates when a metric stops improving: ``step(metric)`` once per epoch.

    ``mode='min'`` (a loss) or ``'max'`` (an accuracy). A metric improves on the best so far when
    it beats best * (1 - threshold) ('min', 'rel'), best - threshold ('min', 'abs'), best * (1 +
    threshold) or best + threshold ('max'). After more than ``patience`` epochs in a row without
    improvement every group's rate becomes max(lr * factor, min_lr) (unchanged if that moves it
    by eps or less), then ``cooldown`` epochs pass during which bad epochs are not counted.
    ``min_lr`` is a number (for every group, also ones added later) or a list, one per group.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: Union[float, list[float], tuple[float, ...]] = 0,
                 eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a chainrule.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}: choose 'min' or 'max'")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode={threshold_mode!r}: choose 'rel' or 'abs'")
        _check_number("factor", factor, 0)
        if not factor < 1:
            raise ValueError(f"factor={factor!r}: must be < 1 (the rate is multiplied by it)")
        _check_number("patience", patience, 0, integer=True)
        _check_number("threshold", threshold, 0)
        _check_number("cooldown", cooldown, 0, integer=True)
        _check_number("eps", eps, 0)
        groups = len(optimizer.param_groups)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * groups
        if len(min_lrs) != groups:
            raise ValueError(f"min_lr: expected {groups} values (one per parameter group), "
                             f"got {len(min_lrs)}")
        per_group = isinstance(min_lr, (list, tuple))
        for i, value in enumerate(min_lrs):
            _check_number(f"min_lr[{i}]" if per_group else "min_lr", value, 0)
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lrs, self.eps = cooldown, min_lrs, eps
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        """Whether ``current`` improves on ``best`` by more than the threshold."""
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return current < (best * (1 - self.threshold) if relative else best - self.threshold)
        return current > (best * (1 + self.threshold) if relative else best + self.threshold)

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record one epoch's metric (a number or a one-element tensor) and maybe reduce."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            if self.default_min_lr is not None:  # a group was added: one min_lr for all
                self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
                return self._reduce_lr()
            raise RuntimeError(f"the optimizer has {len(self.optimizer.param_groups)} parameter "
                               f"groups but min_lrs has {len(self.min_lrs)} entries: a group was "
                               f"added after the scheduler was created; set min_lrs to match")
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def get_lr(self) -> list[float]:
        return self._current_lrs()

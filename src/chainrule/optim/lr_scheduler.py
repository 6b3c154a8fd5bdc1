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
* :class:`LambdaLR` -- lr_t = base_lr * f(t); :class:`MultiplicativeLR` -- lr_t = lr_{t-1} f(t)
* :class:`MultiStepLR` -- lr_t = base_lr * gamma ** (milestones passed by t)
* :class:`ConstantLR`, :class:`LinearLR` -- a constant or linearly changing factor for
  ``total_iters`` epochs (warm-up); :class:`ExponentialLR` -- lr_t = base_lr * gamma ** t;
  :class:`PolynomialLR` -- lr_t = base_lr (1 - t / total_iters) ** power
* :class:`CosineAnnealingWarmRestarts` (SGDR), :class:`OneCycleLR` (per batch, also cycling the
  momentum), :class:`CyclicLR` (per batch, triangular / triangular2 / exp_range),
  :class:`SequentialLR` (one scheduler after another at milestones).

Resuming with ``last_epoch=k`` (the groups carrying ``initial_lr``) gives PyTorch's sequence;
``SequentialLR`` restarts a scheduler at its epoch 0 through its closed form
(``_get_closed_form_lr``) where it has one.
"""

from __future__ import annotations

import copy
import math
import numbers
import types
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from chainrule.optim.optimizer import Optimizer

__all__ = [
    "LRScheduler", "StepLR", "CosineAnnealingLR", "ReduceLROnPlateau", "LambdaLR",
    "MultiplicativeLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "SequentialLR", "CyclicLR",
]


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
        self._initial_step()

    def _initial_step(self) -> None:
        """The step made at creation (``_is_initial`` set): epoch ``last_epoch + 1``."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates of epoch ``last_epoch``, one per parameter group."""
        raise NotImplementedError

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer's groups."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: Optional[int] = None) -> None:
        """Move to the next epoch (or jump to ``epoch``: the closed form where there is one)."""
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
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

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


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

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


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


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """``value`` for every group (a list/tuple must have one entry per group)."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"{name}: expected {groups} values (one per parameter group), "
                             f"got {len(value)}")
        return list(value)
    return [value] * groups


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected a chainrule.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")


class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the epoch per group.

    ``state_dict()`` does not save the functions (plain functions cannot be saved); for a
    callable object it saves the object's ``__dict__`` (as PyTorch does) and
    ``load_state_dict`` restores that into the current callables.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Any, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        for i, fn in enumerate(lambdas):
            if not callable(fn):
                where = f"lr_lambda[{i}]" if isinstance(lr_lambda, (list, tuple)) else "lr_lambda"
                raise TypeError(f"{where}: expected a function of the epoch, got "
                                f"{type(fn).__name__}")
        self.lr_lambdas: list[Callable[[int], float]] = lambdas
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        saved = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "lr_lambdas")}
        saved["lr_lambdas"] = [None if isinstance(fn, types.FunctionType)
                               else copy.deepcopy(fn.__dict__) for fn in self.lr_lambdas]
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        lambdas = state_dict.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if len(lambdas) != len(self.lr_lambdas):
            raise ValueError(f"state_dict['lr_lambdas'] has {len(lambdas)} entries, this "
                             f"scheduler has {len(self.lr_lambdas)} functions")
        super().load_state_dict(state_dict)
        for fn, saved in zip(self.lr_lambdas, lambdas):
            if saved is not None:
                fn.__dict__.update(copy.deepcopy(saved))


class LambdaLR(_LambdaScheduler):
    """lr_t = base_lr * lr_lambda(t): one function (or one per group) of the epoch t."""

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """lr_t = lr_{t-1} * lr_lambda(t) for t >= 1 (the factor multiplies the current rate)."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class MultiStepLR(LRScheduler):
    """Multiply the rates by ``gamma`` at each milestone epoch.

    lr_t = base_lr * gamma ** (number of milestones <= t); a milestone listed k times multiplies
    by gamma ** k.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"milestones={milestones!r}: expected a list of epochs")
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            _check_number(f"milestones[{i}]", m, 0, integer=True)
        _check_number("gamma", gamma, 0)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        milestones = sorted(self.milestones.elements())
        return [base * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr_t = base_lr * factor for t < total_iters, then base_lr (factor in [0, 1])."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        _check_number("factor", factor, 0)
        if not factor <= 1:
            raise ValueError(f"factor={factor!r}: must lie in [0, 1]")
        _check_number("total_iters", total_iters, 0, integer=True)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        reached = self.last_epoch >= self.total_iters
        return [base * (self.factor + reached * (1 - self.factor)) for base in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Linear warm-up (or decay) of the factor from ``start_factor`` to ``end_factor``.

    lr_t = base_lr * (s + (e - s) * min(t, total_iters) / total_iters), computed recursively as
    PyTorch does (each epoch multiplies the current rate by the ratio of consecutive factors).
    ``start_factor`` in (0, 1], ``end_factor`` in [0, 1].
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        _check_number("start_factor", start_factor, 0, strict=True)
        if not start_factor <= 1:
            raise ValueError(f"start_factor={start_factor!r}: must lie in (0, 1]")
        _check_number("end_factor", end_factor, 0)
        if not end_factor <= 1:
            raise ValueError(f"end_factor={end_factor!r}: must lie in [0, 1]")
        _check_number("total_iters", total_iters, 1, integer=True)
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        change = self.end_factor - self.start_factor
        fraction = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + change * fraction) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr_t = base_lr * gamma ** t (one multiplication by gamma per epoch)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_number("gamma", gamma, 0)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """lr_t = base_lr * (1 - min(t, total_iters) / total_iters) ** power (recursively)."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        _check_number("total_iters", total_iters, 1, integer=True)
        _check_number("power", power, 0)
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        t, total = self.last_epoch, self.total_iters
        factor = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        fraction = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (1.0 - fraction) ** self.power for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR (Loshchilov & Hutter, 2017): cosine annealing restarted every T_i epochs.

    lr = eta_min + (base_lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2, with T_cur the epochs
    since the last restart; T_0 is the first period and each restart multiplies the period by
    ``T_mult``. ``step(epoch)`` may be given a fractional epoch (``epoch + i / iters`` per batch).
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        _check_number("T_0", T_0, 1, integer=True)
        _check_number("T_mult", T_mult, 1, integer=True)
        _check_number("eta_min", eta_min, 0)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch: Optional[float] = None) -> None:
        """Next epoch, or jump to ``epoch`` (a number >= 0, fractional allowed)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            _check_number("epoch", epoch, 0)
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2018): call ``step()`` after every batch.

    The rate rises from max_lr / div_factor to ``max_lr`` over the first ``pct_start`` of the
    ``total_steps`` (or ``epochs * steps_per_epoch``), then anneals down to
    max_lr / (div_factor * final_div_factor); with ``three_phase`` it first comes back to the
    start before the final annealing. ``anneal_strategy`` 'cos' (default) or 'linear'. With
    ``cycle_momentum`` the momentum (or Adam's beta1) moves the opposite way between
    ``max_momentum`` and ``base_momentum``. Stepping past ``total_steps`` is a ValueError.
    Each group records ``initial_lr``, ``max_lr``, ``min_lr`` (and ``max_momentum``,
    ``base_momentum``).
    """

    def __init__(self, optimizer: Optimizer, max_lr: Union[float, Sequence[float]],
                 total_steps: Optional[int] = None, epochs: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: Union[float, Sequence[float]] = 0.85,
                 max_momentum: Union[float, Sequence[float]] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        if total_steps is not None:
            _check_number("total_steps", total_steps, 1, integer=True)
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            _check_number("epochs", epochs, 1, integer=True)
            _check_number("steps_per_epoch", steps_per_epoch, 1, integer=True)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("total_steps: give total_steps, or epochs and steps_per_epoch")
        _check_number("pct_start", pct_start, 0)
        if not pct_start <= 1:
            raise ValueError(f"pct_start={pct_start!r}: must lie in [0, 1]")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy={anneal_strategy!r}: choose 'cos' or 'linear'")
        _check_number("div_factor", div_factor, 0, strict=True)
        _check_number("final_div_factor", final_div_factor, 0, strict=True)
        total = self.total_steps
        if three_phase:
            self._schedule_phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum",
                 "base_momentum"),
                (float(2 * pct_start * total) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                (float(pct_start * total) - 1, "initial_lr", "max_lr", "max_momentum",
                 "base_momentum"),
                (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self.anneal_strategy = anneal_strategy
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for i, value in enumerate(max_lrs):
            _check_number(f"max_lr[{i}]" if isinstance(max_lr, (list, tuple)) else "max_lr",
                          value, 0)
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"cycle_momentum=True: {type(optimizer).__name__} has neither "
                                 f"momentum nor betas (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for top_m, low_m, group in zip(max_momentums, base_momentums,
                                               optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (top_m, *group["betas"][1:])
                    else:
                        group["momentum"] = top_m
                    group["max_momentum"] = top_m
                    group["base_momentum"] = low_m
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {step} times, more than total_steps="
                             f"{self.total_steps}")
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._schedule_phases):
                if step <= end_step or i == last:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[m0], group[m1], pct)
                        if self.use_beta1:
                            group["betas"] = (momentum, *group["betas"][1:])
                        else:
                            group["momentum"] = momentum
                    break
                start_step = end_step
        return lrs


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at the ``milestones`` epochs.

    Scheduler i runs from milestone i-1 (restarted at its epoch 0, with its closed form where it
    has one) until milestone i. All must drive ``optimizer``; ReduceLROnPlateau is not allowed
    (its ``step`` needs a metric). ``state_dict()`` holds each scheduler's own state dict.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("schedulers: expected at least one scheduler")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"schedulers[{i}]: expected an LRScheduler, got "
                                f"{type(scheduler).__name__}")
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"schedulers[{i}]: ReduceLROnPlateau cannot be sequenced (its "
                                 f"step needs a metric)")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] drives another optimizer than the one given")
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones: expected {len(schedulers) - 1} (one fewer than the "
                             f"schedulers), got {len(milestones)}")
        for i, m in enumerate(milestones):
            _check_number(f"milestones[{i}]", m, 0, integer=True)
        if any(b < a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones={milestones!r}: must be sorted")
        _check_number("last_epoch", last_epoch, -1, integer=True)
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # undo what the schedulers did when created
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            _undo_step(scheduler)
        index = bisect_right(milestones, 0)
        schedulers[index]._initial_step()
        self._last_lr = schedulers[index].get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def get_lr(self) -> list[float]:
        return self._current_lrs()

    def state_dict(self) -> dict[str, Any]:
        saved = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        saved["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        inner = state_dict.pop("_schedulers", None)
        if inner is None or len(inner) != len(self._schedulers):
            raise ValueError(f"state_dict['_schedulers']: expected {len(self._schedulers)} "
                             f"scheduler states")
        super().load_state_dict(state_dict)
        for scheduler, saved in zip(self._schedulers, inner):
            scheduler.load_state_dict(saved)


def _undo_step(scheduler: LRScheduler) -> None:
    """Take one epoch back from a scheduler (and those it sequences)."""
    inner = getattr(scheduler, "_schedulers", None)
    if inner is not None:
        for s in inner:
            _undo_step(s)
    else:
        scheduler.last_epoch -= 1


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (Smith, 2017): call ``step()`` after every batch.

    The rate goes linearly from ``base_lr`` up to ``max_lr`` in ``step_size_up`` steps and back
    down in ``step_size_down`` (default: the same), the amplitude scaled by

    * ``'triangular'`` -- 1,
    * ``'triangular2'`` -- 1 / 2^(cycle - 1) (halved every cycle),
    * ``'exp_range'`` -- gamma ** iteration,

    or by ``scale_fn(x)`` if given (x the cycle number, or the iteration if
    ``scale_mode='iterations'``). With ``cycle_momentum`` the momentum (or Adam's beta1) moves
    the opposite way between ``max_momentum`` and ``base_momentum``. Creating it sets every
    group's rate to ``base_lr``. ``state_dict()`` saves a custom ``scale_fn`` only if it is a
    callable object (its ``__dict__``), as PyTorch.
    """

    def __init__(self, optimizer: Optimizer, base_lr: Union[float, Sequence[float]],
                 max_lr: Union[float, Sequence[float]], step_size_up: int = 2000,
                 step_size_down: Optional[int] = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Optional[Callable[[float], float]] = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: Union[float, Sequence[float]] = 0.8,
                 max_momentum: Union[float, Sequence[float]] = 0.9,
                 last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for name, values, given in (("base_lr", base_lrs, base_lr), ("max_lr", max_lrs, max_lr)):
            for i, value in enumerate(values):
                _check_number(f"{name}[{i}]" if isinstance(given, (list, tuple)) else name,
                              value, 0)
        _check_number("step_size_up", step_size_up, 1, integer=True)
        if step_size_down is not None:
            _check_number("step_size_down", step_size_down, 0, integer=True)
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode={mode!r}: choose 'triangular', 'triangular2' or 'exp_range' "
                             f"(or give scale_fn)")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn: expected a function, got {type(scale_fn).__name__}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode={scale_mode!r}: choose 'cycle' or 'iterations'")
        _check_number("gamma", gamma, 0)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = max_lrs
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        if scale_fn is None:  # the built-in modes fix the scale mode
            self.scale_mode = "iterations" if mode == "exp_range" else "cycle"
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"cycle_momentum=True: {type(optimizer).__name__} has neither "
                                 f"momentum nor betas (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
            self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            if last_epoch == -1:
                for top_m, low_m, group in zip(self.max_momentums, self.base_momentums,
                                               optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (top_m, *group["betas"][1:])
                    else:
                        group["momentum"] = top_m
                    group["max_momentum"] = top_m
                    group["base_momentum"] = low_m
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at x (a cycle number or an iteration)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base + (top - base) * scale_factor * scale
               for base, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low_m, top_m in zip(self.optimizer.param_groups, self.base_momentums,
                                           self.max_momentums):
                momentum = top_m - (top_m - low_m) * scale_factor * scale
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs

    def state_dict(self) -> dict[str, Any]:
        fn = self._scale_fn_custom
        saved = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_scale_fn_custom")}
        saved["_scale_fn_custom"] = (None if fn is None or isinstance(fn, types.FunctionType)
                                     else copy.deepcopy(fn.__dict__))
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        fn = state_dict.pop("_scale_fn_custom", None)
        super().load_state_dict(state_dict)
        if fn is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(copy.deepcopy(fn))

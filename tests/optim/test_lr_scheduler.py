"""chainrule.optim.lr_scheduler: the learning-rate sequences of torch.optim.lr_scheduler."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler

EPOCHS = 30
LRS = (0.1, 0.03)


def _optimizers(lrs=LRS, momentum=0.0):
    """The same two-group SGD in chainrule and in torch (the parameters never get gradients)."""
    ours = optim.SGD([{"params": [cr.tensor([0.0], requires_grad=True)], "lr": lr} for lr in lrs],
                     lr=1.0, momentum=momentum)
    theirs = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                              for lr in lrs],
                             lr=1.0, momentum=momentum)
    return ours, theirs


def _lrs(opt):
    return [group["lr"] for group in opt.param_groups]


def _compare_epochs(ours, theirs, sched, tsched, metrics=None):
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-14, abs=1e-16)
    for epoch in range(EPOCHS):
        theirs.step()  # torch wants optimizer.step() before scheduler.step()
        if metrics is None:
            sched.step()
            tsched.step()
        else:
            sched.step(metrics[epoch])
            tsched.step(metrics[epoch])
        expected = tsched.get_last_lr()
        assert sched.get_last_lr() == pytest.approx(expected, rel=1e-14, abs=1e-16), epoch
        assert _lrs(ours) == pytest.approx(_lrs(theirs), rel=1e-14, abs=1e-16), epoch
        assert sched.last_epoch == tsched.last_epoch


@pytest.mark.parametrize("step_size, gamma", [(7, 0.5), (1, 0.9), (10, 0.1)])
def test_step_lr_matches_torch(step_size, gamma):
    ours, theirs = _optimizers()
    _compare_epochs(ours, theirs, lr_scheduler.StepLR(ours, step_size, gamma=gamma),
                    torch.optim.lr_scheduler.StepLR(theirs, step_size, gamma=gamma))


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.001), (7, 0.0), (30, 0.01), (4, 0.02)])
def test_cosine_annealing_matches_torch_past_t_max(T_max, eta_min):
    ours, theirs = _optimizers()
    _compare_epochs(ours, theirs, lr_scheduler.CosineAnnealingLR(ours, T_max, eta_min=eta_min),
                    torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max, eta_min=eta_min))


def test_cosine_annealing_values():
    ours, _ = _optimizers(lrs=(1.0,))
    sched = lr_scheduler.CosineAnnealingLR(ours, T_max=4, eta_min=0.0)
    seen = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        seen.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(seen, [1.0, (1 + 2 ** -0.5) / 2, 0.5, (1 - 2 ** -0.5) / 2, 0.0],
                               atol=1e-15)


def test_resuming_with_last_epoch_uses_the_closed_form():
    ours, theirs = _optimizers()
    for opt in (ours, theirs):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    sched = lr_scheduler.CosineAnnealingLR(ours, T_max=12, eta_min=0.001, last_epoch=5)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=12, eta_min=0.001,
                                                        last_epoch=5)
    _compare_epochs(ours, theirs, sched, tsched)


def _metrics(seed=7):
    """A noisy decreasing loss with plateaus."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([np.linspace(1, 0.5, 8), np.full(6, 0.5), np.linspace(0.5, 0.3, 6),
                             np.full(10, 0.3)])
    return (values + 0.01 * rng.normal(size=EPOCHS)).tolist()


@pytest.mark.parametrize("kwargs", [
    dict(patience=2),
    dict(patience=0, factor=0.5),
    dict(patience=1, cooldown=3, factor=0.5),
    dict(patience=2, threshold=0.05, threshold_mode="abs"),
    dict(patience=2, threshold=0.1),
    dict(patience=1, factor=0.2, min_lr=[0.002, 0.01]),
    dict(patience=1, factor=0.5, min_lr=0.01, eps=1e-3),
    dict(mode="max", patience=2, factor=0.5),
    dict(mode="max", patience=1, threshold=0.01, threshold_mode="abs", cooldown=1),
])
def test_reduce_on_plateau_matches_torch(kwargs):
    metrics = _metrics()
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    ours, theirs = _optimizers()
    sched = lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    _compare_epochs(ours, theirs, sched, tsched, metrics)
    assert sched.best == tsched.best and sched.num_bad_epochs == tsched.num_bad_epochs
    assert _lrs(ours) != list(LRS)  # the rates were reduced at least once


def test_reduce_on_plateau_takes_a_tensor_metric_and_a_late_group():
    ours, _ = _optimizers(lrs=(0.1,))
    sched = lr_scheduler.ReduceLROnPlateau(ours, patience=0, min_lr=0.001)
    sched.step(cr.tensor(1.0))
    ours.add_param_group({"params": [cr.tensor([1.0], requires_grad=True)], "lr": 0.5})
    sched.step(cr.tensor([2.0]))
    assert _lrs(ours) == pytest.approx([0.01, 0.05])
    assert sched.min_lrs == [0.001, 0.001]


SCHEDULERS = [
    ("step", lambda opt: lr_scheduler.StepLR(opt, 5, gamma=0.5), None),
    ("cosine", lambda opt: lr_scheduler.CosineAnnealingLR(opt, 8, eta_min=0.001), None),
    ("plateau", lambda opt: lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1, factor=0.5),
     _metrics()),
]


@pytest.mark.parametrize("name, make, metrics", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_state_dict_round_trip(name, make, metrics):
    def advance(sched, epoch):
        sched.step() if metrics is None else sched.step(metrics[epoch])

    straight, _ = _optimizers(momentum=0.9)
    sched = make(straight)
    for epoch in range(12):
        advance(sched, epoch)
    saved_opt, saved = straight.state_dict(), sched.state_dict()
    assert "optimizer" not in saved
    resumed, _ = _optimizers(lrs=(5.0, 5.0), momentum=0.9)
    resumed_sched = make(resumed)  # torch's order: scheduler first, then the optimizer's state
    resumed.load_state_dict(saved_opt)
    resumed_sched.load_state_dict(saved)
    for epoch in range(12, EPOCHS):
        advance(sched, epoch)
        advance(resumed_sched, epoch)
        assert resumed_sched.get_last_lr() == sched.get_last_lr()
        assert _lrs(resumed) == _lrs(straight)
    assert saved["last_epoch"] == 12  # a snapshot, not a view


def test_initial_lr_is_recorded_per_group():
    ours, _ = _optimizers()
    sched = lr_scheduler.StepLR(ours, 2)
    assert sched.base_lrs == list(LRS)
    assert [g["initial_lr"] for g in ours.param_groups] == list(LRS)
    for _ in range(4):
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.001, 0.0003])
    assert [g["initial_lr"] for g in ours.param_groups] == list(LRS)


@pytest.mark.parametrize("make, error, message", [
    (lambda o: lr_scheduler.StepLR(o, 0), ValueError, r"step_size=0: must be >= 1"),
    (lambda o: lr_scheduler.StepLR(o, 2.5), TypeError, r"step_size=2.5: expected an integer"),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma=-0.1), ValueError, r"gamma=-0.1"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 0), ValueError, r"T_max=0: must be > 0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 5, eta_min=-1.0), ValueError, r"eta_min=-1.0"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 5, last_epoch=3), KeyError, r"initial_lr"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="lowest"), ValueError, r"mode='lowest'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
     r"threshold_mode='x'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"factor=1.0: must be < 1"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError, r"patience=-1"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, cooldown=0.5), TypeError, r"cooldown=0.5"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     r"min_lr: expected 2 values"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, -1]), ValueError, r"min_lr\[1\]=-1"),
    (lambda o: lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1)]), 2), TypeError,
     r"expected a chainrule.optim.Optimizer"),
])
def test_invalid_arguments_name_the_argument(make, error, message):
    ours, _ = _optimizers()
    with pytest.raises(error, match=message):
        make(ours)


def test_load_state_dict_checks_the_group_count():
    ours, _ = _optimizers()
    saved = lr_scheduler.StepLR(ours, 3).state_dict()
    single, _ = _optimizers(lrs=(0.1,))
    with pytest.raises(ValueError, match=r"'base_lrs'\] has 2 entries, the optimizer has 1"):
        lr_scheduler.StepLR(single, 3).load_state_dict(saved)

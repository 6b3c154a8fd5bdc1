"""The schedulers beyond StepLR / cosine / plateau, against torch.optim.lr_scheduler."""

import math
import warnings

import pytest
import torch

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler as ls

tls = torch.optim.lr_scheduler
EPOCHS = 30
LRS = (0.1, 0.03)


@pytest.fixture(autouse=True)
def _quiet_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's "step order" / epoch warnings
        yield


def _optimizers(lrs=LRS, kind="sgd"):
    """The same optimizer in chainrule and torch, one group per rate (never stepped)."""
    ours_cls, theirs_cls, extra = {
        "sgd": (optim.SGD, torch.optim.SGD, dict(momentum=0.9)),
        "adam": (optim.Adam, torch.optim.Adam, {}),
    }[kind]
    ours = ours_cls([{"params": [cr.tensor([0.0], requires_grad=True)], "lr": lr} for lr in lrs],
                    lr=1.0, **extra)
    theirs = theirs_cls([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                         for lr in lrs], lr=1.0, **extra)
    return ours, theirs


def _lrs(opt):
    return [group["lr"] for group in opt.param_groups]


def _approx(values):
    return pytest.approx(values, rel=1e-13, abs=1e-16)


def _compare(ours, theirs, sched, tsched, epochs=EPOCHS, keys=()):
    """Step both ``epochs`` times; rates (and group entries ``keys``) agree at every epoch."""
    assert sched.get_last_lr() == _approx(tsched.get_last_lr())
    for epoch in range(epochs):
        theirs.step()
        sched.step()
        tsched.step()
        assert sched.get_last_lr() == _approx(tsched.get_last_lr()), epoch
        assert _lrs(ours) == _approx(_lrs(theirs)), epoch
        assert sched.last_epoch == tsched.last_epoch, epoch
        for key in keys:
            for group, tgroup in zip(ours.param_groups, theirs.param_groups):
                assert group[key] == _approx(tgroup[key]), (epoch, key)


class Warmup:
    """A callable object with state (saved by state_dict, as in torch)."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n) * 0.97 ** epoch


# name -> (make(module, optimizer), group keys to compare)
CASES = {
    "lambda": (lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e), ()),
    "lambda-per-group": (lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), Warmup(5)]), ()),
    "multiplicative": (lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 3 else 1.1), ()),
    "multistep": (lambda m, o: m.MultiStepLR(o, [3, 8, 8, 20], gamma=0.5), ()),
    "multistep-unsorted": (lambda m, o: m.MultiStepLR(o, [12, 4], gamma=0.3), ()),
    "constant": (lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=7), ()),
    "linear-warmup": (lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=10), ()),
    "linear-decay": (lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                             total_iters=17), ()),
    "exponential": (lambda m, o: m.ExponentialLR(o, gamma=0.87), ()),
    "polynomial": (lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0), ()),
    "warm-restarts": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=0.001), ()),
    "warm-restarts-mult": (lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2), ()),
    "one-cycle": (lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=EPOCHS),
                  ("momentum", "initial_lr", "max_lr", "min_lr")),
    "one-cycle-linear-3": (lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, epochs=6, steps_per_epoch=5, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, base_momentum=0.8, max_momentum=[0.9, 0.99], div_factor=10.0,
        final_div_factor=100.0), ("momentum",)),
    "one-cycle-no-momentum": (lambda m, o: m.OneCycleLR(o, 1.0, total_steps=31,
                                                        cycle_momentum=False), ("momentum",)),
    "cyclic": (lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=4), ("momentum",)),
    "cyclic-triangular2": (lambda m, o: m.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=3,
                                                   step_size_down=5, mode="triangular2",
                                                   max_momentum=0.95), ("momentum",)),
    "cyclic-exp-range": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="exp_range",
                                                 gamma=0.9, cycle_momentum=False), ()),
    "cyclic-scale-fn": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                                scale_fn=lambda x: 1 / (1 + x),
                                                scale_mode="iterations"), ("momentum",)),
    "sequential": (lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=5), m.ExponentialLR(o, gamma=0.9)],
        milestones=[5]), ()),
    "sequential-3": (lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=3), m.CosineAnnealingLR(o, T_max=8),
            m.StepLR(o, 4, gamma=0.5)], milestones=[4, 12]), ()),
    "sequential-restarts": (lambda m, o: m.SequentialLR(
        o, [m.ExponentialLR(o, gamma=0.8), m.MultiStepLR(o, [2, 9], gamma=0.1),
            m.PolynomialLR(o, total_iters=6)], milestones=[6, 16]), ()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    make, keys = CASES[name]
    ours, theirs = _optimizers()
    _compare(ours, theirs, make(ls, ours), make(tls, theirs), keys=keys)


@pytest.mark.parametrize("name", ["one-cycle", "cyclic"])
def test_cycles_adam_beta1(name):
    ours, theirs = _optimizers(kind="adam")
    make = CASES[name][0]
    _compare(ours, theirs, make(ls, ours), make(tls, theirs), keys=("betas",))
    assert ours.param_groups[0]["betas"][1] == 0.999


def test_cyclic_values_and_state_dict_of_a_callable_scale():
    ours, _ = _optimizers(lrs=(1.0,))
    sched = ls.CyclicLR(ours, 0.0, 1.0, step_size_up=2, mode="triangular2",
                        cycle_momentum=False)
    seen = [sched.get_last_lr()[0]]
    for _ in range(8):
        sched.step()
        seen.append(sched.get_last_lr()[0])
    assert seen == pytest.approx([0, 0.5, 1, 0.5, 0, 0.25, 0.5, 0.25, 0])
    scale = Warmup(3)
    sched = ls.CyclicLR(ours, 0.0, 1.0, scale_fn=scale, cycle_momentum=False)
    saved = sched.state_dict()
    assert saved["_scale_fn_custom"] == {"n": 3}
    scale.n = 7
    sched.load_state_dict(saved)
    assert scale.n == 3


def test_one_cycle_values_and_limit():
    ours, _ = _optimizers(lrs=(1.0,))
    sched = ls.OneCycleLR(ours, max_lr=1.0, total_steps=10, pct_start=0.5, div_factor=4.0,
                          final_div_factor=2.0, anneal_strategy="linear")
    seen = [sched.get_last_lr()[0]]
    for _ in range(9):
        sched.step()
        seen.append(sched.get_last_lr()[0])
    assert seen[0] == 0.25 and seen[4] == 1.0 and seen[-1] == 0.125
    assert seen[:5] == pytest.approx([0.25, 0.4375, 0.625, 0.8125, 1.0])
    assert ours.param_groups[0]["momentum"] == pytest.approx(0.95)
    sched.step()  # step 10 = total_steps: torch allows it
    with pytest.raises(ValueError, match="more than total_steps=10"):
        sched.step()


def test_warm_restarts_values_and_fractional_epochs():
    ours, theirs = _optimizers()
    sched = ls.CosineAnnealingWarmRestarts(ours, T_0=4, T_mult=2, eta_min=0.01)
    tsched = tls.CosineAnnealingWarmRestarts(theirs, T_0=4, T_mult=2, eta_min=0.01)
    for epoch in [0.5, 1.25, 3.9, 4.0, 7.5, 11.99, 12.0, 30.3, 2.0]:
        sched.step(epoch)
        tsched.step(epoch)
        assert sched.get_last_lr() == _approx(tsched.get_last_lr()), epoch
        assert sched.T_i == tsched.T_i and sched.last_epoch == tsched.last_epoch
    sched.step()
    tsched.step()
    assert sched.get_last_lr() == _approx(tsched.get_last_lr())
    ours, _ = _optimizers(lrs=(1.0,))
    sched = ls.CosineAnnealingWarmRestarts(ours, T_0=2)
    seen = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        seen.append(sched.get_last_lr()[0])
    assert seen == pytest.approx([1.0, 0.5, 1.0, 0.5, 1.0])  # restarts every 2 epochs
    with pytest.raises(ValueError, match="epoch=-1"):
        sched.step(-1)


def test_lambda_lr_values():
    ours, _ = _optimizers()
    sched = ls.LambdaLR(ours, [lambda e: e + 1, lambda e: 0.5 ** e])
    for _ in range(3):
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.4, 0.03 / 8])


RESUMABLE = ["lambda", "multiplicative", "multistep", "constant", "linear-warmup",
             "exponential", "polynomial", "warm-restarts", "warm-restarts-mult"]


@pytest.mark.parametrize("name", RESUMABLE)
def test_resume_with_last_epoch_matches_torch(name):
    """Created with last_epoch=k (the groups already carry initial_lr), as torch."""
    ours, theirs = _optimizers()
    for opt in (ours, theirs):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
            group["lr"] *= 0.5  # where an earlier run had left it

    sched, tsched = _with_last_epoch(name, ls, ours), _with_last_epoch(name, tls, theirs)
    _compare(ours, theirs, sched, tsched, epochs=15)


def _with_last_epoch(name, m, o, k=6):
    return {
        "lambda": lambda: m.LambdaLR(o, lambda e: 0.95 ** e, last_epoch=k),
        "multiplicative": lambda: m.MultiplicativeLR(o, lambda e: 0.9, last_epoch=k),
        "multistep": lambda: m.MultiStepLR(o, [3, 8, 8, 20], gamma=0.5, last_epoch=k),
        "constant": lambda: m.ConstantLR(o, factor=0.25, total_iters=7, last_epoch=k),
        "linear-warmup": lambda: m.LinearLR(o, start_factor=0.1, total_iters=10, last_epoch=k),
        "exponential": lambda: m.ExponentialLR(o, gamma=0.87, last_epoch=k),
        "polynomial": lambda: m.PolynomialLR(o, total_iters=20, power=2.0, last_epoch=k),
        "warm-restarts": lambda: m.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=0.001,
                                                               last_epoch=k),
        "warm-restarts-mult": lambda: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                    last_epoch=k),
    }[name]()


def test_one_cycle_resumes_with_last_epoch():
    ours, theirs = _optimizers()
    make = CASES["one-cycle"][0]
    first, tfirst = make(ls, ours), make(tls, theirs)
    for _ in range(10):
        first.step()
        tfirst.step()
    sched = ls.OneCycleLR(ours, max_lr=[0.5, 0.2], total_steps=EPOCHS, last_epoch=10)
    tsched = tls.OneCycleLR(theirs, max_lr=[0.5, 0.2], total_steps=EPOCHS, last_epoch=10)
    _compare(ours, theirs, sched, tsched, epochs=EPOCHS - 11, keys=("momentum",))


@pytest.mark.parametrize("name", ["lambda-per-group", "multistep", "linear-warmup", "cyclic",
                                  "warm-restarts-mult", "one-cycle", "sequential-3",
                                  "sequential-restarts"])
def test_state_dict_round_trip(name):
    make, _ = CASES[name]
    straight, _ = _optimizers()
    sched = make(ls, straight)
    for _ in range(9):
        sched.step()
    saved_opt, saved = straight.state_dict(), sched.state_dict()
    assert "optimizer" not in saved
    resumed, _ = _optimizers(lrs=(5.0, 5.0))
    resumed_sched = make(ls, resumed)
    resumed.load_state_dict(saved_opt)
    resumed_sched.load_state_dict(saved)
    for epoch in range(9, EPOCHS - 1):
        sched.step()
        resumed_sched.step()
        assert resumed_sched.get_last_lr() == sched.get_last_lr(), epoch
        assert _lrs(resumed) == _lrs(straight), epoch
    assert saved["last_epoch"] == 9  # a snapshot


def test_lambda_state_dict_saves_callable_objects_not_functions():
    ours, _ = _optimizers()
    warm = Warmup(5)
    sched = ls.LambdaLR(ours, [lambda e: 1.0, warm])
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [None, {"n": 5}]
    warm.n = 9
    sched.load_state_dict(saved)
    assert warm.n == 5


@pytest.mark.parametrize("make, error, message", [
    (lambda o: ls.LambdaLR(o, 0.5), TypeError, r"lr_lambda: expected a function"),
    (lambda o: ls.LambdaLR(o, [abs]), ValueError, r"lr_lambda: expected 2 values"),
    (lambda o: ls.MultiplicativeLR(o, [abs, 3]), TypeError, r"lr_lambda\[1\]"),
    (lambda o: ls.MultiStepLR(o, [2, 1.5]), TypeError, r"milestones\[1\]=1.5"),
    (lambda o: ls.MultiStepLR(o, [-1]), ValueError, r"milestones\[0\]=-1"),
    (lambda o: ls.MultiStepLR(o, 5), TypeError, r"milestones=5"),
    (lambda o: ls.MultiStepLR(o, [2], gamma=-1), ValueError, r"gamma=-1"),
    (lambda o: ls.ConstantLR(o, factor=1.5), ValueError, r"factor=1.5"),
    (lambda o: ls.LinearLR(o, start_factor=0), ValueError, r"start_factor=0: must be > 0"),
    (lambda o: ls.LinearLR(o, start_factor=1.5), ValueError, r"start_factor=1.5"),
    (lambda o: ls.LinearLR(o, end_factor=-0.5), ValueError, r"end_factor=-0.5"),
    (lambda o: ls.LinearLR(o, total_iters=0), ValueError, r"total_iters=0"),
    (lambda o: ls.ExponentialLR(o, gamma="x"), TypeError, r"gamma='x'"),
    (lambda o: ls.PolynomialLR(o, power=-1.0), ValueError, r"power=-1.0"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, r"T_0=0"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), TypeError, r"T_mult=1.5"),
    (lambda o: ls.CosineAnnealingWarmRestarts(o, T_0=2, eta_min=-1), ValueError, r"eta_min=-1"),
    (lambda o: ls.OneCycleLR(o, 0.1), ValueError, r"total_steps"),
    (lambda o: ls.OneCycleLR(o, 0.1, total_steps=0), ValueError, r"total_steps=0"),
    (lambda o: ls.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=2.5), TypeError,
     r"steps_per_epoch=2.5"),
    (lambda o: ls.OneCycleLR(o, 0.1, 10, pct_start=1.5), ValueError, r"pct_start=1.5"),
    (lambda o: ls.OneCycleLR(o, 0.1, 10, anneal_strategy="exp"), ValueError,
     r"anneal_strategy='exp'"),
    (lambda o: ls.OneCycleLR(o, [0.1], 10), ValueError, r"max_lr: expected 2 values"),
    (lambda o: ls.OneCycleLR(o, [0.1, -1], 10), ValueError, r"max_lr\[1\]=-1"),
    (lambda o: ls.OneCycleLR(o, 0.1, 10, max_momentum=[0.9]), ValueError, r"max_momentum"),
    (lambda o: ls.OneCycleLR(optim.Adagrad(o.param_groups[0]["params"]), 0.1, 10), ValueError,
     r"cycle_momentum=True: Adagrad"),
    (lambda o: ls.CyclicLR(o, 0.1, [0.2]), ValueError, r"max_lr: expected 2 values"),
    (lambda o: ls.CyclicLR(o, -0.1, 0.2), ValueError, r"base_lr=-0.1"),
    (lambda o: ls.CyclicLR(o, 0.1, 0.2, step_size_up=0), ValueError, r"step_size_up=0"),
    (lambda o: ls.CyclicLR(o, 0.1, 0.2, mode="sine"), ValueError, r"mode='sine'"),
    (lambda o: ls.CyclicLR(o, 0.1, 0.2, scale_fn=abs, scale_mode="x"), ValueError,
     r"scale_mode='x'"),
    (lambda o: ls.CyclicLR(o, 0.1, 0.2, scale_fn=3), TypeError, r"scale_fn: expected"),
    (lambda o: ls.CyclicLR(optim.Adagrad(o.param_groups[0]["params"]), 0.1, 0.2), ValueError,
     r"cycle_momentum=True: Adagrad"),
    (lambda o: ls.SequentialLR(o, [], []), ValueError, r"schedulers: expected at least one"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), ls.StepLR(o, 3)], [2, 4]), ValueError,
     r"milestones: expected 1"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), ls.StepLR(o, 3), ls.StepLR(o, 4)], [5, 2]),
     ValueError, r"must be sorted"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), ls.ReduceLROnPlateau(o)], [2]), ValueError,
     r"schedulers\[1\]: ReduceLROnPlateau"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), "x"], [2]), TypeError, r"schedulers\[1\]"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(_optimizers()[0], 2)], []), ValueError,
     r"schedulers\[0\] drives another optimizer"),
    (lambda o: ls.LambdaLR(torch.optim.SGD([torch.zeros(1)]), abs), TypeError,
     r"expected a chainrule.optim.Optimizer"),
])
def test_invalid_arguments_name_the_argument(make, error, message):
    ours, _ = _optimizers()
    with pytest.raises(error, match=message):
        make(ours)


def test_closed_form_jump_matches_recursion():
    """_update_lr(epoch) (used by SequentialLR) lands where stepping lands."""
    for make in (lambda o: ls.StepLR(o, 3, gamma=0.5), lambda o: ls.ExponentialLR(o, 0.9),
                 lambda o: ls.CosineAnnealingLR(o, 10, eta_min=0.01),
                 lambda o: ls.MultiStepLR(o, [2, 5]), lambda o: ls.LinearLR(o, 0.5),
                 lambda o: ls.PolynomialLR(o, 8), lambda o: ls.ConstantLR(o, 0.5, 4)):
        stepped, _ = _optimizers()
        sched = make(stepped)
        for _ in range(7):
            sched.step()
        jumped, _ = _optimizers()
        other = make(jumped)
        other._update_lr(7)
        assert other.get_last_lr() == pytest.approx(sched.get_last_lr(), rel=1e-12)
        assert not math.isnan(other.get_last_lr()[0])

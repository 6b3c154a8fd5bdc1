"""Adagrad, Adadelta, Adamax, NAdam, RAdam and LBFGS against torch.optim, in float64."""

import copy

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import optim

STEPS = 20
_rng = np.random.default_rng(7)
X = _rng.normal(size=(6, 3))
Y = _rng.normal(size=(6, 2))
INIT = [_rng.normal(size=(3, 2)), _rng.normal(size=2), np.array(0.7), _rng.normal(size=4)]
# parameter 2 (a 0-d scale) gets a gradient only on even steps; parameter 3 never gets one


@pytest.fixture(autouse=True)
def _torch_float64_scalars():
    """torch keeps NAdam's mu_product (and step counters) in its default dtype: make it float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _loss(W, b, s):
    return cr.sum((cr.tanh(cr.tensor(X) @ W + b) - cr.tensor(Y)) ** 2) + s * s * cr.sum(W * W)


def _gradients(params, k):
    W, b, s, _ = params
    for p in params:
        p.grad = None
    _loss(W, b, s).backward()
    grads = [W.grad.data.copy(), b.grad.data.copy(), s.grad.data.copy(), None]
    if k % 2:
        grads[2] = None
    return grads


def _leaves():
    ours = [cr.tensor(v.copy(), dtype="float64", requires_grad=True) for v in INIT]
    theirs = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in INIT]
    return ours, theirs


def _single(params, extra):
    return params


def _two_groups(params, extra):
    return [{"params": [params[0]], "lr": 0.003, **extra}, {"params": params[1:]}]


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


CONFIGS = [
    ("adagrad", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1), _single, {}),
    ("adagrad-decay", optim.Adagrad, torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6),
     _single, {}),
    ("adagrad-maximize", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.01, maximize=True),
     _single, {}),
    ("adagrad-groups", optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1), _two_groups,
     dict(lr_decay=0.1, weight_decay=0.2)),
    ("adadelta", optim.Adadelta, torch.optim.Adadelta, dict(), _single, {}),
    ("adadelta-decay", optim.Adadelta, torch.optim.Adadelta,
     dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1), _single, {}),
    ("adadelta-maximize", optim.Adadelta, torch.optim.Adadelta, dict(maximize=True), _single, {}),
    ("adadelta-groups", optim.Adadelta, torch.optim.Adadelta, dict(lr=2.0), _two_groups,
     dict(rho=0.5, weight_decay=0.3)),
    ("adamax", optim.Adamax, torch.optim.Adamax, dict(lr=0.02), _single, {}),
    ("adamax-decay", optim.Adamax, torch.optim.Adamax,
     dict(lr=0.02, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.1), _single, {}),
    ("adamax-maximize", optim.Adamax, torch.optim.Adamax, dict(lr=0.01, maximize=True),
     _single, {}),
    ("adamax-groups", optim.Adamax, torch.optim.Adamax, dict(lr=0.02), _two_groups,
     dict(betas=(0.5, 0.6), weight_decay=0.2)),
    ("nadam", optim.NAdam, torch.optim.NAdam, dict(lr=0.02), _single, {}),
    ("nadam-decay", optim.NAdam, torch.optim.NAdam,
     dict(lr=0.02, weight_decay=0.1, momentum_decay=0.05, betas=(0.8, 0.9)), _single, {}),
    ("nadamw", optim.NAdam, torch.optim.NAdam,
     dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True), _single, {}),
    ("nadam-maximize", optim.NAdam, torch.optim.NAdam, dict(lr=0.01, maximize=True), _single, {}),
    ("nadam-groups", optim.NAdam, torch.optim.NAdam, dict(lr=0.02), _two_groups,
     dict(momentum_decay=0.01, eps=1e-3)),
    ("radam", optim.RAdam, torch.optim.RAdam, dict(lr=0.02), _single, {}),
    # beta2 = 0.6: rho_t passes 5 within the 20 steps, so both branches run
    ("radam-rectified", optim.RAdam, torch.optim.RAdam,
     dict(lr=0.02, betas=(0.8, 0.6), weight_decay=0.1), _single, {}),
    ("radamw", optim.RAdam, torch.optim.RAdam,
     dict(lr=0.02, betas=(0.9, 0.6), weight_decay=0.1, decoupled_weight_decay=True), _single, {}),
    ("radam-maximize", optim.RAdam, torch.optim.RAdam,
     dict(lr=0.01, betas=(0.9, 0.7), maximize=True), _single, {}),
    ("radam-groups", optim.RAdam, torch.optim.RAdam, dict(lr=0.02), _two_groups,
     dict(betas=(0.5, 0.65), eps=1e-3)),
]
IDS = [c[0] for c in CONFIGS]


def _set_grads(params, torch_params, grads):
    for p, tp, g in zip(params, torch_params, grads):
        p.grad = None if g is None else cr.tensor(g)
        tp.grad = None if g is None else torch.tensor(g)


@pytest.mark.parametrize("name, ours_cls, torch_cls, kwargs, grouping, extra", CONFIGS, ids=IDS)
def test_matches_torch_for_20_steps(name, ours_cls, torch_cls, kwargs, grouping, extra):
    params, torch_params = _leaves()
    opt = ours_cls(grouping(params, extra), **kwargs)
    topt = torch_cls(grouping(torch_params, extra), **kwargs)
    for k in range(STEPS):
        _set_grads(params, torch_params, _gradients(params, k))
        opt.step()
        topt.step()
    for p, tp in zip(params, torch_params):
        assert np.isfinite(p.data).all()
        _close(p.data, tp.detach().numpy())
        assert p.is_leaf and p.grad_fn is None and p.dtype == np.float64
    np.testing.assert_array_equal(params[3].data, INIT[3])  # never had a gradient
    assert not np.allclose(params[0].data, INIT[0])  # it did move
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert ours["state"].keys() == theirs["state"].keys()
    for index, entries in theirs["state"].items():
        assert ours["state"][index].keys() == entries.keys()
        for key, value in entries.items():
            mine = ours["state"][index][key]
            if key == "step":
                assert mine == int(value.item())
            elif value.ndim == 0 and not isinstance(mine, cr.Tensor):  # NAdam's mu_product
                _close(mine, value.item())
            else:
                _close(mine.data, value.numpy())
    for group, tgroup in zip(ours["param_groups"], theirs["param_groups"]):
        for key, value in group.items():
            assert tgroup[key] == value, key


def _step(params, opt, k):
    for p, g in zip(params, _gradients(params, k)):
        p.grad = None if g is None else cr.tensor(g)
    opt.step()


ROUND_TRIP = [c for c in CONFIGS if c[0] in (
    "adagrad-decay", "adagrad-groups", "adadelta-groups", "adamax-decay", "nadam-groups",
    "nadamw", "radam-rectified", "radam-groups")]


@pytest.mark.parametrize("name, ours_cls, torch_cls, kwargs, grouping, extra", ROUND_TRIP,
                         ids=[c[0] for c in ROUND_TRIP])
def test_state_dict_round_trip_continues_exactly(name, ours_cls, torch_cls, kwargs, grouping,
                                                 extra):
    straight, _ = _leaves()
    opt = ours_cls(grouping(straight, extra), **kwargs)
    resumed, _ = _leaves()
    for k in range(STEPS // 2):
        _step(straight, opt, k)
    saved = opt.state_dict()
    frozen = copy.deepcopy(saved)
    for p, q in zip(resumed, straight):
        p.data[...] = q.data
    fresh = ours_cls(grouping(resumed, extra), **{**kwargs, "lr": 123.0})
    fresh.load_state_dict(saved)
    for k in range(STEPS // 2, STEPS):
        _step(straight, opt, k)
        _step(resumed, fresh, k)
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.data, q.data)
    for index, entries in frozen["state"].items():  # a snapshot
        for key, value in entries.items():
            now = saved["state"][index][key]
            if isinstance(value, cr.Tensor):
                np.testing.assert_array_equal(now.data, value.data)
            else:
                assert now == value


@pytest.mark.parametrize("name, ours_cls, torch_cls, kwargs", [
    ("adamax", optim.Adamax, torch.optim.Adamax, dict(lr=0.01, weight_decay=0.1)),
    ("radam", optim.RAdam, torch.optim.RAdam, dict(lr=0.01, betas=(0.9, 0.6))),
    ("nadam", optim.NAdam, torch.optim.NAdam, dict(lr=0.01)),
])
def test_loads_torch_state_dict(name, ours_cls, torch_cls, kwargs):
    """A state dict saved by torch (0-d tensors for step and mu_product) continues here."""
    params, torch_params = _leaves()
    topt = torch_cls(torch_params, **kwargs)
    for k in range(5):
        _set_grads(params, torch_params, _gradients([cr.tensor(t.detach().numpy().copy(),
                                                               requires_grad=True)
                                                     for t in torch_params], k))
        topt.step()
    saved = topt.state_dict()
    state = {i: {key: (v.item() if key in ("step", "mu_product") else cr.tensor(v.numpy().copy()))
                 for key, v in entries.items()} for i, entries in saved["state"].items()}
    groups = [{k: v for k, v in g.items() if k in ("lr", "betas", "eps", "weight_decay",
                                                     "momentum_decay", "params")}
              for g in saved["param_groups"]]
    for p, tp in zip(params, torch_params):
        p.data[...] = tp.detach().numpy()
    opt = ours_cls(params, **kwargs)
    opt.load_state_dict({"state": state, "param_groups": groups})
    for k in range(5, 10):
        _set_grads(params, torch_params, _gradients(params, k))
        opt.step()
        topt.step()
    for p, tp in zip(params, torch_params):
        _close(p.data, tp.detach().numpy())


def test_float32_parameters_keep_their_dtype():
    for make in (lambda p: optim.Adagrad(p, initial_accumulator_value=0.1),
                 optim.Adadelta, optim.Adamax, optim.NAdam, optim.RAdam):
        p = cr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
        opt = make([p])
        p.grad = cr.tensor(np.full(3, 0.5, dtype=np.float32))
        opt.step()
        assert p.dtype == np.float32 and np.all(p.data < 1)
        assert all(v.dtype == np.float32 for v in opt.state[p].values()
                   if isinstance(v, cr.Tensor))


def test_defaults_are_torch_defaults():
    p = [cr.tensor([1.0], requires_grad=True)]
    tp = [torch.zeros(1, requires_grad=True)]
    for ours, theirs in ((optim.Adagrad, torch.optim.Adagrad),
                         (optim.Adadelta, torch.optim.Adadelta),
                         (optim.Adamax, torch.optim.Adamax), (optim.NAdam, torch.optim.NAdam),
                         (optim.RAdam, torch.optim.RAdam)):
        defaults = ours(p).defaults
        tdefaults = theirs(tp).defaults
        assert defaults == {k: tdefaults[k] for k in defaults}, ours.__name__


def test_adagrad_state_exists_before_the_first_step():
    params, _ = _leaves()
    opt = optim.Adagrad(params, initial_accumulator_value=0.25)
    assert [opt.state[p]["step"] for p in params] == [0] * 4
    np.testing.assert_array_equal(opt.state[params[1]]["sum"].data, [0.25, 0.25])
    extra = cr.tensor([1.0, 2.0], requires_grad=True)
    opt.add_param_group({"params": [extra]})
    extra.grad = cr.tensor([2.0, -1.0])
    opt.step()
    np.testing.assert_allclose(opt.state[extra]["sum"].data, [4.25, 1.25])


@pytest.mark.parametrize("make, error, message", [
    (lambda p: optim.Adagrad(p, lr=-0.1), ValueError, r"lr=-0.1: must be >= 0"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), ValueError, r"lr_decay=-1"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), ValueError,
     r"initial_accumulator_value=-1"),
    (lambda p: optim.Adagrad(p, eps=-1.0), ValueError, r"eps=-1.0"),
    (lambda p: optim.Adagrad(p, weight_decay=-1.0), ValueError, r"weight_decay=-1.0"),
    (lambda p: optim.Adadelta(p, rho=1.5), ValueError, r"rho=1.5: must lie in \[0, 1\]"),
    (lambda p: optim.Adadelta(p, rho=-0.1), ValueError, r"rho=-0.1"),
    (lambda p: optim.Adadelta(p, rho="a"), TypeError, r"rho='a': expected a real number"),
    (lambda p: optim.Adadelta(p, lr=float("nan")), ValueError, r"lr=nan"),
    (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), ValueError, r"betas\[0\] must lie in \[0, 1\)"),
    (lambda p: optim.Adamax(p, eps=-1e-8), ValueError, r"eps=-1e-08"),
    (lambda p: optim.NAdam(p, momentum_decay=-1e-3), ValueError, r"momentum_decay=-0.001"),
    (lambda p: optim.NAdam(p, betas=(0.9,)), ValueError, r"expected a pair"),
    (lambda p: optim.RAdam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must lie in \[0, 1\)"),
    (lambda p: optim.RAdam(p, weight_decay=-0.5), ValueError, r"weight_decay=-0.5"),
])
def test_invalid_hyperparameters_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make([cr.tensor([1.0], requires_grad=True)])


# ---------------------------------------------------------------------- LBFGS
_A = _rng.normal(size=(8, 3)) @ np.diag([1.0, 5.0, 0.2])  # ill-conditioned least squares
_B = _rng.normal(size=8)


def _rosenbrock(m, x, z):
    """Rosenbrock in x (2 entries) coupled with a 0-d parameter z."""
    return (m.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
            + (z - 1) ** 2 * (1 + x[0] ** 2))


def _least_squares(m, w, c):
    A, B = (cr.tensor(_A), cr.tensor(_B)) if m is cr else (torch.tensor(_A), torch.tensor(_B))
    return m.sum((A @ w + c - B) ** 2)


LBFGS_CASES = [
    # (name, loss, initial values, kwargs, steps)
    ("rosenbrock-wolfe", _rosenbrock, [np.array([-1.2, 1.0]), np.array(0.5)],
     dict(line_search_fn="strong_wolfe"), 4),
    ("rosenbrock-fixed", _rosenbrock, [np.array([-1.2, 1.0]), np.array(0.5)],
     dict(lr=0.5, max_iter=5, history_size=3), 3),
    ("rosenbrock-wolfe-short", _rosenbrock, [np.array([-1.2, 1.0]), np.array(0.5)],
     dict(line_search_fn="strong_wolfe", max_iter=4, history_size=2, max_eval=7), 4),
    ("lsq-fixed", _least_squares, [np.zeros(3), np.array(0.3)], dict(max_iter=3), 4),
    ("lsq-wolfe", _least_squares, [np.zeros(3), np.array(0.3)],
     dict(line_search_fn="strong_wolfe", max_iter=2, history_size=2), 4),
    ("lsq-default", _least_squares, [np.zeros(3), np.array(0.3)], {}, 2),
]


def _lbfgs_pair(loss, init, kwargs):
    ours = [cr.tensor(v.copy(), dtype="float64", requires_grad=True) for v in init]
    theirs = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in init]
    opt, topt = optim.LBFGS(ours, **kwargs), torch.optim.LBFGS(theirs, **kwargs)

    def closure():
        opt.zero_grad()
        value = loss(cr, *ours)
        value.backward()
        return value

    def tclosure():
        topt.zero_grad()
        value = loss(torch, *theirs)
        value.backward()
        return value

    return ours, theirs, opt, topt, closure, tclosure


@pytest.mark.parametrize("name, loss, init, kwargs, steps", LBFGS_CASES,
                         ids=[c[0] for c in LBFGS_CASES])
def test_lbfgs_matches_torch(name, loss, init, kwargs, steps):
    ours, theirs, opt, topt, closure, tclosure = _lbfgs_pair(loss, init, kwargs)
    for k in range(steps):
        value, tvalue = opt.step(closure), topt.step(tclosure)
        assert value.item() == pytest.approx(tvalue.item(), rel=1e-10, abs=1e-12), k
        for p, tp in zip(ours, theirs):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-10)
        state, tstate = opt.state[ours[0]], topt.state[theirs[0]]
        assert state["n_iter"] == tstate["n_iter"] and state["func_evals"] == tstate["func_evals"]
        assert len(state["old_dirs"]) == len(tstate["old_dirs"])
        assert float(state["t"]) == pytest.approx(float(tstate["t"]), rel=1e-8)
    assert loss(cr, *ours).item() < loss(cr, *[cr.tensor(v) for v in init]).item()


def test_lbfgs_converges_on_least_squares():
    ours, _, opt, _, closure, _ = _lbfgs_pair(_least_squares, [np.zeros(3), np.array(0.0)],
                                               dict(line_search_fn="strong_wolfe",
                                                    tolerance_grad=1e-12,
                                                    tolerance_change=1e-14))
    opt.step(closure)
    design = np.column_stack([_A, np.ones(8)])
    solution = np.linalg.lstsq(design, _B, rcond=None)[0]
    np.testing.assert_allclose(np.append(ours[0].data, ours[1].data), solution, atol=1e-8)


def test_lbfgs_state_dict_round_trip():
    init = [np.array([-1.2, 1.0]), np.array(0.5)]
    kwargs = dict(max_iter=3, history_size=4)
    straight, _, opt, _, closure, _ = _lbfgs_pair(_rosenbrock, init, kwargs)
    for _ in range(2):
        opt.step(closure)
    saved = opt.state_dict()
    resumed, _, fresh, _, fresh_closure, _ = _lbfgs_pair(_rosenbrock, init, kwargs)
    for p, q in zip(resumed, straight):
        p.data[...] = q.data
    fresh.load_state_dict(saved)
    for _ in range(2):
        opt.step(closure)
        fresh.step(fresh_closure)
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.data, q.data)


def test_lbfgs_stops_at_a_minimum_without_moving():
    w = cr.tensor([0.0, 0.0], dtype="float64", requires_grad=True)
    opt = optim.LBFGS([w])

    def closure():
        opt.zero_grad()
        value = cr.sum(w * w)
        value.backward()
        return value

    assert opt.step(closure).item() == 0.0
    np.testing.assert_array_equal(w.data, [0.0, 0.0])
    assert opt.state[w]["func_evals"] == 1 and opt.state[w]["n_iter"] == 0


@pytest.mark.parametrize("make, error, message", [
    (lambda p: optim.LBFGS(p, lr=-1), ValueError, r"lr=-1"),
    (lambda p: optim.LBFGS(p, max_iter=0), ValueError, r"max_iter=0: must be >= 1"),
    (lambda p: optim.LBFGS(p, max_iter=2.5), TypeError, r"max_iter=2.5: expected an integer"),
    (lambda p: optim.LBFGS(p, max_eval=0), ValueError, r"max_eval=0"),
    (lambda p: optim.LBFGS(p, history_size=0), ValueError, r"history_size=0"),
    (lambda p: optim.LBFGS(p, tolerance_grad=-1.0), ValueError, r"tolerance_grad=-1.0"),
    (lambda p: optim.LBFGS(p, tolerance_change=-1.0), ValueError, r"tolerance_change=-1.0"),
    (lambda p: optim.LBFGS(p, line_search_fn="armijo"), ValueError,
     r"line_search_fn='armijo': choose None or 'strong_wolfe'"),
    (lambda p: optim.LBFGS([{"params": p}, {"params": [cr.tensor([2.0], requires_grad=True)]}]),
     ValueError, r"doesn't support parameter groups"),
    (lambda p: optim.LBFGS(p).step(), TypeError, r"closure: LBFGS.step needs a closure"),
])
def test_lbfgs_invalid_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make([cr.tensor([1.0], requires_grad=True)])


def test_lbfgs_defaults_are_torch_defaults():
    defaults = optim.LBFGS([cr.tensor([1.0], requires_grad=True)]).defaults
    assert defaults == torch.optim.LBFGS([torch.zeros(1, requires_grad=True)]).defaults


# ---------------------------------------------------------------------- backends
BACKEND_OPTIMIZERS = {
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1, weight_decay=0.1, initial_accumulator_value=0.1),
    "adadelta": lambda p: optim.Adadelta(p, weight_decay=0.1),
    "adamax": lambda p: optim.Adamax(p, lr=0.05, weight_decay=0.1),
    "nadam": lambda p: optim.NAdam(p, lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    "radam": lambda p: optim.RAdam(p, lr=0.05, betas=(0.9, 0.5)),
    "lbfgs": lambda p: optim.LBFGS(p, max_iter=4),
    "lbfgs-wolfe": lambda p: optim.LBFGS(p, max_iter=4, line_search_fn="strong_wolfe"),
}


def _backend_run(make, device):
    w = cr.tensor(INIT[1].copy(), dtype="float64", device=device, requires_grad=True)
    c = cr.tensor(INIT[2].copy(), dtype="float64", device=device, requires_grad=True)
    x, y = cr.tensor(X[:, :2], device=device), cr.tensor(Y[:, 0], device=device)
    opt = make([w, c])

    def closure():
        opt.zero_grad()
        value = cr.sum((x @ w + c - y) ** 2) + cr.sum(w * w * w * w)
        value.backward()
        return value

    for _ in range(3):
        if isinstance(opt, optim.LBFGS):
            opt.step(closure)
        else:
            closure()
            opt.step()
    assert w.device.type == device and c.device.type == device
    return [np.asarray(p.detach().to("cpu").data) for p in (w, c)]


@pytest.mark.parametrize("name", list(BACKEND_OPTIMIZERS))
def test_every_backend_takes_numpy_steps(backend, name):
    """The same steps on every backend (state made there too) give NumPy's parameters."""
    make = BACKEND_OPTIMIZERS[name]
    for got, want in zip(_backend_run(make, backend), _backend_run(make, "cpu")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

"""chainrule.optim against torch.optim: the same float64 gradients in, the same parameters out."""

import copy
import json

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import optim
from chainrule.engine.errors import ShapeError

STEPS = 20
_rng = np.random.default_rng(2024)
X = _rng.normal(size=(6, 3))
Y = _rng.normal(size=(6, 2))
INIT = [_rng.normal(size=(3, 2)), _rng.normal(size=2), np.array(0.7), _rng.normal(size=4)]
# parameter 2 (a 0-d scale) gets a gradient only on even steps; parameter 3 never gets one


def _loss(W, b, s):
    """A fixed smooth loss: squared error of a tanh layer plus a coupled penalty s^2 ||W||^2."""
    return cr.sum((cr.tanh(cr.tensor(X) @ W + b) - cr.tensor(Y)) ** 2) + s * s * cr.sum(W * W)


def _gradients(params, k):
    """Gradients at the chainrule parameters, by chainrule (None where a parameter has none)."""
    W, b, s, _ = params
    for p in params:
        p.grad = None
    _loss(W, b, s).backward()
    grads = [W.grad.data.copy(), b.grad.data.copy(), s.grad.data.copy(), None]
    if k % 2:
        grads[2] = None
    return grads


def _set_grads(params, torch_params, grads):
    for p, tp, g in zip(params, torch_params, grads):
        p.grad = None if g is None else cr.tensor(g)
        tp.grad = None if g is None else torch.tensor(g)


def _leaves():
    ours = [cr.tensor(v.copy(), dtype="float64", requires_grad=True) for v in INIT]
    theirs = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in INIT]
    return ours, theirs


def _single(params, extra):
    return params


def _two_groups(params, extra):
    """Different lr (and other options) per group; the second group falls back to defaults."""
    return [{"params": [params[0]], "lr": 0.003, **extra}, {"params": params[1:]}]


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


CONFIGS = [
    # (name, ours, torch's, kwargs, grouping, per-group extras)
    ("sgd", optim.SGD, torch.optim.SGD, dict(lr=0.05), _single, {}),
    ("sgd-momentum", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9), _single, {}),
    ("sgd-dampening", optim.SGD, torch.optim.SGD,
     dict(lr=0.05, momentum=0.9, dampening=0.3), _single, {}),
    ("sgd-nesterov", optim.SGD, torch.optim.SGD,
     dict(lr=0.05, momentum=0.9, nesterov=True), _single, {}),
    ("sgd-weight-decay", optim.SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.1), _single, {}),
    ("sgd-maximize", optim.SGD, torch.optim.SGD, dict(lr=0.01, maximize=True), _single, {}),
    ("sgd-all", optim.SGD, torch.optim.SGD,
     dict(lr=0.002, momentum=0.8, weight_decay=0.05, nesterov=True, maximize=True), _single, {}),
    ("sgd-groups", optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.5), _two_groups,
     dict(momentum=0.9, dampening=0.1, weight_decay=0.2)),
    ("adam", optim.Adam, torch.optim.Adam, dict(lr=0.01), _single, {}),
    ("adam-amsgrad", optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True), _single, {}),
    ("adam-weight-decay", optim.Adam, torch.optim.Adam,
     dict(lr=0.01, weight_decay=0.1), _single, {}),
    ("adam-decoupled", optim.Adam, torch.optim.Adam,
     dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), _single, {}),
    ("adam-maximize", optim.Adam, torch.optim.Adam, dict(lr=0.01, maximize=True), _single, {}),
    ("adam-betas-eps", optim.Adam, torch.optim.Adam,
     dict(lr=0.02, betas=(0.8, 0.9), eps=1e-3, amsgrad=True, weight_decay=0.01), _single, {}),
    ("adam-groups", optim.Adam, torch.optim.Adam, dict(lr=0.01), _two_groups,
     dict(betas=(0.5, 0.6), amsgrad=True, maximize=True)),
    ("adamw", optim.AdamW, torch.optim.AdamW, dict(lr=0.01), _single, {}),
    ("adamw-amsgrad", optim.AdamW, torch.optim.AdamW,
     dict(lr=0.01, weight_decay=0.2, amsgrad=True), _single, {}),
    ("adamw-maximize", optim.AdamW, torch.optim.AdamW, dict(lr=0.01, maximize=True), _single, {}),
    ("adamw-groups", optim.AdamW, torch.optim.AdamW, dict(lr=0.01), _two_groups,
     dict(weight_decay=0.5)),
    ("rmsprop", optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01), _single, {}),
    ("rmsprop-centered", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=0.01, centered=True), _single, {}),
    ("rmsprop-momentum", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=0.01, momentum=0.9), _single, {}),
    ("rmsprop-centered-momentum", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1), _single, {}),
    ("rmsprop-alpha-eps", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=0.01, alpha=0.9, eps=1e-3), _single, {}),
    ("rmsprop-maximize", optim.RMSprop, torch.optim.RMSprop,
     dict(lr=0.01, maximize=True), _single, {}),
    ("rmsprop-groups", optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01), _two_groups,
     dict(centered=True, momentum=0.9, alpha=0.95)),
]
IDS = [c[0] for c in CONFIGS]


def _run(ours_cls, torch_cls, kwargs, grouping, extra, steps=STEPS):
    params, torch_params = _leaves()
    opt = ours_cls(grouping(params, extra), **kwargs)
    topt = torch_cls(grouping(torch_params, extra), **kwargs)
    for k in range(steps):
        _set_grads(params, torch_params, _gradients(params, k))
        opt.step()
        topt.step()
    return params, torch_params, opt, topt


@pytest.mark.parametrize("name, ours_cls, torch_cls, kwargs, grouping, extra", CONFIGS, ids=IDS)
def test_matches_torch_for_20_steps(name, ours_cls, torch_cls, kwargs, grouping, extra):
    params, torch_params, opt, topt = _run(ours_cls, torch_cls, kwargs, grouping, extra)
    for p, tp in zip(params, torch_params):
        assert np.isfinite(p.data).all()
        _close(p.data, tp.detach().numpy())
        assert p.is_leaf and p.grad_fn is None and p.dtype == np.float64
    np.testing.assert_array_equal(params[3].data, INIT[3])  # never had a gradient
    # the state, in torch's state_dict format
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert ours["state"].keys() == theirs["state"].keys()  # no state for the gradient-less one
    for index, entries in theirs["state"].items():
        assert ours["state"][index].keys() == entries.keys()
        for key, value in entries.items():
            if key == "step":
                assert ours["state"][index][key] == int(value.item())
            else:
                _close(ours["state"][index][key].data, value.numpy())
    assert len(ours["param_groups"]) == len(theirs["param_groups"])
    for group, tgroup in zip(ours["param_groups"], theirs["param_groups"]):
        for key, value in group.items():
            assert tgroup[key] == value, key


def test_updates_are_in_place_and_outside_the_graph():
    params, torch_params = _leaves()
    arrays = [p.data for p in params]
    opt = optim.Adam(params, lr=0.1)
    _set_grads(params, torch_params, _gradients(params, 0))
    opt.step()
    assert all(p.data is a for p, a in zip(params, arrays))
    assert all(p.is_leaf and p.requires_grad for p in params)
    assert all(s["exp_avg"].grad_fn is None and not s["exp_avg"].requires_grad
               for s in opt.state.values())


def test_state_is_keyed_by_the_parameter_tensor():
    params, _ = _leaves()
    opt = optim.SGD(params[:2], lr=0.1, momentum=0.9)
    for p in params[:2]:
        p.grad = cr.ones_like(p)
    opt.step()
    assert set(map(id, opt.state)) == {id(params[0]), id(params[1])}
    np.testing.assert_array_equal(opt.state[params[1]]["momentum_buffer"].data, np.ones(2))


def test_float32_parameters_keep_their_dtype():
    p = cr.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = optim.RMSprop([p], lr=0.1, momentum=0.9, centered=True)
    p.grad = cr.tensor(np.full(3, 0.5, dtype=np.float32))
    opt.step()
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state[p].items() if k != "step")


def test_closure_is_evaluated_with_grad_mode_on_and_returned():
    w = cr.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = cr.sum(w * w)
        loss.backward()
        return loss

    with cr.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_array_equal(w.data, [0.5, -1.0])  # w - 0.25 * 2w


def test_course_l2_penalty_is_weight_decay_two_lambda():
    """theta <- theta - eta (grad + 2 lambda theta) for the penalty lambda ||theta||^2."""
    lam, eta = 0.03, 0.1
    a = cr.tensor(INIT[0].copy(), requires_grad=True)
    b = cr.tensor(INIT[0].copy(), requires_grad=True)
    decayed, penalised = optim.SGD([a], lr=eta, weight_decay=2 * lam), optim.SGD([b], lr=eta)
    for _ in range(STEPS):
        for opt, p, penalty in ((decayed, a, 0.0), (penalised, b, lam)):
            opt.zero_grad()
            (cr.sum(cr.tanh(cr.tensor(X) @ p)) + penalty * cr.sum(p * p)).backward()
            opt.step()
    _close(a.data, b.data)


def test_zero_grad():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    cr.sum(p * p).backward()
    array = p.grad.data
    opt.zero_grad(set_to_none=False)
    assert p.grad.data is array and not array.any()
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad(set_to_none=False)  # nothing to zero
    assert p.grad is None


def test_zero_grad_detaches_a_gradient_with_history():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    cr.sum(p ** 3).backward(create_graph=True)
    assert p.grad.grad_fn is not None
    optim.SGD([p]).zero_grad(set_to_none=False)
    assert p.grad.grad_fn is None and not p.grad.requires_grad and not p.grad.data.any()


def test_add_param_group_fills_defaults():
    params, _ = _leaves()
    opt = optim.Adam([params[0]], lr=0.5, betas=(0.8, 0.9))
    opt.add_param_group({"params": params[1], "lr": 0.1})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is params[1]
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.8, 0.9)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[2], params[0]]})
    with pytest.raises(ValueError, match="'params' entry"):
        opt.add_param_group({"lr": 0.1})


@pytest.mark.parametrize("make, error, message", [
    (lambda p: optim.SGD(p, lr=-0.1), ValueError, r"lr=-0.1: must be >= 0"),
    (lambda p: optim.SGD(p, momentum=-0.5), ValueError, r"momentum=-0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1), ValueError, r"weight_decay=-1"),
    (lambda p: optim.SGD(p, nesterov=True), ValueError, r"nesterov=True requires momentum > 0"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"dampening=0.1"),
    (lambda p: optim.SGD(p, lr="0.1"), TypeError, r"lr='0.1': expected a real number"),
    (lambda p: optim.SGD(p, lr=float("nan")), ValueError, r"lr=nan"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), ValueError, r"betas\[0\] must lie in \[0, 1\)"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError, r"betas\[1\] must lie in \[0, 1\)"),
    (lambda p: optim.Adam(p, betas=0.9), ValueError, r"betas=0.9: expected a pair"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, r"eps=-1e-08"),
    (lambda p: optim.AdamW(p, lr=-1), ValueError, r"lr=-1"),
    (lambda p: optim.RMSprop(p, alpha=-0.9), ValueError, r"alpha=-0.9"),
    (lambda p: optim.RMSprop(p, momentum=-0.9), ValueError, r"momentum=-0.9"),
    (lambda p: optim.SGD([{"params": p, "lr": -2.0}], lr=0.1), ValueError, r"lr=-2.0"),
])
def test_invalid_hyperparameters_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make([cr.tensor([1.0], requires_grad=True)])


def test_invalid_params():
    p = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(TypeError, match=r"params\[1\] is a ndarray"):
        optim.SGD([p, np.ones(2)])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2])
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p])


def test_a_gradient_of_the_wrong_shape_is_a_shape_error():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    p.grad = cr.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ShapeError):
        optim.SGD([p], lr=0.1).step()


# ---------------------------------------------------------------------- state_dict
def _step(params, opt, k):
    for p, g in zip(params, _gradients(params, k)):
        p.grad = None if g is None else cr.tensor(g)
    opt.step()


ROUND_TRIP = [c for c in CONFIGS if c[0] in (
    "sgd-all", "sgd-groups", "adam-betas-eps", "adam-groups", "adamw-amsgrad",
    "rmsprop-centered-momentum", "rmsprop-groups")]


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
    # a fresh optimizer with other hyperparameters: the loaded ones must win
    fresh = ours_cls(grouping(resumed, extra), **{**kwargs, "lr": 123.0})
    fresh.load_state_dict(saved)
    for k in range(STEPS // 2, STEPS):
        _step(straight, opt, k)
        _step(resumed, fresh, k)
    for p, q in zip(resumed, straight):
        np.testing.assert_array_equal(p.data, q.data)
    # the saved dict is a snapshot: neither optimizer's later steps changed it
    for index, entries in frozen["state"].items():
        for key, value in entries.items():
            now = saved["state"][index][key]
            if key == "step":
                assert now == value
            else:
                np.testing.assert_array_equal(now.data, value.data)


def test_state_dict_format_is_json_friendly_and_loads_back():
    params, torch_params = _leaves()
    opt = optim.Adam(params, lr=0.01, amsgrad=True)
    _set_grads(params, torch_params, _gradients(params, 0))
    opt.step()
    saved = opt.state_dict()
    groups = json.loads(json.dumps(saved["param_groups"]))  # betas become a list
    state = {index: {k: (v.data if isinstance(v, cr.Tensor) else v) for k, v in entries.items()}
             for index, entries in saved["state"].items()}  # ndarrays are accepted too
    other, _ = _leaves()
    fresh = optim.Adam(other, lr=0.5)
    fresh.load_state_dict({"state": state, "param_groups": groups})
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999) and fresh.param_groups[0]["lr"] == 0.01
    assert fresh.param_groups[0]["params"][0] is other[0]
    assert fresh.state[other[0]]["step"] == 1
    assert fresh.state[other[0]]["exp_avg"].data is not saved["state"][0]["exp_avg"].data


def test_loaded_state_is_cast_to_the_parameter_dtype():
    p = cr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": cr.tensor(np.ones(2))}},
                         "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]})
    assert opt.state[p]["momentum_buffer"].dtype == np.float32
    assert opt.param_groups[0]["nesterov"] is False  # missing keys come from the defaults


def _saved_two_groups():
    params, _ = _leaves()
    opt = optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1, momentum=0.9)
    for p in params[:2]:
        p.grad = cr.ones_like(p)
    opt.step()
    return opt.state_dict()


@pytest.mark.parametrize("edit, error, message", [
    (lambda sd: sd["param_groups"].pop(), ValueError,
     "different number of parameter groups: 1 saved, 2"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), ValueError,
     "parameter group 0 holds 1 parameters, this optimizer's group 0 holds 2"),
    (lambda sd: sd["state"].__setitem__(7, {}), ValueError, "parameter index 7"),
    (lambda sd: sd["state"][1].__setitem__("momentum_buffer", cr.ones(3)), ShapeError,
     r"'momentum_buffer' of parameter 1 has shape \(3,\), the parameter has shape \(2,\)"),
    (lambda sd: sd.pop("state"), ValueError, "'state' and 'param_groups'"),
    (lambda sd: sd["param_groups"][1].__setitem__("lr", -1.0), ValueError, "lr=-1.0"),
])
def test_load_state_dict_errors_leave_the_optimizer_unchanged(edit, error, message):
    saved = _saved_two_groups()
    edit(saved)
    params, _ = _leaves()
    opt = optim.SGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.5, momentum=0.9)
    with pytest.raises(error, match=message):
        opt.load_state_dict(saved)
    assert not opt.state and opt.param_groups[0]["lr"] == 0.5


def test_repr_lists_the_groups():
    text = repr(optim.SGD([cr.tensor([1.0], requires_grad=True)], lr=0.1))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.1" in text

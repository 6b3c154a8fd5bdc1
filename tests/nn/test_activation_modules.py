"""Issue 12's activation modules against torch.nn: same input, same outputs and input gradients."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

# (name, chainrule module, torch module, input shape)
# fmt: off
MODULES = [
    ("GELU",             lambda: nn.GELU(), lambda: tnn.GELU(), (3, 4)),
    ("GELU_tanh",        lambda: nn.GELU("tanh"), lambda: tnn.GELU("tanh"), (3, 4)),
    ("SiLU",             lambda: nn.SiLU(), lambda: tnn.SiLU(), (3, 4)),
    ("ELU",              lambda: nn.ELU(), lambda: tnn.ELU(), (3, 4)),
    ("ELU_alpha",        lambda: nn.ELU(alpha=0.5), lambda: tnn.ELU(alpha=0.5), (2, 3, 2)),
    ("SELU",             lambda: nn.SELU(), lambda: tnn.SELU(), (3, 4)),
    ("CELU",             lambda: nn.CELU(), lambda: tnn.CELU(), (3, 4)),
    ("CELU_alpha",       lambda: nn.CELU(alpha=2.0), lambda: tnn.CELU(alpha=2.0), (3, 4)),
    ("Mish",             lambda: nn.Mish(), lambda: tnn.Mish(), (3, 4)),
    ("Hardswish",        lambda: nn.Hardswish(), lambda: tnn.Hardswish(), (3, 4)),
    ("Hardsigmoid",      lambda: nn.Hardsigmoid(), lambda: tnn.Hardsigmoid(), (3, 4)),
    ("Hardtanh",         lambda: nn.Hardtanh(), lambda: tnn.Hardtanh(), (3, 4)),
    ("Hardtanh_range",   lambda: nn.Hardtanh(-0.5, 2.0), lambda: tnn.Hardtanh(-0.5, 2.0), (3, 4)),
    ("ReLU6",            lambda: nn.ReLU6(), lambda: tnn.ReLU6(), (3, 4)),
    ("Softsign",         lambda: nn.Softsign(), lambda: tnn.Softsign(), (3, 4)),
    ("Softmin",          lambda: nn.Softmin(dim=1), lambda: tnn.Softmin(dim=1), (3, 4)),
    ("Softmin_dim0",     lambda: nn.Softmin(dim=0), lambda: tnn.Softmin(dim=0), (2, 3, 2)),
    ("Softplus",         lambda: nn.Softplus(), lambda: tnn.Softplus(), (3, 4)),
    ("Softplus_beta",    lambda: nn.Softplus(beta=2.0, threshold=1.0),
                         lambda: tnn.Softplus(beta=2.0, threshold=1.0), (3, 4)),
    ("GLU",              lambda: nn.GLU(), lambda: tnn.GLU(), (3, 4)),
    ("GLU_dim1",         lambda: nn.GLU(dim=1), lambda: tnn.GLU(dim=1), (2, 6, 3)),
]
# fmt: on


def _input(shape: tuple, dtype) -> np.ndarray:
    """Normal values scaled to reach every piece (|x| up to ~9), plus the kinks 0, +-1, +-3, 6."""
    x = np.random.default_rng(1).standard_normal(shape) * 3
    flat = x.reshape(-1)
    kinks = np.array([0.0, -3.0, 3.0, 6.0, -1.0, 1.0, 2.0, -0.5])
    flat[: min(len(kinks), flat.size)] = kinks[: flat.size]
    return x.astype(dtype)


@pytest.mark.parametrize("name, make_ours, make_theirs, shape", MODULES,
                         ids=[row[0] for row in MODULES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_module_matches_torch(name, make_ours, make_theirs, shape, dtype):
    ours, theirs = make_ours(), make_theirs()
    x = _input(shape, dtype)
    x_ours, x_theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(x_ours), theirs(x_theirs)
    assert out.dtype == dtype and out.shape == tuple(expected.shape)
    tight = dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(),
                               rtol=1e-12 if tight else 1e-5, atol=1e-14 if tight else 1e-6)
    projection = np.random.default_rng(2).standard_normal(expected.shape).astype(dtype)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    # 1e-7: PyTorch's float64 hardsigmoid uses a float32 1/6 in its gradient
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(),
                               rtol=1e-7 if tight else 1e-5, atol=1e-12 if tight else 1e-6)


def test_modules_have_no_parameters_and_show_their_arguments():
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.ELU(0.5)) == "ELU(alpha=0.5)"
    assert repr(nn.CELU(2.0)) == "CELU(alpha=2.0)"
    assert repr(nn.Hardtanh(-2.0, 2.0)) == "Hardtanh(min_val=-2.0, max_val=2.0)"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Softmin(0)) == "Softmin(dim=0)"
    assert repr(nn.GLU()) == "GLU(dim=-1)"
    assert repr(nn.SiLU()) == "SiLU()"
    for module in (nn.GELU(), nn.SiLU(), nn.ELU(), nn.SELU(), nn.CELU(), nn.Mish(),
                   nn.Hardswish(), nn.Hardsigmoid(), nn.Hardtanh(), nn.ReLU6(), nn.Softsign(),
                   nn.Softmin(), nn.Softplus(), nn.GLU()):
        assert list(module.parameters()) == [], type(module).__name__


def test_new_modules_are_exported_from_chainrule_nn():
    for name in ("GELU", "SiLU", "ELU", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid",
                 "Hardtanh", "ReLU6", "Softsign", "Softmin", "Softplus", "GLU"):
        assert name in nn.__all__ and isinstance(getattr(nn, name)(), nn.Module), name


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.GELU("erf"), ValueError, "approximate"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "min_val"),
    (lambda: nn.CELU(0.0), ValueError, "alpha"),
])
def test_bad_module_arguments_raise_at_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_glu_module_refuses_an_odd_axis():
    with pytest.raises(cr.ShapeError, match="even"):
        nn.GLU()(cr.ones((2, 3)))


def test_modules_in_a_sequential_train_like_torch():
    """A small MLP with the new activations: same loss gradient for the first layer's weight."""
    cr.manual_seed(0)
    ours = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 6), nn.Hardswish(),
                         nn.Linear(6, 4), nn.GLU(), nn.Mish())
    theirs = tnn.Sequential(tnn.Linear(4, 6), tnn.GELU(), tnn.Linear(6, 6), tnn.Hardswish(),
                            tnn.Linear(6, 4), tnn.GLU(), tnn.Mish()).double()
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    theirs.load_state_dict({k: torch.tensor(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((5, 4))
    loss = cr.sum(ours(cr.tensor(x)) ** 2)
    loss.backward()
    expected = (theirs(torch.tensor(x)) ** 2).sum()
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-12)
    their_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), their_params[pname].grad.numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=pname)

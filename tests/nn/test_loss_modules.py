"""The loss modules of chainrule.nn against torch.nn: the same constructor arguments give the
same outputs and input gradients."""

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
X, Y = _RNG.standard_normal((4, 3)), _RNG.standard_normal((4, 3))
LOG_P = np.log(_RNG.dirichlet(np.ones(3), 4))
Q = _RNG.dirichlet(np.ones(3), 4)
SIGNS = np.array([1.0, -1.0, 1.0, -1.0])
LOGITS = _RNG.standard_normal((4, 3))
CLASSES = np.array([2, -100, 0, 1])
WEIGHT = np.array([0.5, 2.0, 1.5])


def _weight_options(options: dict, to) -> dict:
    return {k: to(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


# (module name, constructor options, inputs, indices of the inputs to differentiate)
CASES = [
    ("L1Loss", {}, (X, Y), (0, 1)),
    ("L1Loss", {"reduction": "sum"}, (X, Y), (0, 1)),
    ("SmoothL1Loss", {"beta": 0.5}, (X, Y), (0, 1)),
    ("SmoothL1Loss", {"reduction": "none", "beta": 0.0}, (X, Y), (0, 1)),
    ("HuberLoss", {"delta": 0.4}, (X, Y), (0, 1)),
    ("HuberLoss", {"reduction": "none"}, (X, Y), (0, 1)),
    ("KLDivLoss", {"reduction": "batchmean"}, (LOG_P, Q), (0, 1)),
    ("KLDivLoss", {"log_target": True}, (LOG_P, np.log(Q)), (0, 1)),
    ("MarginRankingLoss", {"margin": 0.3}, (X[:, 0], Y[:, 0], SIGNS), (0, 1)),
    ("MarginRankingLoss", {"reduction": "none"}, (X[:, 0], Y[:, 0], SIGNS), (0, 1)),
    ("CosineEmbeddingLoss", {"margin": 0.2}, (X, Y, SIGNS), (0, 1)),
    ("CosineEmbeddingLoss", {"reduction": "sum"}, (X[0], Y[0], np.array(-1.0)), (0, 1)),
    ("TripletMarginLoss", {}, (X, Y, -X), (0, 1, 2)),
    ("TripletMarginLoss", {"margin": 2.0, "p": 1.0, "swap": True, "reduction": "none"},
     (X, Y, Y[::-1].copy()), (0, 1, 2)),
    ("PoissonNLLLoss", {}, (X, np.abs(Y) * 3), (0, 1)),
    ("PoissonNLLLoss", {"log_input": False, "full": True, "eps": 1e-6},
     (np.abs(X) + 0.1, np.abs(Y) * 3 + 1.1), (0, 1)),
    ("CrossEntropyLoss", {}, (LOGITS, CLASSES), (0,)),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.2}, (LOGITS, CLASSES), (0,)),
    ("CrossEntropyLoss", {"weight": WEIGHT, "ignore_index": 1, "reduction": "sum"},
     (LOGITS, np.array([2, 1, 0, 1])), (0,)),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.1}, (LOGITS, Q), (0, 1)),
    ("CrossEntropyLoss", {"label_smoothing": 0.3}, (LOGITS[0], np.array(2)), (0,)),
    ("NLLLoss", {}, (LOG_P, CLASSES), (0,)),
    ("NLLLoss", {"weight": WEIGHT, "reduction": "none"}, (LOG_P, CLASSES), (0,)),
    ("NLLLoss", {"weight": WEIGHT, "ignore_index": 0}, (LOG_P, np.array([2, 1, 0, 0])), (0,)),
    ("NLLLoss", {"weight": WEIGHT}, (LOG_P[0], np.array(1)), (0,)),
]


@pytest.mark.parametrize("name, options, inputs, grad", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_module_matches_torch(name, options, inputs, grad):
    ours = getattr(nn, name)(**_weight_options(options, cr.tensor))
    theirs = getattr(torch.nn, name)(**_weight_options(options, torch.tensor))
    mine = [cr.tensor(x, requires_grad=i in grad) for i, x in enumerate(inputs)]
    reference = [torch.tensor(x, requires_grad=i in grad) for i, x in enumerate(inputs)]
    out = ours(*mine)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")  # KLDivLoss
        expected = theirs(*reference)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    projection = np.random.default_rng(1).standard_normal(out.shape)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    for i in grad:
        np.testing.assert_allclose(mine[i].grad.numpy(), reference[i].grad.numpy(),
                                   rtol=1e-9, atol=1e-12)


def test_every_torch_loss_of_the_list_is_exported_with_torch_defaults():
    import inspect

    for name in ("L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss", "MarginRankingLoss",
                 "CosineEmbeddingLoss", "TripletMarginLoss", "PoissonNLLLoss",
                 "CrossEntropyLoss", "NLLLoss"):
        ours = inspect.signature(getattr(nn, name)).parameters
        theirs = inspect.signature(getattr(torch.nn, name)).parameters
        for argument, parameter in ours.items():  # torch's legacy size_average/reduce aside
            assert argument in theirs, f"{name}: {argument} is not torch's"
            assert parameter.default == theirs[argument].default, (name, argument)


def test_loss_modules_have_no_parameters_and_keep_their_options():
    loss = nn.TripletMarginLoss(margin=0.5, p=3, swap=True)
    assert list(loss.parameters()) == []
    assert (loss.margin, loss.p, loss.swap, loss.reduction) == (0.5, 3, True, "mean")
    with pytest.raises(ValueError, match="reduction='avg'"):
        nn.L1Loss(reduction="avg")(X, Y)
    with pytest.raises(ValueError, match="beta=-1"):
        nn.SmoothL1Loss(beta=-1)(X, Y)

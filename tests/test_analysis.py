"""Tests of chainrule.course.analysis: random ReLU layer, activation statistics, RBF features."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.course.analysis import (
    ActivationStatistics,
    ReluLayerStatistics,
    Statistic,
    activation_statistics,
    rbf_feature_dim,
    rbf_feature_map,
    rbf_kernel,
    relu_layer_statistics,
)

X_VEC = [1.0, -2.0, 0.5, 3.0]                 # ||x||^2 = 14.25
NORM_SQ = 14.25


# ====================================================================== relu_layer_statistics
@pytest.fixture(scope="module")
def relu_stats():
    return relu_layer_statistics(X_VEC, m=64, trials=2000, seed=0)


def test_relu_theory_values(relu_stats):
    assert isinstance(relu_stats, ReluLayerStatistics)
    frac, var, mean = relu_stats
    assert frac.theory == 0.5
    assert var.theory == pytest.approx(NORM_SQ, rel=1e-15)
    assert mean.theory == pytest.approx(math.sqrt(NORM_SQ) / math.sqrt(2 * math.pi), rel=1e-15)
    assert relu_stats.samples == 64 * 2000


def test_relu_theory_inside_ci_and_close(relu_stats):
    for s in relu_stats:
        assert isinstance(s, Statistic)
        assert s.ci_low < s.empirical < s.ci_high
        assert s.theory_in_ci, str(s)
        assert s.relative_error < 0.05, str(s)
    assert relu_stats.all_in_ci


def test_relu_ci_widths_match_formulas(relu_stats):
    N = relu_stats.samples
    z = 1.959963984540054
    frac, var, mean = relu_stats
    p = frac.empirical
    assert frac.ci_width == pytest.approx(2 * z * math.sqrt(p * (1 - p) / N), rel=1e-9)
    assert var.ci_width == pytest.approx(2 * z * math.sqrt(2 / (N - 1)) * var.empirical, rel=1e-9)
    assert mean.stderr > 0 and mean.ci_width == pytest.approx(2 * z * mean.stderr, rel=1e-12)


def test_relu_matches_direct_numpy_computation():
    """The same draws (same PCG64 stream, one chunk) recomputed with NumPy."""
    out = relu_layer_statistics(X_VEC, m=8, trials=50, seed=3)
    W = np.random.default_rng(3).standard_normal((50, 8, 4))
    z = W @ np.array(X_VEC)
    assert out.active_fraction.empirical == pytest.approx(np.mean(z > 0), abs=1e-15)
    assert out.preactivation_variance.empirical == pytest.approx(np.var(z, ddof=1), rel=1e-12)
    assert out.relu_mean.empirical == pytest.approx(np.maximum(z, 0).mean(), rel=1e-12)


def test_relu_chunking_does_not_change_result():
    """m * n large enough that the draws are made in several chunks: pooled moments still exact."""
    x = np.ones(2000)
    out = relu_layer_statistics(x, m=1000, trials=5, seed=1)      # chunk = 2 trials
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.standard_normal((t, 1000, 2000)) @ x for t in (2, 2, 1)]).ravel()
    assert out.preactivation_variance.empirical == pytest.approx(np.var(z, ddof=1), rel=1e-10)
    assert out.relu_mean.empirical == pytest.approx(np.maximum(z, 0).mean(), rel=1e-10)


def test_relu_ci_shrinks_with_more_trials():
    small = relu_layer_statistics(X_VEC, m=32, trials=250, seed=1)
    large = relu_layer_statistics(X_VEC, m=32, trials=4000, seed=1)  # 16x the samples: ~1/4 width
    for a, b in zip(small, large):
        assert b.ci_width < 0.35 * a.ci_width
        assert b.ci_width > 0.15 * a.ci_width


def test_relu_reproducible_and_seed_dependent():
    a = relu_layer_statistics(X_VEC, m=4, trials=100, seed=7)
    b = relu_layer_statistics(X_VEC, m=4, trials=100, seed=7)
    c = relu_layer_statistics(X_VEC, m=4, trials=100, seed=8)
    assert a.relu_mean == b.relu_mean
    assert a.relu_mean.empirical != c.relu_mean.empirical


def test_relu_table_prints(relu_stats):
    text = str(relu_stats)
    for word in ("fraction active", "Var (Wx)_i", "mean relu(Wx)_i", "95% CI", "theory in CI",
                 "yes"):
        assert word in text
    assert len(text.splitlines()) == 6
    assert "theory in CI: True" in str(relu_stats.relu_mean)


@pytest.mark.parametrize("kwargs", [dict(x=[[1.0]], m=2, trials=2),
                                    dict(x=[0.0, 0.0], m=2, trials=2),
                                    dict(x=[1.0], m=0, trials=2), dict(x=[1.0], m=1, trials=1),
                                    dict(x=[1.0], m=2, trials=2, confidence=1.5)])
def test_relu_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        relu_layer_statistics(**kwargs)


# ====================================================================== activation_statistics
def _mlp(activation, depth=8, width=64, he=False, seed=0):
    gen = cr.Generator(seed)
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        if he:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=gen)
            nn.init.zeros_(lin.bias)
        else:
            nn.init.uniform_(lin.weight, -1 / math.sqrt(width), 1 / math.sqrt(width), generator=gen)
            nn.init.uniform_(lin.bias, -1 / math.sqrt(width), 1 / math.sqrt(width), generator=gen)
        layers += [lin, activation()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def _input(seed=1, n=64, width=64):
    return cr.randn(n, width, generator=cr.Generator(seed), dtype="float64")


def _manual(model, x, loss_fn=None, target=None):
    """Run the Sequential layer by layer ourselves: outputs, retained gradients, NumPy stats."""
    h = cr.tensor(x.numpy(), requires_grad=True)
    outs = []
    for layer in model:
        h = layer(h)
        h.retain_grad()
        outs.append(h)
    loss = cr.sum(h) if loss_fn is None else loss_fn(h, target)
    loss.backward()
    stats = [(o.numpy().mean(), o.numpy().std(), (o.numpy() > 0).mean(),
              o.grad.numpy().mean(), o.grad.numpy().std(), (o.grad.numpy() > 0).mean(),
              (o.grad.numpy() != 0).mean()) for o in outs]
    for p in model.parameters():
        p.grad = None
    return stats


def _row_values(row):
    return (row.act_mean, row.act_std, row.act_frac_active, row.grad_mean, row.grad_std,
            row.grad_frac_positive, row.grad_frac_nonzero)


@pytest.mark.parametrize("activation,he", [(nn.Sigmoid, False), (nn.ReLU, True), (nn.Tanh, False)])
def test_activation_statistics_match_manual_computation(activation, he):
    model = _mlp(activation, depth=3, width=16, he=he)
    x = _input(n=10, width=16)
    result = activation_statistics(model, x)
    assert isinstance(result, ActivationStatistics)
    expected = _manual(model, x)
    assert [r.name for r in result] == [str(i) for i in range(len(model))]
    assert [r.module for r in result] == [type(m).__name__ for m in model]
    assert all(r.shape == (10, 16) for r in result.rows[:-1]) and result[-1].shape == (10, 1)
    for row, exp in zip(result, expected):
        np.testing.assert_allclose(_row_values(row), exp, rtol=1e-5, atol=1e-7)
    assert result[-1].grad_mean == 1.0 and result[-1].grad_std == 0.0      # default loss: sum
    assert result.loss_description == "sum of the outputs"


def test_activation_statistics_with_loss_and_target():
    model = _mlp(nn.ReLU, depth=2, width=8, he=True)
    x = _input(n=6, width=8)
    target = cr.randn(6, 1, generator=cr.Generator(5), dtype="float32")
    loss = nn.MSELoss()
    result = activation_statistics(model, x, loss_fn=loss, target=target)
    expected = _manual(model, x, loss_fn=loss, target=target)
    for row, exp in zip(result, expected):
        np.testing.assert_allclose(_row_values(row), exp, rtol=1e-5, atol=1e-7)
    assert "MSELoss(out, target)" in result.loss_description
    assert result.loss == pytest.approx(float(loss(model(x), target)), rel=1e-6)


def _linear_grad_stds(result):
    return [r.grad_std for r in result if r.module == "Linear"][:-1]     # hidden Linear outputs


def test_deep_sigmoid_gradients_vanish_relu_he_does_not():
    x = _input()
    sig = _linear_grad_stds(activation_statistics(_mlp(nn.Sigmoid), x))
    relu = _linear_grad_stds(activation_statistics(_mlp(nn.ReLU, he=True), x))
    # sigmoid' <= 1/4 and small weights: the gradient std shrinks at every layer towards the input
    assert all(earlier < later for earlier, later in zip(sig, sig[1:]))
    assert sig[0] / sig[-1] < 1e-3
    # He init keeps the backward signal of a ReLU net at the same scale
    assert 0.2 < relu[0] / relu[-1] < 5
    relu_rows = activation_statistics(_mlp(nn.ReLU, he=True), x)
    assert all(0.3 < r.act_frac_active < 0.7 for r in relu_rows if r.module == "ReLU")


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_hooks_removed_and_grads_restored():
    model = _mlp(nn.ReLU, depth=2, width=8)
    assert _hook_count(model) == 0
    result = activation_statistics(model, _input(n=4, width=8))
    assert _hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())
    text = str(result)
    assert "act mean" in text and "grad std" in text and "sum of the outputs" in text
    assert len(text.splitlines()) == 2 + 1 + len(result)


def test_hooks_removed_on_error():
    model = _mlp(nn.ReLU, depth=2, width=8)

    def bad_loss(out, target):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        activation_statistics(model, _input(n=4, width=8), loss_fn=bad_loss, target=0)
    assert _hook_count(model) == 0
    with pytest.raises(ValueError, match="scalar"):
        activation_statistics(model, _input(n=4, width=8), loss_fn=lambda out: out)
    assert _hook_count(model) == 0


def test_shared_module_and_parameter_free_first_layer():
    act = nn.Tanh()
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), act, nn.Linear(4, 4), act)
    result = activation_statistics(model, cr.randn(3, 2, 3, generator=cr.Generator(0)))
    names = [r.name for r in result]
    assert names == ["0", "1", "2", "3", "2#2"]
    assert all(math.isfinite(r.grad_std) for r in result)     # Flatten's output gets a gradient too


def test_leaf_model():
    lin = nn.Linear(3, 2)
    result = activation_statistics(lin, cr.randn(5, 3, generator=cr.Generator(0)))
    assert len(result) == 1 and result[0].name == "" and result[0].grad_mean == 1.0
    assert "(model)" in str(result)


# ====================================================================== RBF kernel and features
def _numpy_rbf(X, Y, gamma):
    X, Y = np.asarray(X, float).reshape(len(X), -1), np.asarray(Y, float).reshape(len(Y), -1)
    d2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    return np.exp(-gamma * d2)


def test_rbf_kernel_against_numpy():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    K = rbf_kernel(X, Y, gamma=0.7)
    assert isinstance(K, cr.Tensor) and K.shape == (5, 7) and K.dtype == np.float64
    np.testing.assert_allclose(K.numpy(), _numpy_rbf(X, Y, 0.7), rtol=1e-14, atol=0)
    KX = rbf_kernel(X, gamma=0.7).numpy()
    np.testing.assert_allclose(np.diag(KX), 1.0)
    np.testing.assert_allclose(KX, KX.T)
    assert np.linalg.eigvalsh(KX).min() > -1e-12                       # positive semi-definite
    # 1-D input: n points in R^1; lists keep full float64 precision
    np.testing.assert_allclose(rbf_kernel([0.1, 0.7], [0.3], gamma=2.0).numpy(),
                               _numpy_rbf([0.1, 0.7], [0.3], 2.0), rtol=1e-15)


def test_rbf_kernel_is_differentiable():
    rng = np.random.default_rng(1)
    Y = cr.tensor(rng.normal(size=(3, 2)))
    assert cr.gradcheck(lambda X: cr.sum(rbf_kernel(X, Y, gamma=0.5) ** 2),
                        [rng.normal(size=(4, 2))])


def test_rbf_kernel_rejects_bad_arguments():
    with pytest.raises(ValueError):
        rbf_kernel(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        rbf_kernel(np.zeros((2, 3)), gamma=0.0)
    with pytest.raises(ValueError):
        rbf_feature_map(np.zeros((2, 3)), degree=-1)


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_rbf_feature_map_converges_to_kernel(d, gamma):
    X = np.random.default_rng(d).uniform(-1, 1, size=(6, d)) * (0.8 if d == 3 else 1.0)
    K = _numpy_rbf(X, X, gamma)
    errors = []
    for degree in range(0, 16):
        psi = rbf_feature_map(X, degree, gamma)
        assert psi.shape == (6, rbf_feature_dim(d, degree)) == (6, math.comb(degree + d, d))
        errors.append(np.abs((psi @ psi.T).numpy() - K).max())
    # strictly decreasing while above rounding
    assert all(b < a for a, b in zip(errors[:10], errors[1:11]))
    assert errors[15] < 1e-8
    assert errors[0] > 1e-2


def test_rbf_feature_map_d1_closed_form():
    """d = 1: psi_k(x) = exp(-gamma x^2) sqrt((2 gamma)^k / k!) x^k (course: gamma = 1)."""
    x = np.array([-0.4, 0.3, 1.2])
    gamma = 1.0
    psi = rbf_feature_map(x, 6, gamma).numpy()
    expected = np.stack([np.exp(-gamma * x ** 2) * math.sqrt((2 * gamma) ** k / math.factorial(k))
                         * x ** k for k in range(7)], axis=1)
    np.testing.assert_allclose(psi, expected, rtol=1e-14)


def test_rbf_tensor_mode_equals_monomial_mode():
    X = np.random.default_rng(2).normal(size=(4, 3)) * 0.5
    mono = rbf_feature_map(X, 5, 0.8)
    full = rbf_feature_map(X, 5, 0.8, mode="tensor")
    assert full.shape == (4, rbf_feature_dim(3, 5, "tensor")) == (4, 1 + 3 + 9 + 27 + 81 + 243)
    assert mono.shape == (4, 56)
    np.testing.assert_allclose((mono @ mono.T).numpy(), (full @ full.T).numpy(), rtol=1e-13)
    psi = rbf_feature_map(X, 30, 0.8, mode="monomial")     # 2 gamma ||x||^2 reaches 4.2 here
    np.testing.assert_allclose((psi @ psi.T).numpy(), _numpy_rbf(X, X, 0.8), atol=1e-12)

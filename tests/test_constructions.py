"""Hand-built networks of chainrule.course.constructions, checked exhaustively or on random
inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.course import constructions as C

XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [0.0, 1.0, 1.0, 0.0]


def run(model, x):
    return model(cr.tensor(np.asarray(x, dtype=np.float64), dtype="float64")).data


# ------------------------------------------------------------------ XOR
def test_xor_network_is_exact():
    model = C.xor_network()
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]
    out = run(model, XOR_X)
    assert out.shape == (4, 1)
    assert out[:, 0].tolist() == XOR_Y  # exactly, not approximately
    assert model[0].weight.dtype == np.float64


def test_linear_model_cannot_fit_xor():
    fit = C.best_linear_fit(XOR_X, XOR_Y)
    # normal equations by hand: w = 0, b = 1/2, residual 4 * (1/2)^2 = 1
    np.testing.assert_allclose(fit.weights.data, [0.0, 0.0], atol=1e-12)
    assert fit.bias.item() == pytest.approx(0.5, abs=1e-12)
    assert fit.residual == pytest.approx(1.0, abs=1e-12) and fit.residual > 0.5
    assert fit.mse == pytest.approx(0.25, abs=1e-12)


def test_best_linear_fit_recovers_an_exact_linear_map():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.0
    fit = C.best_linear_fit(X, y)
    np.testing.assert_allclose(fit.weights.data, [1.0, -2.0, 0.5], atol=1e-12)
    assert fit.bias.item() == pytest.approx(3.0, abs=1e-12)
    assert fit.residual < 1e-20
    with pytest.raises(ValueError):
        C.best_linear_fit(X, y[:5])


# ------------------------------------------------------------------ descending order
def descending(x) -> float:
    return float(all(a > b for a, b in zip(x, x[1:])))


@pytest.mark.parametrize("n, values", [
    (4, range(4)),
    (5, range(3)),
    (5, range(5)),
    (3, range(5)),
    (2, range(4)),
])
def test_descending_order_all_orderings_and_ties(n, values):
    inputs = list(itertools.product(values, repeat=n))
    model = C.descending_order_network(n)
    assert [type(m) for m in model] == [nn.Linear, nn.Step, nn.Linear, nn.Step]
    assert model[0].out_features == n - 1
    out = run(model, inputs)[:, 0]
    expected = [descending(x) for x in inputs]
    assert out.tolist() == expected
    assert (sum(expected) > 0) == (len(values) >= n)  # descending tuples exist iff enough values


def test_descending_order_real_inputs_tiny_gaps():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 5))
    x[::3] = -np.sort(-x[::3], axis=1)  # many descending rows
    x[::7, 2] = x[::7, 1]  # ties
    x[5] = [1.0, np.nextafter(1.0, 0), 0.0, -1e-300, -2e-300]  # one-ulp and subnormal-scale gaps
    x[6] = [1.0, 1.0, 0.0, -1.0, -2.0]
    out = run(C.descending_order_network(5), x)[:, 0]
    assert out.tolist() == [descending(row) for row in x.tolist()]
    assert out[5] == 1.0 and out[6] == 0.0
    with pytest.raises(ValueError):
        C.descending_order_network(1)


# ------------------------------------------------------------------ four points
def test_four_point_network_and_single_unit_lp():
    X, y = C.FOUR_POINTS
    out = run(C.four_point_network(), X)[:, 0]
    assert out.tolist() == y
    assert C.single_unit_separable(X, y) is False
    # a separable set passes, and a set that is separable only through the bias too
    assert C.single_unit_separable([[0.0, 0.0], [1.0, 1.0], [3.0, 0.0]], [-1.0, -1.0, 1.0]) is True
    assert C.single_unit_separable([[1.0], [2.0], [5.0]], [1.0, 1.0, -1.0]) is True
    assert C.single_unit_separable(XOR_X, [-1.0, 1.0, 1.0, -1.0]) is False
    with pytest.raises(ValueError):
        C.single_unit_separable(X, [1.0, 0.0, -1.0, -1.0])


# ------------------------------------------------------------------ interpolation
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_interpolation_500_points_in_r10(activation):
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((500, 10)), rng.standard_normal((500, 3))
    model = C.interpolating_network(X, Y, activation)
    first, act, last = model
    assert (first.in_features, first.out_features, last.out_features) == (10, 499, 3)
    assert all(p.dtype == np.float64 for p in model.parameters())
    # one shared direction: all first-layer rows are parallel
    rows = first.weight.data
    np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape))
    assert np.abs(run(model, X) - Y).max() <= 1e-8
    # also on a permuted batch (the hidden layer is evaluated in another order)
    perm = rng.permutation(500)
    assert np.abs(run(model, X[perm]) - Y[perm]).max() <= 1e-8


@pytest.mark.parametrize("activation", [
    "relu",
    "sigmoid",
    cr.sigmoid,
    nn.Sigmoid(),
    lambda z: cr.exp(-z * z),
])
@pytest.mark.parametrize("N, n, m", [(2, 1, 1), (3, 2, 1), (7, 3, 2), (40, 5, 4)])
def test_interpolation_small_cases(activation, N, n, m):
    rng = np.random.default_rng(N * 100 + n)
    X, Y = rng.uniform(-3, 3, (N, n)), rng.standard_normal((N, m))
    model = C.interpolating_network(X, Y, activation)
    assert model[0].out_features == N - 1
    assert np.abs(run(model, X) - Y).max() <= 1e-8


def test_interpolation_integer_grid_and_1d_targets():
    X = np.array(list(itertools.product(range(4), repeat=2)), dtype=float)  # 16 points on a grid
    y = np.arange(16.0) ** 2
    model = C.interpolating_network(X, y)
    out = run(model, X)
    assert out.shape == (16, 1)
    assert np.abs(out[:, 0] - y).max() <= 1e-8


def test_interpolation_errors():
    X = np.array([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="equal"):
        C.interpolating_network(X, np.zeros((3, 1)))
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="projection"):  # (0,1) and (1,0) project equally on (1,1)
        C.interpolating_network(X, np.zeros((3, 1)), direction=[1.0, 1.0])
    with pytest.raises(ValueError):
        C.interpolating_network(X, np.zeros((2, 1)))  # rows mismatch
    with pytest.raises(ValueError):
        C.interpolating_network(X[:, 0], np.zeros((3, 1)))  # X not 2-D
    with pytest.raises(ValueError):
        C.interpolating_network(X[:1], np.zeros((1, 1)))  # one point
    with pytest.raises(ValueError):
        C.interpolating_network(X, np.zeros((3, 1)), activation="softsign")
    with pytest.raises(ValueError):  # does not vanish at -inf
        C.interpolating_network(X, np.zeros((3, 1)), activation=lambda z: cr.tanh(z) + 2.0)
    # the given direction works when it separates
    model = C.interpolating_network(X, [[1.0], [2.0], [3.0]], direction=[1.0, 0.5])
    assert np.abs(run(model, X)[:, 0] - [1.0, 2.0, 3.0]).max() <= 1e-12


# ------------------------------------------------------------------ sigmoid <-> tanh
def random_mlp(rng, sizes, hidden, output=None):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layer = nn.Linear(a, b)
        layer.weight = nn.Parameter(rng.standard_normal((b, a)))
        layer.bias = nn.Parameter(rng.standard_normal(b))
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(hidden())
    if output is not None:
        layers.append(output())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("sizes", [(3, 5, 2), (4, 6, 7, 3), (2, 3, 5, 6, 1)])
@pytest.mark.parametrize("output", [None, nn.Sigmoid, nn.Tanh])
def test_sigmoid_tanh_round_trips(sizes, output):
    rng = np.random.default_rng(len(sizes))
    x = rng.standard_normal((64, sizes[0])) * 3
    sig = random_mlp(rng, sizes, nn.Sigmoid, output)
    tanh = C.sigmoid_to_tanh(sig)
    hidden = [type(m) for m in list(tanh)[1:-1 if output else None] if not isinstance(m, nn.Linear)]
    assert hidden[: len(sizes) - 2] == [nn.Tanh] * (len(sizes) - 2)
    if output is not None:
        assert type(tanh[-1]) is output  # the output activation is kept
    assert np.abs(run(tanh, x) - run(sig, x)).max() <= 1e-12
    back = C.tanh_to_sigmoid(tanh)
    assert all(type(a) is type(b) for a, b in zip(back, sig))
    assert np.abs(run(back, x) - run(sig, x)).max() <= 1e-12
    for a, b in zip(back.parameters(), sig.parameters()):
        np.testing.assert_allclose(a.data, b.data, atol=1e-12)
    # and from a tanh network
    t = random_mlp(rng, sizes, nn.Tanh, output)
    assert np.abs(run(C.tanh_to_sigmoid(t), x) - run(t, x)).max() <= 1e-12


def test_sigmoid_to_tanh_formula_and_errors():
    rng = np.random.default_rng(5)
    sig = random_mlp(rng, (3, 4, 2), nn.Sigmoid)
    w1, b1, w2, b2 = (p.data for p in sig.parameters())
    t = C.sigmoid_to_tanh(sig)
    np.testing.assert_allclose(t[0].weight.data, w1 / 2)
    np.testing.assert_allclose(t[0].bias.data, b1 / 2)
    np.testing.assert_allclose(t[2].weight.data, w2 / 2)
    np.testing.assert_allclose(t[2].bias.data, b2 + w2.sum(axis=1) / 2)
    with pytest.raises(TypeError):
        C.sigmoid_to_tanh(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    with pytest.raises(TypeError):
        C.sigmoid_to_tanh(nn.Sequential(nn.Sigmoid(), nn.Linear(2, 1)))
    with pytest.raises(TypeError):
        C.sigmoid_to_tanh(nn.Linear(2, 1))


# ------------------------------------------------------------------ low rank
def test_low_rank_error_is_the_next_singular_value():
    rng = np.random.default_rng(6)
    linear = nn.Linear(7, 5)
    linear.weight = nn.Parameter(rng.standard_normal((5, 7)))
    linear.bias = nn.Parameter(rng.standard_normal(5))
    W = linear.weight.data
    s = np.linalg.svd(W, compute_uv=False)
    x = rng.standard_normal((10, 7))
    for rank in range(1, 6):
        module, error = C.low_rank(linear, rank)
        assert isinstance(module, nn.LowRankLinear) and module.rank == rank
        assert module.U.shape == (5, rank) and module.V.shape == (rank, 7)
        UV = module.U.data @ module.V.data
        assert np.linalg.norm(W - UV, 2) == pytest.approx(error, rel=1e-9, abs=1e-13)
        expected = s[rank] if rank < 5 else 0.0
        assert error == pytest.approx(expected, rel=1e-12, abs=1e-13)
        np.testing.assert_allclose(run(module, x), x @ UV.T + linear.bias.data, atol=1e-12)
    module, error = C.low_rank(linear, 5)  # full rank: exact
    assert error < 1e-13
    np.testing.assert_allclose(run(module, x), run(linear, x), atol=1e-12)
    with pytest.raises(ValueError):
        C.low_rank(linear, 6)
    with pytest.raises(TypeError):
        C.low_rank(nn.ReLU(), 1)

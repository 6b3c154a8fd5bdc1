"""Networks built by hand: the constructions of the course, each returned as an ``nn.Module``.

Every function sets the weights of ``nn.Linear`` layers (float64) and chains them with activation
modules in an ``nn.Sequential``; nothing is trained. The math behind each one is in its docstring.

* :func:`xor_network` / :func:`best_linear_fit` -- a ReLU network computes XOR exactly, a linear
  model cannot (its least-squares fit is the constant 1/2).
* :func:`descending_order_network` -- hard-threshold units that detect x1 > x2 > ... > xn.
* :func:`four_point_network` / :func:`single_unit_separable` -- three sign units classify a
  four-point set that no single sign unit can (a linear-programming certificate).
* :func:`interpolating_network` -- N - 1 hidden units interpolate any N distinct points exactly.
* :func:`sigmoid_to_tanh` / :func:`tanh_to_sigmoid` -- sigmoid(a) = (1 + tanh(a/2)) / 2.
* :func:`low_rank` -- the best rank-r ``nn.LowRankLinear`` (truncated SVD, Eckart-Young).

Only the linear algebra chainrule does not have (least squares, a triangular solve, an SVD, a
linear program) is delegated to NumPy/SciPy, in the clearly marked helpers below; everything else
uses chainrule's public functions.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import chainrule as cr
from chainrule import nn
from chainrule.engine.tensor import Tensor

__all__ = [
    "xor_network", "best_linear_fit", "LinearFit", "descending_order_network",
    "four_point_network", "FOUR_POINTS", "single_unit_separable", "interpolating_network",
    "sigmoid_to_tanh", "tanh_to_sigmoid", "low_rank",
]

_F64 = "float64"


# ---------------------------------------------------------------------------------------------
# Linear-algebra helpers: the ONLY places this module hands arrays to NumPy/SciPy, because
# chainrule has no least squares, triangular solve, SVD or LP. Inputs and outputs are chainrule
# Tensors (float64); nothing here is differentiable.
# ---------------------------------------------------------------------------------------------
def _linalg(kind: str, *args: Tensor) -> Any:
    """One entry point for the external linear algebra (NumPy / SciPy), by ``kind``:

    * ``"lstsq"``  (A, y)  -> x minimising ||A x - y||_2            (numpy.linalg.lstsq)
    * ``"lower"``  (M, Y)  -> C with M C = Y, M lower triangular    (scipy.linalg.solve_triangular)
    * ``"svd"``    (W,)    -> (U, s, Vt), W = U diag(s) Vt, s descending (numpy.linalg.svd)
    * ``"lp"``     (A, b)  -> True iff {z : A z <= b} is non-empty   (scipy.optimize.linprog)
    """
    import numpy as np  # noqa: PLC0415 -- deliberately local: see the section comment
    from scipy import linalg, optimize  # noqa: PLC0415

    arrays = [a.data for a in args]
    if kind == "lstsq":
        return cr.tensor(np.linalg.lstsq(arrays[0], arrays[1], rcond=None)[0], dtype=_F64)
    if kind == "lower":
        return cr.tensor(linalg.solve_triangular(arrays[0], arrays[1], lower=True), dtype=_F64)
    if kind == "svd":
        u, s, vt = np.linalg.svd(arrays[0], full_matrices=False)
        return cr.tensor(u, dtype=_F64), cr.tensor(s, dtype=_F64), cr.tensor(vt, dtype=_F64)
    if kind == "lp":
        a_ub, b_ub = arrays
        result = optimize.linprog(np.zeros(a_ub.shape[1]), A_ub=a_ub, b_ub=b_ub,
                                  bounds=[(None, None)] * a_ub.shape[1], method="highs")
        if result.status not in (0, 2):  # 0: feasible point found, 2: proven infeasible
            raise RuntimeError(f"linprog could not decide feasibility: {result.message}")
        return result.status == 0
    raise ValueError(f"_linalg: unknown kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------------------------
def _f64(x: Any) -> Tensor:
    """A float64 tensor (no gradient history) holding ``x``."""
    if isinstance(x, Tensor):
        return cr.astype(x.detach(), _F64)
    return cr.tensor(x, dtype=_F64)


def _linear(weight: Any, bias: Any = None) -> nn.Linear:
    """An ``nn.Linear`` whose weight (out, in) and bias (out,) are set by hand, in float64."""
    weight = _f64(weight)
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out, in), got shape {weight.shape}")
    out_features, in_features = weight.shape
    layer = nn.Linear(in_features, out_features, bias=bias is not None)
    layer.weight = nn.Parameter(weight)
    if bias is not None:
        layer.bias = nn.Parameter(cr.reshape(_f64(bias), (out_features,)))
    return layer


# ---------------------------------------------------------------------------------------------
# XOR
# ---------------------------------------------------------------------------------------------
def xor_network() -> nn.Sequential:
    """The ReLU network of Goodfellow et al., section 6.1, that computes XOR exactly.

    f(x) = w^T relu(W^T x + c) + b with W = [[1, 1], [1, 1]], c = [0, -1], w = [1, -2], b = 0.
    On the inputs (0,0), (0,1), (1,0), (1,1) the hidden pre-activations x1 + x2 + c are (0,-1),
    (1,0), (1,0), (2,1); after relu (0,0), (1,0), (1,0), (2,1); so f = 0, 1, 1, 2 - 2 = 0.

    Layers: ``Linear(2, 2) -> ReLU -> Linear(2, 1)`` (``nn.Linear`` stores W^T, which here is W).
    Input (batch, 2), output (batch, 1), float64.
    """
    return nn.Sequential(_linear([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0]), nn.ReLU(),
                         _linear([[1.0, -2.0]], [0.0]))


class LinearFit(NamedTuple):
    """Result of :func:`best_linear_fit`: y ~ X @ weights + bias."""

    weights: Tensor   # (n,) for 1-D y, (n, m) for 2-D y
    bias: Tensor      # () for 1-D y, (m,) for 2-D y
    residual: float   # sum of squared errors ||X w + b - y||^2 at the optimum
    mse: float        # residual / number of samples


def best_linear_fit(X: Any, y: Any) -> LinearFit:
    """Least squares with an intercept: minimise ||X w + b - y||^2 over (w, b).

    Solved as ordinary least squares on the augmented matrix [X, 1]. For XOR
    (X = {0,1}^2, y = x1 xor x2) the normal equations give w = 0, b = 1/2: the best linear model is
    the constant 1/2, with residual 4 * (1/2)^2 = 1 (mean squared error 1/4) > 0, so no linear
    model fits XOR (Goodfellow et al. 6.1; the course's "linear models cannot learn XOR").
    """
    X, y = _f64(X), _f64(y)
    if X.ndim != 2:
        raise ValueError(f"best_linear_fit: X must be 2-D (samples, features), got shape {X.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"best_linear_fit: y must have {X.shape[0]} rows (one per sample), "
                         f"got shape {y.shape}")
    n_samples = X.shape[0]
    design = cr.concatenate([X, cr.ones(n_samples, 1, dtype=_F64)], axis=1)
    coef = _linalg("lstsq", design, y)
    errors = cr.matmul(design, coef) - y
    residual = float(cr.sum(errors * errors).item())
    return LinearFit(coef[:-1], coef[-1], residual, residual / n_samples)


# ---------------------------------------------------------------------------------------------
# descending order with hard thresholds
# ---------------------------------------------------------------------------------------------
def descending_order_network(n: int = 5) -> nn.Sequential:
    """Hard-threshold network that outputs 1 exactly when x1 > x2 > ... > xn, else 0 (ties give 0).

    Units are ``nn.Step``: step(z) = 1 if z >= 0 else 0. Because the threshold fires on equality,
    each hidden unit detects the *violation* of one strict inequality instead of the inequality:

        h_i = step(x_{i+1} - x_i) = 1  iff  x_i <= x_{i+1}       (i = 1 .. n-1)
        y   = step(1/2 - (h_1 + ... + h_{n-1}))  = 1  iff  no violation  iff  x1 > ... > xn.

    (the course's 002 solution; the output bias 1/2 instead of 0 gives a margin of 1/2, the sum
    being an integer). Weights: hidden row i has -1 at column i and +1 at column i+1.

    Domain: exact for every input of **finite** floating-point (or integer-valued, ``|x| <= 2^53``)
    numbers, with no minimum gap: in IEEE arithmetic x_{i+1} - x_i is correctly rounded and never
    rounds to 0 or changes sign unless x_i == x_{i+1} (gradual underflow), the zero weights add
    exact zeros, and an overflow to +-inf keeps the sign. Infinite or NaN inputs are outside the
    domain (0 * inf is NaN). Input (batch, n), output (batch, 1) float64.
    """
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"descending_order_network: n must be an integer >= 2, got {n!r}")
    rows = [[(-1.0 if j == i else 1.0 if j == i + 1 else 0.0) for j in range(n)]
            for i in range(n - 1)]
    return nn.Sequential(_linear(rows, [0.0] * (n - 1)), nn.Step(),
                         _linear([[-1.0] * (n - 1)], [0.5]), nn.Step())


# ---------------------------------------------------------------------------------------------
# four points, sign units
# ---------------------------------------------------------------------------------------------
FOUR_POINTS = ([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, -2.0]], [1.0, 1.0, -1.0, -1.0])


def four_point_network() -> nn.Sequential:
    """Three sign units that classify (-2,0), (2,0) -> +1 and (0,2), (0,-2) -> -1 (course 004,
    problem 4).

    q1 = sign(x1 - 1) is +1 only at (2,0); q2 = sign(-x1 - 1) is +1 only at (-2,0); the output
    y = sign(q1 + q2 + 1) is sign(1) = +1 on the crosses (q = (1,-1) or (-1,1)) and sign(-1) = -1
    on the circles (q = (-1,-1)). No pre-activation is ever 0 on these points (``|z| >= 1``), so the
    convention sign(0) = 0 never matters. Layers ``Linear(2,2) -> Sign -> Linear(2,1) -> Sign``.
    ``FOUR_POINTS`` holds (X, y). One unit cannot do it: see :func:`single_unit_separable`.
    """
    return nn.Sequential(_linear([[1.0, 0.0], [-1.0, 0.0]], [-1.0, -1.0]), nn.Sign(),
                         _linear([[1.0, 1.0]], [1.0]), nn.Sign())


def single_unit_separable(X: Any, y: Any) -> bool:
    """Whether one sign unit sign(w.x + b) classifies every (x_i, y_i in {-1, +1}) correctly.

    Such a unit exists iff some (w, b) has y_i (w.x_i + b) > 0 for all i, and (scaling (w, b)) iff
    the linear program's feasible set {(w, b) : y_i (w.x_i + b) >= 1} is non-empty; we ask
    ``scipy.optimize.linprog`` with a zero objective. For the four points, adding the constraints
    of (-2,0) and (2,0) gives 2b >= 2 while those of (0,2) and (0,-2) give -2b >= 2: infeasible.
    """
    X, y = _f64(X), _f64(y)
    if X.ndim != 2 or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"single_unit_separable: need X (N, n) and y (N,), "
                         f"got {X.shape} and {y.shape}")
    if not bool(cr.sum(cr.abs(cr.abs(y) - 1.0)).item() == 0):
        raise ValueError("single_unit_separable: labels must be -1 or +1")
    augmented = cr.concatenate([X, cr.ones(X.shape[0], 1, dtype=_F64)], axis=1)  # rows [x_i, 1]
    a_ub = -cr.reshape(y, (-1, 1)) * augmented  # -y_i [x_i, 1] . (w, b) <= -1
    return _linalg("lp", a_ub, -cr.ones(X.shape[0], dtype=_F64))


# ---------------------------------------------------------------------------------------------
# exact interpolation of N points with N - 1 hidden units
# ---------------------------------------------------------------------------------------------
class _Activation(nn.Module):
    """Wraps a function of Tensors (for example ``chainrule.sigmoid``) as a module."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


def _sorted_projections(X: Tensor, u: Tensor) -> tuple[list[int], list[float], float]:
    """Order of the points along u, the sorted projections and the smallest gap between them."""
    p = cr.matmul(X, u).tolist()
    order = sorted(range(len(p)), key=p.__getitem__)
    ps = [p[i] for i in order]
    gap = min(b - a for a, b in zip(ps, ps[1:]))
    return order, ps, gap


def _find_duplicate(X: Tensor) -> Optional[tuple[int, int]]:
    seen: dict = {}
    for i, row in enumerate(X.tolist()):
        j = seen.setdefault(tuple(row), i)
        if j != i:
            return j, i
    return None


def interpolating_network(X: Any, Y: Any, activation: Union[str, Callable, nn.Module] = "relu", *,
                          direction: Any = None, seed: int = 0, kink_fraction: float = 0.1,
                          steepness: float = 40.0) -> nn.Sequential:
    """A two-layer network with N - 1 hidden units whose outputs equal Y (N x m) at the N points
    X (N x n).

    The construction of the course (000, question 5). All hidden units share one direction w, so
    unit j computes phi(w.x + b_j); choose w with distinct projections p_i = w.x^(i) (a random
    direction does it with probability 1 once the points are distinct) and sort them,
    p_1 < ... < p_N. At the points, the outputs are M C where row k of the N x N matrix M is
    [1, h_1(x^(k)), ..., h_{N-1}(x^(k))] (the 1 multiplies the output bias) and C stacks the output
    bias and the output weights; interpolation is the linear system M C = Y. The hidden biases are
    chosen so that M is lower triangular with non-zero diagonal, and C comes from one triangular
    solve. Unit j (j = 1..N-1) belongs to the sorted point j+1:

    * ``"relu"``: h_j(x) = relu(u.x - t_j) with t_j = p_j + kink_fraction (p_{j+1} - p_j): the
      kink lies between consecutive projections (the course's b_j = -w.x^(j+1) + eps_j with one
      eps_j = (1 - kink_fraction)(p_{j+1} - p_j) per unit). h_j is 0 at points 1..j and positive
      from point j+1 on. A kink close to the previous point keeps the forward substitution stable
      (each slope passes a fraction kink_fraction / (1 - kink_fraction) of the previous one's
      error on); the literal "one eps below the smallest gap for every unit" amplifies errors by
      gap/eps per unit and overflows long before N = 500.
    * ``"sigmoid"`` or any sigmoid-like phi (continuous, bounded, phi(-inf) = 0, phi(0) > 0, given
      as a callable on Tensors or an ``nn.Module``): w = lambda u and
      h_j(x) = phi(lambda (u.x - t_j)). First t_j = (p_j + p_{j+1}) / 2 (midway) with
      lambda = 2 steepness / (smallest gap): the entries above the diagonal are
      phi(<= -steepness) ~ 0 and the diagonal phi(>= steepness) ~ phi(+inf), so M tends to the
      0/1 triangular matrix and the solve is perfectly conditioned and insensitive to rounding in
      the projections. If phi vanishes there (a bump such as exp(-z^2)), the course's own
      t_j = p_{j+1} is used: diagonal phi(0) > 0, entries above phi(-lambda (p_{j+1} - p_i)) -> 0
      as lambda -> inf. In both cases lambda doubles until every entry above the diagonal is below
      1e-16 of the smallest diagonal entry; an activation that does not decay to 0 at -inf raises
      ValueError.

    M is built from the network's own hidden outputs (the first layer evaluated in float64 by
    chainrule), so rounding in the projections is accounted for. The returned
    ``Sequential(Linear(n, N-1), activation, Linear(N-1, m))`` has float64 parameters; with 1-D Y
    (one output) it has m = 1 and returns (batch, 1).

    Guarantees: for distinct points with well-separated projections the interpolation error is at
    rounding level (tested: max error <= 1e-8 for N = 500 random points in R^10, m = 3, relu and
    sigmoid). Raises ValueError for fewer than 2 points, shape mismatches, duplicate points, and
    (with ``direction``) equal projections; ``seed`` picks the random direction.
    """
    X, Y = _f64(X), _f64(Y)
    if X.ndim != 2:
        raise ValueError(f"interpolating_network: X must be 2-D (N points, n features), "
                         f"got shape {X.shape}")
    if Y.ndim == 1:
        Y = cr.reshape(Y, (-1, 1))
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"interpolating_network: Y must be (N, m) with N = {X.shape[0]} rows "
                         f"like X, got shape {Y.shape}")
    N, n = X.shape
    if N < 2:
        raise ValueError(f"interpolating_network: needs at least 2 points, got {N}")
    if not float(cr.min(cr.astype(cr.isfinite(X), _F64)).item()) == 1.0:
        raise ValueError("interpolating_network: X must be finite")
    if not 0 < kink_fraction < 1:
        raise ValueError(f"interpolating_network: kink_fraction must be in (0, 1), "
                         f"got {kink_fraction}")
    duplicate = _find_duplicate(X)
    if duplicate is not None:
        raise ValueError(f"interpolating_network: points {duplicate[0]} and {duplicate[1]} are "
                         "equal; the points must be distinct")

    # the direction u: given, or the best of a few random unit directions (largest smallest gap)
    def tolerance(ps: list[float]) -> float:
        return 1e-12 * max(1.0, abs(ps[0]), abs(ps[-1]))

    if direction is not None:
        u = cr.reshape(_f64(direction), (-1,))
        if u.shape != (n,):
            raise ValueError(f"interpolating_network: direction must have {n} entries, "
                             f"got shape {u.shape}")
        order, ps, gap = _sorted_projections(X, u)
        if gap <= tolerance(ps):
            raise ValueError("interpolating_network: two points have equal (or nearly equal, gap "
                             f"{gap:.3g}) projections on the given direction; "
                             "choose another direction")
    else:
        generator = cr.Generator(seed)
        best: Optional[tuple[Tensor, list[int], list[float], float]] = None
        for _ in range(8):
            v = cr.randn(n, generator=generator, dtype=_F64)
            v = v / cr.sqrt(cr.sum(v * v))
            candidate = (v, *_sorted_projections(X, v))
            if best is None or candidate[3] > best[3]:
                best = candidate
        assert best is not None  # the loop above ran
        u, order, ps, gap = best
        if gap <= tolerance(ps):
            raise ValueError(f"interpolating_network: points have (nearly) equal projections on "
                             f"every direction tried (smallest gap {gap:.3g}); "
                             f"are some points (nearly) equal?")

    X_sorted, Y_sorted = X[order], Y[order]
    ones_column = cr.ones(N, 1, dtype=_F64)
    # rows_below[i, k]: i < k
    rows_below = cr.less(cr.reshape(cr.arange(N), (N, 1)), cr.reshape(cr.arange(N), (1, N)))
    diagonal_index = (list(range(N)), list(range(N)))

    if activation == "relu":
        act: nn.Module = nn.ReLU()
    elif activation == "sigmoid":
        act = nn.Sigmoid()
    elif isinstance(activation, nn.Module):
        act = activation
    elif callable(activation):
        act = _Activation(activation)
    else:
        raise ValueError(f"interpolating_network: activation must be 'relu', 'sigmoid', "
                         f"a callable or a Module, got {activation!r}")
    relu_like = activation == "relu"
    if not relu_like and not float(act(cr.zeros(1, dtype=_F64)).item()) > 0:
        raise ValueError("interpolating_network: a sigmoid-like activation needs phi(0) > 0")

    weight_rows = cr.broadcast_to(cr.reshape(u, (1, n)), (N - 1, n))
    midpoints = [(a + b) / 2 for a, b in zip(ps, ps[1:])]
    if relu_like:  # (thresholds, scales lambda to try)
        attempts = [([a + kink_fraction * (b - a) for a, b in zip(ps, ps[1:])], [1.0])]
    else:  # midway first (saturated, well conditioned); the course's t_j = p_{j+1}
        # (diagonal phi(0)) next
        attempts = [(midpoints, [2 * steepness / gap * 2.0 ** k for k in range(64)]),
                    (ps[1:], [steepness / gap * 2.0 ** k for k in range(64)])]
    def triangular_hidden(thresholds: list[float], scale: float):
        """(first layer, M, status): status 'ok', 'more' (entries above the diagonal too large)
        or 'stop'."""
        layer = _linear(weight_rows * scale, [-scale * t for t in thresholds])
        with cr.no_grad():
            matrix = cr.concatenate([ones_column, act(layer(X_sorted))], axis=1)
        if not float(cr.min(cr.astype(cr.isfinite(matrix), _F64)).item()) == 1.0:
            return layer, matrix, "stop"  # the activation overflowed: larger scales will not help
        smallest_diagonal = float(cr.min(cr.abs(matrix[diagonal_index])).item())
        if smallest_diagonal == 0.0:
            return layer, matrix, "stop"  # phi vanishes on the diagonal with these thresholds
        above = float(cr.max(cr.abs(cr.where(rows_below, matrix, 0.0))).item())
        return layer, matrix, "ok" if above <= 1e-16 * smallest_diagonal else "more"

    found = None
    for thresholds, scales in attempts:
        for scale in scales:
            hidden, M, status = triangular_hidden(thresholds, scale)
            if status != "more":
                break
        if status == "ok":
            found = hidden, M
            break
    if found is None:
        raise ValueError("interpolating_network: could not make M triangular: the activation "
                         "does not decay to 0 at -inf fast enough (or the projections are too "
                         "close)")
    hidden, M = found

    C = _linalg("lower", M, Y_sorted)  # M C = Y: C[0] is the output bias, C[1:] the output weights
    return nn.Sequential(hidden, act, _linear(C[1:].T, C[0]))


# ---------------------------------------------------------------------------------------------
# sigmoid <-> tanh
# ---------------------------------------------------------------------------------------------
def _convert_activations(model: nn.Module, source: type, target: type, scale: float,
                         shift: float) -> nn.Sequential:
    """Replace every hidden ``source`` activation s by ``target`` t using
    s(a) = shift + scale * t(a * k).

    With s = sigmoid, t = tanh: sigmoid(a) = 1/2 + 1/2 tanh(a/2) (scale = shift = 1/2, k = 1/2);
    with s = tanh, t = sigmoid: tanh(a) = -1 + 2 sigmoid(2a) (scale 2, shift -1, k = 2). Here
    k = scale in both cases, and the layers around a hidden activation change as
        Linear before (W1, b1): W1 k, b1 k
        Linear after (W2, b2):  W2 scale, b2 + shift W2 1.
    Done per Linear layer from the original weights, so a Linear between two hidden activations
    gets both changes: W' = k scale W, b' = k (b + shift rowsum(W)).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"expected an nn.Sequential of Linear and "
                        f"{source.__name__}/{target.__name__} layers, got {type(model).__name__}")
    layers = list(model)
    for i, layer in enumerate(layers):
        if not isinstance(layer, (nn.Linear, nn.Sigmoid, nn.Tanh)):
            raise TypeError(f"layer {i} is {type(layer).__name__}: only Linear, Sigmoid and Tanh "
                            f"layers can be converted")
    # a hidden activation sits between two Linear layers; one after the last Linear is the output's
    hidden = [isinstance(layer, source) and 0 < i < len(layers) - 1
              for i, layer in enumerate(layers)]
    for i, flag in enumerate(hidden):
        if flag and not (isinstance(layers[i - 1], nn.Linear)
                         and isinstance(layers[i + 1], nn.Linear)):
            raise TypeError(f"layer {i} ({source.__name__}) must sit between two Linear layers "
                            f"to be converted")
    if isinstance(layers[0], source) and len(layers) > 1:
        raise TypeError(f"layer 0 ({source.__name__}) acts on the input and cannot be converted")
    k = scale
    converted: list[nn.Module] = []
    with cr.no_grad():
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                W = layer.weight.detach()
                b = layer.bias.detach() if layer.bias is not None else cr.zeros_like(W[:, 0])
                if i > 0 and hidden[i - 1]:      # input is scale * t + shift
                    W, b = W * scale, b + shift * cr.sum(W, axis=1)
                if i + 1 < len(layers) and hidden[i + 1]:  # output feeds t(k * a)
                    W, b = W * k, b * k
                new = nn.Linear(layer.in_features, layer.out_features,
                                bias=layer.bias is not None or (i > 0 and hidden[i - 1]))
                new.weight = nn.Parameter(W.astype(layer.weight.dtype))
                if new.bias is not None:
                    new.bias = nn.Parameter(b.astype(layer.weight.dtype))
                converted.append(new)
            elif hidden[i]:
                converted.append(target())
            else:
                converted.append(type(layer)())
    return nn.Sequential(*converted)


def sigmoid_to_tanh(model: nn.Sequential) -> nn.Sequential:
    """The equivalent network with every hidden ``Sigmoid`` replaced by ``Tanh`` (course 000 Q4,
    002).

    From sigmoid(a) = (1 + tanh(a/2)) / 2, a block ``Linear(W1, b1) -> Sigmoid -> Linear(W2, b2)``
    equals ``Linear(W1/2, b1/2) -> Tanh -> Linear(W2/2, b2 + W2 1 / 2)`` (1 the vector of ones, so
    W2 1 are the row sums). Any ``nn.Sequential`` of ``Linear``, ``Sigmoid`` and ``Tanh`` layers is
    accepted; every hidden activation (between two Linear layers) of type Sigmoid is converted,
    chaining through several hidden layers; an activation after the last Linear (the output's) is
    kept. Other layer types raise TypeError. A new model is returned; the input is not changed.
    Outputs agree to rounding (1e-12 in float64).
    """
    return _convert_activations(model, nn.Sigmoid, nn.Tanh, scale=0.5, shift=0.5)


def tanh_to_sigmoid(model: nn.Sequential) -> nn.Sequential:
    """The inverse of :func:`sigmoid_to_tanh`: hidden ``Tanh`` -> ``Sigmoid`` via
    tanh(a) = 2 sigmoid(2a) - 1.

    ``Linear(W1, b1) -> Tanh -> Linear(W2, b2)`` equals ``Linear(2 W1, 2 b1) -> Sigmoid ->
    Linear(2 W2, b2 - W2 1)``. Same rules and errors as :func:`sigmoid_to_tanh`.
    """
    return _convert_activations(model, nn.Tanh, nn.Sigmoid, scale=2.0, shift=-1.0)


# ---------------------------------------------------------------------------------------------
# low rank
# ---------------------------------------------------------------------------------------------
def low_rank(linear: nn.Linear, rank: int) -> tuple[nn.LowRankLinear, float]:
    """The best rank-``rank`` approximation of a Linear layer, as ``nn.LowRankLinear``, and its
    error.

    With the SVD W = sum_i s_i u_i v_i^T (s descending), the truncation W_r = U V with
    U = [sqrt(s_i) u_i] (out, r) and V = [sqrt(s_i) v_i^T] (r, in) minimises ||W - W_r||_2 over
    rank-r matrices (Eckart-Young), with ||W - W_r||_2 = s_{r+1} (0 when r = min(in, out)). The
    bias is copied. Returns (module, error) where error is the spectral norm of W - U V computed
    from the factors actually stored (so it includes rounding; it equals s_{r+1} to ~1e-15
    relative). The layer keeps the dtype of ``linear``'s weight.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"low_rank: expected nn.Linear, got {type(linear).__name__}")
    out_features, in_features = linear.weight.shape
    if not isinstance(rank, int) or not 1 <= rank <= min(in_features, out_features):
        raise ValueError(f"low_rank: rank={rank!r} must be an integer between 1 and min(in, out) = "
                         f"{min(in_features, out_features)}")
    dtype = linear.weight.dtype
    W = _f64(linear.weight)
    U, s, Vt = _linalg("svd", W)
    root = cr.sqrt(s[:rank])
    module = nn.LowRankLinear(in_features, out_features, rank, bias=linear.bias is not None)
    module.U = nn.Parameter((U[:, :rank] * root).astype(dtype))
    module.V = nn.Parameter((cr.reshape(root, (-1, 1)) * Vt[:rank]).astype(dtype))
    if linear.bias is not None:
        module.bias = nn.Parameter(linear.bias.detach())
    residual = W - cr.matmul(_f64(module.U), _f64(module.V))
    error = float(_linalg("svd", residual)[1][0].item())
    return module, error

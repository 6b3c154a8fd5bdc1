"""Analysis: random ReLU layer statistics, activation/gradient statistics, RBF kernel features.

Built only on chainrule's public functions (``cr.randn``, ``cr.relu``, ``cr.mean``, ``cr.var``,
``cr.exp``, ``cr.matmul`` ...); the few scalar formulas use Python's ``math`` and ``statistics``.

* :func:`relu_layer_statistics` -- Monte Carlo check of the course's random-layer facts: for
  W (m x n) with i.i.d. N(0, 1) entries and a fixed x, each z_i = (W x)_i ~ N(0, ||x||^2), so
  P(z_i > 0) = 1/2, Var z_i = ||x||^2 and E relu(z_i) = ||x|| / sqrt(2 pi)
  (E max(0, z) = int_0^inf z e^{-z^2 / 2 s^2} / (s sqrt(2 pi)) dz = s / sqrt(2 pi)).
* :func:`activation_statistics` -- per leaf module: mean, std and fraction > 0 of its outputs and
  of the gradients flowing back into them (vanishing / exploding signals at initialisation).
* :func:`rbf_kernel` and :func:`rbf_feature_map` -- the Gaussian kernel and its explicit truncated
  Taylor feature map (formula in :func:`rbf_feature_map`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import chainrule as cr
from chainrule.engine.tensor import Tensor

__all__ = [
    "Statistic", "ReluLayerStatistics", "relu_layer_statistics",
    "ActivationRow", "ActivationStatistics", "activation_statistics",
    "rbf_kernel", "rbf_feature_map", "rbf_feature_dim",
]

_F64 = "float64"


def _as_f64(x: Any) -> Tensor:
    """A float64 Tensor (Tensors keep their graph: ``astype`` is differentiable).

    Python lists/tuples are converted element by element: ``cr.tensor([0.1], dtype="float64")``
    goes through float32 first (PyTorch's rule for Python floats, then the cast), losing digits.
    """
    if isinstance(x, Tensor):
        return x if x.dtype == _F64 else cr.astype(x, _F64)
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError("empty input")
        return cr.stack([_as_f64(v) for v in x])
    if isinstance(x, (int, float)):
        return cr.full((), float(x), dtype=_F64)
    return cr.tensor(x, dtype=_F64)


def _z_quantile(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    # two-sided normal quantile z_{1 - alpha/2} (1.959964 for 95%), from the standard library
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


# ====================================================================== random ReLU layer
@dataclass(frozen=True)
class Statistic:
    """One empirical statistic beside its theoretical value and a confidence interval."""

    name: str
    empirical: float
    theory: float
    ci_low: float
    ci_high: float
    stderr: float = float("nan")

    @property
    def theory_in_ci(self) -> bool:
        return self.ci_low <= self.theory <= self.ci_high

    @property
    def ci_width(self) -> float:
        return self.ci_high - self.ci_low

    @property
    def relative_error(self) -> float:
        """``|empirical - theory| / |theory|``."""
        return abs(self.empirical - self.theory) / abs(self.theory)

    def __str__(self) -> str:
        return (f"{self.name}: empirical {self.empirical:.6g}, theory {self.theory:.6g}, "
                f"CI [{self.ci_low:.6g}, {self.ci_high:.6g}], theory in CI: {self.theory_in_ci}")


@dataclass(frozen=True)
class ReluLayerStatistics:
    """The result of :func:`relu_layer_statistics`: three :class:`Statistic` and the setting.

    Iterating yields the statistics; ``str()`` is a table.
    """

    active_fraction: Statistic
    preactivation_variance: Statistic
    relu_mean: Statistic
    n: int
    m: int
    trials: int
    samples: int
    confidence: float
    x_norm: float

    @property
    def stats(self) -> tuple[Statistic, Statistic, Statistic]:
        return (self.active_fraction, self.preactivation_variance, self.relu_mean)

    def __iter__(self) -> Iterator[Statistic]:
        return iter(self.stats)

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> Statistic:
        return self.stats[i]

    @property
    def all_in_ci(self) -> bool:
        return all(s.theory_in_ci for s in self.stats)

    def __str__(self) -> str:
        pct = f"{100 * self.confidence:g}% CI"
        head = (f"random ReLU layer: W {self.m}x{self.n} ~ N(0, 1), ||x|| = {self.x_norm:.6g}, "
                f"{self.trials} trials ({self.samples} samples of (Wx)_i)")
        cols = ("statistic", "empirical", "theory", pct, "theory in CI")
        rows = [(s.name, f"{s.empirical:.6g}", f"{s.theory:.6g}",
                 f"[{s.ci_low:.6g}, {s.ci_high:.6g}]", "yes" if s.theory_in_ci else "NO")
                for s in self.stats]
        return head + "\n" + _table(cols, rows)


def _table(cols: tuple, rows: list) -> str:
    widths = [max(len(str(c)), *(len(str(r[k])) for r in rows)) if rows else len(str(c))
              for k, c in enumerate(cols)]
    line = lambda cells: "  ".join(str(c).rjust(w) if k else str(c).ljust(w)  # noqa: E731
                                   for k, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(cols), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


class _Moments:
    """Running count, mean and sum of squared deviations (Chan et al.'s parallel combination)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: Tensor) -> None:
        k = values.size
        mean_k = float(cr.mean(values))
        m2_k = float(cr.var(values)) * k
        delta = mean_k - self.mean
        total = self.n + k
        self.mean += delta * k / total
        self.m2 += m2_k + delta * delta * self.n * k / total
        self.n = total

    def sample_var(self) -> float:
        return self.m2 / (self.n - 1)


def relu_layer_statistics(x: Any, m: int, trials: int, seed: int = 0,
                          confidence: float = 0.95) -> ReluLayerStatistics:
    """Monte Carlo statistics of one random ReLU layer relu(W x), beside their theory.

    For each of ``trials`` independent draws of W (m x n, i.i.d. N(0, 1) entries, from
    ``cr.Generator(seed)``, float64), z = W x. The rows of W are independent, so the
    N = trials * m values z_i are i.i.d. N(0, ||x||^2) and all are pooled:

    ========================  =================  ================================================
    statistic                 theory             standard error of the estimate
    ========================  =================  ================================================
    fraction active (z_i>0)   1/2                sqrt(p (1 - p) / N)  (p the empirical fraction)
    Var (W x)_i               ||x||^2            sqrt(2 / (N - 1)) s^2  (s^2 the sample variance,
                                                 ddof=1; exact for normal data)
    mean relu((W x)_i)        ||x|| / sqrt(2pi)  s_r / sqrt(N)  (s_r the sample std of relu(z))
    ========================  =================  ================================================

    Each interval is empirical +- z_{1-alpha/2} * stderr (normal approximation, 1.96 at 95%).
    The draws are made in chunks of trials (bounded memory); the chunking does not change the
    random numbers used: the chunks are consecutive draws from one generator.
    """
    x = _as_f64(x).detach()
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty 1-D vector, got shape {x.shape}")
    if not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")
    if trials * m < 2:
        raise ValueError("need at least 2 samples (trials * m >= 2) for a variance")
    z_q = _z_quantile(confidence)
    n = x.shape[0]
    norm_sq = float(cr.sum(x * x))
    if norm_sq == 0.0:
        raise ValueError("x must be non-zero (all statistics are degenerate at x = 0)")
    gen = cr.Generator(seed)
    chunk = max(1, 4_000_000 // (m * n))  # about 32 MB of W per chunk

    active, pre, post = _Moments(), _Moments(), _Moments()
    with cr.no_grad():
        done = 0
        while done < trials:
            t = min(chunk, trials - done)
            W = cr.randn(t, m, n, generator=gen, dtype=_F64)
            z = cr.matmul(W, x)                       # (t, m): z[k, i] = (W_k x)_i
            active.add(cr.astype(z > 0, _F64))
            pre.add(z)
            post.add(cr.relu(z))
            done += t

    N = pre.n
    p = active.mean
    se_p = math.sqrt(p * (1.0 - p) / N)
    s2 = pre.sample_var()
    se_var = math.sqrt(2.0 / (N - 1)) * s2
    r = post.mean
    se_r = math.sqrt(post.sample_var() / N)

    def stat(name: str, value: float, theory: float, se: float) -> Statistic:
        return Statistic(name, value, theory, value - z_q * se, value + z_q * se, se)

    norm = math.sqrt(norm_sq)
    return ReluLayerStatistics(
        active_fraction=stat("fraction active", p, 0.5, se_p),
        preactivation_variance=stat("Var (Wx)_i", s2, norm_sq, se_var),
        relu_mean=stat("mean relu(Wx)_i", r, norm / math.sqrt(2.0 * math.pi), se_r),
        n=n, m=m, trials=trials, samples=N, confidence=confidence, x_norm=norm)


# ====================================================================== activations and gradients
@dataclass(frozen=True)
class ActivationRow:
    """Statistics of one leaf module's output (``act_*``) and of dLoss/d(output) (``grad_*``).

    std is the population std (ddof=0). ``act_frac_active`` and ``grad_frac_positive`` are the
    fractions of entries > 0; ``grad_frac_nonzero`` the fraction != 0 (a dead ReLU passes
    exactly 0).
    Gradient fields are NaN when no gradient reached that output.
    """

    name: str
    module: str
    shape: tuple
    act_mean: float
    act_std: float
    act_frac_active: float
    grad_mean: float
    grad_std: float
    grad_frac_positive: float
    grad_frac_nonzero: float


@dataclass
class ActivationStatistics:
    """Rows in call order (one per leaf-module call) and the loss; ``str()`` is a table."""

    rows: list[ActivationRow]
    loss: float
    loss_description: str
    outputs: list[Tensor] = field(default_factory=list, repr=False)

    def __iter__(self) -> Iterator[ActivationRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> ActivationRow:
        return self.rows[i]

    def __str__(self) -> str:
        cols = ("layer", "module", "shape", "act mean", "act std", "act >0",
                "grad mean", "grad std", "grad >0", "grad !=0")
        f = lambda v: f"{v:.4g}"  # noqa: E731
        rows = [(r.name or "(model)", r.module, "x".join(map(str, r.shape)),
                 f(r.act_mean), f(r.act_std),
                 f"{r.act_frac_active:.3f}", f(r.grad_mean), f(r.grad_std),
                 f"{r.grad_frac_positive:.3f}", f"{r.grad_frac_nonzero:.3f}") for r in self.rows]
        return f"loss = {self.loss:.6g} ({self.loss_description})\n" + _table(cols, rows)


def _moments(t: Tensor) -> tuple[float, float, float]:
    t = _as_f64(t)
    if t.size == 0:
        return float("nan"), float("nan"), float("nan")
    return (float(cr.mean(t)), float(cr.sqrt(cr.var(t))), float(cr.mean(cr.astype(t > 0, _F64))))


def _leaf_modules(model: "cr.nn.Module") -> list[tuple[str, "cr.nn.Module"]]:
    return [(name, mod) for name, mod in model.named_modules()
            if next(mod.children(), None) is None]


def activation_statistics(model: "cr.nn.Module", x: Any, loss_fn: Optional[Callable] = None,
                          target: Any = None) -> ActivationStatistics:
    """Per leaf module of ``model``: mean, std, fraction > 0 of its outputs and of their gradients.

    A forward hook on every leaf module (a module without children; the model itself if it has
    none) records each Tensor output and calls ``retain_grad()`` on it. Then one forward and one
    backward of the loss:

    * ``loss_fn is None``: loss = **sum** of the model's outputs, so the gradient arriving at the
      output is all ones (independent of the batch size);
    * ``target is None``: loss = ``loss_fn(out)``; otherwise ``loss_fn(out, target)``.

    ``x`` is copied into a fresh leaf that requires grad, so outputs that depend on no parameter
    (e.g. a first ``Flatten``) still get gradients. The hooks are removed afterwards (also when
    the forward or backward raises), and the parameters' ``.grad`` are restored to what they were,
    so the call leaves the model as it found it (modes are not changed: call ``model.eval()``
    first to measure without dropout). A module called twice gives two rows (``name#2``).
    """
    if not isinstance(model, cr.nn.Module):
        raise TypeError(f"model must be a chainrule nn.Module, got {type(model).__name__}")
    data = x.data if isinstance(x, Tensor) else cr.tensor(x).data
    x_in = Tensor(data.copy(), requires_grad=data.dtype.kind == "f")

    captured: list[tuple[str, "cr.nn.Module", Tensor]] = []
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(module, inputs, output):
            if isinstance(output, Tensor):
                calls[name] = calls.get(name, 0) + 1
                label = name if calls[name] == 1 else f"{name}#{calls[name]}"
                if output.requires_grad:
                    output.retain_grad()
                captured.append((label, module, output))
            return None
        return hook

    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    handles = []
    try:
        for name, module in _leaf_modules(model):
            handles.append(module.register_forward_hook(make_hook(name)))
        with cr.enable_grad():
            out = model(x_in)
            if loss_fn is None:
                loss, description = cr.sum(out), "sum of the outputs"
            elif target is None:
                loss = loss_fn(out)
                description = getattr(loss_fn, "__name__", type(loss_fn).__name__) + "(out)"
            else:
                loss = loss_fn(out, target)
                description = getattr(loss_fn, "__name__", type(loss_fn).__name__) + "(out, target)"
            if not isinstance(loss, Tensor) or loss.size != 1:
                raise ValueError(f"the loss must be a scalar Tensor, got "
                                 f"{getattr(loss, 'shape', type(loss).__name__)}")
            if loss.requires_grad:
                loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        for p, g in zip(params, saved_grads):
            p.grad = g

    rows = []
    with cr.no_grad():
        for label, module, output in captured:
            a_mean, a_std, a_pos = _moments(output.detach())
            if output.grad is not None:
                g = _as_f64(output.grad)
                g_mean, g_std, g_pos = _moments(g)
                nonzero = cr.astype(cr.not_equal(g, 0.0), _F64)
                g_nz = float(cr.mean(nonzero)) if g.size else float("nan")
            else:
                g_mean = g_std = g_pos = g_nz = float("nan")
            rows.append(ActivationRow(label, type(module).__name__, tuple(output.shape),
                                      a_mean, a_std, a_pos, g_mean, g_std, g_pos, g_nz))
    return ActivationStatistics(rows, float(loss), description, [o for _, _, o in captured])


# ====================================================================== RBF kernel
def _points(X: Any, name: str) -> Tensor:
    """(n, d) float64: a 1-D input is n points of dimension 1."""
    X = _as_f64(X)
    if X.ndim == 1:
        X = cr.reshape(X, (-1, 1))
    if X.ndim != 2:
        raise ValueError(f"{name} must be (n, d) (or 1-D: n points in R^1), got shape {X.shape}")
    return X


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not gamma > 0 or not math.isfinite(gamma):
        raise ValueError(f"gamma must be a positive finite number, got {gamma!r}")
    return gamma


def rbf_kernel(X: Any, Y: Any = None, gamma: float = 1.0) -> Tensor:
    """Gaussian (RBF) kernel matrix K[i, j] = exp(-gamma ||x_i - y_j||^2), float64 Tensor (n, m).

    X is (n, d), Y is (m, d) (default: X); a 1-D array is read as points in R^1. The squared
    distances are summed from the differences (no ||x||^2 + ||y||^2 - 2 x.y cancellation), which
    costs n*m*d memory; the result is differentiable in X and Y.
    """
    gamma = _check_gamma(gamma)
    X = _points(X, "X")
    Y = X if Y is None else _points(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same dimension d, "
                         f"got {X.shape[1]} and {Y.shape[1]}")
    diff = cr.expand_dims(X, 1) - cr.expand_dims(Y, 0)         # (n, m, d)
    return cr.exp(-gamma * cr.sum(diff * diff, axis=-1))


def _monomial_plan(d: int, degree: int) -> list[tuple[list[int], list[int], list[int]]]:
    """Per degree k = 1..degree: for each monomial (a non-decreasing index tuple i_1 <= ... <= i_k),
    the column of its parent (the tuple without i_k) in degree k-1, the new index j = i_k, and
    a_j, the new exponent of x_j (so a! = parent's a! * a_j)."""
    plan = []
    prev: list[tuple] = [()]
    for _ in range(degree):
        parents, last, count, cur = [], [], [], []
        for p_idx, tup in enumerate(prev):
            for j in range(tup[-1] if tup else 0, d):
                new = tup + (j,)
                parents.append(p_idx)
                last.append(j)
                count.append(new.count(j))
                cur.append(new)
        plan.append((parents, last, count))
        prev = cur
    return plan


def rbf_feature_dim(d: int, degree: int, mode: str = "monomial") -> int:
    """Length of psi(x): sum_k C(k + d - 1, k) monomials (= C(degree + d, d)),
    or sum_k d^k for ``mode="tensor"``."""
    if mode == "monomial":
        return math.comb(degree + d, d)
    if mode == "tensor":
        return sum(d ** k for k in range(degree + 1))
    raise ValueError(f"mode must be 'monomial' or 'tensor', got {mode!r}")


def rbf_feature_map(X: Any, degree: int, gamma: float = 1.0, mode: str = "monomial") -> Tensor:
    """Explicit truncated Taylor feature map psi of the RBF kernel: <psi(x), psi(y)> -> K(x, y).

    exp(-gamma ||x - y||^2) = exp(-gamma ||x||^2) exp(-gamma ||y||^2) exp(2 gamma x.y) and
    exp(2 gamma x.y) = sum_k (2 gamma)^k (x.y)^k / k!. Each (x.y)^k is an inner product of
    features, in one of two ways (``mode``):

    * ``"monomial"`` (default, compact): multinomial theorem,
      ``(x.y)^k = sum_{|a|=k} k!/a! x^a y^a`` over multi-indices a in N^d
      (a! = a_1! ... a_d!, x^a = x_1^a_1 ... x_d^a_d), hence::

          psi_a(x) = exp(-gamma ||x||^2) sqrt((2 gamma)^|a| / a!) x^a,   0 <= |a| <= degree,

      C(degree + d, d) features (816 for d = 3, degree = 15), ordered by degree, then by the
      non-decreasing index tuples (i_1 <= ... <= i_k) that name the monomials. For d = 1 this is
      psi_k(x) = exp(-gamma x^2) sqrt((2 gamma)^k / k!) x^k.
    * ``"tensor"``: (x.y)^k = <x^{(x)k}, y^{(x)k}> with the full tensor power (d^k entries, each
      monomial repeated), psi = exp(-gamma ||x||^2) [sqrt((2 gamma)^k / k!) vec(x^{(x)k})]_k;
      sum_k d^k features: only for small d and degree.

    Both give the same inner products: the truncation error is
    exp(-gamma(||x||^2 + ||y||^2)) sum_{k > degree} (2 gamma x.y)^k / k!, which falls faster than
    geometrically once degree > 2 gamma ``|x.y|``. X is (n, d) (1-D: n points in R^1); returns an
    (n, features) float64 Tensor, differentiable in X.
    """
    gamma = _check_gamma(gamma)
    if not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    if mode not in ("monomial", "tensor"):
        raise ValueError(f"mode must be 'monomial' or 'tensor', got {mode!r}")
    X = _points(X, "X")
    n, d = X.shape
    scale = cr.exp(-gamma * cr.sum(X * X, axis=1, keepdims=True))   # (n, 1)
    blocks = [cr.ones(n, 1, dtype=_F64)]                            # degree 0: the constant 1
    if mode == "monomial":
        # recursion on the degree: appending index j to a raises a_j by one, so
        # c_a x^a = c_parent x^parent * x_j * sqrt(2 gamma / a_j),
        # with c_a = sqrt((2 gamma)^|a| / a!)
        # (the exponents a_j are exact int64; no float list goes through float32)
        current = blocks[0]
        root = math.sqrt(2.0 * gamma)
        for parents, last, count in _monomial_plan(d, degree):
            step = root / cr.sqrt(cr.astype(cr.tensor(count), _F64))
            current = current[:, parents] * X[:, last] * step
            blocks.append(current)
    else:
        current = blocks[0]
        for k in range(1, degree + 1):
            outer = cr.expand_dims(current, 2) * cr.expand_dims(X, 1)
            current = cr.reshape(outer, (n, -1))                   # (n, d^k)
            blocks.append(current * math.sqrt((2.0 * gamma) ** k / math.factorial(k)))
    return scale * cr.concatenate(blocks, axis=1)

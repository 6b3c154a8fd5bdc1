"""Op-info rows of issue 12's losses ops (see ``opinfo.py`` for what a row holds).

The losses are composites: each row covers the primitives it runs through. Rows whose loss has
a kink (l1 at input == target, a hinge at its margin) are first order, their samples kept away
from it; the smooth ones (smooth L1 and Huber away from |d| = beta, KL, Poisson, the cross
entropies) are checked to second order.
"""

from __future__ import annotations

import numpy as np
from scipy import special

import chainrule as cr
from chainrule.testing.opinfo import OpInfo, cases

# fixed targets and class weights of the rows below
_SIGNS = np.array([1.0, -1.0, -1.0, 1.0, -1.0])
_CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])
_TARGET_IGNORED = np.array([2, -100, 3, 0, 1])
_TARGET_SPATIAL = np.array([[0, 3], [-100, 1]])


# ------------------------------------------------------------------ samplers
def _apart(rng, shape, low=0.1, high=1.5):
    """Offsets of size in [low, high] with random signs (kept away from a kink at 0)."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def _pair_apart(rng):
    """(input, target) pairs whose differences keep 0.1 from 0."""
    out = []
    for shape in ((3, 4), (), (0, 2)):
        x = rng.standard_normal(shape)
        out.append((x, x + _apart(rng, shape)))
    return out


def _pair_two_sided(rng, kink=0.5):
    """(input, target) pairs whose differences lie both inside (0.05..0.8 kink) and outside
    (1.2 kink..3 kink) |d| = kink: both branches of smooth L1 / Huber, none near the seam."""
    out = []
    for shape in ((3, 4), (5,)):
        x = rng.standard_normal(shape)
        inside = rng.uniform(0.05, 0.8, shape) * kink
        outside = rng.uniform(1.2, 3.0, shape) * kink
        size = np.where(rng.random(shape) < 0.5, inside, outside)
        out.append((x, x + size * rng.choice([-1.0, 1.0], shape)))
    return out


def _weighted_pair(rng):
    x = rng.standard_normal((3, 4))
    return [(x, x + _apart(rng, (3, 4)), rng.uniform(0.2, 2.0, (3, 4)))]


def _huber_weighted(rng):
    (x, y), = _pair_two_sided(rng, 0.7)[:1]
    return [(x, y, rng.uniform(0.2, 2.0, x.shape))]


def _log_probs_and_probs(rng):
    out = []
    for shape in ((3, 4), (2, 3, 2)):
        log_p = special.log_softmax(rng.standard_normal(shape), axis=-1)
        out.append((log_p, rng.uniform(0.05, 1.0, shape)))
    return out


def _ranking(rng, margin=0.2):
    """(x1, x2, y) with -y (x1 - x2) + margin at least 0.1 from 0."""
    x2 = rng.standard_normal(5)
    hinge = _apart(rng, 5, 0.1, 1.0)
    x1 = x2 - (hinge - margin) / _SIGNS
    return [(x1, x2, _SIGNS.copy())]


def _cosine_pairs(rng, margin=0.2):
    """(x1, x2) rows (5, 3) whose cosines keep 0.1 from ``margin`` (the hinge of y = -1)."""
    x1 = rng.standard_normal((5, 3))
    x2 = rng.standard_normal((5, 3))
    for i in range(5):
        while abs(_np_cos(x1[i], x2[i]) - margin) < 0.1:
            x2[i] = rng.standard_normal(3)
    return [(x1, x2)]


def _triplets(rng, margin=1.0, p=2.0, swap=False):
    """(anchor, positive, negative) (4, 3) whose hinges keep 0.1 from 0."""
    a, pos, neg = (rng.standard_normal((4, 3)) for _ in range(3))
    for i in range(4):
        while abs(_np_triplet(a[i], pos[i], neg[i], margin, p, swap)) < 0.1:
            neg[i] = rng.standard_normal(3) * 2
    return [(a, pos, neg)]


def _counts(rng):
    """(log rate, count) pairs."""
    return [(rng.standard_normal((3, 4)), rng.uniform(0.0, 4.0, (3, 4))),
            (rng.standard_normal(()), rng.uniform(0.0, 4.0, ()))]


def _rates_and_counts(rng):
    """(rate, count) with counts both below 1 and above (Stirling's term), none near 1."""
    shape = (3, 4)
    low = rng.uniform(0.1, 0.8, shape)
    high = rng.uniform(1.3, 5.0, shape)
    return [(rng.uniform(0.2, 3.0, shape), np.where(rng.random(shape) < 0.4, low, high))]


def _probabilities(rng, shape, axis):
    return special.softmax(rng.standard_normal(shape), axis=axis)


# ------------------------------------------------------------------ references
def _np_cos(x1, x2, axis=-1):
    eps = 1e-12
    dot = (x1 * x2).sum(axis=axis)
    return dot / np.sqrt(((x1 * x1).sum(axis=axis) + eps) * ((x2 * x2).sum(axis=axis) + eps))


def _np_distance(x1, x2, p, eps=1e-6):
    return np.linalg.norm(x1 - x2 + eps, ord=p, axis=-1)


def _np_triplet(a, pos, neg, margin, p, swap):
    d_neg = _np_distance(a, neg, p)
    if swap:
        d_neg = np.minimum(d_neg, _np_distance(pos, neg, p))
    return margin + _np_distance(a, pos, p) - d_neg


def _mean(values):
    """The mean; nan for no element, without NumPy's warning (PyTorch's value)."""
    return values.mean() if values.size else np.nan


def _ref_smooth_l1(x, y, beta):
    d = np.abs(x - y)
    return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _ref_huber(x, y, delta):
    d = np.abs(x - y)
    return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


def _ref_poisson_full(rate, k, eps=1e-8):
    loss = rate - k * np.log(rate + eps)
    stirling = k * np.log(k) - k + 0.5 * np.log(2 * np.pi * k)
    return (loss + np.where(k > 1, stirling, 0.0)).mean()


def _ref_ce_probs(z, q, weight=None, smoothing=0.0, axis=0):
    """Per-sample -sum_c w_c q'_c log softmax(z)_c along ``axis``."""
    n_classes = z.shape[axis]
    q = q * (1 - smoothing) + smoothing / n_classes
    shape = [1] * z.ndim
    shape[axis] = n_classes
    w = np.ones(shape) if weight is None else weight.reshape(shape)
    return -(w * q * special.log_softmax(z, axis=axis)).sum(axis=axis)


def _ref_ce_indices(z, target, weight, smoothing, ignore=-100):
    """PyTorch's weighted mean of the smoothed cross entropy, class axis 1."""
    log_p = np.moveaxis(special.log_softmax(z, axis=1), 1, -1)  # (N, ..., C)
    keep = target != ignore
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(log_p, safe[..., None], -1)[..., 0]
    nll = -weight[safe] * picked
    smooth = -(log_p * weight).sum(-1) / z.shape[1]
    total = np.where(keep, (1 - smoothing) * nll + smoothing * smooth, 0.0).sum()
    return total / np.where(keep, weight[safe], 0.0).sum()


def _ref_nll(x, target, weight, ignore=-100):
    keep = target != ignore
    safe = np.where(keep, target, 0)
    w = np.where(keep, weight[safe], 0.0)
    return -(w * x[np.arange(len(target)), safe]).sum() / w.sum()



# fmt: off
ROWS: list[OpInfo] = [
    OpInfo("l1_loss", cr.l1_loss, _pair_apart, lambda x, y: _mean(np.abs(x - y)),
           lambda t, x, y: t.nn.functional.l1_loss(x, y), covers=("abs", "sub"), order=1),
    OpInfo("l1_loss_weighted", lambda x, y, w: cr.l1_loss(x, y, weight=w), _weighted_pair,
           lambda x, y, w: (w * np.abs(x - y)).sum() / w.sum(),
           lambda t, x, y, w: t.nn.functional.l1_loss(x, y, weight=w),
           covers=("abs", "mul", "div"), order=1, differentiable=(0, 1)),
    OpInfo("smooth_l1_loss", lambda x, y: cr.smooth_l1_loss(x, y, reduction="none", beta=0.5),
           _pair_two_sided, lambda x, y: _ref_smooth_l1(x, y, 0.5),
           lambda t, x, y: t.nn.functional.smooth_l1_loss(x, y, reduction="none", beta=0.5),
           covers=("where", "abs")),
    OpInfo("huber_loss", lambda x, y: cr.huber_loss(x, y, reduction="sum", delta=0.7),
           lambda rng: _pair_two_sided(rng, 0.7), lambda x, y: _ref_huber(x, y, 0.7).sum(),
           lambda t, x, y: t.nn.functional.huber_loss(x, y, reduction="sum", delta=0.7),
           covers=("where", "abs")),
    OpInfo("huber_loss_weighted", lambda x, y, w: cr.huber_loss(x, y, delta=0.7, weight=w),
           _huber_weighted, lambda x, y, w: (w * _ref_huber(x, y, 0.7)).mean(),
           lambda t, x, y, w: t.nn.functional.huber_loss(x, y, delta=0.7, weight=w),
           covers=("where", "mul"), differentiable=(0, 1)),
    OpInfo("kl_div", lambda x, q: cr.kl_div(x, q, reduction="batchmean"), _log_probs_and_probs,
           lambda x, q: (q * (np.log(q) - x)).sum() / x.shape[0],
           lambda t, x, q: t.nn.functional.kl_div(x, q, reduction="batchmean"),
           covers=("log", "where", "mul")),
    OpInfo("kl_div_log_target",
           lambda x, lq: cr.kl_div(x, lq, reduction="none", log_target=True),
           lambda rng: [(x, np.log(q)) for x, q in _log_probs_and_probs(rng)],
           lambda x, lq: np.exp(lq) * (lq - x),
           lambda t, x, lq: t.nn.functional.kl_div(x, lq, reduction="none", log_target=True),
           covers=("exp", "mul")),
    OpInfo("margin_ranking_loss", lambda a, b, y: cr.margin_ranking_loss(a, b, y, margin=0.2),
           _ranking, lambda a, b, y: np.maximum(-y * (a - b) + 0.2, 0).mean(),
           lambda t, a, b, y: t.nn.functional.margin_ranking_loss(a, b, y, margin=0.2),
           covers=("where", "mul"), order=1),
    OpInfo("cosine_embedding_loss",
           lambda a, b: cr.cosine_embedding_loss(a, b, _SIGNS, margin=0.2), _cosine_pairs,
           lambda a, b: np.where(_SIGNS == 1, 1 - _np_cos(a, b),
                                 np.maximum(_np_cos(a, b) - 0.2, 0)).mean(),
           lambda t, a, b: t.nn.functional.cosine_embedding_loss(a, b, t.tensor(_SIGNS),
                                                                 margin=0.2),
           covers=("sqrt", "sum", "where"), order=1),
    OpInfo("triplet_margin_loss", cr.triplet_margin_loss, _triplets,
           lambda a, p, n: np.maximum(_np_triplet(a, p, n, 1.0, 2, False), 0).mean(),
           lambda t, a, p, n: t.nn.functional.triplet_margin_loss(a, p, n),
           covers=("sqrt", "sum", "where"), order=1),
    OpInfo("triplet_margin_loss_swap_p3",
           lambda a, p, n: cr.triplet_margin_loss(a, p, n, margin=0.5, p=3, swap=True,
                                                  reduction="none"),
           lambda rng: _triplets(rng, 0.5, 3, True),
           lambda a, p, n: np.maximum(_np_triplet(a, p, n, 0.5, 3, True), 0),
           lambda t, a, p, n: t.nn.functional.triplet_margin_loss(a, p, n, margin=0.5, p=3,
                                                                  swap=True, reduction="none"),
           covers=("pow", "minimum", "where"), order=1),
    OpInfo("poisson_nll_loss", cr.poisson_nll_loss, _counts,
           lambda x, k: (np.exp(x) - k * x).mean(),
           lambda t, x, k: t.nn.functional.poisson_nll_loss(x, k), covers=("exp", "mul")),
    OpInfo("poisson_nll_loss_full",
           lambda x, k: cr.poisson_nll_loss(x, k, log_input=False, full=True),
           _rates_and_counts, _ref_poisson_full,
           lambda t, x, k: t.nn.functional.poisson_nll_loss(x, k, log_input=False, full=True),
           covers=("log", "where")),
    # cross entropy and nll: unbatched input, probabilities with weights and smoothing, the
    # weighted mean over the targets not ignored
    OpInfo("cross_entropy_unbatched", lambda z: cr.cross_entropy(z, 2), cases(((4,),)),
           lambda z: -special.log_softmax(z)[2],
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(2)),
           covers=("softmax_cross_entropy", "reshape")),
    OpInfo("cross_entropy_unbatched_probs",
           lambda z, q: cr.cross_entropy(z, q, weight=_CLASS_WEIGHT, label_smoothing=0.1),
           lambda rng: [(rng.standard_normal(4), _probabilities(rng, 4, 0))],
           lambda z, q: _ref_ce_probs(z, q, _CLASS_WEIGHT, 0.1),
           lambda t, z, q: t.nn.functional.cross_entropy(z, q, weight=t.tensor(_CLASS_WEIGHT),
                                                         label_smoothing=0.1),
           covers=("log_softmax", "reshape")),
    OpInfo("cross_entropy_probs_weighted_smoothed",
           lambda z, q: cr.cross_entropy(z, q, weight=_CLASS_WEIGHT, label_smoothing=0.2,
                                         reduction="none"),
           lambda rng: [(rng.standard_normal((2, 4, 3)), _probabilities(rng, (2, 4, 3), 1))],
           lambda z, q: _ref_ce_probs(z, q, _CLASS_WEIGHT, 0.2, axis=1),
           lambda t, z, q: t.nn.functional.cross_entropy(z, q, weight=t.tensor(_CLASS_WEIGHT),
                                                         label_smoothing=0.2, reduction="none"),
           covers=("log_softmax",)),
    OpInfo("cross_entropy_ignore_weighted_smoothed",
           lambda z: cr.cross_entropy(z, _TARGET_IGNORED, weight=_CLASS_WEIGHT,
                                      label_smoothing=0.3),
           cases(((5, 4),)),
           lambda z: _ref_ce_indices(z, _TARGET_IGNORED, _CLASS_WEIGHT, 0.3),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET_IGNORED),
                                                      weight=t.tensor(_CLASS_WEIGHT),
                                                      label_smoothing=0.3),
           covers=("softmax_cross_entropy", "log_softmax")),
    OpInfo("cross_entropy_spatial_ignore_weighted",
           lambda z: cr.cross_entropy(z, _TARGET_SPATIAL, weight=_CLASS_WEIGHT),
           cases(((2, 4, 2),)),
           lambda z: _ref_ce_indices(z, _TARGET_SPATIAL, _CLASS_WEIGHT, 0.0),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET_SPATIAL),
                                                      weight=t.tensor(_CLASS_WEIGHT)),
           covers=("softmax_cross_entropy",)),
    OpInfo("nll_loss_weighted_ignore",
           lambda x: cr.nll_loss(x, _TARGET_IGNORED, weight=_CLASS_WEIGHT), cases(((5, 4),)),
           lambda x: _ref_nll(x, _TARGET_IGNORED, _CLASS_WEIGHT),
           lambda t, x: t.nn.functional.nll_loss(x, t.tensor(_TARGET_IGNORED),
                                                 weight=t.tensor(_CLASS_WEIGHT)),
           covers=("mul", "sum")),
    OpInfo("nll_loss_unbatched", lambda x: cr.nll_loss(x, 1, reduction="none"), cases(((4,),)),
           lambda x: -x[1], lambda t, x: t.nn.functional.nll_loss(x, t.tensor(1),
                                                                  reduction="none"),
           covers=("mul", "sum", "reshape")),
]
# fmt: on

"""Issue 12's losses beyond their op-info rows: every option against torch.nn.functional
(values and gradients), the conventions at kinks, edge cases (empty batches, every target
ignored, zero targets) and the errors on bad arguments."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine.errors import ShapeError

torch = pytest.importorskip("torch")
F = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]


def _run_both(ours, theirs, arrays, grad=None, **options):
    """(our value, torch's value, our grads, torch's grads) of ``ours(*arrays, **options)`` and
    ``theirs(...)``; the inputs at positions ``grad`` (default: all) are differentiated through
    one backward pass with a random projection."""
    grad = range(len(arrays)) if grad is None else grad
    mine = [cr.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    theirs_in = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    out = ours(*mine, **options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")  # kl_div's
        expected = theirs(*theirs_in, **options)
    projection = np.random.default_rng(5).standard_normal(out.shape)
    cr.sum(out * projection).backward()
    (expected * torch.tensor(projection)).sum().backward()
    return out, expected, [mine[i].grad for i in grad], [theirs_in[i].grad for i in grad]


def _assert_matches_torch(ours, theirs, arrays, grad=None, rtol=1e-9, **options):
    out, expected, got, want = _run_both(ours, theirs, arrays, grad, **options)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=1e-12)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=rtol, atol=1e-12)


def _weighted(fn):
    """fn with its third positional input passed as ``weight=`` (torch's l1/huber put legacy
    arguments before it)."""
    return lambda x, y, w, **options: fn(x, y, weight=w, **options)


# ------------------------------------------------------------------ elementwise losses
_pairs = st.tuples(st.sampled_from([(3, 4), (5,), (), (2, 1, 3)]),
                   st.integers(0, 2 ** 31 - 1))


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 2, rng.standard_normal(shape) * 2


@settings(max_examples=15, deadline=None)
@given(_pairs, st.sampled_from(REDUCTIONS), st.floats(0.1, 2.0))
def test_pointwise_losses_match_torch(shape_seed, reduction, width):
    x, y = _pair(*shape_seed)
    _assert_matches_torch(cr.l1_loss, F.l1_loss, [x, y], reduction=reduction)
    _assert_matches_torch(cr.smooth_l1_loss, F.smooth_l1_loss, [x, y], reduction=reduction,
                          beta=width)
    _assert_matches_torch(cr.huber_loss, F.huber_loss, [x, y], reduction=reduction,
                          delta=width)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_l1_and_huber_match_torch(reduction):
    rng = np.random.default_rng(1)
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0, 2, (3, 4))
    # l1's weighted mean divides by sum(w), huber's by the count: torch's two rules
    _assert_matches_torch(_weighted(cr.l1_loss), _weighted(F.l1_loss), [x, y, w], grad=(0, 1),
                          reduction=reduction)
    _assert_matches_torch(_weighted(cr.huber_loss), _weighted(F.huber_loss), [x, y, w],
                          grad=(0, 1), reduction=reduction, delta=0.5)


def test_weighted_l1_mean_divides_by_the_weight_sum():
    x, y, w = np.array([1.0, 2.0]), np.array([0.0, 0.0]), np.array([3.0, 1.0])
    assert cr.l1_loss(x, y, weight=w).item() == pytest.approx((3 * 1 + 1 * 2) / 4)
    assert cr.huber_loss(x, y, weight=w, delta=5.0).item() == pytest.approx((3 * 0.5 + 2) / 2)


def test_smooth_l1_with_beta_zero_is_l1():
    x, y = _pair((3, 4), 2)
    np.testing.assert_array_equal(cr.smooth_l1_loss(x, y, beta=0.0).numpy(),
                                  cr.l1_loss(x, y).numpy())
    _assert_matches_torch(cr.smooth_l1_loss, F.smooth_l1_loss, [x, y], beta=0.0)


def test_huber_is_delta_times_smooth_l1():
    x, y = _pair((4, 3), 3)
    np.testing.assert_allclose(cr.huber_loss(x, y, delta=0.3).numpy(),
                               0.3 * cr.smooth_l1_loss(x, y, beta=0.3).numpy(), rtol=1e-12)


def test_gradients_at_the_kinks_follow_torch():
    # l1 at input == target: 0; smooth L1 / Huber exactly at |d| = beta / delta; hinges exactly
    # at their margin: the active side's gradient (clamp_min's)
    x, y = np.array([1.0, 2.0, 0.0, -1.0]), np.array([0.5, 2.5, 0.0, -1.0])
    _assert_matches_torch(cr.l1_loss, F.l1_loss, [x, y])
    _assert_matches_torch(cr.smooth_l1_loss, F.smooth_l1_loss, [x, y], beta=0.5)
    _assert_matches_torch(cr.huber_loss, F.huber_loss, [x, y], delta=0.5)
    a, b, sign = np.array([1.0, 2.0]), np.array([0.5, 2.5]), np.array([1.0, -1.0])
    _assert_matches_torch(cr.margin_ranking_loss, F.margin_ranking_loss, [a, b, sign],
                          margin=0.5)
    anchor, positive, negative = np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.array([[6.0, 8.0]])
    _assert_matches_torch(cr.triplet_margin_loss, F.triplet_margin_loss,
                          [anchor, positive, negative], margin=5.0, eps=0.0)


def test_l1_gradient_is_zero_where_input_equals_target():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    cr.l1_loss(x, np.array([1.0, 0.0, 5.0]), reduction="sum").backward()
    assert x.grad.tolist() == [0.0, 1.0, -1.0]


# ------------------------------------------------------------------ kl_div and poisson
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    rng = np.random.default_rng(4)
    log_p = np.log(rng.dirichlet(np.ones(5), 3))
    q = rng.dirichlet(np.ones(5), 3)
    target = np.log(q) if log_target else q
    _assert_matches_torch(cr.kl_div, F.kl_div, [log_p, target], reduction=reduction,
                          log_target=log_target)


def test_kl_div_zero_target_gives_zero_terms_and_finite_input_gradient():
    log_p = cr.tensor(np.log([[0.2, 0.3, 0.5]]), requires_grad=True)
    q = np.array([[0.0, 0.4, 0.6]])
    loss = cr.kl_div(log_p, q, reduction="none")
    assert loss.numpy()[0, 0] == 0.0
    cr.sum(loss).backward()
    np.testing.assert_allclose(log_p.grad.numpy(), -q)
    _assert_matches_torch(cr.kl_div, F.kl_div, [np.log([[0.2, 0.3, 0.5]]), q], grad=(0,),
                          reduction="batchmean")


def test_kl_div_batchmean_divides_by_the_batch_and_is_the_sum_for_0d():
    log_p, q = np.log(np.full((4, 2), 0.5)), np.array([[0.1, 0.9]] * 4)
    total = (q * (np.log(q) - log_p)).sum()
    assert cr.kl_div(log_p, q, reduction="batchmean").item() == pytest.approx(total / 4)
    assert cr.kl_div(log_p, q, reduction="mean").item() == pytest.approx(total / 8)
    assert cr.kl_div(np.array(-0.5), np.array(0.3), reduction="batchmean").item() == (
        pytest.approx(0.3 * (np.log(0.3) + 0.5)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input, full", [(True, False), (True, True), (False, False),
                                             (False, True)])
def test_poisson_nll_loss_matches_torch(reduction, log_input, full):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4)) if log_input else rng.uniform(0.1, 3, (3, 4))
    counts = rng.uniform(1.1, 6, (3, 4))  # the target's gradient: Stirling's term is smooth there
    counts[0, :2] = [0.5, 0.0]            # the masked term below 1: the input's gradient only
    _assert_matches_torch(cr.poisson_nll_loss, F.poisson_nll_loss, [x, counts], grad=(0,),
                          reduction=reduction, log_input=log_input, full=full)
    _assert_matches_torch(cr.poisson_nll_loss, F.poisson_nll_loss, [x[1:], counts[1:]],
                          reduction=reduction, log_input=log_input, full=full)


def test_poisson_full_target_gradient_is_finite_at_zero_counts():
    # PyTorch's is nan at target = 0 (log 0 in the masked Stirling term); here it is -input
    counts = cr.tensor(np.array([0.0, 0.5, 3.0]), requires_grad=True)
    cr.poisson_nll_loss(np.array([0.1, 0.2, 0.3]), counts, full=True, reduction="sum").backward()
    grad = counts.grad.numpy()
    np.testing.assert_allclose(grad[:2], [-0.1, -0.2])
    assert np.isfinite(grad).all()


# ------------------------------------------------------------------ ranking losses
@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.sampled_from(REDUCTIONS), st.floats(-0.5, 1.0))
def test_margin_ranking_and_cosine_embedding_match_torch(seed, reduction, margin):
    rng = np.random.default_rng(seed)
    sign = rng.choice([-1.0, 1.0], 6)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    _assert_matches_torch(cr.margin_ranking_loss, F.margin_ranking_loss, [a, b, sign],
                          reduction=reduction, margin=margin)
    x1, x2 = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    _assert_matches_torch(cr.cosine_embedding_loss, F.cosine_embedding_loss, [x1, x2, sign],
                          grad=(0, 1), reduction=reduction, margin=margin)
    _assert_matches_torch(cr.cosine_embedding_loss, F.cosine_embedding_loss,
                          [x1[0], x2[0], sign[0]], grad=(0, 1), reduction=reduction,
                          margin=margin)


def test_margin_ranking_broadcasts_inputs_of_one_rank():
    a, b, sign = np.array([[1.0, 2.0, 3.0]]), np.array([[0.5], [2.5]]), np.array([[1.0, -1.0, 1.0]])
    _assert_matches_torch(cr.margin_ranking_loss, F.margin_ranking_loss, [a, b, sign],
                          reduction="none", margin=0.1)


def test_cosine_embedding_other_targets_and_zero_vectors():
    x1 = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    x2 = np.array([[1.0, 1.0], [1.0, 2.0], [2.0, 2.0]])
    loss = cr.cosine_embedding_loss(x1, x2, np.array([0, 1, -1]), reduction="none")
    # target 0 counts for nothing; a zero vector has cos 0 (the eps), not nan
    np.testing.assert_allclose(loss.numpy(), [0.0, 1.0, 1.0])
    # the zero vector's gradient is ~1e6 (1 / sqrt(eps)): summed in another order than torch's
    _assert_matches_torch(cr.cosine_embedding_loss, F.cosine_embedding_loss,
                          [x1, x2, np.array([0.0, 1.0, -1.0])], grad=(0, 1), rtol=1e-7,
                          reduction="none")


@pytest.mark.parametrize("p", [1, 1.5, 2, 3, np.inf])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_loss_matches_torch(p, swap):
    rng = np.random.default_rng(8)
    a, pos, neg = (rng.standard_normal((5, 3)) for _ in range(3))
    for reduction in REDUCTIONS:
        _assert_matches_torch(cr.triplet_margin_loss, F.triplet_margin_loss, [a, pos, neg],
                              margin=1.2, p=p, swap=swap, reduction=reduction)
    _assert_matches_torch(cr.triplet_margin_loss, F.triplet_margin_loss, [a[0], pos[0], neg[0]],
                          margin=1.2, p=p, swap=swap)


def test_triplet_zero_distance_has_a_zero_gradient():
    # d(a, n) = 0 with eps = 0: the norm's subgradient 0, as torch, not 0 / 0
    anchor, positive = np.zeros((1, 2)), np.array([[3.0, 4.0]])
    out, expected, got, want = _run_both(cr.triplet_margin_loss, F.triplet_margin_loss,
                                         [anchor, positive, anchor.copy()], margin=6.0, eps=0.0)
    assert out.item() == pytest.approx(11.0)
    for g, w in zip(got, want):
        assert np.isfinite(g.numpy()).all()
        np.testing.assert_allclose(g.numpy(), w.numpy())


# ------------------------------------------------------------------ cross entropy and nll
_Z = np.random.default_rng(9).standard_normal((5, 4))
_Y = np.array([2, -100, 3, 0, 1])
_W = np.array([0.5, 2.0, 1.0, 1.5])
_Q = np.random.default_rng(10).dirichlet(np.ones(4), 5)


def _torch_options(options):
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


def _ce_both(z, target, grad_target=False, **options):
    arrays = [z, target]
    grad = (0, 1) if grad_target else (0,)

    def ours(a, b, **kw):
        return cr.cross_entropy(a, b, **kw)

    def theirs(a, b, **kw):
        return F.cross_entropy(a, b, **_torch_options(kw))

    _assert_matches_torch(ours, theirs, arrays, grad=grad, **options)


_CE_OPTIONS = [{}, {"weight": _W}, {"label_smoothing": 0.25},
               {"weight": _W, "label_smoothing": 0.25}]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", _CE_OPTIONS)
def test_cross_entropy_every_combination_matches_torch(reduction, options):
    _ce_both(_Z, _Y, reduction=reduction, **options)                           # indices, ignored
    _ce_both(_Z, np.array([2, 1, 3, 0, 1]), reduction=reduction, ignore_index=1,
             **options)                                                      # another ignored
    _ce_both(_Z, _Q, grad_target=True, reduction=reduction, **options)         # probabilities
    _ce_both(_Z[0], np.array(2), reduction=reduction, **options)               # unbatched
    _ce_both(_Z[0], np.array(-100), reduction=reduction, **options)            # unbatched, ignored
    _ce_both(_Z[0], _Q[0], grad_target=True, reduction=reduction, **options)   # unbatched probs
    z = np.random.default_rng(11).standard_normal((2, 4, 3))
    q = np.random.default_rng(12).dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1)
    _ce_both(z, np.array([[0, -100, 3], [1, 1, 2]]), reduction=reduction, **options)  # spatial
    _ce_both(z, q, grad_target=True, reduction=reduction, **options)


def test_cross_entropy_weighted_mean_uses_the_weights_of_the_targets_not_ignored():
    z = np.zeros((3, 2))  # every loss is log 2
    loss = cr.cross_entropy(z, np.array([0, 1, -100]), weight=np.array([1.0, 3.0]))
    assert loss.item() == pytest.approx((1 * np.log(2) + 3 * np.log(2)) / (1 + 3))


def test_cross_entropy_unbatched_takes_python_and_numpy_ints():
    expected = F.cross_entropy(torch.tensor(_Z[0]), torch.tensor(3)).item()
    for target in (3, np.int64(3), np.int32(3), cr.tensor(3)):
        loss = cr.cross_entropy(_Z[0], target)
        assert loss.shape == ()
        assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert cr.cross_entropy(_Z[0], 3, reduction="none").shape == ()
    assert cr.nll_loss(_Z[0], 3).item() == pytest.approx(-_Z[0, 3])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, _W])
def test_nll_loss_weights_and_ignore_index_match_torch(reduction, weight):
    log_p = np.log(np.random.default_rng(13).dirichlet(np.ones(4), 5))
    options = {"reduction": reduction, "weight": weight}

    def theirs(x, y, **kw):
        return F.nll_loss(x, y, **_torch_options({k: v for k, v in kw.items() if v is not None}))

    for target, ignore in ((_Y, -100), (np.array([2, 1, 3, 2, 0]), 2), (np.array(1), -100),
                           (np.array(-100), -100)):
        x = log_p if target.ndim else log_p[0]
        _assert_matches_torch(cr.nll_loss, theirs, [x, target], grad=(0,), ignore_index=ignore,
                              **options)


def test_every_target_ignored_gives_nan_mean_and_zero_sum():
    for fn in (cr.cross_entropy, cr.nll_loss):
        target = np.array([-100, -100])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nan without NumPy's 0/0 warning
            assert np.isnan(fn(_Z[:2], target).item())
            assert np.isnan(fn(_Z[0], -100).item())
        assert fn(_Z[:2], target, reduction="sum").item() == 0.0


def test_empty_batches_give_nan_means():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(cr.cross_entropy(_Z[:0], _Q[:0]).item())
        assert np.isnan(cr.cross_entropy(_Z[:0], _Y[:0]).item())
        assert np.isnan(cr.l1_loss(np.zeros((0, 3)), np.zeros((0, 3))).item())
        assert np.isnan(cr.kl_div(np.zeros((0, 3)), np.zeros((0, 3)), reduction="batchmean"
                                  ).item())
    assert cr.huber_loss(np.zeros((0, 3)), np.zeros((0, 3)), reduction="sum").item() == 0.0


def test_float32_stays_float32_with_float64_weights_and_targets():
    z = cr.tensor(_Z.astype(np.float32))
    assert cr.cross_entropy(z, _Q, weight=_W, label_smoothing=0.1).dtype == np.float32
    assert cr.cross_entropy(z, _Y, weight=_W).dtype == np.float32
    assert cr.cross_entropy(z[0], _Q[0], weight=_W).dtype == np.float32
    assert cr.l1_loss(z, _Z, weight=np.ones((5, 4))).dtype == np.float32
    assert cr.kl_div(z, _Q, reduction="batchmean").dtype == np.float32
    assert cr.margin_ranking_loss(z[:, 0], _Z[:, 1], np.ones(5)).dtype == np.float32
    assert cr.cosine_embedding_loss(z, _Z, np.ones(5)).dtype == np.float32
    assert cr.triplet_margin_loss(z, _Z, _Z[::-1].copy()).dtype == np.float32
    assert cr.poisson_nll_loss(z, np.abs(_Z), full=True).dtype == np.float32


def test_integer_inputs_become_float32():
    x, y = np.arange(6).reshape(2, 3), np.ones((2, 3), np.int64)
    for fn in (cr.l1_loss, cr.smooth_l1_loss, cr.huber_loss, cr.poisson_nll_loss):
        out = fn(x, y)
        assert out.dtype == np.float32
        assert np.isfinite(out.item())


def test_new_losses_run_on_array_api_strict():
    pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((3, 4)), rng.uniform(0.1, 1, (3, 4))
    calls = [
        lambda d: cr.smooth_l1_loss(d(x), d(y), beta=0.5),
        lambda d: cr.kl_div(d(np.log(y)), d(y), reduction="batchmean"),
        lambda d: cr.cross_entropy(d(x[0]), 1, weight=_W, label_smoothing=0.1),
        lambda d: cr.cross_entropy(d(x), d(_Q[:3]), weight=_W),
        lambda d: cr.nll_loss(d(x), np.array([1, -100, 3]), weight=_W),
        lambda d: cr.cosine_embedding_loss(d(x), d(y), np.array([1, -1, 1])),
        lambda d: cr.triplet_margin_loss(d(x), d(y), d(-x), p=3, swap=True),
        lambda d: cr.poisson_nll_loss(d(y), d(y * 4), log_input=False, full=True),
    ]
    for call in calls:
        strict = call(lambda a: cr.tensor(a, device="array_api_strict"))
        assert strict.device.type == "array_api_strict"
        np.testing.assert_allclose(strict.numpy(), call(cr.tensor).numpy(), rtol=1e-12)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("call, error, words", [
    (lambda: cr.l1_loss(_Z, _Z, reduction="avg"), ValueError, "reduction='avg'"),
    (lambda: cr.kl_div(_Z, _Z, reduction="batch"), ValueError, "'batchmean'"),
    (lambda: cr.l1_loss(_Z, _Z[:, :2]), ShapeError, "target has shape"),
    (lambda: cr.l1_loss(_Z, _Z, weight=np.ones(4)), ShapeError, "weight has shape"),
    (lambda: cr.smooth_l1_loss(_Z, _Z, beta=-1.0), ValueError, "beta=-1.0"),
    (lambda: cr.huber_loss(_Z, _Z, delta=0.0), ValueError, "delta=0.0 must be positive"),
    (lambda: cr.cross_entropy(_Z, _Y, weight=np.ones(3)), ValueError, "one value per class"),
    (lambda: cr.nll_loss(_Z, _Y, weight=np.ones((4, 1))), ValueError, "one value per class"),
    (lambda: cr.cross_entropy(_Z, _Q, weight=np.ones(5)), ValueError, "one value per class"),
    (lambda: cr.cross_entropy(_Z, _Q, ignore_index=0), ValueError, "ignore_index=0"),
    (lambda: cr.cross_entropy(_Z, _Q[:, :3]), ShapeError, "probability target"),
    (lambda: cr.cross_entropy(_Z[0], np.array([1])), ShapeError, "unbatched"),
    (lambda: cr.cross_entropy(_Z[0], _Q[:2]), ShapeError, "unbatched"),
    (lambda: cr.cross_entropy(np.array(1.0), 0), ShapeError, "(C,), (N, C)"),
    (lambda: cr.cross_entropy(_Z, np.array([0, 1, 2, 3, 4])), ValueError, "class 4"),
    (lambda: cr.cross_entropy(_Z[0], 7), ValueError, "class 7"),
    (lambda: cr.nll_loss(_Z[0], 0.5), TypeError, "integer class indices"),
    (lambda: cr.cross_entropy(_Z, _Y, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: cr.margin_ranking_loss(_Z, _Z, np.ones(4)), ShapeError, "same number"),
    (lambda: cr.margin_ranking_loss(_Z[0], _Z[0, :3], np.ones(4)), ShapeError, "broadcast"),
    (lambda: cr.cosine_embedding_loss(_Z, _Z, np.ones((5, 1))), ShapeError, "0-d or 1-d"),
    (lambda: cr.cosine_embedding_loss(_Z, _Z, np.array(1)), ShapeError, "0-d target needs"),
    (lambda: cr.triplet_margin_loss(_Z, _Z, _Z[0]), ShapeError, "same number of dimensions"),
    (lambda: cr.triplet_margin_loss(_Z[0, 0], _Z[0, 0], _Z[0, 0]), ShapeError, "0-d"),
    (lambda: cr.triplet_margin_loss(_Z, _Z, _Z, p=0), ValueError, "p=0"),
    (lambda: cr.poisson_nll_loss(_Z, _Z, reduction=None), ValueError, "reduction=None"),
])
def test_bad_arguments_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)

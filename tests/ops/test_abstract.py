"""Abstract evaluation: every primitive's ``abstract_eval`` rule against its kernel, and
``eval_shape`` (shapes and dtypes without computing) on primitives, composites and models."""

import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.ops import REGISTRY, Primitive
from chainrule.ops.abstract import ABSTRACT, AbstractValueError, ShapeDtype, eval_shape, of
from chainrule.testing.opinfo import OPINFO

_LOSSES_CLASSES = "ops/losses.py _class_weights: validates the class indices with xp"
#: op-info rows whose function reads values, so eval_shape raises AbstractValueError (strict
#: xfail: a row that becomes abstract-evaluable must leave this table)
ROWS_READING_VALUES = {
    "where":                            "the row's own lambda compares x.data > 0",
    "binary_cross_entropy":             "ops/losses.py _check_probabilities: xp.all(0 <= p <= 1)",
    "binary_cross_entropy_target":      "ops/losses.py _check_probabilities: xp.all(0 <= p <= 1)",
    "cross_entropy":                    _LOSSES_CLASSES,
    "cross_entropy_weighted_smoothed":  _LOSSES_CLASSES,
    "cross_entropy_spatial":            _LOSSES_CLASSES,
    "cross_entropy_ignore_none":        _LOSSES_CLASSES,
    "nll_loss":                         _LOSSES_CLASSES,
    "cross_entropy_unbatched":          _LOSSES_CLASSES,
    "cross_entropy_ignore_weighted_smoothed": _LOSSES_CLASSES,
    "cross_entropy_spatial_ignore_weighted":  _LOSSES_CLASSES,
    "nll_loss_weighted_ignore":         _LOSSES_CLASSES,
    "nll_loss_unbatched":               _LOSSES_CLASSES,
}


def _tensors(sample, dtype=None):
    """A sample's arrays as tensors (floating ones in ``dtype`` when given)."""
    out = []
    for x in sample:
        if isinstance(x, np.ndarray):
            out.append(cr.tensor(x.astype(dtype) if dtype and x.dtype.kind == "f" else x))
        else:
            out.append(x)
    return out


def _rows(abstract=False):
    params = []
    for info in OPINFO:
        reason = ROWS_READING_VALUES.get(info.name) if abstract else None
        marks = [pytest.mark.xfail(raises=AbstractValueError, strict=True, reason=reason)
                 ] if reason else []
        for k, sample in enumerate(info.samples(np.random.default_rng(0))):
            for dtype in (None, np.float32):
                tag = "f32" if dtype else "f64"
                params.append(pytest.param(info, sample, dtype, id=f"{info.name}-{k}-{tag}",
                                           marks=marks))
    return params


def _shape_dtype(aval):
    return tuple(aval.shape), np.dtype(aval.dtype)


# ------------------------------------------------------------------ every primitive's rule
def test_every_registered_primitive_has_an_abstract_rule():
    missing = sorted(name for name, prim in REGISTRY.items()
                     if prim.rules.get("abstract_eval") is None)
    if missing:
        print(f"primitives without an abstract_eval rule ({len(missing)}): {', '.join(missing)}")
    assert missing == []


@pytest.mark.parametrize("info, sample, dtype", _rows())
def test_each_primitive_rule_matches_its_kernel(info, sample, dtype, monkeypatch):
    """Every primitive the row calls: ``rule(*avals, **params)`` == the real output's shape, dtype
    (and device), checked at every ``bind`` of the real computation."""
    calls = []
    real_bind = Primitive.bind

    def checking_bind(prim, *inputs, **params):
        out = real_bind(prim, *inputs, **params)
        calls.append((prim, [of(x.data)._replace(device=x.device) for x in inputs], params,
                      of(out.data)._replace(device=out.device)))
        return out

    monkeypatch.setattr(Primitive, "bind", checking_bind)
    info.fn(*_tensors(sample, dtype))
    monkeypatch.undo()
    missing = sorted({prim.name for prim, *_ in calls if prim.rules["abstract_eval"] is None})
    if missing:
        print(f"{info.name}: primitives without an abstract_eval rule: {', '.join(missing)}")
    wrong = []
    for prim, avals, params, expected in calls:
        rule = prim.rules["abstract_eval"]
        if rule is None:
            continue
        got = rule(*avals, **params)
        if _shape_dtype(got) != _shape_dtype(expected) or got.device != expected.device:
            wrong.append(f"{prim.name}{tuple(a.shape for a in avals)} {params}: rule gives "
                         f"{got}, the kernel {expected}")
    assert not missing and not wrong, "\n".join(wrong)


@pytest.mark.parametrize("info, sample, dtype", _rows(abstract=True))
def test_eval_shape_of_each_row_matches_the_real_result(info, sample, dtype):
    args = _tensors(sample, dtype)
    real = info.fn(*args)
    assert _shape_dtype(eval_shape(info.fn, *args)) == (real.shape, real.dtype)


# ------------------------------------------------------------------ composites and models
def _mlp():
    cr.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))


def _conv_net():
    cr.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 4, 3, stride=2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10))


@pytest.mark.parametrize("make, shape", [(_mlp, (7, 5)), (_conv_net, (2, 3, 14, 14))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_shape_of_a_model_matches_its_forward(make, shape, dtype):
    model = make()
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    x = cr.tensor(np.random.default_rng(1).standard_normal(shape).astype(dtype))
    real = model(x)
    abstract = eval_shape(model, ShapeDtype(shape, np.dtype(dtype)))
    assert _shape_dtype(abstract) == (real.shape, real.dtype)


def test_eval_shape_of_softmax_cross_entropy_with_probability_targets():
    rng = np.random.default_rng(2)
    logits = cr.tensor(rng.standard_normal((6, 4)).astype(np.float32))
    probs = cr.softmax(cr.tensor(rng.standard_normal((6, 4)).astype(np.float32)), axis=1)
    for fn, args in [(cr.cross_entropy, (logits, probs)),
                     (lambda z, p: cr.cross_entropy(z, p, reduction="none"), (logits, probs)),
                     (lambda x, p: cr.cross_entropy(_mlp()(x), p[:, :3]),
                      (cr.zeros((6, 5)), probs)),
                     (lambda z: -cr.sum(cr.log_softmax(z, axis=1) * probs, axis=1), (logits,))]:
        real = fn(*args)
        assert _shape_dtype(eval_shape(fn, *args)) == (real.shape, real.dtype)


@pytest.mark.xfail(raises=AbstractValueError, strict=True,
                   reason="cross_entropy with class-index targets validates and weighs the "
                          "targets with the input's namespace (ops/losses.py _class_weights, "
                          "float(xp.sum(sample_weight))): it reads values")
def test_eval_shape_of_softmax_cross_entropy_with_class_indices():
    logits = cr.tensor(np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32))
    target = cr.tensor(np.array([0, 3, 1, 1, 2, 0]))
    real = cr.cross_entropy(logits, target)
    assert _shape_dtype(eval_shape(cr.cross_entropy, logits, target)) == (
        real.shape, real.dtype)


def test_eval_shape_computes_nothing_and_records_no_graph():
    w = cr.tensor(np.ones((1000, 3), np.float32), requires_grad=True)
    start = time.perf_counter()
    out = eval_shape(lambda x: cr.sum(cr.exp(x @ w), axis=0), ShapeDtype((10**7, 1000),
                                                                          np.float32))
    assert time.perf_counter() - start < 1.0  # 4e10 bytes of input would not even allocate
    assert out == ShapeDtype((3,), np.dtype(np.float32), "cpu")
    seen = []
    eval_shape(lambda x: seen.append(x @ w), ShapeDtype((2, 1000), np.float32))
    assert type(seen[0].data) is ShapeDtype
    assert not seen[0].requires_grad and seen[0].grad_fn is None and w.grad is None


def test_abstract_tensors_answer_what_tensor_properties_read():
    seen = []
    eval_shape(seen.append, ShapeDtype((2, 3, 4), np.float32))
    t = seen[0]
    assert (t.shape, t.ndim, t.size, t.dtype, t.device) == ((2, 3, 4), 3, 24,
                                                            np.float32, "cpu")
    assert t.backend == "abstract" and len(t) == 2
    assert cr.ops.as_tensor(2.0, like=t).data == ShapeDtype((), np.dtype(np.float32), "cpu")


@pytest.mark.parametrize("reader", [lambda t: t.numpy(), lambda t: float(t.sum()),
                                    lambda t: bool(t.sum() > 0), lambda t: np.asarray(t.data),
                                    lambda t: np.asarray(t), lambda t: t.tolist(),
                                    lambda t: ABSTRACT.xp.sum(t.data)])
def test_reading_values_raises_abstract_value_error(reader):
    with pytest.raises(AbstractValueError, match="no values"):
        eval_shape(reader, ShapeDtype((3,), np.float64))
    assert issubclass(AbstractValueError, TypeError)


def test_concrete_and_abstract_inputs_mix_in_either_order():
    w = cr.ones((4, 2), dtype="float64")
    spec = ShapeDtype((3, 4), np.float64)
    assert eval_shape(lambda x: x @ w, spec).shape == (3, 2)
    assert eval_shape(lambda x: w.T @ x.T, spec).shape == (2, 3)
    assert eval_shape(lambda x: cr.concatenate([w.T, x[:, :2].T], axis=1), spec).shape == (2, 7)


def test_pytrees_in_and_out_and_other_leaves_pass_through():
    def fn(pair, scale, *, options):
        a, b = pair
        return {"sum": a + b * scale, "n": options["n"], "both": (a, [b])}

    out = eval_shape(fn, (ShapeDtype((2, 1), np.float32), cr.zeros((3,))), 2.0,
                     options={"n": 7})
    assert out["n"] == 7
    assert _shape_dtype(out["sum"]) == ((2, 3), np.float32)
    assert isinstance(out["both"], tuple) and isinstance(out["both"][1], list)
    assert out["both"][1][0].shape == (3,)


def test_eval_shape_raises_the_shape_errors_of_the_real_call():
    with pytest.raises(cr.ShapeError):
        eval_shape(cr.matmul, ShapeDtype((2, 3), np.float32), ShapeDtype((4, 5), np.float32))
    with pytest.raises(cr.ShapeError, match="reshape"):
        eval_shape(lambda x: cr.reshape(x, (5, -1)), ShapeDtype((2, 3), np.float32))


def test_a_primitive_without_a_rule_is_named():
    prim = Primitive("_test_no_abstract_rule", lambda x: x, generic=lambda xp, x: x)
    try:
        with pytest.raises(NotImplementedError, match="_test_no_abstract_rule"):
            eval_shape(prim.bind, ShapeDtype((2,), np.float32))
        assert prim.bind(cr.ones(2)).shape == (2,)  # concrete calls are unaffected
    finally:
        del REGISTRY["_test_no_abstract_rule"]


def test_concrete_backends_still_refuse_each_other():
    pytest.importorskip("array_api_strict")
    strict = cr.ones(3).to("array_api_strict")
    with pytest.raises(cr.BackendMismatchError):
        cr.add(cr.ones(3), strict)

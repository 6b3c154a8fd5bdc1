"""The op-info table: every public differentiable function once, with how to test it.

One row per function (``OpInfo``): the chainrule call, input samples (random shapes,
broadcasting, 0-d and empty tensors where legal, inputs kept inside the domain), an independent
NumPy/SciPy reference, optionally a PyTorch reference (a function of the ``torch`` module, so
chainrule never imports torch), the gradient order to check and the tolerances. The test-suite
(tests/test_opinfo.py) and ``chainrule check`` are both driven by it: a new op joins by adding
a row.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np
from scipy import signal, special

import chainrule as cr

__all__ = ["OpInfo", "OPINFO", "covered_primitives"]

Sample = tuple  # positional inputs (ndarrays), float64


@dataclass(frozen=True)
class OpInfo:
    name: str
    fn: Callable  # chainrule function of the sample's inputs
    samples: Callable[[np.random.Generator], list]  # rng -> list of input tuples
    # the same function on ndarrays, computed independently (None: torch is the reference)
    reference: Optional[Callable]
    torch: Optional[Callable] = None  # (torch module, *torch tensors) -> torch tensor
    covers: tuple = ()  # primitives this row exercises (default: the row's name)
    order: int = 2  # 2: also check second derivatives; 1: first only (kinks, jumps)
    atol: float = 1e-5
    rtol: float = 1e-3
    eps: float = 1e-6  # finite-difference step
    differentiable: tuple = ()  # indices of the inputs to differentiate (default: all)

    @property
    def primitives(self) -> tuple:
        return self.covers or (self.name,)

    def bind(self, sample: Sample) -> tuple[Callable, list]:
        """(f, variables): ``f(*variables)`` calls the op with the other inputs of ``sample`` held
        fixed."""
        wanted = self.differentiable or tuple(range(len(sample)))

        def f(*variables):
            args = list(sample)
            for i, value in zip(wanted, variables):
                args[i] = value
            return self.fn(*args)

        return f, [sample[i] for i in wanted]


# ------------------------------------------------------------------ sample generators
def _draw(rng, shape, domain):
    low, high = domain
    if low is None:
        return np.asarray(rng.standard_normal(shape))
    return np.asarray(rng.uniform(low, high, shape))


def _shapes_unary(rng, domain=(None, None), empty=True):
    shapes = [(3, 4), (5,), (), (2, 3, 2)] + ([(0, 3)] if empty else [])
    return [(_draw(rng, s, domain),) for s in shapes]


def _shapes_binary(rng, domain=(None, None), domain2=None):
    domain2 = domain2 or domain
    pairs = [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3)), ((2, 1, 3), (4, 1)), ((0, 3), (3,))]
    return [(_draw(rng, a, domain), _draw(rng, b, domain2)) for a, b in pairs]


def unary(domain=(None, None), empty=True):
    return lambda rng: _shapes_unary(rng, domain, empty)


def binary(domain=(None, None), domain2=None):
    return lambda rng: _shapes_binary(rng, domain, domain2)


def fixed(*shapes, domain=(None, None)):
    """One sample with the given shapes."""
    return lambda rng: [tuple(_draw(rng, s, domain) for s in shapes)]


def cases(*shape_sets, domain=(None, None)):
    """Several samples, each a tuple of shapes."""
    return lambda rng: [tuple(_draw(rng, s, domain) for s in shapes) for shapes in shape_sets]


def _separated(rng, shape, gap=0.05):
    """Values whose pairwise gaps exceed ``gap`` (so max/min/maxout have no near-ties for finite
    differences)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap * 4 + rng.uniform(0, gap, n) - n * gap * 2).reshape(shape)


def _away_from_zero(rng, shape, margin=0.1):
    x = rng.uniform(margin, 2, shape)
    return np.asarray(x * rng.choice([-1.0, 1.0], shape))


# ------------------------------------------------------------------ references
def _np_softmax(x, axis=-1):
    return special.softmax(x, axis=axis)


def _ref_bce(p, y):
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _ref_ce_index(z, target, weight=None, smoothing=0.0):
    log_p = special.log_softmax(z, axis=1)
    w = np.ones(z.shape[1]) if weight is None else weight
    n = np.arange(len(target))
    nll = -(w[target] * log_p[n, target])
    smooth = -(log_p * w).sum(axis=1) / z.shape[1]
    return ((1 - smoothing) * nll + smoothing * smooth).sum() / w[target].sum()


_TARGET = np.array([2, 0, 3, 3, 1])
_TARGET_IGNORED = np.array([2, -100, 3, 0, -100])
_TARGET_2D = np.array([[0, 2], [1, 1]])
_CLASS_WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])


def _probabilities(rng, shape):
    return special.softmax(rng.standard_normal(shape), axis=1)


def _ref_index_add(x):
    out = np.zeros((4, 2))
    np.add.at(out, np.array([0, 2, 0]), x)
    return out


# signal processing: (x, k) shapes, 0-D to 3-D, odd and even kernels, k larger than x (in all
# axes, in some)
_CONV_COVERS = ("correlate_valid", "pad", "getitem")
_CONV_SHAPES = (((), ()), ((7,), (3,)), ((6,), (2,)), ((3,), (5,)), ((5, 4), (2, 3)),
                ((2, 3), (4, 4)), ((4, 2), (2, 3)), ((3, 4, 3), (2, 2, 3)), ((2, 2, 1), (3, 2, 2)))
# 'valid': one side larger
_CONV_SHAPES_VALID = tuple(s for s in _CONV_SHAPES if s != ((4, 2), (2, 3)))


# ------------------------------------------------------------------ the table
# fmt: off
OPINFO: list[OpInfo] = [
    # elementwise
    OpInfo("add", cr.add, binary(), np.add, lambda t, x, y: x + y),
    OpInfo("sub", cr.sub, binary(), np.subtract, lambda t, x, y: x - y),
    OpInfo("mul", cr.mul, binary(), np.multiply, lambda t, x, y: x * y),
    OpInfo("div", cr.div, binary((None, None), (0.5, 2.0)), np.divide, lambda t, x, y: x / y),
    OpInfo("neg", cr.neg, unary(), np.negative, lambda t, x: -x),
    OpInfo("pow", cr.pow, binary((0.5, 2.0), (-1.5, 2.5)), np.power, lambda t, x, y: x ** y),
    OpInfo("pow_scalar", lambda x: x ** 3, unary(), lambda x: x ** 3, lambda t, x: x ** 3,
           covers=("pow",)),
    OpInfo("exp", cr.exp, unary(), np.exp, lambda t, x: x.exp()),
    OpInfo("log", cr.log, unary((0.2, 3.0)), np.log, lambda t, x: x.log()),
    OpInfo("log1p", cr.log1p, unary((-0.8, 3.0)), np.log1p, lambda t, x: x.log1p()),
    OpInfo("expm1", cr.expm1, unary(), np.expm1, lambda t, x: x.expm1()),
    OpInfo("sqrt", cr.sqrt, unary((0.2, 3.0)), np.sqrt, lambda t, x: x.sqrt()),
    OpInfo("sin", cr.sin, unary(), np.sin, lambda t, x: x.sin()),
    OpInfo("cos", cr.cos, unary(), np.cos, lambda t, x: x.cos()),
    OpInfo("tanh", cr.tanh, unary(), np.tanh, lambda t, x: x.tanh()),
    OpInfo("abs", cr.abs,
           lambda rng: [(_away_from_zero(rng, (3, 4)),), (_away_from_zero(rng, ()),)],
           np.abs, lambda t, x: x.abs(), order=1),
    OpInfo("clip", lambda x: cr.clip(x, -0.5, 0.7),
           lambda rng: [(np.array([-1.3, -0.2, 0.3, 1.1, 0.65]),)],
           lambda x: np.clip(x, -0.5, 0.7), lambda t, x: x.clamp(-0.5, 0.7), order=1),
    OpInfo("maximum", cr.maximum, binary(), np.maximum, lambda t, x, y: t.maximum(x, y), order=1),
    OpInfo("minimum", cr.minimum, binary(), np.minimum, lambda t, x, y: t.minimum(x, y), order=1),
    OpInfo("where", lambda x, y: cr.where(cr.tensor(x.data > 0), x, y), binary(),
           lambda x, y: np.where(x > 0, x, y), lambda t, x, y: t.where(x > 0, x, y), order=1),
    OpInfo("astype", lambda x: cr.astype(x, np.float32).astype(np.float64), unary(),
           lambda x: x.astype(np.float32).astype(np.float64), lambda t, x: x.float().double(),
           eps=1e-3, atol=1e-3, order=1),  # float32 rounding: finite differences need a wide step
    # linear algebra
    OpInfo("matmul", cr.matmul,
           cases(((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))),
           np.matmul, lambda t, x, y: x @ y),
    OpInfo("dot", cr.dot, cases(((4,), (4,)), ((3, 4), (4, 2))), np.dot, None, covers=("matmul",)),
    OpInfo("outer", cr.outer, cases(((3,), (4,))), np.outer, lambda t, x, y: t.outer(x, y),
           covers=("mul", "reshape")),
    OpInfo("einsum", lambda x, y: cr.einsum("bij,jk->bik", x, y), fixed((2, 3, 4), (4, 5)),
           lambda x, y: np.einsum("bij,jk->bik", x, y),
           lambda t, x, y: t.einsum("bij,jk->bik", x, y)),
    OpInfo("einsum_reduce", lambda x, y: cr.einsum("ij,jk->i", x, y), fixed((2, 3), (3, 4)),
           lambda x, y: np.einsum("ij,jk->i", x, y), lambda t, x, y: t.einsum("ij,jk->i", x, y),
           covers=("einsum",)),
    # reductions
    OpInfo("sum", lambda x: cr.sum(x, axis=1), cases(((3, 4),), ((2, 3, 2),)),
           lambda x: x.sum(axis=1), lambda t, x: x.sum(dim=1)),
    OpInfo("sum_all", cr.sum, unary(), np.sum, lambda t, x: x.sum(), covers=("sum",)),
    OpInfo("sum_keepdims", lambda x: cr.sum(x, axis=(0, 2), keepdims=True), fixed((2, 3, 4)),
           lambda x: x.sum(axis=(0, 2), keepdims=True),
           lambda t, x: x.sum(dim=(0, 2), keepdim=True), covers=("sum",)),
    OpInfo("mean", lambda x: cr.mean(x, axis=-1), cases(((3, 4),), ((5,),)),
           lambda x: x.mean(axis=-1), lambda t, x: x.mean(dim=-1), covers=("sum", "div")),
    OpInfo("var", lambda x: cr.var(x, axis=0), cases(((3, 4),), ((5,),)),
           lambda x: x.var(axis=0), lambda t, x: x.var(dim=0, unbiased=False),
           covers=("sum", "sub", "mul")),
    OpInfo("max", lambda x: cr.max(x, axis=1), lambda rng: [(_separated(rng, (3, 4)),)],
           lambda x: x.max(axis=1), lambda t, x: x.amax(dim=1), order=1),
    OpInfo("max_all", cr.max,
           lambda rng: [(_separated(rng, (3, 4)),), (np.asarray(rng.standard_normal(())),)],
           np.max, lambda t, x: x.amax(), covers=("max",), order=1),
    OpInfo("min", lambda x: cr.min(x, axis=0, keepdims=True),
           lambda rng: [(_separated(rng, (3, 4)),)],
           lambda x: x.min(axis=0, keepdims=True), lambda t, x: x.amin(dim=0, keepdim=True),
           order=1),
    OpInfo("logsumexp", lambda x: cr.logsumexp(x, axis=1), cases(((3, 4),), ((2, 5, 3),)),
           lambda x: special.logsumexp(x, axis=1), lambda t, x: t.logsumexp(x, dim=1),
           covers=("max", "exp", "log")),
    OpInfo("sum_to", lambda x: cr.sum_to(x, (3, 1)), fixed((2, 3, 4)),
           lambda x: x.sum(axis=(0, 2)).reshape(3, 1), None),
    OpInfo("broadcast_to", lambda x: cr.broadcast_to(x, (2, 3, 4)),
           cases(((3, 1),), ((4,),), ((),)),
           lambda x: np.broadcast_to(x, (2, 3, 4)), lambda t, x: x.broadcast_to((2, 3, 4))),
    # shape
    OpInfo("reshape", lambda x: cr.reshape(x, (4, -1)), fixed((2, 3, 4)),
           lambda x: x.reshape(4, -1), lambda t, x: x.reshape(4, -1)),
    OpInfo("transpose", lambda x: cr.transpose(x, (2, 0, 1)), fixed((2, 3, 4)),
           lambda x: x.transpose(2, 0, 1), lambda t, x: x.permute(2, 0, 1)),
    OpInfo("T", lambda x: x.T, fixed((2, 3)), lambda x: x.T, lambda t, x: x.T,
           covers=("transpose",)),
    OpInfo("squeeze", lambda x: cr.squeeze(x, 1), fixed((3, 1, 2)),
           lambda x: x.squeeze(1), lambda t, x: x.squeeze(1), covers=("reshape",)),
    OpInfo("expand_dims", lambda x: cr.expand_dims(x, (0, 2)), fixed((3, 2)),
           lambda x: np.expand_dims(x, (0, 2)), None, covers=("reshape",)),
    OpInfo("flatten", lambda x: cr.flatten(x, 1), fixed((2, 3, 4)),
           lambda x: x.reshape(2, -1), lambda t, x: x.flatten(1), covers=("reshape",)),
    OpInfo("concatenate", lambda x, y: cr.concatenate([x, y, x], axis=1), fixed((2, 3), (2, 1)),
           lambda x, y: np.concatenate([x, y, x], axis=1), lambda t, x, y: t.cat([x, y, x], dim=1)),
    OpInfo("stack", lambda x, y: cr.stack([x, y], axis=-1), fixed((2, 3), (2, 3)),
           lambda x, y: np.stack([x, y], axis=-1), lambda t, x, y: t.stack([x, y], dim=-1),
           covers=("concatenate",)),
    OpInfo("split", lambda x: cr.split(x, [1, 3], axis=1)[1] * 2 + cr.split(x, 2, axis=0)[0].sum(),
           fixed((2, 4)),
           lambda x: np.split(x, [1, 3], axis=1)[1] * 2 + np.split(x, 2, axis=0)[0].sum(), None,
           covers=("getitem",)),
    OpInfo("pad", lambda x: cr.pad(x, ((1, 0), (2, 3)), constant_values=0.5), fixed((2, 3)),
           lambda x: np.pad(x, ((1, 0), (2, 3)), constant_values=0.5),
           lambda t, x: t.nn.functional.pad(x, (2, 3, 1, 0), value=0.5)),
    OpInfo("getitem", lambda x: x[1:, ::2], fixed((3, 4)), lambda x: x[1:, ::2],
           lambda t, x: x[1:, ::2]),
    OpInfo("getitem_advanced", lambda x: x[[0, 2, 0], 1:], fixed((3, 4)),
           lambda x: x[[0, 2, 0], 1:], lambda t, x: x[[0, 2, 0], 1:],
           covers=("getitem", "index_add")),
    OpInfo("getitem_mask", lambda x: x[np.array([True, False, True])], fixed((3, 2)),
           lambda x: x[np.array([True, False, True])], None, covers=("getitem",)),
    OpInfo("index_add", lambda x: cr.index_add(x, (np.array([0, 2, 0]),), (4, 2)), fixed((3, 2)),
           _ref_index_add, None),
    # signal processing
    OpInfo("convolve_full", partial(cr.convolve, mode="full"), cases(*_CONV_SHAPES),
           partial(signal.convolve, mode="full"), None, covers=_CONV_COVERS),
    OpInfo("convolve_valid", partial(cr.convolve, mode="valid"), cases(*_CONV_SHAPES_VALID),
           partial(signal.convolve, mode="valid"), None, covers=_CONV_COVERS),
    OpInfo("convolve_same", partial(cr.convolve, mode="same"), cases(*_CONV_SHAPES),
           partial(signal.convolve, mode="same"), None, covers=_CONV_COVERS),
    OpInfo("correlate_full", partial(cr.correlate, mode="full"), cases(*_CONV_SHAPES),
           partial(signal.correlate, mode="full"), None, covers=_CONV_COVERS),
    OpInfo("correlate_valid", partial(cr.correlate, mode="valid"), cases(*_CONV_SHAPES_VALID),
           partial(signal.correlate, mode="valid"), None, covers=_CONV_COVERS),
    OpInfo("correlate_same", partial(cr.correlate, mode="same"), cases(*_CONV_SHAPES),
           partial(signal.correlate, mode="same"), None, covers=_CONV_COVERS),
    # activations
    OpInfo("relu", cr.relu,
           lambda rng: [(_away_from_zero(rng, (3, 4)),), (_away_from_zero(rng, ()),)],
           lambda x: np.maximum(x, 0), lambda t, x: t.relu(x), order=1),
    OpInfo("leaky_relu", lambda x: cr.leaky_relu(x, 0.1),
           lambda rng: [(_away_from_zero(rng, (3, 4)),)],
           lambda x: np.where(x > 0, x, 0.1 * x), lambda t, x: t.nn.functional.leaky_relu(x, 0.1),
           covers=("where", "greater"), order=1),
    OpInfo("prelu", cr.prelu,
           lambda rng: [(_away_from_zero(rng, (2, 3, 4)), rng.uniform(0, 0.5, (3, 1)))],
           lambda x, a: np.where(x > 0, x, a * x), lambda t, x, a: t.where(x > 0, x, a * x),
           order=1),
    OpInfo("heaviside", cr.heaviside, lambda rng: [(_away_from_zero(rng, (3, 4)),)],
           lambda x: np.heaviside(x, 0.5), None, order=1),  # torch has no derivative for heaviside
    OpInfo("step", cr.step, lambda rng: [(_away_from_zero(rng, (3, 4)),)],
           lambda x: np.heaviside(x, 1.0), None, covers=("heaviside",), order=1),
    OpInfo("sign", cr.sign, lambda rng: [(_away_from_zero(rng, (3, 4)),)], np.sign,
           lambda t, x: x.sign(), order=1),
    OpInfo("sigmoid", cr.sigmoid, unary(), special.expit, lambda t, x: x.sigmoid()),
    OpInfo("softplus", cr.softplus, unary(), lambda x: np.log1p(np.exp(x)),
           lambda t, x: t.nn.functional.softplus(x)),
    OpInfo("log_sigmoid", cr.log_sigmoid, unary(), special.log_expit,
           lambda t, x: t.nn.functional.logsigmoid(x), covers=("softplus", "neg")),
    OpInfo("softmax", lambda x: cr.softmax(x, axis=1), cases(((3, 4),), ((2, 3, 2),)),
           lambda x: _np_softmax(x, axis=1), lambda t, x: t.softmax(x, dim=1)),
    OpInfo("log_softmax", cr.log_softmax, cases(((3, 4),), ((5,),)),
           lambda x: special.log_softmax(x, axis=-1), lambda t, x: t.log_softmax(x, dim=-1)),
    OpInfo("maxout", lambda x: cr.maxout(x, 3, axis=1), lambda rng: [(_separated(rng, (2, 6, 2)),)],
           lambda x: x.reshape(2, 2, 3, 2).max(axis=2), None, covers=("max", "reshape"), order=1),
    # convolution and pooling (PyTorch layout); second order exercises the adjoint primitives
    OpInfo("conv2d", lambda x, w, b: cr.conv2d(x, w, b, stride=2, padding=1, groups=2),
           fixed((2, 4, 5, 4), (6, 2, 3, 2), (6,)),
           None, lambda t, x, w, b: t.nn.functional.conv2d(x, w, b, stride=2, padding=1, groups=2),
           covers=("conv", "conv_transpose", "conv_weight")),
    OpInfo("conv2d_same_dilated", lambda x, w: cr.conv2d(x, w, padding="same", dilation=(2, 1)),
           fixed((1, 2, 6, 5), (3, 2, 2, 3)),
           None, lambda t, x, w: t.nn.functional.conv2d(x, w, padding="same", dilation=(2, 1)),
           covers=("conv",)),
    OpInfo("conv1d", lambda x, w: cr.conv1d(x, w, stride=2, padding=2, dilation=2),
           fixed((2, 3, 9), (4, 3, 3)),
           None, lambda t, x, w: t.nn.functional.conv1d(x, w, stride=2, padding=2, dilation=2),
           covers=("conv",)),
    OpInfo("conv_transpose2d",
           lambda x, w: cr.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
           fixed((2, 4, 3, 3), (4, 3, 3, 2)), None,
           lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, stride=2, padding=1,
                                                            output_padding=1, groups=2),
           covers=("conv_transpose",)),
    OpInfo("max_pool2d", lambda x: cr.max_pool2d(x, 3, stride=2, padding=1) ** 2,
           lambda rng: [(_separated(rng, (2, 2, 5, 6)),)],
           None, lambda t, x: t.nn.functional.max_pool2d(x, 3, stride=2, padding=1) ** 2,
           covers=("max_pool", "max_pool_scatter", "max_pool_gather")),
    OpInfo("max_pool1d", lambda x: cr.max_pool1d(x, 2, ceil_mode=True),
           lambda rng: [(_separated(rng, (2, 3, 7)),)],
           None, lambda t, x: t.nn.functional.max_pool1d(x, 2, ceil_mode=True),
           covers=("max_pool",), order=1),
    OpInfo("avg_pool2d",
           lambda x: cr.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                   count_include_pad=False) ** 2,
           fixed((2, 2, 6, 5)), None,
           lambda t, x: t.nn.functional.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                   count_include_pad=False) ** 2,
           covers=("avg_pool", "avg_pool_adjoint")),
    OpInfo("avg_pool1d", lambda x: cr.avg_pool1d(x, 2, stride=1, padding=1), fixed((2, 3, 5)),
           None, lambda t, x: t.nn.functional.avg_pool1d(x, 2, stride=1, padding=1),
           covers=("avg_pool",)),
    OpInfo("adaptive_avg_pool2d", lambda x: cr.adaptive_avg_pool2d(x, (2, 3)),
           fixed((2, 3, 5, 7)), None,
           lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, (2, 3)),
           covers=("getitem", "sum")),
    # losses
    OpInfo("mse_loss", cr.mse_loss, cases(((3, 4), (3, 4)), ((), ())),
           lambda x, y: np.mean((x - y) ** 2), lambda t, x, y: t.nn.functional.mse_loss(x, y)),
    OpInfo("binary_cross_entropy", cr.binary_cross_entropy,
           fixed((4, 3), (4, 3), domain=(0.05, 0.95)),
           _ref_bce, lambda t, p, y: t.nn.functional.binary_cross_entropy(p, y),
           differentiable=(0,)),
    OpInfo("binary_cross_entropy_target", lambda y, p: cr.binary_cross_entropy(p, y),
           fixed((4, 3), (4, 3), domain=(0.05, 0.95)), lambda y, p: _ref_bce(p, y), None,
           covers=("binary_cross_entropy",), differentiable=(0,)),
    OpInfo("binary_cross_entropy_with_logits", cr.binary_cross_entropy_with_logits,
           lambda rng: [(rng.standard_normal((4, 3)) * 3, rng.uniform(0, 1, (4, 3)))],
           lambda z, y: np.mean(np.logaddexp(0, z) - y * z),
           lambda t, z, y: t.nn.functional.binary_cross_entropy_with_logits(z, y),
           covers=("softplus",)),
    OpInfo("cross_entropy", lambda z: cr.cross_entropy(z, _TARGET), fixed((5, 4)),
           lambda z: _ref_ce_index(z, _TARGET),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET)),
           covers=("softmax_cross_entropy",)),
    OpInfo("cross_entropy_weighted_smoothed",
           lambda z: cr.cross_entropy(z, _TARGET, weight=_CLASS_WEIGHT, label_smoothing=0.2),
           fixed((5, 4)),
           lambda z: _ref_ce_index(z, _TARGET, _CLASS_WEIGHT, 0.2),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET),
                                                      weight=t.tensor(_CLASS_WEIGHT),
                                                      label_smoothing=0.2),
           covers=("softmax_cross_entropy", "log_softmax")),
    OpInfo("cross_entropy_probs", cr.cross_entropy,
           lambda rng: [(rng.standard_normal((3, 4)), _probabilities(rng, (3, 4)))],
           lambda z, q: -(q * special.log_softmax(z, axis=1)).sum(axis=1).mean(),
           lambda t, z, q: t.nn.functional.cross_entropy(z, q), covers=("log_softmax",),
           differentiable=(0,)),
    OpInfo("cross_entropy_spatial", lambda z: cr.cross_entropy(z, _TARGET_2D), fixed((2, 3, 2)),
           lambda z: -np.mean(np.take_along_axis(special.log_softmax(z, axis=1),
                                                 _TARGET_2D[:, None], 1)),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET_2D)),
           covers=("softmax_cross_entropy",)),
    OpInfo("cross_entropy_ignore_none",
           lambda z: cr.cross_entropy(z, _TARGET_IGNORED, reduction="none"), fixed((5, 4)),
           lambda z: np.where(_TARGET_IGNORED == -100, 0, -special.log_softmax(z, axis=1)[
               np.arange(5), np.where(_TARGET_IGNORED == -100, 0, _TARGET_IGNORED)]),
           lambda t, z: t.nn.functional.cross_entropy(z, t.tensor(_TARGET_IGNORED),
                                                      reduction="none"),
           covers=("softmax_cross_entropy",)),
    OpInfo("nll_loss", lambda x: cr.nll_loss(x, _TARGET, reduction="sum"), fixed((5, 4)),
           lambda x: -x[np.arange(5), _TARGET].sum(),
           lambda t, x: t.nn.functional.nll_loss(x, t.tensor(_TARGET), reduction="sum"),
           covers=("mul", "sum")),
]

def _unpool_pool(x):
    values, indices = cr.max_pool2d(x, 2, return_indices=True)
    return cr.max_unpool2d(values, indices, 2)


def _np_layer_norm(x, w, b, axes=(-2, -1)):
    centred = x - x.mean(axis=axes, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=axes, keepdims=True) + 1e-5) * w + b


# normalisation and distances (checked to second order)
OPINFO += [
    OpInfo("layer_norm", lambda x, w, b: cr.layer_norm(x, (4, 5), w, b),
           fixed((3, 4, 5), (4, 5), (4, 5)), _np_layer_norm,
           lambda t, x, w, b: t.nn.functional.layer_norm(x, (4, 5), w, b),
           covers=("standardize", "mul", "add")),
    OpInfo("layer_norm_last_axis", lambda x: cr.layer_norm(x, 6), fixed((2, 3, 6)),
           lambda x: _np_layer_norm(x, 1.0, 0.0, axes=(-1,)),
           lambda t, x: t.nn.functional.layer_norm(x, (6,)), covers=("standardize",)),
    OpInfo("group_norm", lambda x, w, b: cr.group_norm(x, 2, w, b),
           fixed((3, 4, 5), (4,), (4,)), None,
           lambda t, x, w, b: t.nn.functional.group_norm(x, 2, w, b),
           covers=("standardize", "reshape")),
    OpInfo("instance_norm", lambda x, w, b: cr.instance_norm(x, weight=w, bias=b),
           fixed((2, 3, 6), (3,), (3,)), None,
           lambda t, x, w, b: t.nn.functional.instance_norm(x, weight=w, bias=b)),
    OpInfo("cosine_similarity", lambda x, y: cr.cosine_similarity(x, y, axis=1),
           fixed((4, 5), (4, 5)),
           lambda x, y: (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)),
           lambda t, x, y: t.nn.functional.cosine_similarity(x, y, dim=1)),
    OpInfo("pairwise_distance", lambda x, y: cr.pairwise_distance(x, y),
           fixed((4, 5), (4, 5)), lambda x, y: np.linalg.norm(x - y + 1e-6, axis=-1),
           lambda t, x, y: t.nn.functional.pairwise_distance(x, y)),
    OpInfo("pairwise_distance_p3", lambda x, y: cr.pairwise_distance(x, y, p=3.0),
           fixed((4, 5), (1, 5)),
           lambda x, y: (np.abs(x - y + 1e-6) ** 3).sum(-1) ** (1 / 3),
           lambda t, x, y: t.nn.functional.pairwise_distance(x, y, p=3.0),
           covers=("pairwise_distance",)),
    # volumes: the n-d convolution and pooling primitives with three spatial axes
    OpInfo("conv3d", lambda x, w: cr.conv3d(x, w, padding=1, stride=(1, 2, 1)),
           fixed((1, 2, 3, 4, 3), (2, 2, 2, 2, 2)), None,
           lambda t, x, w: t.nn.functional.conv3d(x, w, padding=1, stride=(1, 2, 1)),
           covers=("conv",)),
    OpInfo("conv_transpose3d", lambda x, w: cr.conv_transpose3d(x, w, stride=2),
           fixed((1, 2, 2, 3, 2), (2, 3, 2, 2, 2)), None,
           lambda t, x, w: t.nn.functional.conv_transpose3d(x, w, stride=2),
           covers=("conv_transpose",)),
    OpInfo("max_pool3d", lambda x: cr.max_pool3d(x, 2), fixed((1, 2, 4, 4, 2)), None,
           lambda t, x: t.nn.functional.max_pool3d(x, 2), covers=("max_pool",), order=1),
    OpInfo("avg_pool3d", lambda x: cr.avg_pool3d(x, 2, padding=1), fixed((1, 2, 3, 4, 2)), None,
           lambda t, x: t.nn.functional.avg_pool3d(x, 2, padding=1), covers=("avg_pool",)),
    # unpool(pool(x)): x at each window's maximum, 0 elsewhere (the indices are max_pool_indices)
    OpInfo("max_unpool2d", lambda x: _unpool_pool(x),
           fixed((2, 3, 4, 6)), None,
           lambda t, x: t.nn.functional.max_unpool2d(
               *t.nn.functional.max_pool2d(x, 2, return_indices=True), 2),
           covers=("max_pool", "max_pool_indices", "scatter"), order=1),
    # (padding_idx's row gets no gradient by convention: tests/nn/test_layers_more.py checks it)
    OpInfo("embedding", lambda w: cr.embedding(cr.tensor([[0, 2], [2, 3]]), w),
           fixed((4, 3)), lambda w: w[np.array([[0, 2], [2, 3]])],
           lambda t, w: t.nn.functional.embedding(t.tensor([[0, 2], [2, 3]]), w)),
]

if importlib.util.find_spec("array_api_strict") is not None:  # the test extra installs it
    # to_device round trip through another backend: the gradient must come back to the host
    OPINFO.append(OpInfo("to_device", lambda x: cr.to_device(x, "array_api_strict").to("cpu"),
                         unary(), lambda x: x, None))
# fmt: on

# issue 12's families keep their rows in files of their own (opinfo_<family>.py), added here
from chainrule.testing import (  # noqa: E402  (they import OpInfo and the samplers above)
    opinfo_activations,
    opinfo_indexing,
    opinfo_losses,
    opinfo_recurrent,
    opinfo_reductions,
    opinfo_resample,
    opinfo_special,
)

for _module in (opinfo_special, opinfo_activations, opinfo_reductions, opinfo_indexing,
                opinfo_losses, opinfo_resample, opinfo_recurrent):
    OPINFO.extend(_module.ROWS)

OPINFO_BY_NAME = {info.name: info for info in OPINFO}
if len(OPINFO_BY_NAME) != len(OPINFO):
    raise RuntimeError("OPINFO has two rows with one name")


def covered_primitives() -> set:
    """Names of the primitives some row exercises."""
    return {name for info in OPINFO for name in info.primitives}

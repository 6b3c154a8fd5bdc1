"""chainrule.onnx.export, checked by onnx's checker and onnxruntime against chainrule's forward.

Every row of ``ROWS`` builds a module (parameters and running statistics drawn at random, so that
no weight is a trivial 1 or 0), exports it with an example batch of 3, passes
``onnx.checker.check_model(full_check=True)``, and runs the file in onnxruntime at batch sizes 1
and 7: its outputs must equal chainrule's eval-mode forward to 1e-5 relative (float32).

The absolute tolerance ATOL = 1e-6 (8 float32 ulps of 1) is for outputs near 0 only: values that
are differences of O(1) quantities (a convolution's sum of products, exp(x) - 1 in ELU, 1 + erf in
GELU, x - mean in the norms) carry an absolute rounding error of a few ulps of their operands, which
no relative tolerance can bound where the difference itself is tiny; onnxruntime sums in another
order (and fuses Conv with BatchNorm), so those last bits differ. Every tensor here is O(1).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import chainrule as cr  # noqa: E402
import chainrule.onnx as cx  # noqa: E402
from chainrule import nn  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
BATCHES = (1, 7)
EXAMPLE_BATCH = 3


# ------------------------------------------------------------------ inputs
def normal(*shape: int) -> Callable:
    """Inputs N(0, 1) of shape (batch, *shape)."""
    def make(batch: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)
    make.shape = shape  # type: ignore[attr-defined]
    return make


def kinks(*shape: int) -> Callable:
    """N(0, 3) inputs with the activations' special points mixed in (0, +-1, +-3, 6)."""
    def make(batch: int, seed: int) -> np.ndarray:
        x = 3 * np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)
        flat = x.reshape(-1)
        specials = np.array([0.0, -3.0, 3.0, -1.0, 1.0, 6.0, 0.0, 20.5], dtype=np.float32)
        flat[::3] = np.resize(specials, flat[::3].shape)
        return x
    return make


def ids(length: int, vocabulary: int) -> Callable:
    def make(batch: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, vocabulary, (batch, length))
    return make


def several(*makers: Callable) -> Callable:
    """One input per maker (a module whose forward takes several tensors)."""
    def make(batch: int, seed: int) -> tuple:
        return tuple(m(batch, seed + 100 * i) for i, m in enumerate(makers))
    make.several = True  # type: ignore[attr-defined]
    return make


# ------------------------------------------------------------------ models
def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and buffer drawn at random (variances positive), so that a converter that
    drops a weight, a bias or a statistic cannot pass."""
    rng = np.random.default_rng(seed)
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.dtype.kind != "f":
            continue
        if name.endswith("running_var"):
            values = rng.uniform(0.5, 2.0, tensor.shape)
        else:
            values = rng.uniform(-1.0, 1.0, tensor.shape) * (0.5 if tensor.ndim > 1 else 1.0)
        tensor.data[...] = values.astype(tensor.dtype)
    return module


def build(factory: Callable) -> nn.Module:
    cr.manual_seed(0)
    return randomized(factory())


# (id, factory, input maker)
ROWS: list[tuple[str, Callable, Callable]] = [
    # linear layers and containers
    ("linear", lambda: nn.Linear(6, 4), normal(6)),
    ("linear-nobias", lambda: nn.Linear(6, 4, bias=False), normal(6)),
    ("linear-3d", lambda: nn.Linear(6, 4), normal(5, 6)),
    ("lowrank", lambda: nn.LowRankLinear(6, 5, 2), normal(6)),
    ("bilinear", lambda: nn.Bilinear(4, 3, 5), several(normal(4), normal(3))),
    ("embedding", lambda: nn.Embedding(11, 4, padding_idx=0), ids(6, 11)),
    ("sequential", lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)), normal(6)),
    ("residual", lambda: nn.Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU())), normal(6)),
    ("nested", lambda: nn.Sequential(nn.Residual(nn.Linear(4, 4)),
                                     nn.Sequential(nn.Identity(), nn.Dropout(0.3))), normal(4)),
    ("identity", nn.Identity, normal(3, 2)),
    ("dropout", lambda: nn.Dropout(0.5), normal(5)),
    ("dropout2d", lambda: nn.Dropout2d(0.5), normal(2, 3, 3)),
    # convolutions
    ("conv1d", lambda: nn.Conv1d(3, 4, 3), normal(3, 10)),
    ("conv1d-same-dilated", lambda: nn.Conv1d(3, 4, 4, padding="same", dilation=2), normal(3, 9)),
    ("conv1d-stride-groups", lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
     normal(4, 11)),
    ("conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1), normal(2, 6, 7)),
    ("conv2d-same-stride", lambda: nn.Conv2d(2, 3, (2, 3), stride=2, padding="same"),
     normal(2, 7, 6)),
    ("conv2d-full-nobias", lambda: nn.Conv2d(2, 2, 2, padding="full", bias=False),
     normal(2, 4, 4)),
    ("conv2d-depthwise-dilated", lambda: nn.Conv2d(3, 6, 3, dilation=(2, 1), groups=3),
     normal(3, 8, 6)),
    ("conv2d-asymmetric-pads", lambda: nn.Conv2d(2, 3, 3, padding=((1, 0), (0, 2))),
     normal(2, 5, 5)),
    ("conv3d", lambda: nn.Conv3d(2, 3, 2, padding=1), normal(2, 3, 4, 4)),
    ("convT1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1),
     normal(3, 5)),
    ("convT2d", lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1,
                                           groups=2), normal(2, 4, 5)),
    ("convT2d-dilated", lambda: nn.ConvTranspose2d(2, 3, 2, dilation=2, bias=False),
     normal(2, 3, 3)),
    ("convT3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), normal(2, 2, 3, 2)),
    # pooling
    ("maxpool1d", lambda: nn.MaxPool1d(2), normal(3, 9)),
    ("maxpool1d-ceil", lambda: nn.MaxPool1d(3, stride=2, ceil_mode=True), normal(2, 10)),
    ("maxpool2d", lambda: nn.MaxPool2d(2), normal(2, 6, 6)),
    ("maxpool2d-pad-dilation", lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=2),
     normal(2, 9, 8)),
    ("maxpool2d-ceil", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     normal(2, 8, 7)),
    ("maxpool2d-ceil-stride-over-kernel", lambda: nn.MaxPool2d(2, stride=3, ceil_mode=True),
     normal(2, 8, 7)),
    ("maxpool3d", lambda: nn.MaxPool3d(2, ceil_mode=True), normal(2, 3, 5, 4)),
    ("avgpool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1), normal(2, 9)),
    ("avgpool2d", lambda: nn.AvgPool2d(2), normal(2, 6, 6)),
    ("avgpool2d-pad-exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                                   count_include_pad=False), normal(2, 7, 6)),
    ("avgpool2d-ceil", lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
     normal(2, 8, 7)),
    ("avgpool2d-ceil-exclude", lambda: nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True,
                                                    count_include_pad=False), normal(2, 6, 5)),
    ("avgpool3d", lambda: nn.AvgPool3d(2, ceil_mode=True), normal(1, 3, 5, 4)),
    ("adaptive-divisible", lambda: nn.AdaptiveAvgPool2d((2, 3)), normal(3, 6, 9)),
    ("adaptive-global", lambda: nn.AdaptiveAvgPool2d(1), normal(3, 5, 7)),
    ("adaptive-general", lambda: nn.AdaptiveAvgPool2d((3, 4)), normal(2, 7, 5)),
    ("adaptive-none", lambda: nn.AdaptiveAvgPool2d((None, 2)), normal(2, 4, 5)),
    # normalisation
    ("batchnorm1d", lambda: nn.BatchNorm1d(5), normal(5)),
    ("batchnorm1d-3d", lambda: nn.BatchNorm1d(3), normal(3, 6)),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), normal(3, 4, 5)),
    ("batchnorm2d-no-affine", lambda: nn.BatchNorm2d(3, affine=False), normal(3, 4, 4)),
    ("batchnorm2d-batch-stats", lambda: nn.BatchNorm2d(3, track_running_stats=False),
     normal(3, 4, 4)),
    ("layernorm", lambda: nn.LayerNorm(6), normal(4, 6)),
    ("layernorm-2d-no-affine", lambda: nn.LayerNorm((3, 4), elementwise_affine=False),
     normal(2, 3, 4)),
    ("groupnorm", lambda: nn.GroupNorm(2, 4), normal(4, 3, 5)),
    ("groupnorm-2d-input", lambda: nn.GroupNorm(3, 6), normal(6)),
    ("instancenorm1d", lambda: nn.InstanceNorm1d(3), normal(3, 7)),
    ("instancenorm2d-affine", lambda: nn.InstanceNorm2d(3, affine=True), normal(3, 4, 5)),
    ("instancenorm2d-running", lambda: nn.InstanceNorm2d(3, affine=True,
                                                         track_running_stats=True),
     normal(3, 4, 5)),
    # shapes
    ("flatten", nn.Flatten, normal(2, 3, 4)),
    ("flatten-middle", lambda: nn.Flatten(1, 2), normal(2, 3, 4)),
    ("flatten-tail", lambda: nn.Flatten(2), normal(2, 3, 4)),
    ("unflatten", lambda: nn.Unflatten(1, (2, -1)), normal(6, 2)),
    ("unflatten-last", lambda: nn.Unflatten(-1, (2, 3)), normal(4, 6)),
    # activations
    ("relu", nn.ReLU, kinks(4, 5)),
    ("leaky-relu", lambda: nn.LeakyReLU(0.2), kinks(4, 5)),
    ("prelu", nn.PReLU, kinks(4, 5)),
    ("prelu-channels", lambda: nn.PReLU(3), kinks(3, 2, 2)),
    ("abs", nn.Abs, kinks(7)),
    ("maxout", lambda: nn.Maxout(3), normal(6)),
    ("maxout-4d", lambda: nn.Maxout(2), normal(4, 3, 2)),
    ("sigmoid", nn.Sigmoid, kinks(9)),
    ("tanh", nn.Tanh, kinks(9)),
    ("softplus", nn.Softplus, kinks(9)),
    ("softplus-beta-threshold", lambda: nn.Softplus(beta=2.0, threshold=3.0), kinks(9)),
    ("softmax", nn.Softmax, normal(3, 5)),
    ("softmax-dim1", lambda: nn.Softmax(dim=1), normal(3, 5)),
    ("logsoftmax", nn.LogSoftmax, normal(3, 5)),
    ("softmin", lambda: nn.Softmin(dim=1), normal(4, 2)),
    ("heaviside", nn.Heaviside, kinks(9)),
    ("heaviside-value", lambda: nn.Heaviside(value_at_zero=0.25, surrogate_slope=2.0), kinks(9)),
    ("step", nn.Step, kinks(9)),
    ("sign", nn.Sign, kinks(9)),
    ("logsigmoid", nn.LogSigmoid, kinks(9)),
    ("gelu", nn.GELU, kinks(9)),
    ("gelu-tanh", lambda: nn.GELU(approximate="tanh"), kinks(9)),
    ("silu", nn.SiLU, kinks(9)),
    ("elu", lambda: nn.ELU(0.7), kinks(9)),
    ("selu", nn.SELU, kinks(9)),
    ("celu", lambda: nn.CELU(1.5), kinks(9)),
    ("mish", nn.Mish, kinks(9)),
    ("hardswish", nn.Hardswish, kinks(9)),
    ("hardsigmoid", nn.Hardsigmoid, kinks(9)),
    ("hardtanh", nn.Hardtanh, kinks(9)),
    ("hardtanh-range", lambda: nn.Hardtanh(-0.5, 2.0), kinks(9)),
    ("relu6", nn.ReLU6, kinks(9)),
    ("softsign", nn.Softsign, kinks(9)),
    ("glu", nn.GLU, normal(3, 6)),
    ("glu-dim1", lambda: nn.GLU(dim=1), normal(4, 3)),
    # two-input distances
    ("cosine-similarity", nn.CosineSimilarity, several(normal(5), normal(5))),
    ("pairwise-distance", nn.PairwiseDistance, several(normal(5), normal(5))),
    ("pairwise-distance-p1-keepdim", lambda: nn.PairwiseDistance(1.0, keepdim=True),
     several(normal(5), normal(5))),
    ("pairwise-distance-inf", lambda: nn.PairwiseDistance(math.inf),
     several(normal(5), normal(5))),
    # resampling
    ("upsample-nearest", lambda: nn.Upsample(scale_factor=2), normal(2, 3, 4)),
    ("upsample-nearest-size", lambda: nn.Upsample(size=(5, 7)), normal(2, 3, 4)),
    ("upsample-nearest-exact", lambda: nn.Upsample(scale_factor=1.7, mode="nearest-exact"),
     normal(2, 3, 4)),
    ("upsample-linear", lambda: nn.Upsample(scale_factor=2.5, mode="linear"), normal(2, 5)),
    ("upsample-bilinear", lambda: nn.Upsample(size=(5, 7), mode="bilinear"), normal(2, 3, 4)),
    ("upsample-bilinear-align", lambda: nn.Upsample(scale_factor=2, mode="bilinear",
                                                    align_corners=True), normal(2, 3, 4)),
    ("upsample-bicubic", lambda: nn.Upsample(scale_factor=(1.5, 2), mode="bicubic"),
     normal(1, 4, 4)),
    ("upsample-trilinear", lambda: nn.Upsample(scale_factor=2, mode="trilinear"),
     normal(1, 2, 3, 2)),
    ("upsampling-nearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=3), normal(1, 2, 3)),
    ("upsampling-bilinear2d", lambda: nn.UpsamplingBilinear2d(size=(4, 6)), normal(2, 3, 3)),
    ("zeropad1d", lambda: nn.ZeroPad1d((1, 2)), normal(2, 4)),
    ("zeropad2d", lambda: nn.ZeroPad2d((1, 0, 2, 1)), normal(2, 3, 3)),
    ("zeropad2d-crop", lambda: nn.ZeroPad2d((-1, 2, 1, -1)), normal(2, 4, 4)),
    ("zeropad3d", lambda: nn.ZeroPad3d((0, 1, 1, 0, 2, 1)), normal(1, 2, 2, 2)),
    ("constantpad1d", lambda: nn.ConstantPad1d((2, -1), -1.5), normal(3, 4)),
    ("constantpad2d", lambda: nn.ConstantPad2d(2, 0.5), normal(1, 3, 2)),
    ("constantpad3d", lambda: nn.ConstantPad3d(1, 2.5), normal(1, 2, 2, 2)),
    ("reflectionpad1d", lambda: nn.ReflectionPad1d((2, 3)), normal(2, 5)),
    ("reflectionpad2d", lambda: nn.ReflectionPad2d((1, 2, 2, 0)), normal(2, 4, 4)),
    ("reflectionpad2d-crop", lambda: nn.ReflectionPad2d((-1, 3, 0, 1)), normal(2, 4, 5)),
    ("reflectionpad3d", lambda: nn.ReflectionPad3d(1), normal(1, 3, 3, 3)),
    ("replicationpad1d", lambda: nn.ReplicationPad1d((3, 1)), normal(2, 4)),
    ("replicationpad2d", lambda: nn.ReplicationPad2d((0, 2, 3, 1)), normal(2, 3, 3)),
    ("replicationpad2d-crop", lambda: nn.ReplicationPad2d((2, -1, -1, 2)), normal(2, 3, 4)),
    ("replicationpad3d", lambda: nn.ReplicationPad3d((1, 0, 0, 1, 1, 1)), normal(1, 2, 3, 2)),
    ("circularpad1d", lambda: nn.CircularPad1d((2, 3)), normal(2, 4)),
    ("circularpad2d", lambda: nn.CircularPad2d((1, 2, 3, 0)), normal(2, 3, 4)),
    ("circularpad2d-crop", lambda: nn.CircularPad2d((-1, 2, 1, -1)), normal(2, 4, 4)),
    ("circularpad3d", lambda: nn.CircularPad3d(1), normal(1, 2, 3, 2)),
    ("unfold", lambda: nn.Unfold(2, dilation=(1, 2), padding=1, stride=(2, 1)), normal(3, 5, 6)),
    ("fold", lambda: nn.Fold((4, 5), 2), normal(3 * 4, 12)),
    ("fold-padded-strided", lambda: nn.Fold((5, 6), (2, 3), dilation=1, padding=1, stride=2),
     normal(2 * 6, 9)),
    ("fold-uncovered-edge", lambda: nn.Fold((6, 6), 2, stride=3), normal(2 * 4, 4)),
    # recurrent layers
    ("rnn", lambda: nn.RNN(4, 5), normal(2, 4)),  # (L, N, I): axis 0 is the sequence
    ("rnn-relu-bidirectional", lambda: nn.RNN(4, 3, num_layers=2, nonlinearity="relu",
                                              bidirectional=True, batch_first=True),
     normal(5, 4)),
    ("rnn-unbatched", lambda: nn.RNN(3, 4, bias=False), normal(3)),
    ("gru", lambda: nn.GRU(4, 5, batch_first=True), normal(6, 4)),
    ("gru-2-layers-bidirectional", lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True,
                                                  dropout=0.5), normal(2, 3)),
    ("lstm", lambda: nn.LSTM(4, 5, batch_first=True), normal(6, 4)),
    ("lstm-2-layers-bidirectional", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True,
                                                    batch_first=True), normal(5, 3)),
    ("lstm-seq-first-nobias", lambda: nn.LSTM(3, 2, bias=False), normal(2, 3)),
    # attention
    ("mha-batch-first", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
     several(normal(5, 8), normal(4, 8), normal(4, 8))),
    ("mha-seq-first", lambda: nn.MultiheadAttention(6, 3),
     several(normal(2, 6), normal(2, 6), normal(2, 6))),
    ("encoder-layer", lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
     normal(5, 8)),
    ("encoder-layer-prenorm-gelu", lambda: nn.TransformerEncoderLayer(
        8, 4, 12, activation="gelu", norm_first=True), normal(2, 8)),
    ("encoder", lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
        8, 2, 16, batch_first=True), 2, norm=nn.LayerNorm(8)), normal(4, 8)),
    ("decoder-layer", lambda: nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
     several(normal(4, 8), normal(6, 8))),
    ("decoder", lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(
        8, 2, 16, batch_first=True, norm_first=True), 2), several(normal(3, 8), normal(5, 8))),
]


# ------------------------------------------------------------------ the check
def _inputs(make: Callable, batch: int, seed: int) -> tuple:
    value = make(batch, seed)
    return value if isinstance(value, tuple) else (value,)


def _flat(output: Any) -> list:
    if isinstance(output, (tuple, list)):
        return [leaf for item in output for leaf in _flat(item)]
    return [output.numpy()]


def forward(model: nn.Module, inputs: tuple) -> list:
    model.eval()
    with cr.no_grad():
        return _flat(model(*[cr.tensor(x) for x in inputs]))


def session(proto) -> "ort.InferenceSession":
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def assert_matches(model: nn.Module, proto, make: Callable, batches=BATCHES) -> None:
    """onnxruntime's outputs equal chainrule's forward at each batch size."""
    runner = session(proto)
    names = [i.name for i in runner.get_inputs()]
    for batch in batches:
        inputs = _inputs(make, batch, seed=batch)
        got = runner.run(None, dict(zip(names, inputs)))
        want = forward(model, inputs)
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape, f"output {k} at batch {batch}: {g.shape} != {w.shape}"
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL,
                                       err_msg=f"output {k} at batch {batch}")


@pytest.mark.parametrize("factory, make", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_export_matches_onnxruntime(factory, make, tmp_path):
    model = build(factory)
    example = _inputs(make, EXAMPLE_BATCH, seed=0)
    path = tmp_path / "model.onnx"
    proto = cx.export(model, example if len(example) > 1 else example[0], path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert all(d.dim_param == "batch" for i in proto.graph.input
               for d in i.type.tensor_type.shape.dim[:1])
    assert_matches(model, proto, make)


def test_every_converter_has_a_row():
    tested = {type(build(factory)) for _, factory, _ in ROWS}
    language = {"CharLSTM", "CharTransformer"}  # tested through chainrule train's runs
    missing = set(cx.supported_modules()) - {cls.__name__ for cls in tested} - language
    assert not missing, f"converters without a test row: {sorted(missing)}"


OPSET_ROWS = ["batchnorm2d-batch-stats", "maxout", "mha-batch-first", "pairwise-distance-inf",
              "cosine-similarity", "glu", "lstm-2-layers-bidirectional", "reflectionpad2d",
              "conv2d-same-stride", "avgpool2d-ceil", "layernorm"]


@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("row", OPSET_ROWS)
def test_later_opsets(row, opset):
    """Reductions take their axes as an input from opset 18: the rows that reduce, and a few
    others, at the later opsets."""
    _, factory, make = next(r for r in ROWS if r[0] == row)
    model = build(factory)
    example = _inputs(make, EXAMPLE_BATCH, seed=0)
    proto = cx.export(model, example if len(example) > 1 else example[0], None, opset=opset)
    assert proto.opset_import[0].version == opset
    onnx.checker.check_model(proto, full_check=True)
    assert_matches(model, proto, make, batches=(2,))


def test_static_batch():
    model = build(lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 2)))
    x = normal(2, 4, 4)(5, 0)
    proto = cx.export(model, x, None, dynamic_batch=False)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [5, 2, 4, 4]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [5, 2]
    assert_matches(model, proto, normal(2, 4, 4), batches=(5,))


def test_parameters_are_initializers_named_as_the_state_dict():
    model = build(lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU()))
    proto = cx.export(model, normal(4)(2, 0), None)
    names = {i.name for i in proto.graph.initializer}
    used = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}  # a count
    assert used <= names
    initial = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    np.testing.assert_array_equal(initial["1.running_var"], model[1].running_var.numpy())


def test_shared_weights_stay_one_initializer():
    layer = nn.Linear(4, 4)
    model = build(lambda: nn.Sequential(layer, nn.Tanh(), layer))
    proto = cx.export(model, normal(4)(2, 0), None)
    assert [i.name for i in proto.graph.initializer].count("0.weight") == 1
    assert_matches(model, proto, normal(4))


def test_training_flags_are_restored():
    model = build(lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4)))
    model.train()
    model[2].eval()  # a mixed state, as a user may leave it
    before = [m.training for m in model.modules()]
    running = model[2].running_mean.numpy().copy()
    cx.export(model, normal(4)(3, 0), None)
    assert [m.training for m in model.modules()] == before
    np.testing.assert_array_equal(model[2].running_mean.numpy(), running)  # no update either


def test_the_file_is_written_and_loads(tmp_path):
    model = build(lambda: nn.Linear(3, 2))
    path = tmp_path / "sub" / "linear.onnx"
    proto = cx.export(model, normal(3)(1, 0), str(path))
    assert path.read_bytes() == proto.SerializeToString()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert proto.producer_name == "chainrule" and proto.opset_import[0].version == 17
    assert_matches(model, onnx.load(str(path)), normal(3))


def test_output_names_and_several_outputs():
    proto = cx.export(build(lambda: nn.LSTM(3, 4, batch_first=True)), normal(5, 3)(2, 0), None)
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1", "output_2"]
    dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
            for o in proto.graph.output]
    assert dims == [["batch", 5, 4], [1, "batch", 4], [1, "batch", 4]]
    single = cx.export(build(nn.Identity), normal(3)(2, 0), None)
    assert [o.name for o in single.graph.output] == ["output"]
    assert [i.name for i in single.graph.input] == ["input"]


# ------------------------------------------------------------------ errors
class Custom(nn.Module):
    def forward(self, x):
        return x * 2


class MySoftmax(nn.Softmax):
    def forward(self, x):
        return super().forward(x) * 2


@pytest.mark.parametrize("model, shape, message", [
    (lambda: nn.Sequential(nn.Linear(4, 4), Custom()), (2, 4),
     "cannot export model.1 (Custom): no ONNX converter; supported: Abs, AdaptiveAvgPool2d, "),
    (lambda: nn.Sequential(nn.Sequential(nn.ReLU(), MySoftmax())), (2, 4),
     "cannot export model.0.1 (MySoftmax): no ONNX converter (it subclasses Softmax"),
    (Custom, (2, 4), "cannot export model (Custom): no ONNX converter"),
    (lambda: nn.Sequential(nn.Unflatten(0, (1, 2))), (2, 4),
     "cannot export model.0 (Unflatten): the unflattened axis is the symbolic batch axis 0"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2)), (2, 4),
     "cannot export model.1 (MultiheadAttention): it gets 1 input(s) here, export converts it "
     "with the inputs (query, key, value) (masks and initial states are not exported)"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2)), (2, 4),
     "cannot export model.1 (Linear): its forward fails on the example input: ShapeError: "),
    (lambda: nn.TransformerEncoderLayer(4, 2, 8, activation=lambda x: x, batch_first=True),
     (2, 3, 4), "cannot export model (TransformerEncoderLayer): its activation is the Python "
                "callable"),
    (lambda: nn.TransformerEncoderLayer(4, 2, 8, activation=nn.Tanh(), batch_first=True),
     (2, 3, 4), "cannot export model (TransformerEncoderLayer): its activation is a Tanh module"),
    (lambda: nn.MaxPool2d(2, return_indices=True), (1, 1, 4, 4),
     "cannot export model (MaxPool2d): return_indices=True"),
    (lambda: nn.Conv2d(1, 2, 3), (4, 4),
     "cannot export model (Conv2d): export needs a batched input"),
    (lambda: nn.ReflectionPad1d(1), (4,), "cannot export model (ReflectionPad1d): it pads the "
                                          "symbolic batch axis"),
    (lambda: nn.Softmax(dim=0), (3, 4), None),  # supported: softmax over the batch is the same
])
def test_unsupported_modules_are_named(model, shape, message):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if message is None:
        cx.export(model(), x, None)
        return
    with pytest.raises(cx.ExportError) as info:
        cx.export(model(), x, None)
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, cr.ChainruleError) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="not a module"), "model must be a chainrule.nn.Module, got str"),
    (dict(opset=16), "opset=16: must be an integer from 17 to 21"),
    (dict(opset=22), "opset=22"),
    (dict(opset="17"), "opset='17'"),
    (dict(opset=True), "opset=True"),
    (dict(dynamic_batch="yes"), "dynamic_batch='yes' must be True or False"),
    (dict(example_input=np.zeros((2, 4))), "example_input is float64: the graph's input is "
                                           "float32"),
    (dict(example_input=np.float32(1.0)), "it needs a batch axis"),
    (dict(example_input=np.zeros((0, 4), np.float32)), "no empty axis"),
    (dict(example_input=[[1.0, 2.0]]), "example_input must be a chainrule Tensor or a NumPy "
                                       "array, got list"),
    (dict(example_input=()), "example_input is empty"),
    (dict(example_input=np.zeros((2, 4), bool)), "has dtype bool"),
    (dict(path=""), "must name a file"),
])
def test_bad_arguments(kwargs, message, tmp_path):
    args = dict(model=nn.Linear(4, 2), example_input=np.zeros((2, 4), np.float32),
                path=tmp_path / "m.onnx", opset=17, dynamic_batch=True)
    args.update(kwargs)
    with pytest.raises(cx.ExportError) as info:
        cx.export(**args)
    assert message in str(info.value)
    assert not (tmp_path / "m.onnx").exists()


def test_path_that_is_a_folder(tmp_path):
    with pytest.raises(cx.ExportError, match="must name a file"):
        cx.export(nn.Linear(4, 2), np.zeros((2, 4), np.float32), tmp_path)


def test_float64_models_are_refused():
    model = nn.Linear(3, 2)
    model.weight.data = model.weight.data.astype(np.float64)
    with pytest.raises(cx.ExportError, match="weight is float64: ONNX export writes float32"):
        cx.export(model, np.zeros((1, 3), np.float32), None)

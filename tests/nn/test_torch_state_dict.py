"""A torch ``state_dict`` loads into the chainrule module of the same architecture and back, for
every layer with parameters or buffers: the names are torch's, and both modules then compute the
same outputs (float32 and float64).

Each row: torch's module, chainrule's, and its inputs. Torch's weights (randomised, running
statistics too) go through a safetensors file written by ``safetensors.torch.save_file`` into
chainrule (``training.checkpoint.load_model``), and as torch tensors in memory
(``Module.load_state_dict``); chainrule's go back through ``checkpoint.save_model`` and
``safetensors.torch.load_file`` into a freshly initialised torch module.
"""

import re
from typing import Any, Callable, NamedTuple, Optional

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
checkpoint = pytest.importorskip("chainrule.training.checkpoint")

T = torch.nn


class Row(NamedTuple):
    theirs: Optional[Callable[[], Any]]  # None: no torch peer (chainrule's round trip only)
    ours: Callable[[], nn.Module]
    shapes: tuple  # input shapes; an int dtype for indices: ("int", shape, high)
    torch_only: tuple = ()


def _encoder(module):
    return lambda: module.TransformerEncoder(module.TransformerEncoderLayer(4, 2, 8, dropout=0.0),
                                             2, **({"enable_nested_tensor": False}
                                                   if module is T else {}))


def _decoder(module):
    return lambda: module.TransformerDecoder(module.TransformerDecoderLayer(4, 2, 8, dropout=0.0),
                                             2)


def _nested(module):
    return lambda: module.Sequential(module.Linear(4, 6), module.Sequential(
        module.BatchNorm1d(6), module.Tanh()), module.Linear(6, 2))


ROWS = {
    "Linear": Row(lambda: T.Linear(4, 3), lambda: nn.Linear(4, 3), ((2, 4),)),
    "Linear-nobias": Row(lambda: T.Linear(4, 3, bias=False), lambda: nn.Linear(4, 3, bias=False),
                         ((2, 4),)),
    "Bilinear": Row(lambda: T.Bilinear(3, 4, 2), lambda: nn.Bilinear(3, 4, 2), ((2, 3), (2, 4))),
    "Conv1d": Row(lambda: T.Conv1d(4, 6, 3, padding=1, groups=2),
                  lambda: nn.Conv1d(4, 6, 3, padding=1, groups=2), ((2, 4, 7),)),
    "Conv2d": Row(lambda: T.Conv2d(3, 4, 3, stride=2), lambda: nn.Conv2d(3, 4, 3, stride=2),
                  ((2, 3, 7, 7),)),
    "Conv3d": Row(lambda: T.Conv3d(2, 3, (2, 3, 3)), lambda: nn.Conv3d(2, 3, (2, 3, 3)),
                  ((1, 2, 4, 5, 5),)),
    "ConvTranspose1d": Row(lambda: T.ConvTranspose1d(4, 2, 3, stride=2, groups=2),
                           lambda: nn.ConvTranspose1d(4, 2, 3, stride=2, groups=2), ((2, 4, 5),)),
    "ConvTranspose2d": Row(lambda: T.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1),
                           lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1),
                           ((1, 3, 4, 4),)),
    "ConvTranspose3d": Row(lambda: T.ConvTranspose3d(2, 2, 2), lambda: nn.ConvTranspose3d(2, 2, 2),
                           ((1, 2, 3, 3, 3),)),
    "BatchNorm1d": Row(lambda: T.BatchNorm1d(3), lambda: nn.BatchNorm1d(3), ((4, 3),)),
    "BatchNorm1d-noaffine": Row(lambda: T.BatchNorm1d(3, affine=False),
                                lambda: nn.BatchNorm1d(3, affine=False), ((4, 3, 5),)),
    "BatchNorm2d": Row(lambda: T.BatchNorm2d(3), lambda: nn.BatchNorm2d(3), ((2, 3, 4, 4),)),
    "InstanceNorm1d-tracked": Row(
        lambda: T.InstanceNorm1d(3, affine=True, track_running_stats=True),
        lambda: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), ((2, 3, 6),)),
    "InstanceNorm2d-affine": Row(lambda: T.InstanceNorm2d(3, affine=True),
                                 lambda: nn.InstanceNorm2d(3, affine=True), ((2, 3, 4, 4),)),
    "LayerNorm": Row(lambda: T.LayerNorm((3, 4)), lambda: nn.LayerNorm((3, 4)), ((2, 3, 4),)),
    "GroupNorm": Row(lambda: T.GroupNorm(2, 4), lambda: nn.GroupNorm(2, 4), ((2, 4, 5),)),
    "Embedding": Row(lambda: T.Embedding(6, 3, padding_idx=0),
                     lambda: nn.Embedding(6, 3, padding_idx=0), (("int", (2, 4), 6),)),
    "PReLU": Row(lambda: T.PReLU(3), lambda: nn.PReLU(3), ((2, 3, 4),)),
    "RNN": Row(lambda: T.RNN(3, 4, num_layers=2, bidirectional=True),
               lambda: nn.RNN(3, 4, num_layers=2, bidirectional=True), ((5, 2, 3),)),
    "GRU": Row(lambda: T.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
               lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
               ((2, 5, 3),)),
    "LSTM": Row(lambda: T.LSTM(3, 4, num_layers=2, bidirectional=True),
                lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), ((5, 2, 3),)),
    "RNNCell": Row(lambda: T.RNNCell(3, 4), lambda: nn.RNNCell(3, 4), ((2, 3),)),
    "GRUCell": Row(lambda: T.GRUCell(3, 4), lambda: nn.GRUCell(3, 4), ((2, 3),)),
    "LSTMCell": Row(lambda: T.LSTMCell(3, 4), lambda: nn.LSTMCell(3, 4), ((2, 3),)),
    "MultiheadAttention": Row(lambda: T.MultiheadAttention(4, 2),
                              lambda: nn.MultiheadAttention(4, 2), ((5, 2, 4),) * 3),
    "TransformerEncoderLayer": Row(lambda: T.TransformerEncoderLayer(4, 2, 8, dropout=0.0),
                                   lambda: nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0),
                                   ((5, 2, 4),)),
    "TransformerEncoder": Row(_encoder(T), _encoder(nn), ((5, 2, 4),)),
    "TransformerDecoderLayer": Row(lambda: T.TransformerDecoderLayer(4, 2, 8, dropout=0.0),
                                   lambda: nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0),
                                   ((5, 2, 4), (3, 2, 4))),
    "TransformerDecoder": Row(_decoder(T), _decoder(nn), ((5, 2, 4), (3, 2, 4))),
    "Sequential-nested": Row(_nested(T), _nested(nn), ((4, 4),)),
    "LowRankLinear": Row(None, lambda: nn.LowRankLinear(4, 3, rank=2), ((2, 4),)),
    "Residual": Row(None, lambda: nn.Residual(nn.Linear(4, 4)), ((2, 4),)),
}
#: layers with no state of their own (their arguments are sizes); containers hold their children's
STATELESS = re.compile(r"(Adaptive)?(Avg|Max)Pool\dd|(Circular|Constant|Reflection|Replication|"
                       r"Zero)Pad\dd|MaxUnpool2d|Maxout|Fold|Unfold|Unflatten|Module(List|Dict)?|"
                       r"Parameter(List|Dict)")
TOLERANCES = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _torch_module(row: Row, dtype: Any, seed: int) -> Any:
    """Torch's module in ``dtype``, every parameter and buffer drawn at random, in eval mode."""
    torch.manual_seed(seed)
    module = row.theirs().to(getattr(torch, np.dtype(dtype).name)).eval()
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                value.fill_(3)
            elif name.endswith("running_var"):
                value.uniform_(0.5, 1.5)
            else:
                value.normal_(0.0, 0.5)
    return module


def _chainrule_module(row: Row, dtype: Any) -> nn.Module:
    module = row.ours().eval()
    for value in [*module.parameters(), *module.buffers()]:
        if value.dtype.kind == "f":
            value.data = value.data.astype(dtype)
    return module


def _inputs(row: Row, dtype: Any) -> list:
    rng = np.random.default_rng(0)
    return [rng.integers(0, spec[2], spec[1]) if spec[0] == "int" else
            rng.standard_normal(spec).astype(dtype) for spec in row.shapes]


def _flat(value: Any) -> list:
    """The arrays of a (nested tuple of) outputs, Nones left out."""
    if isinstance(value, (tuple, list)):
        return [array for item in value for array in _flat(item)]
    if value is None:
        return []
    return [value.detach().numpy() if isinstance(value, torch.Tensor) else value.numpy()]


def _same_outputs(got: list, expected: list, **tolerance: float) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", [name for name, row in ROWS.items() if row.theirs])
def test_torch_state_dict_loads_into_chainrule_and_back(name, dtype, tmp_path):
    row = ROWS[name]
    theirs, ours = _torch_module(row, dtype, seed=0), _chainrule_module(row, dtype)
    state = theirs.state_dict()
    assert list(ours.state_dict()) == [key for key in state if
                                       key.rpartition(".")[2] not in row.torch_only]
    safetensors_torch.save_file(state, tmp_path / "torch.safetensors")
    checkpoint.load_model(ours, tmp_path / "torch.safetensors", strict=not row.torch_only)
    inputs = _inputs(row, dtype)
    expected = _flat(theirs(*map(torch.from_numpy, inputs)))
    got = _flat(ours(*map(cr.tensor, inputs)))
    _same_outputs(got, expected, **TOLERANCES[dtype])

    in_memory = _chainrule_module(row, dtype)  # torch's tensors themselves, read through DLPack
    missing, unexpected = in_memory.load_state_dict(state, strict=not row.torch_only)
    assert not missing and {k.rpartition(".")[2] for k in unexpected} <= set(row.torch_only)
    for key, value in in_memory.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key].numpy(), err_msg=key)

    checkpoint.save_model(ours, tmp_path / "chainrule.safetensors")
    back = _torch_module(row, dtype, seed=1)
    result = back.load_state_dict(safetensors_torch.load_file(tmp_path / "chainrule.safetensors"),
                                  strict=not row.torch_only)
    assert not result.unexpected_keys
    assert {k.rpartition(".")[2] for k in result.missing_keys} <= set(row.torch_only)
    _same_outputs(_flat(back(*map(torch.from_numpy, inputs))), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", [name for name, row in ROWS.items() if not row.theirs])
def test_layers_without_a_torch_peer_round_trip_through_a_file(name, tmp_path):
    row = ROWS[name]
    ours, fresh = _chainrule_module(row, np.float64), _chainrule_module(row, np.float64)
    checkpoint.save_model(ours, tmp_path / "model.safetensors")
    checkpoint.load_model(fresh, tmp_path / "model.safetensors")
    inputs = [cr.tensor(x) for x in _inputs(row, np.float64)]
    _same_outputs(_flat(fresh(*inputs)), _flat(ours(*inputs)), rtol=0, atol=0)


def test_every_layer_with_state_has_a_row():
    layers = {name for name in nn.__all__
              if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module)}
    covered = {type(m).__name__ for row in ROWS.values() for m in row.ours().modules()}
    default_stateless = set()
    for name in layers - covered:
        try:
            module = getattr(nn, name)()
        except TypeError:  # needs arguments: sizes of a stateless layer, listed in STATELESS
            continue
        if not module.state_dict():
            default_stateless.add(name)
    assert sorted(layers - covered - default_stateless
                  - {n for n in layers if STATELESS.fullmatch(n)}) == []


def test_a_torch_parameter_loads_and_a_bfloat16_one_is_named(tmp_path):
    theirs, ours = T.Linear(3, 2), nn.Linear(3, 2)
    ours.load_state_dict(dict(theirs.named_parameters()))  # requires grad: its values are read
    np.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())
    with pytest.raises(TypeError, match="load_state_dict: weight: .*bfloat16"):
        ours.load_state_dict({"weight": theirs.weight.detach().bfloat16(), "bias": theirs.bias})

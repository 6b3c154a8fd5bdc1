"""Module registration, state_dict round trips and errors, modes, hooks, repr, summary."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 2)
        self.scale = nn.Parameter(cr.ones(1).data)
        self.note = "not a parameter"

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_parameters_and_buffers_are_registered_by_attribute():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    # own parameters first, then sub-modules in order (PyTorch)
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "head.weight", "head.bias"]
    assert [name for name, _ in net.named_buffers()] == [
        "body.2.running_mean", "body.2.running_var", "body.2.num_batches_tracked"]
    assert len(list(net.children())) == 2 and len(list(net.modules())) == 6
    assert all(p.requires_grad for p in net.parameters())
    assert net.note == "not a parameter"


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_state_dict_round_trip():
    a, b = Net(), Net()
    x = cr.randn(5, 4)
    a.train()(x)  # move the running statistics
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()) and va is not vb
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_names_missing_unexpected_and_mismatched():
    net = Net()
    state = dict(net.state_dict())
    del state["head.bias"]
    state["extra.weight"] = cr.zeros(2)
    with pytest.raises(KeyError) as info:
        net.load_state_dict(state)
    assert "head.bias" in str(info.value) and "extra.weight" in str(info.value)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["head.bias"] and unexpected == ["extra.weight"]
    state = dict(net.state_dict())
    state["head.weight"] = cr.zeros(3, 8)
    with pytest.raises(ValueError, match=r"head.weight: checkpoint \(3, 8\), model \(2, 8\)"):
        net.load_state_dict(state)


def test_train_eval_propagate_and_change_behaviour():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    drop = nn.Dropout(0.5)
    x = cr.ones(10, 10)
    assert drop.eval()(x) is x


def test_zero_grad_and_requires_grad():
    net = Net()
    net(cr.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_forward_hooks_run_and_can_be_removed():
    layer = nn.Linear(2, 2)
    seen = []
    handle = layer.register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    layer(cr.ones(3, 2))
    handle.remove()
    layer(cr.ones(3, 2))
    assert seen == [(3, 2)]


def test_repr_is_nested_and_readable():
    text = repr(Net())
    assert "(body): Sequential(" in text
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in text
    assert "(head): Linear(in_features=8, out_features=2, bias=True)" in text


def test_module_without_super_init_gets_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_sequential_and_module_list():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    assert len(seq) == 2 and isinstance(seq[1], nn.Tanh)
    items = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert len(list(items.parameters())) == 4
    with pytest.raises(TypeError, match="Module"):
        nn.Sequential(nn.Linear(2, 2), "relu")


def test_summary_against_hand_counts():
    model = nn.Sequential(nn.Conv2d(3, 64, 8, stride=2), nn.MaxPool2d(5),
                          nn.Conv2d(64, 128, 4, padding=1))
    table = cr.summary(model, (3, 256, 256))
    shapes = [row.output_shape for row in table.rows]
    assert shapes == [(64, 125, 125), (64, 25, 25), (128, 24, 24)]
    assert dict(table.rows[0].counts) == {"weight": 64 * 3 * 8 * 8, "bias": 64}
    assert dict(table.rows[2].counts) == {"weight": 131_072, "bias": 128}
    assert table.trainable == 12_288 + 64 + 131_072 + 128 and table.non_trainable == 0
    assert table.activation_bytes == 4 * (64 * 125 * 125 + 64 * 25 * 25 + 128 * 24 * 24)
    text = str(table)
    assert "128x24x24" in text and "131,072" in text


def test_summary_counts_buffers_as_non_trainable_and_keeps_mode():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model.train()
    table = cr.summary(model, (4,), batch_size=2)
    assert table.non_trainable == 3 + 3 + 1 and table.trainable == 4 * 3 + 3 + 6
    assert model.training


def test_a_checkpoint_without_the_batch_count_loads_strictly():
    # saved before BatchNorm had num_batches_tracked: every value loads, the count keeps its own
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net(cr.ones((5, 3)))  # training: counts one batch
    old = {k: v.numpy() * 2 for k, v in net.state_dict().items() if "num_batches" not in k}
    missing, unexpected = net.load_state_dict(old)
    assert (missing, unexpected) == ([], [])
    np.testing.assert_array_equal(net[1].running_var.numpy(), old["1.running_var"])
    assert net[1].num_batches_tracked.item() == 1
    with pytest.raises(KeyError, match="1.running_var"):
        net.load_state_dict({k: v for k, v in old.items() if k != "1.running_var"})

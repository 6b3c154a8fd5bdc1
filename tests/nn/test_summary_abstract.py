"""``summary`` takes its output shapes from abstract evaluation (eval_shape), not from a forward
pass on zeros; a model whose forward reads values still gets its table, computed on zeros."""

import importlib

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.ops.abstract import ShapeDtype

summary_module = importlib.import_module("chainrule.nn.summary")


def _conv_model():
    return nn.Sequential(nn.Conv2d(3, 64, 8, stride=2), nn.MaxPool2d(5),
                         nn.Conv2d(64, 128, 4, padding=1))


def test_a_batch_too_large_to_compute_is_tabulated_from_shapes():
    batch = 100_000  # the first layer's output alone would take 400 GB
    table = cr.summary(_conv_model(), (3, 256, 256), batch_size=batch)
    assert [row.output_shape for row in table.rows] == [(64, 125, 125), (64, 25, 25),
                                                        (128, 24, 24)]
    assert table.activation_bytes == 4 * batch * (64 * 125 * 125 + 64 * 25 * 25 + 128 * 24 * 24)
    assert f"(batch of {batch})" in str(table)


def test_the_forward_sees_abstract_tensors_and_no_zeros(monkeypatch):
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(type(x.data))
            return x * 2

    model = nn.Sequential(nn.Linear(4, 3), Probe())
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    monkeypatch.setattr(cr, "zeros", lambda *a, **k: pytest.fail("summary ran on zeros"))
    table = cr.summary(model, (4,), dtype="float64")
    assert seen == [ShapeDtype]
    assert [row.output_shape for row in table.rows] == [(3,), (3,)]
    assert table.activation_bytes == 8 * (3 + 3)


def test_the_table_is_the_same_as_a_forward_pass_on_zeros():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    abstract = summary_module.summary(model, (4,), batch_size=2)
    outputs = {}
    for _, module in summary_module._leaves(model):
        module.register_forward_hook(lambda m, i, o: outputs.__setitem__(id(m), o))
    model.eval()
    with cr.no_grad():
        model(cr.zeros((2, 4)))
    expected = [tuple(outputs[id(m)].shape[1:]) for _, m in summary_module._leaves(model)]
    assert [row.output_shape for row in abstract.rows] == expected
    assert abstract.activation_bytes == sum(o.size * 4 for o in outputs.values())


def test_a_forward_that_reads_values_is_run_on_zeros_instead():
    class Gate(nn.Module):
        def forward(self, x):
            return x * 2 if float(cr.sum(x)) >= 0 else x  # reads a value

    model = nn.Sequential(nn.Linear(4, 3), Gate())
    model.train()
    table = cr.summary(model, (4,), batch_size=5)
    assert [row.output_shape for row in table.rows] == [(3,), (3,)]
    assert table.activation_bytes == 4 * 5 * (3 + 3)
    assert model.training  # the mode is restored on this path too


def test_integer_inputs_keep_their_dtype():
    class Count(nn.Module):
        def forward(self, x):
            return x + 1

    table = cr.summary(Count(), (3,), dtype="int64")
    assert table.activation_bytes == 8 * 3  # int64 zeros would be too; float32 would give 12

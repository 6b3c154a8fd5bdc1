"""The calculator's size guards take result shapes from abstract evaluation (eval_shape):
nothing runs before the check, and the shapes are the operations' own."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.course import calculator
from chainrule.course.calculator import CalculatorError, calculate


def _t(*shape):
    return cr.ones(shape, dtype="float64")


@pytest.mark.parametrize("name, args, kwargs, shape", [
    ("matmul", [_t(3, 4), _t(4, 5)], {}, (3, 5)),
    ("matmul", [_t(2, 1, 3, 4), _t(5, 4, 2)], {}, (2, 5, 3, 2)),
    ("dot", [_t(4), _t(4)], {}, ()),
    ("outer", [_t(3), _t(7)], {}, (3, 7)),
    ("add", [_t(3, 1), _t(4)], {}, (3, 4)),
    ("where", [_t(2, 1), _t(1, 3), 0.0], {}, (2, 3)),
    ("reshape", [_t(2, 6), (3, -1)], {}, (3, 4)),
    ("broadcast_to", [_t(3, 1), (2, 3, 5)], {}, (2, 3, 5)),
    ("pad", [_t(2, 3), ((1, 0), (2, 3))], {}, (3, 8)),
    ("pad", [_t(2, 3), cr.tensor([1, 2])], {}, (5, 6)),  # pad widths as a list literal
    ("stack", [[_t(2, 3), _t(2, 3)]], {"axis": -1}, (2, 3, 2)),
    ("concatenate", [[_t(2, 3), _t(2, 1)]], {"axis": 1}, (2, 4)),
])
def test_result_shapes_come_from_abstract_evaluation(name, args, kwargs, shape):
    assert calculator._result_shape(name, args, kwargs) == shape


@pytest.mark.parametrize("name, args", [
    ("matmul", [_t(3, 4), _t(5, 2)]),
    ("add", [_t(3), _t(4)]),
    ("reshape", [_t(2, 3), (4, -1)]),
    ("stack", [[_t(2, 3), _t(3, 2)]]),
])
def test_invalid_arguments_leave_the_error_to_the_operation(name, args):
    assert calculator._result_shape(name, args, {}) is None
    assert calculator._guard_size(name, args, {}) == 0


def test_the_guard_runs_no_operation(monkeypatch):
    ran = []
    real = cr.ops.primitive.Primitive.bind

    def counting(prim, *inputs, **params):
        if type(inputs[0].data) is np.ndarray:
            ran.append(prim.name)
        return real(prim, *inputs, **params)

    monkeypatch.setattr(cr.ops.primitive.Primitive, "bind", counting)
    big = [_t(1000, 1), _t(1, 1000)]
    assert calculator._guard_size("matmul", big, {}) == 1_000_000
    with pytest.raises(CalculatorError, match="the result would have 1,000,000,000,000 elements"):
        calculator._guard_size("outer", [_t(10**6), _t(10**6)], {})
    assert ran == []


def test_losses_are_guarded_by_their_broadcast_inputs_not_their_scalar_result():
    with pytest.raises(CalculatorError, match="mse_loss: the result would have 1,000,000,000,000"):
        calculator._guard_size("mse_loss", [_t(10**6, 1), _t(10**6)], {})


def test_guarded_expressions_still_evaluate():
    out = calculate("sum(pad(x, [1, 2]) @ ones(6)) + sum(outer(x, x))", ["x=[2,-3,1]"])
    assert out.output.item() == pytest.approx(0.0)  # sum(x) + sum(x)**2 at sum(x) = 0
    assert np.allclose(out.gradients["x"], [1.0, 1.0, 1.0])  # 1 + 2 sum(x)

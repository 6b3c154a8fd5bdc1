"""Bad input: a clear chainrule/Python error naming the argument, never a deep NumPy traceback."""

import numpy as np
import pytest

import chainrule as cr

X = cr.ones(2, 3)

# (call, exception type, a phrase the message must contain)
# fmt: off
BAD_CALLS = [
    (lambda: X + cr.ones(4),                         cr.ShapeError, "do not broadcast"),
    (lambda: cr.sum(X, axis=5),                      cr.ShapeError, "axis=5 is out of range"),
    (lambda: X.reshape(4),                           cr.ShapeError, "cannot reshape (2, 3)"),
    (lambda: cr.softmax(X, axis=3),                  cr.ShapeError, "axis=3"),
    (lambda: X @ X,                                  cr.ShapeError, "do not align"),
    (lambda: cr.exp("a"),                            TypeError,     "cannot make a tensor"),
    (lambda: cr.maxout(X, 2),                        cr.ShapeError, "not divisible by pieces=2"),
    (lambda: cr.cross_entropy(X, [0, 5]),            ValueError,    "class 5"),
    (lambda: cr.cross_entropy(X, [0.5, 1.0]),        cr.ShapeError, "probability target"),
    (lambda: cr.nll_loss(X, np.array([0.5, 1.0])),   TypeError,     "integer class indices"),
    (lambda: cr.mse_loss(X, cr.ones(3)),             cr.ShapeError, "must match"),
    (lambda: cr.mse_loss(X, X, reduction="avg"),     ValueError,    "reduction='avg'"),
    (lambda: cr.concatenate([X, cr.ones(3, 3)], 1),  cr.ShapeError, "tensor 1 has shape (3, 3)"),
    (lambda: cr.clip(X),                             ValueError,    "give min, max"),
    (lambda: cr.split(X, 2, axis=1),                 cr.ShapeError, "equal sections"),
    (lambda: cr.pad(X, (1, 2, 3)),                   cr.ShapeError, "pad_width"),
    (lambda: cr.transpose(X, (0, 0)),                cr.ShapeError, "not a permutation"),
    (lambda: cr.squeeze(X, 0),                       cr.ShapeError, "axis 0 has length 2"),
    (lambda: cr.einsum("ij,jk->ik", X, X),           cr.ShapeError, "index 'j' has size 3"),
    (lambda: cr.broadcast_to(X, (3, 3)),             cr.ShapeError, "cannot broadcast"),
    (lambda: cr.binary_cross_entropy(X * 2, X),      ValueError,    "probabilities in [0, 1]"),
    (lambda: cr.ones(2)[[5]],                        IndexError,    "shape (2,)"),
    (lambda: cr.randn(-1),                           ValueError,    "non-negative"),
    (lambda: cr.stack([X, cr.ones(3)]),              cr.ShapeError, "tensor 1 has shape (3,)"),
    (lambda: cr.max(cr.ones(0)),                     cr.ShapeError,
                                                     "cannot reduce over an empty axis"),
    (lambda: cr.sum(cr.tensor(1.0), 1),              IndexError,    "valid: -1 .. 0"),
    (lambda: cr.tensor([1, 2], requires_grad=True),  TypeError,     "floating"),
]
# fmt: on


@pytest.mark.parametrize("call, error, phrase", BAD_CALLS,
                         ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_input_raises_a_clear_error(call, error, phrase):
    with pytest.raises(error) as info:
        call()
    assert phrase in str(info.value)


def test_shape_error_is_a_value_error():
    assert issubclass(cr.ShapeError, ValueError)

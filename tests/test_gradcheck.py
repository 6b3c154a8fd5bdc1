"""gradcheck accepts correct rules and names the element of a wrong one."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.gradcheck import gradgradcheck, max_gradient_error
from chainrule.ops.primitive import Primitive


def test_gradcheck_passes_on_correct_rules(rng):
    assert cr.gradcheck(lambda a, b: cr.tanh(a @ b),
                        (rng.standard_normal((2, 3)), rng.standard_normal((3, 2))))
    assert gradgradcheck(lambda a: cr.softmax(a) * a, (rng.standard_normal((2, 3)),))


def test_gradcheck_names_input_element_and_values():
    """A deliberately wrong rule (d/dx x^3 claimed to be 2x^2) must be caught."""
    from chainrule.ops import REGISTRY

    _wrong_cube = Primitive("test_wrong_cube", lambda x: x ** 3).defvjp(
        lambda g, out, x: g * 2 * x * x)
    try:
        x = np.array([[1.0, 2.0]])
        with pytest.raises(cr.GradcheckError) as info:
            cr.gradcheck(lambda t: _wrong_cube.bind(t), (x,))
        message = str(info.value)
        # the worst Jacobian entry: x = 2 at (0, 1), 8 claimed, 12 true (real values, no projection)
        assert "input 0" in message and "element (0, 1), output element (0, 1)" in message
        analytic = float(message.split("back-propagated ")[1].split(",")[0])
        numeric = float(message.split("finite differences ")[1].split(" ")[0])
        assert analytic / numeric == pytest.approx(2 / 3, rel=1e-6)  # 2x^2 claimed, 3x^2 true
        assert max_gradient_error(lambda t: _wrong_cube.bind(t), (x,)) > 0.1
    finally:
        REGISTRY.pop("test_wrong_cube", None)


def test_gradcheck_passes_integer_arguments_through():
    target = np.array([1, 0])
    assert cr.gradcheck(lambda z, y: cr.cross_entropy(z, y),
                        (np.random.default_rng(0).standard_normal((2, 3)), target))

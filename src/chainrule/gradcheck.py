"""``gradcheck``: compare back-propagated gradients with central finite differences in float64.

The output is reduced to a scalar with a fixed random projection, L(x) = sum(v * f(x)), as
HIPS/autograd's checker does: one backward pass gives dL/dx = v^T J, and each element is
compared with (L(x + eps e_j) - L(x - eps e_j)) / (2 eps). A random v makes a cancelling
error in J very unlikely to go unseen.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from chainrule import ops
from chainrule.autograd import grad as autograd_grad
from chainrule.errors import GradcheckError
from chainrule.grad_mode import enable_grad, no_grad
from chainrule.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "max_gradient_error"]


def _as_inputs(inputs: Any) -> list:
    """Floating inputs become float64 leaves; anything else (integer targets ...) passes through."""
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    prepared = []
    for x in inputs:
        if isinstance(x, (Tensor, np.ndarray, float)) and np.asarray(x).dtype.kind == "f":
            prepared.append(Tensor(np.array(np.asarray(x), dtype=np.float64), requires_grad=True))
        else:
            prepared.append(x)
    return prepared


def _projection(out: Tensor, seed: int) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(out.shape))


def _compare(f: Callable, inputs: list, eps: float, seed: int):
    """Yield (input index, flat element, analytic, numeric) for every differentiable element."""
    variables = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        out = f(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck needs f to return a Tensor, got {type(out).__name__}")
    v = _projection(out, seed)
    if out.requires_grad:
        analytic = autograd_grad(ops.sum(out * v), variables, allow_unused=True)
    else:
        analytic = [None] * len(variables)
    analytic = [np.zeros(x.shape) if g is None else g.data for g, x in zip(analytic, variables)]

    def projected(*args) -> float:
        with no_grad():
            return float(np.sum(np.asarray(f(*args).data, dtype=np.float64) * v.data))

    for k, x in enumerate(variables):
        index = next(i for i, y in enumerate(inputs) if y is x)
        flat = x.data.reshape(-1)
        for j in range(flat.size):
            saved = flat[j]
            flat[j] = saved + eps
            plus = projected(*inputs)
            flat[j] = saved - eps
            minus = projected(*inputs)
            flat[j] = saved
            yield index, j, float(analytic[k].reshape(-1)[j]), (plus - minus) / (2 * eps)


def gradcheck(f: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """True if every gradient of ``f`` at ``inputs`` matches central differences (float64).

    Passes when |analytic - numeric| <= atol + rtol * |numeric| for every element; otherwise raises
    :class:`~chainrule.GradcheckError` naming the input, the element and both values.
    """
    inputs = _as_inputs(inputs)
    for index, j, analytic, numeric in _compare(f, inputs, eps, seed):
        if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
            shape = inputs[index].shape
            element = np.unravel_index(j, shape) if shape else ()
            raise GradcheckError(
                f"gradient of input {index} (shape {shape}) at element {tuple(int(e) for e in element)}: "
                f"back-propagated {analytic!r}, finite differences {numeric!r} "
                f"(|difference| {abs(analytic - numeric):.3g} > atol {atol} + rtol {rtol} * |numeric|)"
            )
    return True


def _first_derivative(f: Callable, n_inputs: int, seed: int) -> Callable:
    """x -> d/dx sum(v * f(x)) with create_graph, concatenated flat: its gradient is a Hessian-vector product."""

    def df(*inputs):
        variables = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
        with enable_grad():  # also when the checker evaluates df for finite differences
            out = f(*inputs)
            grads = autograd_grad(ops.sum(out * _projection(out, seed)), variables,
                                  create_graph=True, allow_unused=True)
        parts = [ops.reshape(ops.zeros_like(x) if g is None else g, (-1,)) for g, x in zip(grads, variables)]
        return ops.concatenate(parts)

    return df


def gradgradcheck(f: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0) -> bool:
    """gradcheck of the gradient itself: second derivatives (``create_graph=True``) vs finite differences."""
    inputs = _as_inputs(inputs)
    return gradcheck(_first_derivative(f, len(inputs), seed), inputs, eps, atol, rtol, seed + 1)


def max_gradient_error(f: Callable, inputs: Sequence, eps: float = 1e-6, order: int = 1,
                       seed: int = 0) -> float:
    """The worst |analytic - numeric| / (1 + |numeric|) over all elements (for reports like ``chainrule check``)."""
    inputs = _as_inputs(inputs)
    if order == 2:
        f = _first_derivative(f, len(inputs), seed)
        seed += 1
    errors = [abs(a - n) / (1 + abs(n)) for _, _, a, n in _compare(f, inputs, eps, seed)]
    return max(errors, default=0.0)

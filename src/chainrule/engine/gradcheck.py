"""``gradcheck``: compare back-propagated gradients with central finite differences in float64.

The output is reduced to a scalar with a fixed random projection, L(x) = sum(v * f(x)), as
HIPS/autograd's checker does: one backward pass gives dL/dx = v^T J, and each element is
compared with (L(x + eps e_j) - L(x - eps e_j)) / (2 eps). A random v makes a cancelling
error in J very unlikely to go unseen. On a failure the failing input's whole Jacobian is
computed both ways, so the message shows real derivative values (not values times v): the
worst entry, with its input element and output element.

On any backend: ``f`` runs on the inputs' backend and device; the finite differences perturb a
host copy of each input (NumPy inputs in place) and compare on the host, in float64.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from chainrule import backends, ops
from chainrule.engine.autograd import grad as autograd_grad
from chainrule.engine.errors import GradcheckError
from chainrule.engine.grad_mode import enable_grad, no_grad
from chainrule.engine.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "max_gradient_error"]


def _as_inputs(inputs: Any) -> list:
    """Floating inputs become float64 leaves on their own device; anything else (integer
    targets ...) passes through."""
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    prepared = []
    for x in inputs:
        if isinstance(x, (Tensor, np.ndarray, float)) and np.asarray(x).dtype.kind == "f":
            copy = np.array(np.asarray(x), dtype=np.float64)
            prepared.append(Tensor(_like(copy, x), requires_grad=True))
        else:
            prepared.append(x)
    return prepared


def _like(host: np.ndarray, x: Any) -> Any:
    """``host`` on the device of ``x`` (a Tensor elsewhere than NumPy); else ``host`` itself."""
    if isinstance(x, Tensor) and type(x.data) is not np.ndarray:
        return backends.move(host, x.device)
    return host


def _projection(out: Tensor, seed: int) -> Tensor:
    return Tensor(_like(np.random.default_rng(seed).standard_normal(out.shape), out))


def _host64(t: Tensor) -> np.ndarray:
    """A tensor's values on the host in float64."""
    return np.asarray(t.numpy(), dtype=np.float64)


class _Elements:
    """One element of a leaf ``x`` at a time, read and written (the finite differences' shifts).

    A NumPy leaf is written in place through a flat view; on another backend a host copy is
    written and ``x.data`` replaced by that copy moved back to ``x``'s device.
    """

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self.in_place = type(x.data) is np.ndarray
        self.flat = x.data.reshape(-1) if self.in_place else np.array(x.numpy()).reshape(-1)

    def __len__(self) -> int:
        return self.flat.size

    def __getitem__(self, j: int) -> Any:
        return self.flat[j]

    def __setitem__(self, j: int, value: Any) -> None:
        self.flat[j] = value
        if not self.in_place:
            self.x.data = backends.move(self.flat.reshape(self.x.shape).copy(), self.x.device)


def _compare(f: Callable, inputs: list, eps: float, seed: int):
    """Yield (input index, flat element, analytic, numeric) for every differentiable element."""
    variables = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        out = f(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck needs f to return a Tensor, got {type(out).__name__}")
    v = _projection(out, seed)
    grads: Sequence[Optional[Tensor]]  # one per variable, None where unused
    if out.requires_grad:
        grads = autograd_grad(ops.sum(out * v), variables, allow_unused=True)
    else:
        grads = [None] * len(variables)
    analytic = [np.zeros(x.shape) if g is None else g.numpy() for g, x in zip(grads, variables)]
    v_host = v.numpy()

    def projected(*args) -> float:
        with no_grad():
            return float(np.sum(_host64(f(*args)) * v_host))

    for k, x in enumerate(variables):
        index = next(i for i, y in enumerate(inputs) if y is x)
        flat = _Elements(x)
        for j in range(len(flat)):
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

    Passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` for every element of the
    projected gradient; otherwise the failing input's real Jacobian is computed both ways (one
    backward pass per output element, central differences per input element) and
    :class:`~chainrule.GradcheckError` names the worst entry: input, input element, output element
    and the two derivative values.
    """
    inputs = _as_inputs(inputs)
    for index, j, analytic, numeric in _compare(f, inputs, eps, seed):
        if not _close(analytic, numeric, atol, rtol):
            projected = (j, analytic, numeric)
            raise GradcheckError(_worst_entry(f, inputs, index, eps, atol, rtol, projected))
    return True


def _close(analytic: float, numeric: float, atol: float, rtol: float) -> bool:
    return abs(analytic - numeric) <= atol + rtol * abs(numeric)


def _element(flat_index: int, shape: tuple) -> tuple:
    return tuple(int(e) for e in np.unravel_index(flat_index, shape)) if shape else ()


def _jacobians(f: Callable, inputs: list, index: int, eps: float) -> tuple:
    """(analytic, numeric, output shape): d f(...).flat[i] / d inputs[index].flat[j] at (i, j)."""
    x = inputs[index]
    with enable_grad():
        out = f(*inputs)
    analytic = np.zeros((out.size, x.size))
    for i in range(out.size if out.requires_grad else 0):  # one backward pass per output element
        seed = np.zeros(out.size, dtype=out.dtype)
        seed[i] = 1
        (g,) = autograd_grad(out, [x], grad_outputs=Tensor(_like(seed.reshape(out.shape), out)),
                             retain_graph=True, allow_unused=True)
        if g is not None:
            analytic[i] = g.numpy().reshape(-1)
    numeric = np.zeros_like(analytic)
    flat = _Elements(x)
    for j in range(x.size):  # central differences, one input element at a time
        saved = flat[j]
        values = []
        for shifted in (saved + eps, saved - eps):
            flat[j] = shifted
            with no_grad():
                values.append(_host64(f(*inputs)).reshape(-1))
        flat[j] = saved
        numeric[:, j] = (values[0] - values[1]) / (2 * eps)
    return analytic, numeric, out.shape


def _worst_entry(f: Callable, inputs: list, index: int, eps: float, atol: float, rtol: float,
                 projected: tuple) -> str:
    """The failure message: the Jacobian entry of input ``index`` furthest outside the tolerance.

    ``projected`` is (element, analytic, numeric) of the projected check that failed, reported
    when every single entry is within the tolerance (errors that only add up in v^T J).
    """
    analytic, numeric, out_shape = _jacobians(f, inputs, index, eps)
    shape = inputs[index].shape
    with np.errstate(invalid="ignore"):  # inf - inf: nan, a failure as in the projected check
        excess = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
    excess[np.isnan(excess)] = np.inf
    if excess.size and excess.max() > 1:
        i, j = map(int, np.unravel_index(int(np.argmax(excess)), excess.shape))
        a, n = float(analytic[i, j]), float(numeric[i, j])
        return (f"gradient of input {index} (shape {shape}) at element {_element(j, shape)}, "
                f"output element {_element(i, out_shape)} (output shape {out_shape}): "
                f"back-propagated {a!r}, finite differences {n!r} "
                f"(|difference| {abs(a - n):.3g} > atol {atol} + rtol {rtol} * |numeric|)")
    j, a, n = projected
    return (f"gradient of input {index} (shape {shape}) at element {_element(j, shape)}, "
            f"projected on a random output direction: back-propagated {a!r}, finite differences "
            f"{n!r} (|difference| {abs(a - n):.3g} > atol {atol} + rtol {rtol} * |numeric|); "
            f"every single Jacobian entry is within the tolerance, their errors add up")


def _first_derivative(f: Callable, n_inputs: int, seed: int) -> Callable:
    """x -> d/dx sum(v * f(x)) with create_graph, concatenated flat: its gradient is a
    Hessian-vector product."""

    def df(*inputs):
        variables = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
        with enable_grad():  # also when the checker evaluates df for finite differences
            out = f(*inputs)
            grads = autograd_grad(ops.sum(out * _projection(out, seed)), variables,
                                  create_graph=True, allow_unused=True)
        parts = [ops.reshape(ops.zeros_like(x) if g is None else g, (-1,))
                 for g, x in zip(grads, variables)]
        return ops.concatenate(parts)

    return df


def gradgradcheck(f: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0) -> bool:
    """gradcheck of the gradient itself: second derivatives (``create_graph=True``) vs finite
    differences."""
    inputs = _as_inputs(inputs)
    return gradcheck(_first_derivative(f, len(inputs), seed), inputs, eps, atol, rtol, seed + 1)


def max_gradient_error(f: Callable, inputs: Sequence, eps: float = 1e-6, order: int = 1,
                       seed: int = 0) -> float:
    """The worst |analytic - numeric| / (1 + |numeric|) over all elements (for reports like
    ``chainrule check``)."""
    inputs = _as_inputs(inputs)
    if order == 2:
        f = _first_derivative(f, len(inputs), seed)
        seed += 1
    errors = [abs(a - n) / (1 + abs(n)) for _, _, a, n in _compare(f, inputs, eps, seed)]
    return max(errors, default=0.0)

"""Linear algebra: matmul (NumPy semantics, 1-D and batched), dot, outer, einsum, tensordot,
inner, kron.

For C = A @ B the textbook rules are dA = G B^T and dB = A^T G; the 1-D cases insert and
remove the length-1 axis NumPy adds, and batch broadcasting is summed back by the engine.
"""

from __future__ import annotations

import math
import string
from typing import Any, Callable, Sequence, Union

import numpy as np

from chainrule.engine.errors import BackendMismatchError, ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.ops.abstract import ShapeDtype, broadcast_shapes
from chainrule.ops.elementwise import promote
from chainrule.ops.primitive import Primitive, as_tensor
from chainrule.ops.reductions import broadcast_to, normalize_axis
from chainrule.ops.shape import diagonal, expand_dims, reshape, squeeze, transpose_p

__all__ = ["matmul", "dot", "outer", "einsum", "tensordot", "inner", "kron"]


def _mT(x: Tensor) -> Tensor:
    """x with its last two axes swapped (shapes already validated: bind directly, this is a hot
    path)."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose_p.bind(x, axes=axes)


def _matmul_vjp_a(g, out, a, b):
    if b.ndim == 1:  # out[..., m] = a[..., m, k] b[k]
        return expand_dims(g, -1) * b
    if a.ndim == 1:  # out[..., n] = a[k] b[..., k, n]
        return squeeze(matmul(b, expand_dims(g, -1)), -1)
    return matmul_p.bind(g, _mT(b))  # G B^T


def _matmul_vjp_b(g, out, a, b):
    if a.ndim == 1:
        return g * a if b.ndim == 1 else expand_dims(a, -1) * expand_dims(g, -2)
    if b.ndim == 1:
        return squeeze(matmul(_mT(a), expand_dims(g, -1)), -1)
    if b.ndim == 2 and a.ndim > 2:  # sum over the stack of A_s^T G_s: one GEMM over all rows
        return matmul_p.bind(_mT(reshape(a, (-1, a.shape[-1]))), reshape(g, (-1, g.shape[-1])))
    return matmul_p.bind(_mT(a), g)  # A^T G


def _parse_einsum(subscripts: str, n_operands: int) -> tuple[list[str], str]:
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ValueError(
            f"einsum: ellipsis ('...') is not supported, in {subscripts!r}; name the axes"
        )
    lhs, arrow, rhs = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != n_operands:
        raise ValueError(
            f"einsum: {subscripts!r} names {len(inputs)} operands, {n_operands} were given"
        )
    if not arrow:  # NumPy's implicit output: the letters that appear once, sorted
        letters = "".join(inputs)
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for term in inputs:
        if len(set(term)) != len(term):
            raise ValueError(
                f"einsum: repeated index within one operand ({term!r}, a diagonal) "
                "is not supported"
            )
    return inputs, rhs


def _einsum_vjp(g, out, *operands, argnum, subscripts):
    """d out / d operand i: contract g with the other operands into operand i's indices."""
    inputs, output = _parse_einsum(subscripts, len(operands))
    target = inputs[argnum]
    others = [(term, op) for i, (term, op) in enumerate(zip(inputs, operands)) if i != argnum]
    available = set(output).union(*[set(term) for term, _ in others])
    reachable = "".join(c for c in target if c in available)
    grad = einsum(",".join([output] + [term for term, _ in others]) + "->" + reachable,
                  g, *[op for _, op in others])
    # Back to the operand's axes: a letter summed away in the forward (absent from ``reachable``)
    # comes back with length 1, and every length-1 axis is broadcast to the operand's length (a
    # letter of length 1 in the other operands and n in this one: the same value for each of the
    # n). An axis longer than the operand's (this operand broadcast) the engine sums back.
    shape = operands[argnum].shape
    kept = tuple(grad.shape[reachable.index(c)] if c in reachable else 1 for c in target)
    grad = reshape(grad, kept)
    full = tuple(max(k, n) for k, n in zip(kept, shape))
    return grad if full == kept else broadcast_to(grad, full)


def _einsum_numpy(*operands: np.ndarray, subscripts: str) -> np.ndarray:
    return np.einsum(subscripts, *operands, optimize=len(operands) > 2)


def _einsum_cupy(*operands: Any, subscripts: str) -> Any:
    import cupy  # noqa: PLC0415 -- only ever called on CuPy arrays

    return cupy.einsum(subscripts, *operands)


def _einsum_generic(xp: Any, *operands: Any, subscripts: str) -> Any:
    """einsum in the standard: operands contracted left to right, each pair by one matmul."""
    inputs, output = _parse_einsum(subscripts, len(operands))
    term, result = inputs[0], operands[0]
    for k in range(1, len(operands)):
        needed = set(output).union(*inputs[k + 1:])
        term, result = _contract(xp, term, result, inputs[k], operands[k], needed)
    term, result = _sum_letters(xp, term, result, set(output))
    return xp.permute_dims(result, tuple(term.index(c) for c in output))


def _sum_letters(xp: Any, term: str, x: Any, keep: set, keepdims: bool = False) -> tuple:
    """Sum ``x`` over the axes whose letters are not in ``keep``; the remaining letters."""
    axes = tuple(i for i, c in enumerate(term) if c not in keep)
    if not axes:
        return term, x
    kept = term if keepdims else "".join(c for c in term if c in keep)
    return kept, xp.sum(x, axis=axes, keepdims=keepdims)


def _contract(xp: Any, ta: str, a: Any, tb: str, b: Any, needed: set) -> tuple:
    """Contract a (letters ``ta``) with b (``tb``), keeping the letters in ``needed``.

    Shared needed letters are matmul's batch axes (broadcast), shared others its inner axis,
    the rest its rows and columns. A letter of length 1 in one operand and n in the other is
    summed in the second first (sum_j a_0 b_j = a_0 sum_j b_j).
    """
    ta, a = _sum_letters(xp, ta, a, needed | set(tb))
    tb, b = _sum_letters(xp, tb, b, needed | set(ta))
    batch = [c for c in ta if c in tb and c in needed]
    inner = [c for c in ta if c in tb and c not in needed]
    rows = [c for c in ta if c not in tb]
    cols = [c for c in tb if c not in ta]
    for c in inner:
        if a.shape[ta.index(c)] != b.shape[tb.index(c)]:
            if a.shape[ta.index(c)] == 1:
                tb, b = _sum_letters(xp, tb, b, set(tb) - {c}, keepdims=True)
            else:
                ta, a = _sum_letters(xp, ta, a, set(ta) - {c}, keepdims=True)
    size_a = dict(zip(ta, a.shape))
    size_b = dict(zip(tb, b.shape))
    a = xp.permute_dims(a, tuple(ta.index(c) for c in batch + rows + inner))
    b = xp.permute_dims(b, tuple(tb.index(c) for c in batch + inner + cols))
    a = xp.reshape(a, tuple(size_a[c] for c in batch)
                   + (math.prod(size_a[c] for c in rows), math.prod(size_a[c] for c in inner)))
    b = xp.reshape(b, tuple(size_b[c] for c in batch)
                   + (math.prod(size_b[c] for c in inner), math.prod(size_b[c] for c in cols)))
    product = xp.matmul(a, b)
    shape = (tuple(product.shape[:len(batch)]) + tuple(size_a[c] for c in rows)
             + tuple(size_b[c] for c in cols))
    return "".join(batch + rows + cols), xp.reshape(product, shape)


def _matmul_abstract(a: ShapeDtype, b: ShapeDtype) -> ShapeDtype:
    """NumPy's matmul: (..., m, k) @ (..., k, n) -> (broadcast ..., m, n); 1-D sides dropped."""
    a_shape = (1,) + a.shape if a.ndim == 1 else a.shape
    b_shape = b.shape + (1,) if b.ndim == 1 else b.shape
    shape = broadcast_shapes(a_shape[:-2], b_shape[:-2])
    shape += (a_shape[-2],) if a.ndim > 1 else ()
    shape += (b_shape[-1],) if b.ndim > 1 else ()
    return ShapeDtype(shape, np.result_type(a.dtype, b.dtype), a.device)


def _einsum_abstract(*operands: ShapeDtype, subscripts: str) -> ShapeDtype:
    inputs, output = _parse_einsum(subscripts, len(operands))
    sizes: dict[str, int] = {}
    for term, x in zip(inputs, operands):
        for c, n in zip(term, x.shape):
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    dtype = np.result_type(*[x.dtype for x in operands])
    return ShapeDtype(tuple(sizes[c] for c in output), dtype, operands[0].device)


# fmt: off
def _matmul_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul; a stack of matrices times one matrix is one GEMM over the stacked rows
    (np.matmul would run one small GEMM per matrix of the stack)."""
    if b.ndim == 2 and a.ndim > 2:
        rows = np.matmul(a.reshape(-1, a.shape[-1]), b)
        return rows.reshape(a.shape[:-1] + (b.shape[1],))
    return np.matmul(a, b)


matmul_p = Primitive("matmul", _matmul_numpy, generic="matmul",
                     abstract_eval=_matmul_abstract).defvjp(_matmul_vjp_a, _matmul_vjp_b)
einsum_p = Primitive("einsum", _einsum_numpy, generic=_einsum_generic, cupy=_einsum_cupy,
                     abstract_eval=_einsum_abstract, variadic=True).defvjp(_einsum_vjp)
# fmt: on


def matmul(a, b) -> Tensor:
    """Matrix product with ``numpy.matmul`` semantics (1-D operands, broadcast batch axes).

    An integer operand with a floating one takes its dtype (``promote``), not NumPy's float64.
    """
    a, b = promote(as_tensor(a), as_tensor(b))
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: operands must have at least one dimension; use mul for scalars")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({k_a} != {k_b} on the inner axis)"
        )
    try:
        return matmul_p.bind(a, b)
    except BackendMismatchError:
        raise
    except ValueError:
        raise ShapeError(
            f"matmul: batch axes of {a.shape} and {b.shape} do not broadcast"
        ) from None


def dot(a, b) -> Tensor:
    """Dot product: scalars multiply, 1-D/2-D operands as matmul (``numpy.dot`` on those ranks)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError(
            f"dot: operands of rank {a.ndim} and {b.ndim}: use matmul or einsum above rank 2"
        )
    return matmul(a, b)


def outer(a, b) -> Tensor:
    """Outer product of the flattened operands: out[i, j] = a[i] b[j]."""
    a, b = as_tensor(a), as_tensor(b)
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def einsum(subscripts: str, *operands) -> Tensor:
    """Einstein summation (``torch.einsum``/``numpy.einsum``): out[output letters] = sum over
    the other letters of the product of the operands.

    ``...`` stands for the leading axes not named (right-aligned and broadcast across
    operands; summed when the output has no ``...``, as PyTorch). A letter repeated in one
    operand takes its diagonal ("ii->" is the trace, "ii->i" the diagonal). A letter of length
    1 in one operand and n in another broadcasts. Each operand's gradient is again an einsum:
    g contracted with the other operands (then put back on the diagonal, broadcast or summed
    over the axes it had). Integer operands with floating ones take their dtype, as in
    ``matmul``.
    """
    subscripts, tensors = _canonical_einsum(
        subscripts, list(promote(*[as_tensor(x) for x in operands])))
    operands = tuple(tensors)
    inputs, _ = _parse_einsum(subscripts, len(operands))
    sizes: dict[str, tuple[int, int]] = {}
    for k, (term, x) in enumerate(zip(inputs, operands)):
        if len(term) != x.ndim:
            raise ShapeError(
                f"einsum: subscripts {term!r} name {len(term)} axes, "
                f"operand {k} has shape {x.shape}"
            )
        for letter, n in zip(term, x.shape):
            first = sizes.setdefault(letter, (n, k))
            if first[0] != n and 1 not in (first[0], n):
                raise ShapeError(
                    f"einsum: index {letter!r} has size {first[0]} in operand {first[1]} "
                    f"but {n} in operand {k}"
                )
    try:
        return einsum_p.bind(*operands, subscripts=subscripts)
    except BackendMismatchError:
        raise
    except ValueError as error:
        shapes = [x.shape for x in operands]
        raise ShapeError(f"einsum {subscripts!r} on shapes {shapes}: {error}") from None


# ------------------------------------------------------------------ einsum's general forms
def _split_einsum(subscripts: str, n_operands: int) -> tuple[list[str], Union[str, None]]:
    spec = subscripts.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != n_operands:
        raise ValueError(
            f"einsum: {subscripts!r} names {len(inputs)} operands, {n_operands} were given")
    for term in inputs + [rhs]:
        if term.replace("...", "").count(".") or term.count("...") > 1:
            raise ValueError(f"einsum: {subscripts!r}: '...' may appear once per operand, and "
                             "'.' only as part of it")
        if not all(c.isalpha() for c in term.replace("...", "")):
            raise ValueError(f"einsum: {subscripts!r}: subscripts must be letters")
    return inputs, (rhs if arrow else None)


def _canonical_einsum(subscripts: str, operands: list) -> tuple[str, list]:
    """Rewrite ``subscripts`` with an explicit output, ``...`` spelled out as spare letters and
    no letter twice in one operand (its diagonal taken first), the form ``einsum_p`` runs."""
    inputs, output = _split_einsum(subscripts, len(operands))
    if output is None:  # implicit output: '...' first, then the letters seen once, sorted
        letters = "".join(t.replace("...", "") for t in inputs)
        once = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        output = ("..." if any("..." in t for t in inputs) else "") + once
    spare = [c for c in string.ascii_letters if c not in subscripts]
    widths = []
    for k, (term, x) in enumerate(zip(inputs, operands)):
        named = len(term.replace("...", ""))
        width = x.ndim - named if "..." in term else 0
        if width < 0 or ("..." not in term and x.ndim != named):
            raise ShapeError(f"einsum: subscripts {term!r} name {named} axes, operand {k} has "
                             f"shape {x.shape}")
        widths.append(width)
    ellipsis = "".join(spare[:max(widths, default=0)])
    inputs = [t.replace("...", ellipsis[len(ellipsis) - w:] if w else "")
              for t, w in zip(inputs, widths)]
    output = output.replace("...", ellipsis)
    if len(set(output)) != len(output):
        raise ValueError(f"einsum: {subscripts!r}: an output letter appears twice")
    for k in range(len(operands)):
        inputs[k], operands[k] = _take_diagonals(inputs[k], operands[k], k)
    unknown = set(output) - set("".join(inputs))
    if unknown:
        raise ValueError(f"einsum: {subscripts!r}: output letters {sorted(unknown)} appear in "
                         "no operand")
    return ",".join(inputs) + "->" + output, operands


def _take_diagonals(term: str, x: Tensor, k: int) -> tuple[str, Tensor]:
    """A letter twice in one operand: the diagonal of those two axes (moved last), repeatedly."""
    while len(set(term)) != len(term):
        letter = next(c for c in term if term.count(c) > 1)
        first = term.index(letter)
        second = term.index(letter, first + 1)
        if x.shape[first] != x.shape[second]:
            raise ShapeError(f"einsum: index {letter!r} is repeated in operand {k} on axes of "
                             f"length {x.shape[first]} and {x.shape[second]}")
        x = diagonal(x, 0, first, second)
        term = "".join(c for i, c in enumerate(term) if i not in (first, second)) + letter
    return term, x


def _axis_list(axes: Union[int, Sequence[int]]) -> list:
    return [int(axes)] if isinstance(axes, (int, np.integer)) else [int(a) for a in axes]


def tensordot(a, b, axes: Union[int, Sequence] = 2) -> Tensor:
    """Contract ``axes`` of a with those of b (``numpy.tensordot``, ``torch.tensordot``'s dims):
    an int N pairs a's last N axes with b's first N; a pair of sequences names them.

    out[free a, free b] = sum over the paired axes of a * b; an einsum, so its gradients are.
    """
    a, b = as_tensor(a), as_tensor(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={axes} must lie in 0 .. {min(a.ndim, b.ndim)} "
                             f"for shapes {a.shape} and {b.shape}")
        pairs_a, pairs_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        try:
            first, second = axes
        except (TypeError, ValueError):
            raise ValueError(f"tensordot: axes={axes!r} must be an int or a pair of axis "
                             "sequences") from None
        pairs_a, pairs_b = _axis_list(first), _axis_list(second)
        if len(pairs_a) != len(pairs_b):
            raise ValueError(f"tensordot: axes={axes!r} pair {len(pairs_a)} axes of a with "
                             f"{len(pairs_b)} of b")
        normalize_axis(tuple(pairs_a), a.ndim, "axes")  # range and repeats
        normalize_axis(tuple(pairs_b), b.ndim, "axes")
        pairs_a = [p % a.ndim for p in pairs_a]
        pairs_b = [p % b.ndim for p in pairs_b]
    for i, j in zip(pairs_a, pairs_b):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(f"tensordot: axis {i} of a (length {a.shape[i]}) and axis {j} of b "
                             f"(length {b.shape[j]}) differ")
    if a.ndim + b.ndim - len(pairs_a) > len(string.ascii_letters):
        raise ValueError("tensordot: too many axes")
    letters = iter(string.ascii_letters)
    term_a = [next(letters) for _ in range(a.ndim)]
    term_b = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(pairs_a, pairs_b):
        term_b[j] = term_a[i]
    out = [c for i, c in enumerate(term_a) if i not in pairs_a]
    out += [c for j, c in enumerate(term_b) if j not in pairs_b]
    return einsum("".join(term_a) + "," + "".join(term_b) + "->" + "".join(out), a, b)


def inner(a, b) -> Tensor:
    """``torch.inner``: the sum over the last axes, out[i..., j...] = sum_k a[i..., k] b[j..., k];
    a 0-d operand multiplies."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"inner: the last axes of {a.shape} and {b.shape} differ")
    return tensordot(a, b, ([-1], [-1]))


def kron(a, b) -> Tensor:
    """Kronecker product (``torch.kron``): out[i * m + j] = a[i] b[j] on every axis, the
    shorter shape padded with leading 1s. A product of broadcast views, reshaped."""
    a, b = as_tensor(a), as_tensor(b)
    ndim = max(a.ndim, b.ndim)
    sa = (1,) * (ndim - a.ndim) + a.shape
    sb = (1,) * (ndim - b.ndim) + b.shape
    product = (reshape(a, tuple(v for n in sa for v in (n, 1)))
               * reshape(b, tuple(v for n in sb for v in (1, n))))
    return reshape(product, tuple(m * n for m, n in zip(sa, sb)))


#: Tensor methods of this family (name -> function(self, ...)), installed by ``ops/__init__.py``
TENSOR_METHODS: dict[str, Callable] = {"inner": inner, "kron": kron}

"""JAX-style function transforms on the engine: grad, value_and_grad, vjp, jvp, jacobian, hessian,
hvp, elementwise_grad.

How they nest (the *trace levels* of JAX and HIPS autograd, on a tape). Each call of a transform
is one level:

1. every differentiated argument becomes a variable *of this level only*: a fresh leaf (a
   ``_Variable``, which knows its level), or, when the value already requires grad (an outer
   level's variable, a parameter), a new node ``alias = reshape(value)`` whose gradient flows
   back to it. Differentiating with respect to the alias never sees the value's other uses, so
   ``grad(lambda x: x * grad(lambda y: x + y)(x))`` is 1, not 2 (no perturbation confusion);
2. ``f`` runs with grad mode on, recording a graph;
3. if that graph reaches a leaf that requires grad and is not one of this level's variables --
   a user's tensor (a parameter) or a variable of a level still running (a closure over an outer
   variable, an outer variable passed as another argument) -- an outer level may differentiate
   the result: the backward pass runs with ``create_graph=True`` and the results keep their
   history. Otherwise results are plain numbers. Variables of levels that have returned (a
   ``jvp`` inside ``grad``) are dead ends that nobody differentiates: they do not count.

Arguments may be pytrees: a Tensor, array or number, or a tuple, list or dict of them (nested);
gradients come back in the same structure, as JAX's. ``hessian`` is ``jacobian(jacobian(f))``.

Every array a transform makes itself (seeds, zero blocks) is made on the backend and device of the
tensor it goes with, so the transforms work on any backend.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union, cast

import numpy as np

from chainrule import backends, ops
from chainrule.engine.autograd import grad as autograd_grad
from chainrule.engine.grad_mode import enable_grad
from chainrule.engine.tensor import Tensor
from chainrule.ops.shape import reshape_p

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "elementwise_grad"]

ArgNums = Union[int, Sequence[int]]


# ---------------------------------------------------------------- pytrees
def tree_flatten(tree: Any) -> tuple[list, Callable[[list], Any]]:
    """(leaves, rebuild): the leaves of nested tuples/lists/dicts, and the inverse map."""
    if isinstance(tree, (tuple, list)):
        parts = [tree_flatten(item) for item in tree]
        kind = type(tree)

        def rebuild_sequence(leaves: list) -> Any:
            items, start = [], 0
            for part_leaves, part_rebuild in parts:
                items.append(part_rebuild(leaves[start:start + len(part_leaves)]))
                start += len(part_leaves)
            return tuple(items) if kind is tuple else list(items)

        return [leaf for part_leaves, _ in parts for leaf in part_leaves], rebuild_sequence
    if isinstance(tree, dict):
        keys = list(tree)
        values_leaves, rebuild_values = tree_flatten([tree[k] for k in keys])
        return values_leaves, lambda leaves: dict(zip(keys, rebuild_values(leaves)))
    return [tree], lambda leaves: leaves[0]


# ---------------------------------------------------------------- one level
def _argnums_tuple(argnums: ArgNums, n_args: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
    for i in nums:
        if not -n_args <= i < n_args:
            raise ValueError(
                f"argnums={argnums!r} is out of range for a call with {n_args} positional arguments"
            )
    return tuple(int(i) % n_args for i in nums)


class _Variable(Tensor):
    """A leaf a transform differentiates with respect to; ``level`` is the call that made it."""

    __slots__ = ("level",)
    level: "_Running"


class _Running:
    """Whether a level still runs. Variables point here, not at their ``_Level``: no reference
    cycle keeps a finished level's graph (``_Level.out``) alive until the next GC."""

    __slots__ = ("running",)

    def __init__(self) -> None:
        self.running = True


class _Level:
    """One call of a transform: its variables (flat), the trees they came from, and f's output.

    ``state.running`` is True until the transform returns (``finish``); see the module docstring.
    """

    def __init__(self, f: Callable, args: Sequence, kwargs: dict, argnums: tuple[int, ...]):
        args = list(args)
        self.state = _Running()
        self.variables: list[Tensor] = []
        self.rebuilds: list[Callable] = []
        self.counts: list[int] = []
        with enable_grad():
            for i in argnums:
                leaves, rebuild = tree_flatten(args[i])
                variables = [self._variable(leaf) for leaf in leaves]
                args[i] = rebuild(variables)
                self.variables += variables
                self.rebuilds.append(rebuild)
                self.counts.append(len(variables))
            try:
                self.out = f(*args, **kwargs)
            except BaseException:
                self.state.running = False
                raise

    def _variable(self, value: Any) -> Tensor:
        """This level's variable for ``value``: an alias if it requires grad, else a fresh leaf."""
        if isinstance(value, Tensor) and value.requires_grad:
            return reshape_p.bind(value, shape=value.shape)  # a new node, never x itself
        x = ops.as_tensor(value)
        if x.dtype.kind != "f":
            raise TypeError(
                f"can only differentiate with respect to floating inputs, got dtype {x.dtype}"
            )
        variable = cast(_Variable, _Variable._from_array(x.data))
        variable.level = self.state
        return variable.requires_grad_()

    def finish(self, result: Any) -> Any:
        self.state.running = False
        return result

    def reaches_outside(self, roots: Sequence[Tensor]) -> bool:
        """Whether ``roots`` depend on a leaf requiring grad that is not this level's variable.

        An alias variable is walked through: its value comes from outside by construction.
        """
        own = {id(v) for v in self.variables if v.grad_fn is None}
        stack = [r for r in roots if r.requires_grad]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if id(t) in own or id(t) in seen:
                continue
            seen.add(id(t))
            node = t.grad_fn
            if node is None:
                if not (isinstance(t, _Variable) and not t.level.running):
                    return True
                continue
            if node.inputs is not None:
                stack.extend(x for x in node.inputs if x.requires_grad)
        return False

    def pull_back(self, outs: Sequence[Tensor], cotangents: Sequence[Tensor],
                  create_graph: bool) -> list[Tensor]:
        """sum_k cotangent_k . d out_k / d variable, for every variable (zeros where unused)."""
        pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
        grads: Sequence = [None] * len(self.variables)
        if pairs:
            grads = autograd_grad([o for o, _ in pairs], self.variables,
                                  grad_outputs=[c for _, c in pairs], retain_graph=True,
                                  create_graph=create_graph, allow_unused=True)
        return [ops.zeros_like(x) if g is None else g for g, x in zip(grads, self.variables)]

    def trees(self, flat: Sequence, single: bool) -> Any:
        """Per-variable values back in the arguments' structures (one tree, or a tuple of trees)."""
        trees, start = [], 0
        for rebuild, count in zip(self.rebuilds, self.counts):
            trees.append(rebuild(list(flat[start:start + count])))
            start += count
        return trees[0] if single else tuple(trees)


def _split_aux(out: Any, has_aux: bool):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError("has_aux=True needs f to return a pair (output, auxiliary data)")
    return out


def _scalar(out: Any, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.size != 1:
        shape = out.shape if isinstance(out, Tensor) else type(out).__name__
        raise TypeError(
            f"{who} needs f to return a scalar Tensor, got {shape}; use jacobian or vjp otherwise"
        )
    if out.dtype.kind != "f":
        raise TypeError(f"{who} needs a floating output, got dtype {out.dtype}")
    return out


def _tensor_leaves(tree: Any, who: str) -> tuple[list[Tensor], Callable]:
    leaves, rebuild = tree_flatten(tree)
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise TypeError(f"{who} needs f to return Tensors (or tuples/lists/dicts of them), "
                            f"got {type(leaf).__name__}")
    return leaves, rebuild


def _single(argnums: ArgNums) -> bool:
    return isinstance(argnums, (int, np.integer))


# ---------------------------------------------------------------- the transforms
def value_and_grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` -> a function returning (f(x), df/dx); with has_aux, ((f(x), aux), df/dx).

    df/dx has the structure of the argument(s) at ``argnums`` (a tuple of them for a tuple).
    """

    def value_and_grad_f(*args, **kwargs):
        level = _Level(f, args, kwargs, _argnums_tuple(argnums, len(args)))
        out, aux = _split_aux(level.out, has_aux)
        out = _scalar(out, "grad")
        nested = level.reaches_outside([out])
        grads = level.pull_back([out], [ops.ones_like(out)], create_graph=nested)
        value = out if nested else out.detach()
        value_aux = (value, aux) if has_aux else value
        return level.finish((value_aux, level.trees(grads, _single(argnums))))

    return value_and_grad_f


def grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` (scalar-valued) -> its gradient function: grad(f)(x) = df/dx, shaped like x."""
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        value_aux, gradient = value_and_grad_f(*args, **kwargs)
        return (gradient, value_aux[1]) if has_aux else gradient

    return grad_f


def elementwise_grad(f: Callable, argnums: ArgNums = 0) -> Callable:
    """The gradient of ``sum(f(x))``: for an elementwise ``f``, its derivative at every element.

    As HIPS autograd's ``elementwise_grad``: the vector-Jacobian product with a cotangent of ones.
    """

    def elementwise_grad_f(*args, **kwargs):
        level = _Level(f, args, kwargs, _argnums_tuple(argnums, len(args)))
        outs, _ = _tensor_leaves(level.out, "elementwise_grad")
        nested = level.reaches_outside(outs)
        grads = level.pull_back(outs, [ops.ones_like(o) for o in outs], create_graph=nested)
        return level.finish(level.trees(grads, _single(argnums)))

    return elementwise_grad_f


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """(f(primals), vjp_fn) where vjp_fn(v) = v^T J, one cotangent tree per primal (a tuple).

    ``v`` has the structure of f's output (a Tensor, or a tuple/list/dict of them).
    """
    level = _Level(f, primals, {}, tuple(range(len(primals))))
    out, aux = _split_aux(level.out, has_aux)
    outs, rebuild_out = _tensor_leaves(out, "vjp")
    nested = level.reaches_outside(outs)
    level.finish(None)  # vjp_fn pulls back later; whether with history was decided here

    def vjp_fn(cotangent) -> tuple:
        given, _ = tree_flatten(cotangent)
        if len(given) != len(outs):
            raise ValueError(f"vjp: the cotangent has {len(given)} leaves, the output {len(outs)}")
        cotangents = [ops.as_tensor(c, like=o) for c, o in zip(given, outs)]
        for c, o in zip(cotangents, outs):
            if c.shape != o.shape:
                raise ValueError(
                    f"vjp: cotangent has shape {c.shape}, the output has shape {o.shape}"
                )
        create = nested or any(c.requires_grad for c in cotangents)
        grads = level.pull_back(outs, cotangents, create_graph=create)
        return level.trees(grads, False)

    value = out if nested else rebuild_out([o.detach() for o in outs])
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(f: Callable, primals: Sequence, tangents: Sequence) -> tuple:
    """(f(primals), J t): the directional derivative, by the double-VJP trick.

    u -> J^T u is linear in u, so its own VJP with cotangent t is (J^T)^T t = J t. The result is
    differentiable with respect to the primals *and* the tangents when an outer level needs it.
    """
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    level = _Level(f, tuple(primals), {}, tuple(range(len(primals))))
    outs, rebuild_out = _tensor_leaves(level.out, "jvp")
    tangent_leaves, _ = tree_flatten(tuple(tangents))
    if len(tangent_leaves) != len(level.variables):
        raise ValueError(f"jvp: {len(tangent_leaves)} tangent leaves for "
                         f"{len(level.variables)} primal leaves")
    tangent_leaves = [ops.as_tensor(t, like=x) for t, x in zip(tangent_leaves, level.variables)]
    for i, (t, x) in enumerate(zip(tangent_leaves, level.variables)):
        if t.shape != x.shape:
            raise ValueError(
                f"jvp: tangent {i} has shape {t.shape}, its primal has shape {x.shape}"
            )
    nested = level.reaches_outside(outs) or any(t.requires_grad for t in tangent_leaves)
    with enable_grad():
        dummies = [ops.zeros_like(o, requires_grad=True) for o in outs]
        pulled = level.pull_back(outs, dummies, create_graph=True)
        pairing = sum(ops.sum(g * t) for g, t in zip(pulled, tangent_leaves))
    pushed: Sequence = [None] * len(outs)
    if isinstance(pairing, Tensor) and pairing.requires_grad:
        pushed = autograd_grad(pairing, dummies, create_graph=nested, allow_unused=True)
    tangent_out = [ops.zeros_like(o) if t is None else t for t, o in zip(pushed, outs)]
    value = rebuild_out(outs if nested else [o.detach() for o in outs])
    return level.finish((value, rebuild_out(tangent_out)))


def jacobian(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """``f`` -> its Jacobian function (reverse mode: one backward per output element).

    For an output leaf of shape S and an input leaf of shape T the block has shape S + T. The
    result has f's output structure, each output leaf replaced by the argument structure of its
    blocks (a tuple over ``argnums`` when that is a tuple), as ``jax.jacrev``.
    """

    def jacobian_f(*args, **kwargs):
        level = _Level(f, args, kwargs, _argnums_tuple(argnums, len(args)))
        out, aux = _split_aux(level.out, has_aux)
        outs, rebuild_out = _tensor_leaves(out, "jacobian")
        nested = level.reaches_outside(outs)
        blocks = [level.trees(_blocks(level, outs, j, nested), _single(argnums))
                  for j in range(len(outs))]
        result = rebuild_out(blocks)
        return level.finish((result, aux) if has_aux else result)

    return jacobian_f


def _blocks(level: _Level, outs: list[Tensor], j: int, nested: bool) -> list[Tensor]:
    """d outs[j] / d variable for every variable, each shaped outs[j].shape + variable.shape."""
    out = outs[j]
    rows: list[list[Tensor]] = [[] for _ in level.variables]
    for k in range(out.size):
        onehot = _one_hot(out, k)
        cotangents = [onehot if i == j else ops.zeros_like(o) for i, o in enumerate(outs)]
        for row, g in zip(rows, level.pull_back(outs, cotangents, create_graph=nested)):
            row.append(g)
    blocks = []
    for row, x in zip(rows, level.variables):
        stacked = ops.stack(row) if row else _host_like(np.zeros((0,) + x.shape, x.dtype), x)
        blocks.append(ops.reshape(stacked, out.shape + x.shape))
    return blocks


def _one_hot(out: Tensor, k: int) -> Tensor:
    """The seed e_k of ``out``'s shape and dtype: 1 at flat index ``k``, 0 elsewhere."""
    seed = np.zeros(out.shape, dtype=out.dtype)
    seed.reshape(-1)[k] = 1
    return _host_like(seed, out)


def _host_like(host: np.ndarray, like: Tensor) -> Tensor:
    """A host array as a constant Tensor on ``like``'s backend and device."""
    if type(like.data) is not np.ndarray:
        host = backends.move(host, like.device)
    return Tensor._from_array(host)


def hessian(f: Callable, argnums: ArgNums = 0) -> Callable:
    """The second derivatives, ``jacobian(jacobian(f))``: shape out + in + in.

    With ``argnums=(0, 1)`` the blocks nest as JAX's: ``H[i][j] = d^2 f / dx_i dx_j``.
    """
    return jacobian(jacobian(f, argnums), argnums)


def hvp(f: Callable, argnums: ArgNums = 0) -> Callable:
    """``f`` (scalar-valued) -> ``hvp_f(*args, v)`` = H v, the Hessian times ``v``, exactly.

    ``v`` has the structure of the gradient (of the argument at ``argnums``); computed as the
    gradient of <grad f(x), v> (reverse over reverse), without forming H. HIPS autograd calls it
    ``hessian_vector_product``.
    """
    grad_f = grad(f, argnums)

    def hvp_f(*args):
        if not args:
            raise TypeError("hvp_f(*args, v) needs the arguments of f and the vector v")
        *f_args, v = args
        v_leaves, _ = tree_flatten(v)

        def dot_grad(*inner_args):
            g_leaves, _ = tree_flatten(grad_f(*inner_args))
            if len(g_leaves) != len(v_leaves):
                raise ValueError(f"hvp: v has {len(v_leaves)} leaves, the gradient {len(g_leaves)}")
            return sum(ops.sum(g * ops.as_tensor(u, like=g)) for g, u in zip(g_leaves, v_leaves))

        return grad(dot_grad, argnums)(*f_args)

    return hvp_f

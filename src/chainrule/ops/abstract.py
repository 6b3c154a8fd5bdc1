"""Abstract evaluation: an operation's output shape and dtype from its inputs', computing nothing.

Each primitive's ``rules["abstract_eval"]`` maps :class:`ShapeDtype` inputs (and the primitive's
keyword parameters) to the output's :class:`ShapeDtype`, as JAX's ``abstract_eval``. The helpers
below are the common rules, one line per family: ``same`` (unary elementwise), ``broadcast``
(binary elementwise, NumPy promotion), ``reduce`` (axis, keepdims), ``as_dtype``.

:func:`eval_shape` runs a whole function on shapes alone (``summary``, the calculator, export), as
``jax.eval_shape``: its tensors hold a :class:`ShapeDtype` as their ``data``. They belong to the
backend :data:`ABSTRACT` (registered in ``backends.BY_TYPE``), so ``Primitive.bind`` finds it as it
finds NumPy's, and for it calls :meth:`AbstractBackend.bind`: the primitive's abstract rule on the
inputs' abstract values, no kernel, no graph. A concrete array meeting an abstract one (a layer's
weight) joins as its abstract value. Code that reads values (``.numpy()``, ``float(t)``, NumPy
on ``.data``, the namespace ``xp``) raises :class:`AbstractValueError`.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    NamedTuple,
    NoReturn,
    Optional,
    Sequence,
    Union,
    cast,
)

import numpy as np

from chainrule import backends
from chainrule.engine.errors import ChainruleError, ShapeError
from chainrule.engine.grad_mode import no_grad
from chainrule.engine.tensor import Tensor

if TYPE_CHECKING:
    from chainrule.ops.primitive import Primitive

__all__ = ["ShapeDtype", "of", "same", "float_of", "broadcast", "compare", "reduce", "as_dtype",
           "broadcast_shapes", "reduced_shape", "eval_shape", "ABSTRACT", "AbstractBackend",
           "AbstractValueError"]


class AbstractValueError(ChainruleError, TypeError):
    """Code read the values of an abstract tensor (under :func:`eval_shape` there are none)."""


def _no_values(what: str) -> NoReturn:
    raise AbstractValueError(f"{what}: an abstract tensor (eval_shape) has a shape and a dtype but "
                             f"no values; this code reads values")


class ShapeDtype(NamedTuple):
    """The abstract value of an array: its shape, its NumPy dtype and (optionally) its device."""

    shape: tuple
    dtype: np.dtype
    device: Any = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    # Arithmetic and ordering on ``.data`` read values: refused, as tuples would concatenate,
    # repeat or compare (``x.data * 2``, ``x.data > 0``) silently. NumPy would make an array of
    # the fields.
    def __array__(self, dtype: Any = None, copy: Any = None) -> NoReturn:
        _no_values("np.asarray")

    def __add__(self, other: Any) -> NoReturn:
        _no_values("arithmetic on .data")

    def __radd__(self, other: Any) -> NoReturn:
        _no_values("arithmetic on .data")

    def __mul__(self, other: Any) -> NoReturn:
        _no_values("arithmetic on .data")

    def __rmul__(self, other: Any) -> NoReturn:
        _no_values("arithmetic on .data")

    def __lt__(self, other: Any) -> NoReturn:
        _no_values("a comparison of .data")

    def __le__(self, other: Any) -> NoReturn:
        _no_values("a comparison of .data")

    def __gt__(self, other: Any) -> NoReturn:
        _no_values("a comparison of .data")

    def __ge__(self, other: Any) -> NoReturn:
        _no_values("a comparison of .data")


def of(array: Any) -> ShapeDtype:
    """The abstract value of a concrete array (or Tensor)."""
    dtype = array.dtype  # a Tensor's is NumPy's already; a namespace's prints as "xp.float32"
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return ShapeDtype(tuple(array.shape), dtype)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple:
    """NumPy's broadcast of ``shapes``; ShapeError naming them when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ShapeError(f"shapes {', '.join(map(str, shapes))} do not broadcast") from None


def reduced_shape(shape: Sequence[int], axis: Union[None, int, Sequence[int]],
                  keepdims: bool) -> tuple:
    """``shape`` after reducing ``axis`` (None: all), keeping length-1 axes with ``keepdims``."""
    ndim = len(shape)
    listed = range(ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    axes = {a % ndim if ndim else a for a in listed}
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def same(x: ShapeDtype, **params: Any) -> ShapeDtype:
    """Unary elementwise: the input's shape and dtype."""
    return x


def float_of(x: ShapeDtype, **params: Any) -> ShapeDtype:
    """Unary elementwise with a floating result: integers become float32 (PyTorch's default)."""
    return x if x.dtype.kind in "fc" else ShapeDtype(x.shape, np.dtype(np.float32), x.device)


def broadcast(*inputs: ShapeDtype, **params: Any) -> ShapeDtype:
    """Elementwise of several inputs: the broadcast shape and NumPy's result dtype."""
    dtype = np.result_type(*[x.dtype for x in inputs])
    return ShapeDtype(broadcast_shapes(*[x.shape for x in inputs]), dtype, inputs[0].device)


def compare(*inputs: ShapeDtype, **params: Any) -> ShapeDtype:
    """Comparisons: the broadcast shape, bool."""
    shape = broadcast_shapes(*[x.shape for x in inputs])
    return ShapeDtype(shape, np.dtype(bool), inputs[0].device)


def reduce(x: ShapeDtype, *, axis: Any = None, keepdims: bool = False,
           dtype: Optional[Any] = None, **params: Any) -> ShapeDtype:
    """Reductions over ``axis``: the reduced shape, the input's dtype (or ``dtype``)."""
    return ShapeDtype(reduced_shape(x.shape, axis, keepdims),
                      x.dtype if dtype is None else np.dtype(dtype), x.device)


def as_dtype(dtype: Any) -> Any:
    """A rule giving the input's shape in a fixed ``dtype`` (``argmax`` ... use ``reduce``)."""
    target = np.dtype(dtype)

    def rule(x: ShapeDtype, **params: Any) -> ShapeDtype:
        return ShapeDtype(x.shape, target, x.device)

    return rule


# ------------------------------------------------------------------------------ evaluation


class _NoNamespace:
    """The abstract backend's ``xp``: any use means the code computes on values."""

    def __getattr__(self, name: str) -> NoReturn:
        _no_values(f"xp.{name}")


class AbstractBackend(backends.Backend):
    """The backend of abstract tensors: ``bind`` applies abstract rules, and there is no data.

    ``dtype``/``np_dtype`` are NumPy's (as ``Tensor.dtype``); ``from_host`` keeps only the shape
    and dtype, so ``as_tensor(2.0, like=abstract)`` is abstract too.
    """

    def __init__(self) -> None:
        super().__init__("abstract", None, ShapeDtype, device_of=_device_of, to_host=_to_host,
                         from_host=_from_host, fast=False)
        self.xp = _NoNamespace()
        self.kernel_name = "abstract"

    def dtype(self, dtype: Any) -> np.dtype:
        return np.dtype(dtype)

    def np_dtype(self, dtype: Any) -> np.dtype:
        return np.dtype(dtype)

    def asarray(self, value: Any, dtype: Any = None, device: Optional[backends.Device] = None
                ) -> ShapeDtype:
        host = np.asarray(value, dtype=None if dtype is None else np.dtype(dtype))
        return _from_host(host, device)

    def bind(self, prim: "Primitive", inputs: Sequence[Tensor], params: dict) -> Tensor:
        """``prim`` on abstract (or concrete) inputs: the output of its abstract rule, computing
        nothing and recording no graph."""
        rule = prim.rules.get("abstract_eval")
        if rule is None:
            raise NotImplementedError(f"{prim.name} has no abstract_eval rule: eval_shape cannot "
                                      f"go through it (add one with def_abstract_eval)")
        out = rule(*[_aval(x.data) for x in inputs], **params)
        if not isinstance(out, ShapeDtype):
            raise TypeError(f"the abstract_eval rule of {prim.name} returned "
                            f"{type(out).__name__}, not a ShapeDtype")
        return _wrap(_normal(out))


def _wrap(aval: ShapeDtype) -> Tensor:
    """An abstract tensor: ``aval`` as its ``data``."""
    return Tensor._from_array(cast(Any, aval))


def _device_of(array: Any) -> Any:
    return array.device


def _to_host(array: Any) -> NoReturn:
    _no_values("the host copy (.numpy(), .item(), float(), bool())")


def _from_host(host: np.ndarray, device: Any) -> ShapeDtype:
    return ShapeDtype(tuple(host.shape), host.dtype, device)


def _normal(aval: ShapeDtype) -> ShapeDtype:
    """``aval`` with a tuple of Python ints and a NumPy dtype (what Tensor properties promise)."""
    shape = tuple(int(n) for n in aval.shape)
    dtype = aval.dtype if isinstance(aval.dtype, np.dtype) else np.dtype(aval.dtype)
    if shape == aval.shape and dtype is aval.dtype:
        return aval
    return ShapeDtype(shape, dtype, aval.device)


def _aval(array: Any) -> ShapeDtype:
    """The abstract value of a concrete or abstract array, on the array's device."""
    if type(array) is ShapeDtype:
        return array
    backend = backends.backend_of(array)
    return ShapeDtype(tuple(array.shape), backend.np_dtype(array.dtype), backend.device_of(array))


#: The backend of tensors whose data is a :class:`ShapeDtype` (``Primitive.bind`` dispatches on it).
ABSTRACT = AbstractBackend()
backends.BY_TYPE[ShapeDtype] = ABSTRACT


def _abstract_tensor(leaf: Any) -> Any:
    """An argument of :func:`eval_shape` as an abstract tensor (arrays, tensors, ShapeDtypes);
    other leaves (numbers, strings) unchanged. A ShapeDtype without a device gets the default."""
    if isinstance(leaf, ShapeDtype):
        device = leaf.device if leaf.device is not None else backends.get_default_device()
        return _wrap(_normal(ShapeDtype(leaf.shape, leaf.dtype, device)))
    if isinstance(leaf, Tensor):
        return _wrap(_aval(leaf.data))
    if isinstance(leaf, (np.ndarray, np.generic)) or type(leaf) in backends.BY_TYPE:
        return _wrap(_aval(leaf))
    return leaf


def _abstract_result(leaf: Any) -> Any:
    """A leaf of ``fn``'s result: a tensor's ShapeDtype; other leaves unchanged."""
    if isinstance(leaf, Tensor):
        return _aval(leaf.data)
    return leaf


def _tree_map(f: Callable[[Any], Any], tree: Any) -> Any:
    """``f`` on every leaf of nested tuples/lists/dicts; a ShapeDtype is a leaf, not a tuple."""
    if isinstance(tree, ShapeDtype):
        return f(tree)
    if isinstance(tree, (tuple, list)):
        items = [_tree_map(f, item) for item in tree]
        if hasattr(tree, "_fields"):  # another NamedTuple: rebuilt by field
            return type(tree)(*items)
        return type(tree)(items)
    if isinstance(tree, dict):
        return {key: _tree_map(f, value) for key, value in tree.items()}
    return f(tree)


def eval_shape(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``'s result with every tensor replaced by its :class:`ShapeDtype`,
    computing nothing (``jax.eval_shape``).

    ``args`` are pytrees (tuples, lists, dicts) whose array leaves -- Tensors, arrays,
    ShapeDtypes -- become abstract tensors; other leaves pass as they are. Every primitive ``fn``
    reaches runs its ``abstract_eval`` rule (NotImplementedError names one without); nothing is
    recorded for autodiff. Raises what ``fn`` raises on bad shapes (ShapeError ...), and
    :class:`AbstractValueError` where ``fn`` reads values.
    """
    abstract_args = _tree_map(_abstract_tensor, args)
    abstract_kwargs = _tree_map(_abstract_tensor, kwargs)
    with no_grad():  # concrete work on parameters (W.T) records nothing either
        result = fn(*abstract_args, **abstract_kwargs)
    return _tree_map(_abstract_result, result)

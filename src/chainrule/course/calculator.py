r"""The expression language of ``chainrule graph``: a safe calculator over chainrule's functions.

Example::

    chainrule graph "max(sigmoid(W[0] @ x), sigmoid(W[1] @ x))" \
        --let "W=[[1,2],[-2,3]]" --let "x=[2,-3]"

The expression is parsed with :func:`ast.parse` (``mode="eval"``), checked against a whitelist and
evaluated by walking the syntax tree here: the user's text is never given to ``eval``, ``exec`` or
``compile``. Everything the whitelist does not name is refused before anything is evaluated, with
a one-line :class:`CalculatorError`.

Allowed:

* numbers (int, float), lists/tuples of numbers (at most 10,000 elements each; a list of numbers
  is a constant tensor: float64 if any element is a float, else int64);
* names bound with ``--let NAME=VALUE`` (each is a float64 leaf that requires grad);
* unary ``+``/``-``; binary ``+ - * / ** @`` (a literal exponent must satisfy ``|value| <= 100``; a
  tensor exponent is checked when it is known);
* subscripts ``x[0]``, ``x[:, 1]``, ``x[::-1]``, ``x[0, 1:3]`` (integers and slices of integers);
* calls of the functions in :data:`FUNCTIONS` (chainrule's public functions) with positional
  arguments (a tuple of numbers there is a shape or axes, as in ``reshape(x, (2, 3))``; a list
  ``[1, 2]`` is a constant tensor) and keyword arguments whose values are literals (numbers,
  True/False/None, tuples of numbers): ``sum(x, axis=0)``, ``softmax(x, axis=-1)``. ``stack`` and
  ``concatenate`` also take a list of expressions: ``stack([x, 2 * x])``.

**max and min**: ``max(a, b)`` with two positional arguments is ``chainrule.maximum(a, b)`` (the
elementwise maximum, gradient split evenly among ties), ``min(a, b)`` is ``chainrule.minimum``;
with one argument they are the reductions ``chainrule.max(a, axis=..., keepdims=...)`` (give the
axis as a keyword).

Refused: attributes, imports, lambdas, comprehensions, strings, comparisons and boolean operators
(use ``greater(x, y)`` ...), ``if`` expressions, starred arguments, ``**kwargs``, dunder names,
unknown names or functions, expressions longer than 2,000 characters or nested deeper than 32,
sizes above 1,000,000 elements (creation functions' literal sizes are checked before evaluation;
broadcasting, ``@``, ``outer``, ``broadcast_to``, ``pad``, ``stack`` and ``concatenate`` are checked
on the known shapes just before they run), more than 10,000,000 elements in all the operations'
results together or more than 10^10 multiply-adds in all (:data:`MAX_TOTAL_ELEMENTS`,
:data:`MAX_WORK`: the whole graph is kept alive),
and a non-scalar output (gradients need a scalar: wrap
it in ``sum(...)``).
"""

from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, TypeGuard, cast

import numpy as np

from chainrule.engine.errors import ChainruleError

__all__ = ["CalculatorError", "FUNCTIONS", "parse_expression", "parse_let", "evaluate", "calculate",
           "Calculation"]

MAX_EXPRESSION_CHARS = 2_000
MAX_LET_CHARS = 200_000
MAX_DEPTH = 32
MAX_LITERAL_ELEMENTS = 10_000
MAX_EXPONENT = 100
MAX_ELEMENTS = 1_000_000
MAX_INT_BITS = 4_096
# The whole expression's budget: every intermediate tensor stays alive (the graph is printed and
# back-propagated), so the per-operation limit alone would let 500 short operations take 4 GB.
MAX_TOTAL_ELEMENTS = 10_000_000
MAX_WORK = 10_000_000_000  # multiply-adds: a matmul counts m*k*n, other operations their output

#: calculator name -> chainrule public function (an explicit allowlist).
FUNCTIONS: dict[str, str] = {name: name for name in (
    # arithmetic and elementwise
    "add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "log1p", "expm1", "sqrt", "sin",
    "cos", "tanh", "clip", "maximum", "minimum", "where", "sign", "heaviside", "step",
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    # activations
    "relu", "leaky_relu", "prelu", "sigmoid", "softplus", "log_sigmoid", "softmax", "log_softmax",
    "maxout",
    # reductions
    "sum", "mean", "var", "max", "min", "logsumexp", "sum_to", "broadcast_to",
    # linear algebra
    "matmul", "dot", "outer",
    # shapes
    "reshape", "transpose", "permute", "swapaxes", "squeeze", "expand_dims", "flatten", "stack",
    "concatenate", "pad",
    # losses (default reduction: strings cannot be written)
    "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
    "nll_loss",
    # creation (sizes checked before evaluation)
    "zeros", "ones", "full", "eye", "arange", "zeros_like", "ones_like", "full_like",
)}

_LIST_ARGUMENT = {"stack", "concatenate"}          # first argument: a list of expressions
_BROADCASTING = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "where", "clip", "less",
                 "less_equal", "greater", "greater_equal", "equal", "not_equal", "mse_loss",
                 "prelu", "binary_cross_entropy", "binary_cross_entropy_with_logits"}
_REDUCED_BROADCAST = {"mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"}
# results whose size is checked (abstract evaluation) before they are made
_GUARDED = (_BROADCASTING - _REDUCED_BROADCAST) | _LIST_ARGUMENT | {
    "matmul", "dot", "outer", "broadcast_to", "reshape", "pad"}
_SIZED = {"broadcast_to", "reshape", "pad"}  # only the first argument is a tensor operand
_BINARY_OPERATORS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
                     ast.Pow: "pow", ast.MatMult: "matmul"}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
            ast.MatMult: "@", ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>",
            ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}


class CalculatorError(ChainruleError, ValueError):
    """An expression or a ``--let`` the calculator refuses; the message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


# --------------------------------------------------------------------------- checking
def _is_dunder(name: str) -> bool:
    return name.startswith("__") or name.endswith("__")


def _is_number(node: ast.AST) -> TypeGuard[ast.Constant]:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _signed_number(node: ast.AST) -> bool:
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    return _is_number(node)


def _describe(node: ast.AST) -> str:
    """The one-line reason a node is refused."""
    if isinstance(node, ast.Attribute):
        return f"attributes are not allowed (.{node.attr})"
    if isinstance(node, ast.Lambda):
        return "lambdas are not allowed"
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "comprehensions are not allowed"
    if isinstance(node, ast.Starred):
        return "starred arguments (*args) are not allowed"
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return "string literals are not allowed"
    if isinstance(node, ast.JoinedStr):
        return "string literals (f-strings) are not allowed"
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, type(None))):
        return (f"{node.value!r} is only allowed as a keyword argument's value "
                f"(keepdims=True, axis=None)")
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r} is not allowed (only int and float numbers)"
    if isinstance(node, ast.Compare):
        return "comparisons are not allowed: use greater(x, y), less(x, y), equal(x, y) ..."
    if isinstance(node, ast.BoolOp):
        return "'and'/'or' are not allowed"
    if isinstance(node, ast.IfExp):
        return "if-expressions are not allowed: use where(condition, x, y)"
    if isinstance(node, ast.NamedExpr):
        return "assignments (:=) are not allowed"
    if isinstance(node, (ast.Dict, ast.Set)):
        return "dicts and sets are not allowed"
    if isinstance(node, ast.BinOp):
        symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
        return f"the operator {symbol} is not allowed (only + - * / ** @)"
    if isinstance(node, ast.UnaryOp):
        return "only unary + and - are allowed"
    return f"{type(node).__name__} expressions are not allowed"


def _fold(node: ast.AST) -> Any:
    """The value of a pure-literal arithmetic expression (numbers, tuples), or None if it is not
    one."""
    if _is_number(node):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _fold(node.operand)
        if isinstance(value, (int, float)):
            return -value if isinstance(node.op, ast.USub) else value
        return None
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_fold(e) for e in node.elts]
        return None if any(v is None for v in values) else tuple(values)
    if (isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS
            and not isinstance(node.op, ast.MatMult)):
        left, right = _fold(node.left), _fold(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return _arithmetic(node.op, left, right)
    return None


def _arithmetic(op: ast.operator, a, b):
    """``a op b`` for Python numbers, refusing what would take long or overflow."""
    try:
        if isinstance(op, ast.Add):
            value = a + b
        elif isinstance(op, ast.Sub):
            value = a - b
        elif isinstance(op, ast.Mult):
            value = a * b
        elif isinstance(op, ast.Div):
            value = a / b
        else:
            _check_exponent(b)
            if isinstance(a, int) and isinstance(b, int) and a.bit_length() * abs(b) > MAX_INT_BITS:
                raise CalculatorError(f"the number {a} ** {b} is too large")
            value = a ** b
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("a number in the expression overflows") from None
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("a number in the expression is too large")
    if isinstance(value, complex):
        raise CalculatorError(f"{a} ** {b} is a complex number")
    return value


def _check_exponent(value) -> None:
    if isinstance(value, (int, float)) and not abs(value) <= MAX_EXPONENT:
        raise CalculatorError(f"the exponent {value!r} is too large "
                              f"(|exponent| must be <= {MAX_EXPONENT})")


def _size_of(shape, what: str) -> int:
    """Elements of ``shape`` (an int or a tuple of ints), refusing negative or huge sizes."""
    dims = shape if isinstance(shape, tuple) else (shape,)
    if not all(isinstance(d, int) for d in dims):
        raise CalculatorError(f"{what}: sizes must be integers, got {shape!r}")
    if any(d < 0 for d in dims):
        raise CalculatorError(f"{what}: sizes must not be negative, got {shape!r}")
    size = 1
    for d in dims:
        if d > MAX_ELEMENTS:
            raise CalculatorError(f"{what}: the size {d} is too large "
                                  f"(at most {MAX_ELEMENTS:,} elements)")
        size *= d
    if size > MAX_ELEMENTS:
        raise CalculatorError(f"{what}: {size:,} elements is too many (at most {MAX_ELEMENTS:,})")
    return size


def _check_creation(name: str, call: ast.Call) -> None:
    """Creation functions' sizes must be literal and small: checked before anything runs."""
    if name not in ("zeros", "ones", "full", "eye", "arange", "broadcast_to"):
        return
    if name == "broadcast_to" and len(call.args) < 2:
        return
    args = call.args[1:2] if name == "broadcast_to" else call.args
    values = [_fold(a) for a in args]
    if any(v is None for v in values):
        raise CalculatorError(f"{name}: sizes must be literal numbers")
    if name in ("zeros", "ones"):
        dims: tuple = ()
        for v in values:
            dims += v if isinstance(v, tuple) else (v,)
        _size_of(dims, name)
    elif name in ("full", "broadcast_to"):
        if values:
            _size_of(values[0], name)
    elif name == "eye":
        n = values[0] if values else 0
        m = values[1] if len(values) > 1 else n
        _size_of((n, m), name)
    else:  # arange
        if not values or len(values) > 3 or not all(isinstance(v, (int, float)) for v in values):
            raise CalculatorError("arange: give 1 to 3 literal numbers")
        start, stop, step = (0, values[0], 1) if len(values) == 1 else (values + [1])[:3]
        if step == 0:
            raise CalculatorError("arange: step must not be zero")
        finite = all(map(math.isfinite, (start, stop, step)))
        count = max(0, math.ceil((stop - start) / step)) if finite else math.inf
        if count > MAX_ELEMENTS:
            raise CalculatorError(f"arange: too many elements (at most {MAX_ELEMENTS:,})")


def parse_expression(text: str, names: Sequence[str] = ()) -> ast.Expression:
    """Parse and check ``text``; ``names`` are the variables bound with --let. Raises
    CalculatorError."""
    if not isinstance(text, str):
        raise CalculatorError("the expression must be a string")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is {len(text):,} characters long "
                              f"(at most {MAX_EXPRESSION_CHARS:,})")
    if not text.strip():
        raise CalculatorError("the expression is empty")
    tree = _parse(text, "the expression")
    _check(tree.body, set(names))
    return tree


def _parse(text: str, what: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():  # SyntaxWarnings would print a second line
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise CalculatorError(f"{what} is not valid syntax: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise CalculatorError(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:  # null bytes
        raise CalculatorError(f"{what} is not valid: {error}") from None


def _check_depth(root: ast.AST) -> None:
    """Refuse trees deeper than MAX_DEPTH (iteratively: before anything recursive looks at them)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CalculatorError(f"the expression is nested too deeply "
                                  f"(at most {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if not isinstance(child, (ast.expr_context, ast.operator, ast.unaryop)))


def _check(root: ast.AST, names: set[str]) -> None:
    """Walk the tree with an explicit stack; refuse anything off the whitelist."""
    _check_depth(root)
    stack: list[tuple[ast.AST, int, str]] = [(root, 1, "expr")]
    while stack:
        node, depth, context = stack.pop()
        if depth > MAX_DEPTH:
            raise CalculatorError(f"the expression is nested too deeply "
                                  f"(at most {MAX_DEPTH} levels)")
        below = depth + 1
        if context == "literal":      # inside a list of numbers
            if isinstance(node, (ast.List, ast.Tuple)):
                stack.extend((e, below, "literal") for e in node.elts)
            elif not _signed_number(node):
                raise CalculatorError("lists may hold only numbers (and nested lists of numbers); "
                                      + _describe(node))
            continue
        if context == "index":
            if isinstance(node, ast.Slice):
                stack.extend((p, below, "index-part")
                             for p in (node.lower, node.upper, node.step) if p is not None)
            elif isinstance(node, ast.Tuple):
                for e in node.elts:
                    if isinstance(e, ast.Tuple):
                        raise CalculatorError("subscripts take integers and slices only")
                    stack.append((e, below, "index"))
            else:
                stack.append((node, depth, "index-part"))
            continue
        if context == "index-part":
            if not (_signed_number(node) and isinstance(_fold(node), int)):
                raise CalculatorError("subscripts take integers and slices only "
                                      "(like x[0], x[:, 1], x[::-1])")
            continue
        if context == "keyword":
            if isinstance(node, ast.Constant) and (type(node.value) in (int, float, bool)
                                                   or node.value is None):
                continue
            if _signed_number(node):
                continue
            if isinstance(node, (ast.Tuple, ast.List)):
                stack.extend((e, below, "literal") for e in node.elts)
                continue
            raise CalculatorError("keyword arguments take literal values only "
                                  "(numbers, True/False/None, tuples of numbers); "
                                  + _describe(node))
        # context == "expr"
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise CalculatorError(_describe(node))
        elif isinstance(node, ast.Name):
            if _is_dunder(node.id):
                raise CalculatorError(f"dunder names are not allowed ({node.id})")
            if node.id in names:
                continue
            if node.id in FUNCTIONS:
                raise CalculatorError(f"{node.id} is a function: call it, like {node.id}(x)")
            raise CalculatorError(f"unknown name {node.id!r} (bind it with --let {node.id}=VALUE)")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise CalculatorError(_describe(node))
            stack.append((node.operand, below, "expr"))
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPERATORS:
                raise CalculatorError(_describe(node))
            if isinstance(node.op, ast.Pow):
                exponent = _fold(node.right)
                if isinstance(exponent, (int, float)):
                    _check_exponent(exponent)
            _fold(node)  # literal arithmetic: refuse overflowing numbers now
            stack.append((node.right, below, "expr"))
            stack.append((node.left, below, "expr"))
        elif isinstance(node, ast.Subscript):
            stack.append((node.slice, below, "index"))
            stack.append((node.value, below, "expr"))
        elif isinstance(node, (ast.List, ast.Tuple)):
            _check_literal_size(node)
            stack.extend((e, below, "literal") for e in node.elts)
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name):
                raise CalculatorError("only chainrule functions can be called, by name "
                                      "(like sigmoid(x)); " + _describe(func))
            if _is_dunder(func.id):
                raise CalculatorError(f"dunder names are not allowed ({func.id})")
            if func.id not in FUNCTIONS:
                raise CalculatorError(f"unknown function {func.id!r} "
                                      f"(allowed: see chainrule graph --help)")
            for k in node.keywords:
                if k.arg is None:
                    raise CalculatorError("**kwargs is not allowed")
                if _is_dunder(k.arg):
                    raise CalculatorError(f"dunder names are not allowed ({k.arg})")
            for a in node.args:
                if isinstance(a, ast.Starred):
                    raise CalculatorError(_describe(a))
            _check_creation(func.id, node)
            for k in reversed(node.keywords):
                if isinstance(k.value, (ast.List, ast.Tuple)):
                    _check_literal_size(k.value)
                stack.append((k.value, below, "keyword"))
            for position, a in reversed(list(enumerate(node.args))):
                if (position == 0 and func.id in _LIST_ARGUMENT
                        and isinstance(a, (ast.List, ast.Tuple))):
                    if len(a.elts) > MAX_LITERAL_ELEMENTS:
                        raise CalculatorError("too many tensors in the list")
                    stack.extend((e, below + 1, "expr") for e in a.elts)
                else:
                    stack.append((a, below, "expr"))
        else:
            raise CalculatorError(_describe(node))


def _check_literal_size(node: ast.AST) -> None:
    """At most MAX_LITERAL_ELEMENTS numbers in one literal list (counted iteratively)."""
    count, stack = 0, [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.List, ast.Tuple)):
            stack.extend(n.elts)
        else:
            count += 1
            if count > MAX_LITERAL_ELEMENTS:
                raise CalculatorError(f"a literal list has more than "
                                      f"{MAX_LITERAL_ELEMENTS:,} elements")


def parse_let(text: str) -> tuple[str, np.ndarray]:
    """``NAME=VALUE`` -> (name, float64 array); VALUE a number or nested lists of numbers."""
    if not isinstance(text, str) or "=" not in text:
        raise CalculatorError(f"bad --let {text!r}: expected NAME=VALUE, like --let \"x=[2,-3]\"")
    name, value = (part.strip() for part in text.split("=", 1))
    if not name.isidentifier() or not name.isascii():
        raise CalculatorError(f"bad --let {text!r}: {name!r} is not a valid name")
    if _is_dunder(name):
        raise CalculatorError(f"bad --let {text!r}: dunder names are not allowed")
    if name in FUNCTIONS:
        raise CalculatorError(f"bad --let {text!r}: {name!r} is the name of a function")
    if len(value) > MAX_LET_CHARS:
        raise CalculatorError(f"bad --let {name}=...: the value is longer than "
                              f"{MAX_LET_CHARS:,} characters")
    if not value:
        raise CalculatorError(f"bad --let {text!r}: the value is empty")
    tree = _parse(value, f"the value of --let {name}")
    body = tree.body
    if not (_signed_number(body) or isinstance(body, (ast.List, ast.Tuple))):
        raise CalculatorError(f"bad --let {name}=...: the value must be a number or a list of "
                              f"numbers; " + _describe(body))
    try:
        _check(body, set())
    except CalculatorError as error:
        raise CalculatorError(f"bad --let {name}=...: {error}") from None
    try:
        array = np.asarray(ast.literal_eval(body), dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise CalculatorError(f"bad --let {name}=...: {error} "
                              f"(are the rows of equal length?)") from None
    return name, array


# --------------------------------------------------------------------------- evaluation
def _shape_of(value) -> tuple:
    from chainrule.engine.tensor import Tensor

    if isinstance(value, Tensor):
        return value.shape
    if isinstance(value, (list, tuple)):  # a list argument of stack/concatenate
        return (len(value),)
    return ()


def _result_shape(name: str, args: list, kwargs: dict) -> Optional[tuple]:
    """The shape of ``name(*args, **kwargs)``'s result by abstract evaluation (computing nothing);
    None when the arguments are invalid (the operation raises its own error when it runs)."""
    import chainrule as cr
    from chainrule.ops.abstract import AbstractValueError, eval_shape

    function = getattr(cr, FUNCTIONS.get(name, name))
    data, sizes = (args[:1], args[1:]) if name in _SIZED else (args, [])
    try:  # sizes (pad widths, a shape given as a list) stay concrete: they are read
        result = eval_shape(lambda *tensors: function(*tensors, *sizes, **kwargs), *data)
    except AbstractValueError:
        raise
    except (ValueError, TypeError, IndexError):
        return None
    return tuple(result.shape) if hasattr(result, "shape") else None


def _guard_size(name: str, args: list, kwargs: dict) -> int:
    """Refuse an operation whose result would exceed MAX_ELEMENTS, before it runs; returns the
    result's size when it is known (else 0)."""
    size = 0
    if name in _REDUCED_BROADCAST:  # the broadcast inputs are made, then reduced
        from chainrule.ops.abstract import broadcast_shapes

        try:
            size = math.prod(broadcast_shapes(*[_shape_of(a) for a in args]))
        except ValueError:
            return 0  # the operation raises its own error
    elif name in _GUARDED and args:
        shape = _result_shape(name, args, kwargs)
        size = 0 if shape is None else math.prod(shape)
    if size > MAX_ELEMENTS:
        raise CalculatorError(f"{name}: the result would have {size:,} elements "
                              f"(at most {MAX_ELEMENTS:,})")
    return size


class _Budget:
    """What the whole expression has used so far: elements of all results, multiply-adds."""

    def __init__(self) -> None:
        self.elements = 0
        self.work = 0

    def charge(self, name: str, args: list, size: int) -> int:
        """Before ``name`` runs: add its result (``size``, else its largest input) and its work.

        Returns the elements charged (creation functions, whose inputs are literal sizes, are
        charged again with their result's size after they run: it is bounded by MAX_ELEMENTS).
        """
        inputs = [math.prod(_shape_of(a)) for a in args]
        size = max([size, 1, *inputs])
        work = size
        if name in ("matmul", "dot") and len(args) == 2 and _shape_of(args[0]):
            work = size * _shape_of(args[0])[-1]  # each output element is a k-long dot product
        self.elements += size
        self.work += work
        if self.elements > MAX_TOTAL_ELEMENTS:
            raise CalculatorError(f"{name}: the expression's results would hold more than "
                                  f"{MAX_TOTAL_ELEMENTS:,} elements in all "
                                  f"(the whole graph is kept)")
        if self.work > MAX_WORK:
            raise CalculatorError(f"{name}: the expression would take more than {MAX_WORK:,} "
                                  f"multiply-adds in all")
        return size


def _check_tensor_exponent(exponent) -> None:
    from chainrule.engine.tensor import Tensor

    if isinstance(exponent, Tensor):
        data = exponent.data
        if data.size and data.dtype.kind in "biuf" and not np.all(np.abs(data) <= MAX_EXPONENT):
            raise CalculatorError(f"an exponent is too large "
                                  f"(|exponent| must be <= {MAX_EXPONENT})")
    else:
        _check_exponent(exponent)


def _literal(node: ast.AST):
    """A checked literal subtree (numbers, True/False/None, tuples/lists of them) as a Python
    value."""
    return ast.literal_eval(node)


def _index(node: ast.AST):
    if isinstance(node, ast.Slice):
        return slice(*(None if p is None else _fold(p)
                       for p in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Tuple):
        return tuple(_index(e) for e in node.elts)
    return _fold(node)


def _constant_list(node: ast.AST):
    import chainrule as cr

    array = np.asarray(_literal(node))
    if array.dtype == object or array.dtype.kind not in "iuf":
        raise CalculatorError("a literal list must be rectangular and hold numbers")
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
    return cr.tensor(array)


def _evaluate(node: ast.AST, variables: dict, budget: _Budget):
    """Evaluate a checked node (depth <= MAX_DEPTH, so recursion is bounded)."""
    import chainrule as cr

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return variables[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return _constant_list(node)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, variables, budget)
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(value, (int, float)):
            return -value
        budget.charge("neg", [value], 0)
        return cr.neg(value)
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, variables, budget)
        right = _evaluate(node.right, variables, budget)
        if (isinstance(left, (int, float)) and isinstance(right, (int, float))
                and not isinstance(node.op, ast.MatMult)):
            return _arithmetic(node.op, left, right)
        name = _BINARY_OPERATORS[type(node.op)]
        return _call(name, [left, right], {}, budget)
    if isinstance(node, ast.Subscript):
        value = _evaluate(node.value, variables, budget)
        if not isinstance(value, cr.Tensor):
            raise CalculatorError("only tensors can be subscripted, not numbers")
        budget.charge("getitem", [value], 0)
        return cr.getitem(value, _index(node.slice))
    if isinstance(node, ast.Call):
        name = cast(ast.Name, node.func).id  # _check allows calls of names only
        args = []
        for position, a in enumerate(node.args):
            if position == 0 and name in _LIST_ARGUMENT and isinstance(a, (ast.List, ast.Tuple)):
                args.append([_evaluate(e, variables, budget) for e in a.elts])
            elif isinstance(a, ast.Tuple):  # a tuple argument is a shape or axes: (2, 3)
                args.append(_fold(a))
            else:
                args.append(_evaluate(a, variables, budget))
        kwargs = {k.arg: _literal(k.value) for k in node.keywords}
        if name in ("max", "min") and len(args) == 2:
            name = "maximum" if name == "max" else "minimum"
        return _call(name, args, kwargs, budget)
    raise CalculatorError(_describe(node))  # unreachable after _check


def _call(name: str, args: list, kwargs: dict, budget: _Budget):
    import chainrule as cr

    charged = budget.charge(name, args, _guard_size(name, args, kwargs))
    if name == "pow" and len(args) == 2:
        _check_tensor_exponent(args[1])
    result = getattr(cr, FUNCTIONS.get(name, name))(*args, **kwargs)
    if isinstance(result, cr.Tensor) and result.size > charged:  # zeros, eye, arange ...
        budget.charge(name, [], result.size - charged)
    return result


def evaluate(tree: ast.Expression, variables: dict) -> Any:
    """The value of a tree checked by :func:`parse_expression` (a Tensor, or a Python number)."""
    try:
        with np.errstate(all="ignore"):
            return _evaluate(tree.body, variables, _Budget())
    except CalculatorError:
        raise
    except (TypeError, ValueError, IndexError, ArithmeticError, ChainruleError, RuntimeError,
            np.linalg.LinAlgError) as error:
        raise CalculatorError(f"evaluation failed: {type(error).__name__}: {error}") from None


# --------------------------------------------------------------------------- the whole calculation
@dataclass
class Calculation:
    """The result of :func:`calculate`: the graph, every node's value and gradient."""

    expression: str
    variables: dict                  #: name -> float64 leaf that requires grad
    output: Any                      #: the output tensor (one element)
    order: list = field(default_factory=list)          #: every tensor, inputs first (t0, t1, ...)
    names: dict = field(default_factory=dict)          #: id(tensor) -> short name
    node_gradients: dict = field(default_factory=dict)  #: short name -> d(output)/d(node) (ndarray)
    gradients: dict = field(default_factory=dict)       #: variable name -> d(output)/d(variable)


def calculate(expression: str, lets: Sequence[str] = ()) -> Calculation:
    """Check everything, evaluate, back-propagate. Raises CalculatorError (one line) when
    refused."""
    import chainrule as cr
    from chainrule.course.explain import explain, graph_order

    values: dict[str, np.ndarray] = {}
    for text in lets:
        name, array = parse_let(text)
        if name in values:
            raise CalculatorError(f"--let {name} is given twice")
        values[name] = array
    tree = parse_expression(expression, list(values))
    variables = {name: cr.tensor(array, dtype="float64", requires_grad=True)
                 for name, array in values.items()}
    output = evaluate(tree, variables)
    if not isinstance(output, cr.Tensor):
        output = cr.tensor(np.asarray(output, dtype=np.float64))
    if output.size != 1:
        raise CalculatorError(f"the output has shape {output.shape}: the output must be a "
                              f"scalar for gradients, or use sum(...)")
    if output.dtype.kind != "f":
        output = cr.astype(output, np.float64)
    order = graph_order(output)
    short = {id(t): f"t{i}" for i, t in enumerate(order)}
    node_gradients: dict[str, np.ndarray] = {}
    if output.requires_grad:
        try:
            with np.errstate(all="ignore"):
                trace = explain(output, as_text=False, names=variables)
                node_gradients = {row.name: row.incoming for row in trace}
                output.backward(retain_graph=True)  # keep the graph: it is printed and drawn
        except (ValueError, TypeError, ArithmeticError, RuntimeError) as error:
            raise CalculatorError(f"back-propagation failed: "
                                  f"{type(error).__name__}: {error}") from None
    gradients = {name: (v.grad.data if v.grad is not None else np.zeros_like(v.data))
                 for name, v in variables.items()}
    return Calculation(expression, variables, output, order, short, node_gradients, gradients)

"""Parameter references in specs: ``$filters``, ``${filters * 4}`` and ``${'same' if strides == 1 else 'valid'}``.

Only numbers, 'strings', true/false and named parameters are understood, with arithmetic on numbers
(+ - * / // % **, parentheses, min, max, int), comparisons (== != < <= > >=, chained), ``and``/``or``/``not`` on
true/false and ``a if condition else b``; there is no arithmetic on strings (so no string grows by repetition),
and only the branch a condition chooses is evaluated. The text is parsed with ``ast`` and walked, never
evaluated as Python. Expressions are bounded before anything
is computed: their length (:data:`MAX_EXPR_CHARS`) before they are parsed, their nesting (:data:`MAX_EXPR_DEPTH`)
before they are walked, and every integer in them (:data:`MAX_INT_BITS`), a power's result before it is computed.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

MAX_EXPR_CHARS = 1_000
"""Longest text of one ``${...}`` expression, in characters. Longer ones are refused before they are parsed
(Python's parser recurses on them and may run out of stack or memory); a real one has a few dozen."""

MAX_EXPR_DEPTH = 50
"""Deepest nesting of operations in one expression (``1+1+...+1`` with 51 terms nests 50 deep)."""

MAX_INT_BITS = 63
"""Integers in expressions are below 2**63 in magnitude (int64, what the frameworks hold): every literal,
parameter and intermediate result is checked, and a power is refused before it is computed."""

_INT_BOUND_TEXT = f"2**{MAX_INT_BITS}"
_SHOWN_CHARS = 60  # how much of an expression a message quotes

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "int": int}
_BOOLS = {"true": True, "false": False, "True": True, "False": False}  # as YAML and as Python write them
_WHOLE = re.compile(r"^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]*)\})$")
_PART = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]*)\})")


class ExprError(ValueError):
    pass


class LayerRef:
    """A layer whose shape expressions may read (``input``, and in a repeat ``prev``): ``local``, the name an
    expression writes, ``name``, the layer's name in the model, and ``shape_of``, which gives its shape (the
    expansion infers it when it is first read)."""

    __slots__ = ("local", "name", "shape_of")

    def __init__(self, local: str, name: str, shape_of: Callable[[str], tuple[int, ...]]):
        self.local = local
        self.name = name
        self.shape_of = shape_of


SHAPE_PARTS = ("height", "width", "length", "channels", "size", "rank")
"""What an expression reads of a layer's shape: ``input.height`` and ``.width`` of an image (H, W, C),
``.length`` of a sequence (L, C), ``.channels`` (the last axis, of any shape: a vector's size), ``.size`` (the
number of values) and ``.rank`` (the number of axes)."""

_AXES = {3: ("height", "width", "channels"), 2: ("length", "channels"), 1: ("channels",)}
_RANK_TEXT = {3: "an image", 2: "a sequence", 1: "a vector"}


def number_text(value: Any) -> str:
    """A number as a message shows it: ints beyond 2**100 (31 digits) by their number of digits (Python refuses
    to print ints of more than 4,300 digits, and nobody reads 31), everything else by ``repr``."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        digits = int(value.bit_length() * math.log10(2)) + 1  # the count, or one more
        if abs(value) < 10 ** (digits - 1):
            digits -= 1
        return f"an integer of {digits:,} digits"
    return repr(value)


def has_reference(text: str) -> bool:
    return "$" in text and _PART.search(text) is not None


def substitute(text: str, variables: Mapping[str, Any]) -> Any:
    """``"$f"`` -> the value of f (any type); ``"${f * 2}"`` -> a number; ``"conv_${i}"`` -> a string."""
    whole = _WHOLE.match(text)
    if whole:
        return _value(whole.group(1), variables) if whole.group(1) else evaluate(whole.group(2), variables)

    def part(m: re.Match) -> str:
        value = _value(m.group(1), variables) if m.group(1) else evaluate(m.group(2), variables)
        return str(value)

    return _PART.sub(part, text)


def _value(name: str, variables: Mapping[str, Any]) -> Any:
    """The value ``$name`` stands for: a parameter's (of any type), never a layer."""
    value = _lookup(name, variables)
    if type(value) is LayerRef:
        raise _a_layer(value, f"${name}")
    return value


def _a_layer(ref: LayerRef, expr: str) -> ExprError:
    return ExprError(
        f"`{ref.local}` is a layer ({ref.name}), not a value, in `{shown(expr)}`; an expression reads its shape: "
        f"`${{{ref.local}.channels}}`, `.height`, `.width`, `.length`, `.size` or `.rank`."
    )


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    try:
        return variables[name]
    except KeyError:
        pass
    params = [key for key, value in variables.items() if type(value) is not LayerRef]
    near = difflib.get_close_matches(name, params, n=1)
    names = sorted(params)
    known = (
        ", ".join(names[:20]) + (f" and {len(names) - 20:,} more" if len(names) > 20 else "")
        if names
        else "none"
    )
    suggestion = f" Did you mean `{near[0]}`?" if near else ""
    raise ExprError(f"unknown parameter `{name}` (parameters here: {known}).{suggestion}")


def shown(expr: str) -> str:
    """An expression as a message quotes it: at most 60 characters."""
    expr = expr.strip()
    return expr if len(expr) <= _SHOWN_CHARS else expr[: _SHOWN_CHARS - 3] + "..."


def evaluate(expr: str, variables: Mapping[str, Any]) -> Any:
    """The value of an arithmetic expression over ``variables``; every failure is an :class:`ExprError`."""
    text = expr.strip()
    return _eval(_parse(text)[0], variables, text)


@functools.lru_cache(maxsize=4096)
def operations(text: str) -> int:
    """How many operations substituting ``text`` evaluates (a ``$name`` is one), for a caller's bound on them; the
    text's expressions are parsed already (by :func:`substitute`)."""
    return sum(1 if m.group(1) else _parse(m.group(2).strip())[1] for m in _PART.finditer(text))


@functools.lru_cache(maxsize=4096)  # a repeat or a block evaluates the same texts again and again
def _parse(text: str) -> tuple[ast.expr, int]:
    """The parsed expression and its number of operations, or the ExprError that refuses it."""
    if len(text) > MAX_EXPR_CHARS:
        raise ExprError(
            f"an expression of {len(text):,} characters is too long; expressions are limited to "
            f"{MAX_EXPR_CHARS:,} characters."
        )
    try:
        with warnings.catch_warnings():  # Python warns on stderr about some odd texts (`1if x`)
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise ExprError(f"`{shown(text)}` is not an expression.") from None
    depth, size = _measure(tree.body)
    if depth > MAX_EXPR_DEPTH:
        raise ExprError(
            f"`{shown(text)}` nests {depth:,} operations deep; expressions are limited to {MAX_EXPR_DEPTH}."
        )
    return tree.body, size


def _measure(root: ast.AST) -> tuple[int, int]:
    """(depth, number of nodes) of an expression's tree, walked without recursion."""
    deepest, size, stack = 0, 0, [(root, 0)]
    while stack:
        node, depth = stack.pop()
        deepest, size = max(deepest, depth), size + 1
        stack.extend(
            (child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr)
        )
    return deepest, size


def _checked(value: Any, expr: str) -> Any:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        text = number_text(value) if value.bit_length() > 100 else f"{value:,}"
        raise ExprError(
            f"`{shown(expr)}` gives {text}, beyond the bound of {_INT_BOUND_TEXT} on integers in expressions."
        )
    if type(value) is float and not math.isfinite(value):
        raise ExprError(f"`{shown(expr)}` gives {value}, not a finite number.")
    return value


def _eval(node: ast.AST, variables: Mapping[str, Any], expr: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id in _BOOLS and node.id not in variables:
            return _BOOLS[node.id]
        value = _lookup(node.id, variables)
        vt = type(value)
        if vt is int:
            return value if value.bit_length() <= MAX_INT_BITS else _checked(value, expr)
        if vt is float:
            return _checked(value, expr)
        if vt is str or vt is bool:
            return value
        if vt is LayerRef:
            raise _a_layer(value, expr)
        raise ExprError(
            f"`{node.id}` is {_value_text(value)}, not a number, a string or true/false, in `{shown(expr)}`."
        )
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, str, bool):
        return _checked(node.value, expr)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _number(node.left, variables, expr)
        right = _number(node.right, variables, expr)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right, expr)
        try:
            result = _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExprError(f"`{shown(expr)}` divides by zero.") from None
        except OverflowError:
            raise ExprError(f"`{shown(expr)}` overflows: its result is too large for a number.") from None
        if type(result) is complex:  # a negative number to a fractional power
            raise ExprError(f"`{shown(expr)}` has no real value (a negative number to a fractional power).")
        return _checked(result, expr)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return not _condition(node.operand, variables, expr)
        value = _number(node.operand, variables, expr)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
    if isinstance(node, ast.IfExp):  # only the branch chosen is evaluated, as in Python
        chosen = node.body if _condition(node.test, variables, expr) else node.orelse
        return _eval(chosen, variables, expr)
    if isinstance(node, ast.Compare):
        return _compare(node, variables, expr)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return _shape_part(node.value.id, node.attr, variables, expr)
    if isinstance(node, ast.BoolOp):  # `and` / `or` of true/false values, stopping where Python stops
        stop = isinstance(node.op, ast.Or)
        for operand in node.values:
            if _condition(operand, variables, expr) is stop:
                return stop
        return not stop
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
        and node.args
        and not any(isinstance(a, ast.Starred) for a in node.args)
    ):
        if node.func.id == "int":  # toward zero, as Python's int() (and Keras' own code) rounds
            if len(node.args) != 1:
                raise ExprError(f"`int()` takes one number, but got {len(node.args)}, in `{shown(expr)}`.")
            return _checked(int(_number(node.args[0], variables, expr)), expr)
        if len(node.args) < 2:
            raise ExprError(f"`{node.func.id}()` takes two or more numbers, but got one, in `{shown(expr)}`.")
        return _FUNCS[node.func.id](*(_number(a, variables, expr) for a in node.args))
    raise ExprError(f"`{shown(expr)}`: {ALLOWED}.")


ALLOWED = (
    "only numbers, 'strings', true/false, parameter names, a layer's shape (`input.channels`), + - * / // % **, "
    "comparisons (== != < <= > >=), and/or/not, `a if condition else b`, parentheses, min(), max() and int() are "
    "allowed"
)


def _shape_part(local: str, part: str, variables: Mapping[str, Any], expr: str) -> int:
    """``input.channels``: a part of the shape of a layer an expression may read (see :data:`SHAPE_PARTS`)."""
    ref = _lookup(local, variables)
    if type(ref) is not LayerRef:
        raise ExprError(
            f"`{local}.{part}` reads a shape, but `{local}` is {_value_text(ref)}, not a layer, in "
            f"`{shown(expr)}`; shapes are read of `input` (and of `prev` in a repeat)."
        )
    if part not in SHAPE_PARTS:
        near = difflib.get_close_matches(part, SHAPE_PARTS, n=1)
        raise ExprError(
            f"`{local}.{part}` is no part of a shape; a shape has {', '.join(SHAPE_PARTS)}"
            f"{f'. Did you mean `{local}.{near[0]}`?' if near else '.'}"
        )
    shape = ref.shape_of(ref.name)
    if part == "rank":
        return len(shape)
    if part == "size":
        return _checked(math.prod(shape), expr)
    axes = _AXES.get(len(shape), ("channels",))
    if part not in axes:
        has = ", ".join(f"`{local}.{a}`" for a in axes)
        what = _RANK_TEXT.get(len(shape), f"of rank {len(shape)}")
        raise ExprError(
            f"`{local}.{part}` is not known: `{local}` ({ref.name}) is {'x'.join(map(str, shape))}, {what}, "
            f"which has {has}, `.size` and `.rank`; in `{shown(expr)}`."
        )
    return shape[axes.index(part)]


def _number(node: ast.AST, variables: Mapping[str, Any], expr: str) -> Any:
    """The value of an operand of arithmetic: a number (an int or a float, never true/false or a string)."""
    value = _eval(node, variables, expr)
    if type(value) is int or type(value) is float:
        return value
    raise ExprError(f"arithmetic takes numbers, but {_operand_text(node, value)}, in `{shown(expr)}`.")


def _condition(node: ast.AST, variables: Mapping[str, Any], expr: str) -> bool:
    """The value of a condition (of `if`, `and`, `or`, `not`): true or false, never a number taken for one."""
    value = _eval(node, variables, expr)
    if type(value) is bool:
        return value
    raise ExprError(
        f"a condition is true or false (a comparison, `and`, `or`, `not`), but {_operand_text(node, value)}, "
        f"in `{shown(expr)}`."
    )


def _operand_text(node: ast.AST, value: Any) -> str:
    """How a message names a wrong operand: by its value alone when it is a literal."""
    text = ast.unparse(node)
    if isinstance(node, ast.Constant):
        return f"got {_value_text(value)} ({_sort(value)})"
    return f"`{shown(text)}` is {_value_text(value)} ({_sort(value)})"


_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _compare(node: ast.Compare, variables: Mapping[str, Any], expr: str) -> bool:
    """``a < b <= c``: each pair compared in turn, stopping at the first false one, as in Python. Numbers
    compare with numbers, strings with strings, true/false with true/false; a mix is an error, not false."""
    left = _eval(node.left, variables, expr)
    for op, right_node in zip(node.ops, node.comparators):
        if type(op) not in _COMPARE:  # `in`, `is`, ...
            raise ExprError(f"`{shown(expr)}`: {ALLOWED}.")
        right = _eval(right_node, variables, expr)
        sort = _sort(left)
        if sort != _sort(right):
            raise ExprError(
                f"`{shown(expr)}` compares {_value_text(left)} ({sort}) with {_value_text(right)} "
                f"({_sort(right)}); numbers compare with numbers, strings with strings."
            )
        if sort == "a boolean" and not isinstance(op, (ast.Eq, ast.NotEq)):
            raise ExprError(f"`{shown(expr)}` orders booleans; they compare only with == and !=.")
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def _sort(value: Any) -> str:
    return "a boolean" if type(value) is bool else "a string" if type(value) is str else "a number"


def _check_power(base: Any, exponent: Any, expr: str) -> None:
    """Refuse an integer power beyond :data:`MAX_INT_BITS` before computing it (``9 ** 10**18`` would not end)."""
    if type(base) is int and type(exponent) is int and exponent > 0 and abs(base) > 1:
        # bit_length - 1 <= log2|base|: past the bound for sure; what passes is at most twice the bound, cheap
        if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            digits = int(exponent * math.log10(abs(base))) + 1
            raise ExprError(
                f"`{shown(expr)}` would give an integer of {digits:,} digits, beyond the bound of {_INT_BOUND_TEXT} on "
                f"integers in expressions."
            )


def _value_text(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."

"""Parameter references in specs: ``$filters`` and ``${filters * 4}``.

Only arithmetic on numbers and named parameters is understood (+ - * / // % **, parentheses, min, max);
the text is parsed with ``ast`` and walked, never evaluated as Python.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from typing import Any, Mapping

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS = {"min": min, "max": max}
_WHOLE = re.compile(r"^\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]*)\})$")
_PART = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^{}]*)\})")


class ExprError(ValueError):
    pass


def has_reference(text: str) -> bool:
    return "$" in text and _PART.search(text) is not None


def substitute(text: str, variables: Mapping[str, Any]) -> Any:
    """``"$f"`` -> the value of f (any type); ``"${f * 2}"`` -> a number; ``"conv_${i}"`` -> a string."""
    whole = _WHOLE.match(text)
    if whole:
        return _lookup(whole.group(1), variables) if whole.group(1) else evaluate(whole.group(2), variables)

    def part(m: re.Match) -> str:
        value = _lookup(m.group(1), variables) if m.group(1) else evaluate(m.group(2), variables)
        return str(value)

    return _PART.sub(part, text)


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name in variables:
        return variables[name]
    near = difflib.get_close_matches(name, list(variables), n=1)
    known = ", ".join(sorted(variables)) or "none"
    suggestion = f" Did you mean `{near[0]}`?" if near else ""
    raise ExprError(f"unknown parameter `{name}` (parameters here: {known}).{suggestion}")


def evaluate(expr: str, variables: Mapping[str, Any]) -> Any:
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"`{expr}` is not an arithmetic expression.") from None
    return _eval(tree.body, variables, expr)


def _eval(node: ast.AST, variables: Mapping[str, Any], expr: str) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        value = _lookup(node.id, variables)
        if type(value) not in (int, float):
            raise ExprError(f"`{node.id}` is {value!r}, not a number, in `{expr}`.")
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, variables, expr)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, variables, expr)
        right = _eval(node.right, variables, expr)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise ExprError(f"`{expr}`: powers are limited to exponents of 64 and bases of 1e6.")
        try:
            return _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExprError(f"`{expr}` divides by zero.") from None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
        and node.args
    ):
        return _FUNCS[node.func.id](*(_eval(a, variables, expr) for a in node.args))
    raise ExprError(
        f"`{expr}`: only numbers, parameter names, + - * / // % **, parentheses, min() and max() are allowed."
    )

"""Conditional expressions in ``${...}``: ``a if c else b``, comparisons, ``and``/``or``/``not``, strings.

Exact values, exact messages at their places, and the bounds on the new forms (no arithmetic on strings, so no
string grows by repetition; the depth and operation bounds count the new nodes as they count the old).
"""

from __future__ import annotations

import pytest

import specdsl
from specdsl import SpecError
from specdsl.spec import MAX_EXPR_DEPTH, _expr

VARIABLES = {
    "strides": 2,
    "one": 1,
    "act": "relu",
    "flag": True,
    "off": False,
    "n": 3,
    "x": 0.5,
    "shape": [1],
}


@pytest.mark.parametrize(
    "expr, value",
    [
        ("'same' if strides == 1 else 'valid'", "valid"),
        ("'same' if one == 1 else 'valid'", "same"),
        ('"same" if one == 1 else "valid"', "same"),
        ("strides == 2", True),
        ("strides != 2", False),
        ("strides < 3", True),
        ("strides <= 1", False),
        ("strides > 1.5", True),
        ("strides >= 2", True),
        ("1 < strides <= 2", True),
        ("1 < strides < 2", False),
        ("0 < one < strides < n", True),
        ("act == 'relu'", True),
        ("act != 'relu'", False),
        ("act < 'tanh'", True),
        ("flag and strides > 1", True),
        ("off or strides > 1", True),
        ("off and 1 / 0 > 0", False),  # `and` stops at the first false, as in Python
        ("flag or 1 / 0 > 0", True),
        ("not off", True),
        ("not (strides == 2)", False),
        ("true and not false", True),
        ("True if flag == true else False", True),
        ("flag == off", False),
        ("n * 2 if strides == 2 else n", 6),
        ("(n if flag else 1) + 1", 4),
        ("1 if off else 2 if flag else 3", 2),
        ("x if flag else shape", 0.5),  # only the chosen branch is evaluated
        ("act if flag else 'linear'", "relu"),
        ("max(n, strides) * 2 if n > strides else 0", 6),
        ("int(x * 11)", 5),
        ("int(-x * 11)", -5),  # toward zero, as Python's int()
        ("int(n)", 3),
    ],
)
def test_values(expr, value):
    result = _expr.evaluate(expr, VARIABLES)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("'ab' * 2 ** 62", "arithmetic takes numbers, but got 'ab' (a string), in `'ab' * 2 ** 62`."),
        ("act + 'x'", "arithmetic takes numbers, but `act` is 'relu' (a string), in `act + 'x'`."),
        ("-act", "arithmetic takes numbers, but `act` is 'relu' (a string), in `-act`."),
        ("flag + 1", "arithmetic takes numbers, but `flag` is true (a boolean), in `flag + 1`."),
        ("min(act, 2)", "arithmetic takes numbers, but `act` is 'relu' (a string), in `min(act, 2)`."),
        (
            "n if n else 1",
            "a condition is true or false (a comparison, `and`, `or`, `not`), but `n` is 3 (a number), "
            "in `n if n else 1`.",
        ),
        (
            "not act",
            "a condition is true or false (a comparison, `and`, `or`, `not`), but `act` is 'relu' (a string), "
            "in `not act`.",
        ),
        (
            "flag and 1",
            "a condition is true or false (a comparison, `and`, `or`, `not`), but got 1 (a number), "
            "in `flag and 1`.",
        ),
        (
            "act == 1",
            "`act == 1` compares 'relu' (a string) with 1 (a number); numbers compare with numbers, strings "
            "with strings.",
        ),
        (
            "1 < strides < 'z'",
            "`1 < strides < 'z'` compares 2 (a number) with 'z' (a string); numbers compare with numbers, "
            "strings with strings.",
        ),
        ("flag < off", "`flag < off` orders booleans; they compare only with == and !=."),
        (
            "shape if flag else 1",
            "`shape` is [1], not a number, a string or true/false, in `shape if flag else 1`.",
        ),
        ("int(x, 2)", "`int()` takes one number, but got 2, in `int(x, 2)`."),
        ("int(act)", "arithmetic takes numbers, but `act` is 'relu' (a string), in `int(act)`."),
        (
            "int(1e300)",
            "`int(1e300)` gives an integer of 301 digits, beyond the bound of 2**63 on integers in expressions.",
        ),
        ("n in (1, 2)", f"`n in (1, 2)`: {_expr.ALLOWED}."),
        ("n is 3", f"`n is 3`: {_expr.ALLOWED}."),
        ("'a'.upper()", f"`'a'.upper()`: {_expr.ALLOWED}."),
        ("f'{n}'", f"`f'{{n}}'`: {_expr.ALLOWED}."),
        ("b'x'", f"`b'x'`: {_expr.ALLOWED}."),
        ("[n][0]", f"`[n][0]`: {_expr.ALLOWED}."),
        ("(x := 1)", f"`(x := 1)`: {_expr.ALLOWED}."),
        ("lambda: 1", f"`lambda: 1`: {_expr.ALLOWED}."),
        ("'same' if strides == 1", "`'same' if strides == 1` is not an expression."),
        (
            "nope if flag else 1",
            "unknown parameter `nope` (parameters here: act, flag, n, off, one, shape, strides, x).",
        ),
    ],
)
def test_refusals(expr, message):
    with pytest.raises(_expr.ExprError) as e:
        _expr.evaluate(expr, VARIABLES)
    assert str(e.value) == message


def test_allowed_constructs_are_named_in_the_message():
    assert _expr.ALLOWED == (
        "only numbers, 'strings', true/false, parameter names, a layer's shape (`input.channels`), + - * / // % **, "
        "comparisons (== != < <= > >=), and/or/not, `a if condition else b`, parentheses, min(), max() and int() are "
        "allowed"
    )


def test_padding_chosen_by_strides_in_a_block():
    text = """\
input: [32, 32, 3]
blocks:
  down:
    params: {filters: null, strides: 1}
    layers:
      - conv2d:
          filters: $filters
          kernel: 3
          strides: $strides
          padding: "${'same' if strides == 1 else 'valid'}"
          use_bias: "${strides != 1}"
layers:
  - down: {filters: 8}
  - down: {filters: 16, strides: 2}
  - flatten
"""
    plan = specdsl.check(text)
    convs = [n for n in plan.layers if n.kind == "conv2d"]
    assert [(n.layer.padding, n.layer.use_bias, n.shape, n.params) for n in convs] == [
        ("same", False, (32, 32, 8), 3 * 3 * 3 * 8),
        ("valid", True, (15, 15, 16), 3 * 3 * 8 * 16 + 16),
    ]


def test_a_string_result_is_validated_as_the_field_is():
    text = (
        "input: [8, 8, 1]\nparams: {s: 2}\nlayers:\n"
        "  - conv2d: {filters: 4, kernel: 3, padding: \"${'full' if s == 2 else 'same'}\"}\n"
    )
    with pytest.raises(SpecError) as e:
        specdsl.load(text)
    assert str(e.value) == (
        "<string>:4:46: layers[0] (conv2d): `padding`: input should be 'valid' or 'same' (got 'full')."
    )


def test_errors_are_located_at_the_expression():
    text = 'input: [8]\nparams: {act: relu}\nlayers:\n  - dense: {units: 4, activation: "${act * 2}"}\n'
    with pytest.raises(SpecError) as e:
        specdsl.load(text)
    assert str(e.value) == (
        "<string>:4:35: layers[0] (dense): arithmetic takes numbers, but `act` is 'relu' (a string), in `act * 2`."
    )


def test_a_conditional_chain_is_bounded_by_its_depth():
    chain = "1 if flag else " * (MAX_EXPR_DEPTH + 1) + "0"
    with pytest.raises(_expr.ExprError) as e:
        _expr.evaluate(chain, VARIABLES)
    assert str(e.value) == (
        f"`{_expr.shown(chain)}` nests {MAX_EXPR_DEPTH + 1} operations deep; expressions are limited to "
        f"{MAX_EXPR_DEPTH}."
    )
    ok = "1 if flag else " * (MAX_EXPR_DEPTH // 2) + "0"
    assert _expr.evaluate(ok, VARIABLES) == 1


def test_operations_count_every_node_of_a_conditional_both_branches_included():
    # the conditional, its comparison, `strides`, 1, and both branches
    assert _expr.operations("${'same' if strides == 1 else 'valid'}") == 6
    assert _expr.operations("${a and b or not c}") == 6  # or, and, a, b, not, c

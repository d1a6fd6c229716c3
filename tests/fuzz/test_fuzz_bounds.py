"""Property tests of the bounds: expressions of any size and nesting, and blocks and repeats of any counts, give a
value within the bounds or one located error, quickly. Long runs: `pytest tests/fuzz --hypothesis-profile=long`."""

from __future__ import annotations

import math
import time

from hypothesis import given
from hypothesis import strategies as st

from specdsl import SpecdslError
from specdsl.plan import plan
from specdsl.spec import (
    MAX_EXPR_CHARS,
    MAX_INT_BITS,
    MAX_LAYERS,
    RandomSampler,
    _expr,  # the evaluator itself
    from_tree,
)

VARIABLES = {
    "x": 3,
    "y": -7,
    "index": 0,
    "n": 2**62,
    "s": "text",
    "l": [1, 2],
    "big": 10**39,
    "f": 1e300,
    "inf": float("inf"),
    "nan": float("nan"),
    "b": True,
}

numbers = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),
    st.integers(0, 400).map(lambda k: 10**k),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, 1e-308, 5e-324, 0.0]),
).map(repr)
atoms = st.one_of(
    numbers, st.sampled_from([*VARIABLES, "True", "None", "'a'", "1j", "[1]", "x.y", "x[0]", "..."])
)
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "<<", "&", "==", " and ", " if "]


def _grow(children):
    binary = st.tuples(children, st.sampled_from(OPERATORS), children, st.booleans()).map(
        lambda t: f"({t[0]}{t[1]}{t[2]})" if t[3] else f"{t[0]}{t[1]}{t[2]}"
    )
    unary = st.tuples(st.sampled_from(["-", "+", "~", "not "]), children).map("".join)
    call = st.tuples(
        st.sampled_from(["min", "max", "abs", "pow", "__import__"]),
        st.lists(children, max_size=4),
        st.booleans(),
    ).map(lambda t: f"{t[0]}({'*' if t[2] else ''}{', '.join(t[1])})")
    return st.one_of(binary, unary, call)


expressions = st.one_of(
    st.recursive(atoms, _grow, max_leaves=60),
    # long chains and deep nesting, around and beyond the length and depth bounds
    st.tuples(st.integers(1, 700), st.sampled_from(["+", "*", "**", "-", "//"]), atoms).map(
        lambda t: t[1].join([t[2]] * t[0])
    ),
    st.tuples(st.integers(1, 1200), st.sampled_from(["-", "+", "("])).map(
        lambda t: t[1] * t[0] + "1" + (")" * t[0] if t[1] == "(" else "")
    ),
    st.text(max_size=40),
)


@given(expressions)
def test_an_expression_gives_a_bounded_number_or_an_expression_error(text):
    start = time.perf_counter()
    try:
        value = _expr.evaluate(text, VARIABLES)
    except _expr.ExprError as e:
        assert len(str(e)) < 300
    else:
        assert len(text.strip()) <= MAX_EXPR_CHARS
        # a number, a truth value, or a string, which only a literal or a variable gives (nothing builds one)
        assert type(value) in (int, float, bool, str)
        if type(value) is str:
            assert value in text or value in VARIABLES.values()
        elif type(value) is not bool:
            assert value.bit_length() <= MAX_INT_BITS if type(value) is int else math.isfinite(value)
    try:
        _expr.substitute("conv_${" + text + "}", VARIABLES)
    except _expr.ExprError:
        pass
    assert time.perf_counter() - start < 2.0


COUNTS = st.one_of(
    st.integers(0, 3),
    st.integers(0, 10**12),
    st.sampled_from(["$n", "${n * n}", "${index}", "${n ** 40}", "${2 ** 62}", "${min(5)}", -1, 2.5]),
)
VALUES = st.sampled_from(
    ["$n", "${n * 2}", "${n * n}", "${n ** n}", "${index + 1}", "${n // 0}", 4, 2, "${max(n, 2)}"]
)
NAMES = st.sampled_from(["a", "b", "input", "dense", "dense_1", None])
BLOCKS = ["b0", "b1", "b2", "b3"]
layer = st.one_of(
    st.builds(lambda u, name: {"dense": {"units": u, **({"name": name} if name else {})}}, VALUES, NAMES),
    st.sampled_from(["batchnorm", "flatten", {"dropout": 0.1}, {"add": {"inputs": ["a", "b"]}}, *BLOCKS]),
    st.builds(lambda b, n: {b: {"n": n}}, st.sampled_from(BLOCKS), VALUES),
)
items = st.recursive(
    layer,
    lambda children: st.builds(
        lambda count, body, name: {"repeat": count, "layers": body, **({"name": name} if name else {})},
        COUNTS,
        st.lists(children, min_size=1, max_size=3),
        NAMES,
    ),
    max_leaves=12,
)
blocks = st.dictionaries(
    st.sampled_from(BLOCKS),
    st.builds(
        lambda body, params: {"params": params, "layers": body},
        st.lists(items, min_size=1, max_size=3),
        st.sampled_from([{"n": 2}, {"n": None}, {}, {"n": "${n * n}"}]),
    ),
    max_size=4,
)
specs = st.builds(
    lambda blocks, body, n: {"input": [8], "params": {"n": n}, "blocks": blocks, "layers": body},
    blocks,
    st.lists(items, min_size=1, max_size=4),
    st.one_of(st.integers(0, 5), st.integers(0, 2**70)),
)


@given(specs)
def test_blocks_and_repeats_of_any_counts_expand_within_the_bound_or_fail_located(doc):
    start = time.perf_counter()
    try:
        spec = from_tree(doc, "spec.yaml", sampler=RandomSampler(0))
    except SpecdslError as e:
        assert e.loc is not None and e.loc.file == "spec.yaml"
        assert "\n" not in e.format()
    else:
        assert len(spec.layers) <= MAX_LAYERS
        try:
            plan(spec)
        except SpecdslError as e:
            assert e.loc is not None
    assert time.perf_counter() - start < 10.0  # a spec near the bound builds up to MAX_LAYERS layers

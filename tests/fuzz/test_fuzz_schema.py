"""Property tests of the JSON Schema against ``validate``: what the spec language takes, the schema takes; a layer's
arguments its model refuses for their structure (a type, a range, a choice, a key), the schema refuses.

One gap is JSON Schema's own: it counts 8.0 as an integer (JSON has one kind of number), where a spec's sizes are
strict integers; such values are left out here. And the schema asks for the values themselves where pydantic
would convert one (``use_bias: "1"``, ``rate: "0.5"``): those are left out of what it must take.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, note
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from layer_cases import CASES
from pydantic import ValidationError
from strategies import documents, graph_spec, sequential_spec

from specdsl.errors import SpecdslError
from specdsl.spec import LAYERS, RandomSampler, canonical_kind, from_tree, json_schema
from specdsl.spec._aliases import ACTIVATION_ARGUMENTS, ACTIVATION_LAYERS, KERAS_ARGUMENTS

VALIDATOR = Draft202012Validator(json_schema())
ITEMS = [c["layers"][-1] for cases in CASES.values() for c in cases if isinstance(c["layers"][-1], dict)]
ARGUMENTS = sorted(
    {k for item in ITEMS for args in item.values() if isinstance(args, dict) for k in args} | {"bogus"}
)
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 2**33),
        st.floats(-2, 2, allow_nan=False).filter(lambda f: not f.is_integer()),
        st.sampled_from(["same", "valid", "full", "relu", "channel", "position", "input", "1", ""]),
    ),
    lambda children: st.lists(children, max_size=3),
    max_leaves=6,
)


def integral_float(node: Any) -> bool:
    if isinstance(node, float):
        return node.is_integer()
    if isinstance(node, dict):
        return any(integral_float(v) for v in node.values())
    return isinstance(node, list) and any(integral_float(v) for v in node)


def taken(doc: dict) -> bool:
    try:
        from_tree(doc, "fuzz.yaml", sampler=RandomSampler(0))
    except SpecdslError as e:
        note(str(e))
        return False
    return True


@given(documents)
def test_what_the_language_takes_the_schema_takes(doc):
    doc = {"input": [8, 8, 2], "layers": doc} if not isinstance(doc, dict) else doc
    assume(not integral_float(doc))
    if taken(doc):
        assert list(VALIDATOR.iter_errors(doc)) == []


@given(st.one_of(sequential_spec(), graph_spec()))
def test_every_generated_spec_is_valid(spec):
    assert list(VALIDATOR.iter_errors(spec)) == []


@given(st.sampled_from(ITEMS), st.sampled_from(ARGUMENTS), values, st.booleans())
def test_an_argument_changed_is_taken_or_refused_by_both(item, key, value, drop):
    ((kind, args),) = item.items()
    info = LAYERS[canonical_kind(kind)]
    args = dict(args) if isinstance(args, dict) else {info.primary: args}
    if drop:
        args.pop(key, None)
    else:
        args[key] = value
    doc = {"input": [8, 8, 3], "layers": [{kind: args}]}
    coerced = False
    try:
        info.model.model_validate(args)
    except ValidationError as e:  # a rule between values (groups divide filters) is no structure
        note(repr(e.errors()))
        assert list(VALIDATOR.iter_errors(doc)) != [] or all(
            err["type"] == "value_error" for err in e.errors()
        )
        return
    try:
        info.model.model_validate(args, strict=True)
    except (
        ValidationError
    ):  # taken only as pydantic converts it ('1' or 1 for true): the schema asks for true
        coerced = True
    if not coerced and taken(doc):
        assert list(VALIDATOR.iter_errors(doc)) == []


KERAS = [
    (LAYERS[kind].keras_class, kind, key, only)
    for kind, table in sorted(KERAS_ARGUMENTS.items())
    for key, only in table.items()
    if kind in CASES
] + [
    (written, "activation", key, only)
    for written, (cls, _, _) in sorted(ACTIVATION_LAYERS.items())
    for key, only in ACTIVATION_ARGUMENTS.get(cls, {}).items()
]


@given(
    st.sampled_from(KERAS),
    st.one_of(values, st.sampled_from(["channels_last", "zeros", "ones", 0.99, -1, 6])),
)
def test_a_keras_argument_is_taken_by_both_or_refused_by_both(entry, value):
    """A Keras argument (of a kind's Keras class, of an activation layer) at any value: the schema refuses it
    exactly where the language does."""
    written, kind, key, _ = entry
    spec = CASES[kind][0] if written not in ACTIVATION_LAYERS else {"input": [8, 8, 3], "layers": [{}]}
    last = spec["layers"][-1]
    args = next(iter(last.values()), {}) if isinstance(last, dict) else {}
    args = dict(args) if isinstance(args, dict) else {LAYERS[kind].primary: args}
    doc = {**spec, "layers": [*spec["layers"][:-1], {written: {**args, key: value}}]}
    assert taken(doc) == (list(VALIDATOR.iter_errors(doc)) == [])

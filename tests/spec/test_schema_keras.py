"""The JSON Schema against ``validate`` on Keras' spellings: walking the tables of specdsl/spec/_aliases.py, every
Keras argument at a value the spec takes is valid under the schema, and one at another value is refused by the
schema at the argument, where ``validate`` refuses it; Keras' activation layers take their own arguments; a
layer's ``silence:`` takes the warnings' codes; batchnorm takes Keras' ``axis``."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from layer_cases import CASES

import specdsl
from specdsl import SpecdslError
from specdsl.spec import LAYERS, WARNINGS, json_schema
from specdsl.spec._aliases import ACTIVATION_ARGUMENTS, ACTIVATION_LAYERS, KERAS_ARGUMENTS, Only

SCHEMA = json_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def leaves(found) -> set[tuple[str, str]]:
    """(path, message) of every error at the bottom of the tree of errors (inside each `anyOf`)."""
    out: set[tuple[str, str]] = set()
    for e in found:
        out |= leaves(e.context) if e.context else {(e.json_path, e.message)}
    return out


def keras_spelled(kind: str, **args) -> dict:
    """The kind's first layer case, its last layer written under its Keras class, with ``args`` added."""
    spec = CASES[kind][0]
    last = spec["layers"][-1]
    value = {} if isinstance(last, str) else next(iter(last.values()))
    if not isinstance(value, dict):
        value = {LAYERS[kind].primary: value}
    return {**spec, "layers": [*spec["layers"][:-1], {LAYERS[kind].keras_class: {**value, **args}}]}


def validate_refuses(spec: dict) -> SpecdslError:
    with pytest.raises(SpecdslError) as e:
        specdsl.check(spec)
    return e.value


def other_value(only: Only):
    """A value the spec does not take for this argument: another of its type."""
    first = only.values[0]
    if isinstance(first, bool):
        return not first
    if isinstance(first, (int, float)):
        return first + 1
    return "channels_first" if first == "channels_last" else "other"


def _entries():
    for kind in sorted(KERAS_ARGUMENTS):
        for name, only in KERAS_ARGUMENTS[kind].items():
            yield pytest.param(kind, name, only, id=f"{kind}-{name}")


@pytest.mark.parametrize("kind, name, only", list(_entries()))
def test_a_keras_argument_is_valid_at_the_values_taken_and_refused_elsewhere_where_validate_refuses(
    kind, name, only
):
    for value in only.values:
        spec = keras_spelled(kind, **{name: value})
        specdsl.check(spec)
        assert list(VALIDATOR.iter_errors(spec)) == [], value
    other = other_value(only)
    spec = keras_spelled(kind, **{name: other})
    refused = validate_refuses(spec)
    assert refused.message.startswith(f"{only.rule(name)}; but got ")
    at = f"$.layers[{len(spec['layers']) - 1}].{LAYERS[kind].keras_class}.{name}"
    assert (at, f"{other!r} is not one of {list(only.values)!r}") in leaves(VALIDATOR.iter_errors(spec))
    assert refused.path == f"layers[{len(spec['layers']) - 1}] ({kind})"


@pytest.mark.parametrize(
    "name, value", [("keepdims", 0), ("trainable", 1), ("data_format", "channels_first"), ("renorm", "no")]
)
def test_a_boolean_is_taken_only_as_a_boolean_by_both(name, value):
    kind = {"keepdims": "global_avgpool2d", "renorm": "batchnorm"}.get(name, "conv2d")
    spec = keras_spelled(kind, **{name: value})
    message = validate_refuses(spec).message
    if name == "trainable":  # a field of every layer (freezing), not a Keras argument taken at one value
        assert message == "`trainable`: input should be a valid boolean (got 1)."
    else:
        assert message.endswith(f"but got {value}.")
    assert list(VALIDATOR.iter_errors(spec)) != []


def test_each_keras_argument_is_described_by_its_rule():
    args = SCHEMA["$defs"]["kind.conv2d"]["anyOf"][0]["anyOf"][0]["properties"]
    assert args["data_format"]["description"] == (
        "Keras' `data_format` is taken only as channels_last, as specdsl models are channels-last (NHWC); dropped."
    )
    assert set(KERAS_ARGUMENTS["conv2d"]) <= set(args)


LAYER = {"input": [4, 5, 3], "layers": [None]}


def one(layer) -> dict:
    return {**LAYER, "layers": [layer]}


def _activation_layers():
    for written, (cls, _, defaults) in sorted(ACTIVATION_LAYERS.items()):
        yield pytest.param(written, cls, defaults, id=written)


@pytest.mark.parametrize("written, cls, defaults", list(_activation_layers()))
def test_each_activation_layer_takes_its_arguments_at_keras_defaults(written, cls, defaults):
    forms = [
        written,
        {written: {}},
        {written: None},
        {written: dict(defaults)},
        {"kind": written, **defaults},
    ]
    forms += [{written: {"name": "act", "silence": ["drops-rows"], "trainable": True}}]
    forms += [
        {written: {"trainable": False}}
    ]  # frozen, as Keras takes it: an activation has no weights to freeze
    for form in forms:
        specdsl.check(one(form))
        assert list(VALIDATOR.iter_errors(one(form))) == [], form
    for name, only in ACTIVATION_ARGUMENTS.get(cls, {}).items():
        for value in only.values:
            specdsl.check(one({written: {name: value}}))
            assert list(VALIDATOR.iter_errors(one({written: {name: value}}))) == [], (name, value)
    refused = [{written: {"function": "relu"}}, {written: {"bogus": 1}}, {written: "relu"}]
    refused += [
        {written: {name: other_value(only)}} for name, only in ACTIVATION_ARGUMENTS.get(cls, {}).items()
    ]
    for form in refused:
        validate_refuses(one(form))
        assert list(VALIDATOR.iter_errors(one(form))) != [], form


@pytest.mark.parametrize(
    "layer, valid",
    [
        ({"ReLU": {"max_value": 6}}, True),
        ({"ReLU": {"max_value": 6.0, "negative_slope": 0, "threshold": 0}}, True),
        ({"ReLU": {"negative_slope": 0.1}}, True),
        ({"ReLU": {"max_value": 6, "negative_slope": 0.1}}, False),  # relu6 with a slope is no function
        ({"ReLU": {"max_value": 5}}, False),
        ({"ReLU": {"threshold": 0.5}}, False),
        ({"ReLU": {"threshold": None}}, False),
        ({"ReLU": {"negative_slope": -0.1}}, False),
        ({"LeakyReLU": {"alpha": 0.1}}, False),
        ({"ELU": {"alpha": 1}}, True),
        ({"Softmax": {"axis": 1}}, False),
        ({"activation": {"function": "relu", "max_value": 6}}, True),
        ({"activation": {"activation": "relu", "max_value": 6, "threshold": 0.0}}, True),
        ({"activation": {"function": "sigmoid", "max_value": 6}}, False),  # ReLU's arguments with relu only
        ({"activation": {"function": "tanh", "threshold": 0}}, False),
        ({"activation": {"function": "relu", "max_value": 6, "negative_slope": 0.1}}, False),
        ({"kind": "ReLU", "function": "relu"}, False),
        ({"kind": "activation", "function": "relu", "max_value": 6}, True),
    ],
)
def test_relu_arguments_are_taken_by_the_schema_as_by_validate(layer, valid):
    spec = one(layer)
    if valid:
        specdsl.check(spec)
    else:
        validate_refuses(spec)
    assert (list(VALIDATOR.iter_errors(spec)) == []) is valid


def test_silence_takes_the_warnings_codes():
    silence = SCHEMA["$defs"]["kind.conv2d"]["anyOf"][0]["anyOf"][0]["properties"]["silence"]
    assert silence["description"].startswith("Codes of the warnings this layer means")
    spec = one({"conv2d": {"filters": 2, "kernel": 3, "strides": 2, "silence": sorted(WARNINGS)}})
    specdsl.check(spec)
    assert list(VALIDATOR.iter_errors(spec)) == []
    spec = one({"conv2d": {"filters": 2, "kernel": 3, "silence": ["drop-rows"]}})
    assert "unknown warning code `drop-rows`" in validate_refuses(spec).message
    assert ("$.layers[0].conv2d.silence[0]", f"'drop-rows' is not one of {list(WARNINGS)!r}") in leaves(
        VALIDATOR.iter_errors(spec)
    )


def test_batchnorm_takes_keras_axis():
    for axis in (-1, 3):
        spec = one({"BatchNormalization": {"axis": axis}})
        specdsl.check(spec)
        assert list(VALIDATOR.iter_errors(spec)) == []
    spec = one({"BatchNormalization": {"axis": "channels"}})
    validate_refuses(spec)
    assert ("$.layers[0].BatchNormalization.axis", "'channels' is not of type 'integer'") in leaves(
        VALIDATOR.iter_errors(spec)
    )

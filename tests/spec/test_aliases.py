"""Keras' spellings: the table in specdsl/spec/_aliases.py is Keras' own (checked against keras.layers), every
entry of it is walked (each alias means what its canonical spelling means), and each refusal has its message."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from layer_cases import CASES

import specdsl
from specdsl import SpecdslError
from specdsl.spec import LAYERS, canonical_kind
from specdsl.spec._aliases import ACTIVATION_LAYERS, KERAS_ARGUMENTS, MISPLACED, Only

BUILT_IN = sorted(k for k, info in LAYERS.items() if info.model.__module__ == "specdsl.spec._layers")


def _custom() -> set[str]:
    """The Keras backend's own layers, which keras.layers lacks."""
    _keras()
    from specdsl.backends._keras._custom import CUSTOM_LAYERS

    return set(CUSTOM_LAYERS)


def _keras():
    return pytest.importorskip("keras")


def _signature(cls) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self")
    return {n: p for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _plain(spec: dict) -> list:
    """The layers a spec validates to, without their auto names."""
    return [entry.layer for entry in specdsl.load(spec).layers]


def _respelled(spec: dict, kind: str, key: str | None = None, **args) -> dict:
    """The case ``spec`` with its last layer written under ``key`` and with ``args`` added."""
    last = spec["layers"][-1]
    written = last if isinstance(last, str) else next(iter(last))
    value = {} if isinstance(last, str) else last[written]
    if not isinstance(value, dict):
        value = {LAYERS[kind].primary: value}
    return {**spec, "layers": [*spec["layers"][:-1], {key or written: {**value, **args}}]}


# -- layer kinds


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_every_kind_is_also_written_as_its_keras_class(kind):
    info = LAYERS[kind]
    for name in (info.keras_class, info.keras_class.lower()):
        assert canonical_kind(name) == kind, name
    if kind not in CASES:
        pytest.skip(f"{kind} has no layer cases")
    spec = CASES[kind][0]
    assert _plain(_respelled(spec, kind, info.keras_class)) == _plain(spec)


def test_the_keras_classes_are_keras_own():
    keras = _keras()
    for kind in BUILT_IN:
        keras_class = LAYERS[kind].keras_class
        assert keras_class in _custom() or hasattr(keras.layers, keras_class), kind
    for name, (cls, _, defaults) in ACTIVATION_LAYERS.items():
        assert name in (cls, cls.lower()) or name == "leaky_relu"
        params = _signature(getattr(keras.layers, cls))
        assert {n: p.default for n, p in params.items()} == defaults, cls


# -- arguments


def _aliases_of(model) -> dict[str, str]:
    """Keras' names of a model's fields (pydantic aliases), and the fields' own names."""
    names = {}
    for field_name, info in model.model_fields.items():
        names[field_name] = field_name
        choices = getattr(info.validation_alias, "choices", ())
        for choice in choices:
            names[choice] = field_name
    return names


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_keras_argument_is_taken_or_refused_by_the_table(kind):
    """Every constructor argument of the kind's Keras class is a field (or a field's alias) of its model, or an
    entry of the table that takes Keras' default; the table has nothing else."""
    keras = _keras()
    info = LAYERS[kind]
    if info.keras_class in _custom():
        pytest.skip(f"{info.keras_class} is the Keras backend's own layer")
    params = _signature(getattr(keras.layers, info.keras_class))
    base = _signature(keras.layers.Layer)
    fields = _aliases_of(info.model)
    table = KERAS_ARGUMENTS.get(kind, {})
    for name, param in params.items():
        assert name in fields or name in table, (
            f"{info.keras_class}({name}=...) is neither a field of {kind} nor in KERAS_ARGUMENTS['{kind}'] "
            "(specdsl/spec/_aliases.py)"
        )
        if name in table and param.default is not inspect.Parameter.empty:
            assert param.default in table[name].values, (kind, name)
    for name, only in table.items():
        assert name in params or name in base or name == "input_shape", (kind, name)
        if name in base:
            assert base[name].default in only.values, (kind, name)


def _cases_with_aliases():
    for kind in sorted(LAYERS):
        model = LAYERS[kind].model
        for alias, field_name in _aliases_of(model).items():
            if alias != field_name:
                yield pytest.param(kind, alias, field_name, id=f"{kind}-{alias}")


@pytest.mark.parametrize("kind, alias, field_name", list(_cases_with_aliases()))
def test_each_argument_alias_means_its_field(kind, alias, field_name):
    spec = CASES[kind][0]
    value = getattr(_plain(spec)[-1], field_name)
    if value is None:  # a pool's strides default to its size
        value = 2
    elif field_name == "padding" and kind == "zero_padding2d":
        value = [list(p) for p in value]
    elif isinstance(value, tuple):
        value = list(value)

    def written(name: str) -> dict:
        base = _respelled(spec, kind)
        (key, args), last = next(iter(base["layers"][-1].items())), base["layers"][:-1]
        args = {k: v for k, v in args.items() if k != field_name}
        return {**base, "layers": [*last, {key: {**args, name: value}}]}

    assert _plain(written(alias)) == _plain(written(field_name))


def _table_entries():
    for kind in sorted(KERAS_ARGUMENTS):
        for name, only in KERAS_ARGUMENTS[kind].items():
            yield pytest.param(kind, name, only, id=f"{kind}-{name}")


def _yaml(value) -> str:
    return (
        {None: "null", True: "true", False: "false"}.get(value, str(value))
        if not isinstance(value, float)
        else str(value)
    )


@pytest.mark.parametrize("kind, name, only", list(_table_entries()))
def test_each_table_entry_is_dropped_at_keras_default_and_refused_otherwise(kind, name, only: Only):
    spec = CASES[kind][0]
    for value in only.values:
        assert _plain(_respelled(spec, kind, **{name: value})) == _plain(spec), value
    other = "other" if isinstance(only.values[0], str) or only.values[0] is None else 123
    with pytest.raises(SpecdslError) as e:
        specdsl.load(_respelled(spec, kind, **{name: other}))
    shown = " or ".join(_yaml(v) for v in only.values if v is not None) or "null"
    assert e.value.message == (
        f"Keras' `{name}` is taken only as {shown}, as {only.why}; but got {_yaml(other)}."
    )
    assert e.value.hint == (only.hint or f"Leave `{name}` out.")


# -- Keras' activation layers


def _activation(layer) -> tuple:
    (entry,) = specdsl.load({"input": [4, 5, 3], "layers": [layer]}).layers
    return entry.layer.kind, entry.layer.function, entry.layer.negative_slope


@pytest.mark.parametrize("name", sorted(ACTIVATION_LAYERS))
def test_each_activation_layer_is_its_function(name):
    cls, function, _ = ACTIVATION_LAYERS[name]
    slope = 0.3 if cls == "LeakyReLU" else None
    assert _activation(name) == ("activation", function, slope)
    assert _activation({name: {}}) == ("activation", function, slope)


@pytest.mark.parametrize(
    "layer, function, slope",
    [
        ({"ReLU": {"max_value": 6}}, "relu6", None),
        ({"ReLU": {"max_value": 6.0, "negative_slope": 0, "threshold": 0}}, "relu6", None),
        ({"ReLU": {"negative_slope": 0.1}}, "leaky_relu", 0.1),
        ({"LeakyReLU": {"negative_slope": 0.2}}, "leaky_relu", 0.2),
        ({"ELU": {"alpha": 1.0}}, "elu", None),
        ({"Softmax": {"axis": -1}}, "softmax", None),
        ({"activation": {"function": "relu", "max_value": 6}}, "relu6", None),
        ({"activation": {"activation": "relu", "max_value": 6}}, "relu6", None),
        ({"activation": {"function": "relu", "negative_slope": 0.1}}, "leaky_relu", 0.1),
        ({"activation": {"function": "relu", "threshold": 0.0}}, "relu", None),
    ],
)
def test_keras_relu_arguments_become_the_function_they_make(layer, function, slope):
    assert _activation(layer) == ("activation", function, slope)


@pytest.mark.parametrize(
    "keras_layer, layer",
    [
        (("ReLU", {}), "relu"),
        (("ReLU", {"max_value": 6.0}), {"ReLU": {"max_value": 6}}),
        (("ReLU", {"negative_slope": 0.1}), {"ReLU": {"negative_slope": 0.1}}),
        (("LeakyReLU", {}), "LeakyReLU"),
        (("ELU", {}), "ELU"),
        (("Softmax", {}), "Softmax"),
    ],
)
def test_the_translation_computes_what_keras_layer_computes(keras_layer, layer):
    keras = _keras()
    from specdsl.backends import get_backend

    x = np.linspace(-8, 8, 4 * 5 * 3, dtype="float32").reshape(1, 4, 5, 3)
    cls, kwargs = keras_layer
    want = np.asarray(getattr(keras.layers, cls)(**kwargs)(x))
    model = get_backend("keras").build(specdsl.check({"input": [4, 5, 3], "layers": [layer]}))
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=1e-6, atol=1e-6)


def _refusal(layer, shape=(28, 28, 1)) -> str:
    text = f"input: [{', '.join(map(str, shape))}]\nlayers:\n  - {layer}\n  - flatten\n"
    with pytest.raises(SpecdslError) as e:
        specdsl.plan(specdsl.load(text, file="m.yaml"))
    return str(e.value)


def test_the_refusals_say_what_the_spec_takes():
    assert _refusal("ReLU: {threshold: 0.5}") == (
        "m.yaml:3:23: layers[0] (activation): Keras' `threshold` is taken only as 0.0, as the spec's relu has "
        "threshold 0; but got 0.5. Leave `threshold` out."
    )
    assert _refusal("ReLU: {max_value: 5}") == (
        "m.yaml:3:23: layers[0] (activation): Keras' ReLU with max_value=5 has no function in the spec: relu6 is "
        "max_value 6 alone, leaky_relu negative_slope alone. Write max_value: 6 (relu6), negative_slope: 0.1 "
        "(leaky_relu), or neither (relu)."
    )
    assert _refusal("ReLU: {max_value: 6, negative_slope: 0.1}").startswith(
        "m.yaml:3:23: layers[0] (activation): Keras' ReLU with max_value=6 and negative_slope=0.1 has no function"
    )
    assert _refusal("ELU: {alpha: 0.5}") == (
        "m.yaml:3:18: layers[0] (activation): Keras' `alpha` is taken only as 1.0, as the spec's elu is Keras' "
        "default ELU; but got 0.5. Leave `alpha` out."
    )
    assert _refusal("LeakyReLU: {alpha: 0.1}") == (
        "m.yaml:3:17: layers[0] (activation): unknown argument `alpha` of Keras' LeakyReLU (`LeakyReLU` is the "
        "activation leaky_relu); it takes negative_slope. Write `- activation: {function: ...}` for another "
        "function."
    )
    assert _refusal("Conv2D: {filters: 8, kernel_size: 3, data_format: channels_first}") == (
        "m.yaml:3:55: layers[0] (conv2d): Keras' `data_format` is taken only as channels_last, as specdsl models "
        "are channels-last (NHWC); but got channels_first. Leave `data_format` out."
    )
    assert _refusal("conv2d: {filters: 8, kernel: 3, input_shape: [28, 28, 1]}") == (
        "m.yaml:3:50: layers[0] (conv2d): Keras' `input_shape` is taken only as null, as the spec's input shape "
        "is its top-level `input:`; but got [28, 28, 1]. Write it as the spec's `input:`."
    )


@pytest.mark.parametrize("axis, shape", [(-1, (6, 6, 4)), (3, (6, 6, 4)), (2, (9, 4)), (1, (8,)), (-1, (8,))])
def test_batchnorm_takes_the_channels_axis_as_keras_counts_it(axis, shape):
    spec = {"input": list(shape), "layers": [{"BatchNormalization": {"axis": axis}}]}
    node = specdsl.check(spec).layers[0]
    assert (node.kind, node.shape, node.trainable, node.non_trainable) == (
        "batchnorm",
        shape,
        2 * shape[-1],
        2 * shape[-1],
    )


def test_batchnorm_on_another_axis_is_refused_where_it_stands():
    assert _refusal("batchnorm: {axis: 1}") == (
        "m.yaml:3:5: layers[0] (batchnorm): batchnorm normalizes the channels, the last axis (channels-last): "
        "axis -1 or 3 for its 28x28x1 input (Keras counts the batch axis), but got axis=1. Write axis: -1, or "
        "leave it out."
    )
    assert _refusal("batchnorm: {axis: 3}", (8,)).startswith(
        "m.yaml:3:5: layers[0] (batchnorm): batchnorm normalizes the channels, the last axis (channels-last): "
        "axis -1 or 1 for its 8 input"
    )


# -- sections


TRAIN = "input: [4]\nlayers:\n  - dense: {units: 2, activation: softmax}\ntrain:\n%s"


@pytest.mark.parametrize("key", sorted(MISPLACED["train"]))
def test_an_optimizer_argument_under_train_is_refused_with_the_line_to_write(key):
    value = "true" if key == "nesterov" else "0.01"
    with pytest.raises(SpecdslError) as e:
        specdsl.load(TRAIN % f"  optimizer: sgd\n  {key}: {value}\n", file="m.yaml")
    assert str(e.value) == (
        f"m.yaml:6:3: train.{key}: `{key}` belongs under `optimizer:`, not directly under `train:`. Write "
        f"`optimizer: {{name: sgd, {key}: {value}}}` under `train:`."
    )
    # where it belongs, it is taken
    spec = specdsl.load(TRAIN % f"  optimizer: {{name: sgd, {key}: {value}}}\n", file="m.yaml")
    assert spec.train.optimizer.name == "sgd"


def test_the_line_to_write_keeps_the_optimizer_written():
    with pytest.raises(SpecdslError) as e:
        specdsl.load(
            TRAIN % "  optimizer: {name: sgd, momentum: 0.9}\n  learning_rate: 0.05\n", file="m.yaml"
        )
    assert (
        e.value.hint == "Write `optimizer: {name: sgd, momentum: 0.9, learning_rate: 0.05}` under `train:`."
    )
    with pytest.raises(SpecdslError) as e:
        specdsl.load(TRAIN % "  learning_rate: 0.05\n", file="m.yaml")
    assert e.value.hint == "Write `optimizer: {name: adam, learning_rate: 0.05}` under `train:`."

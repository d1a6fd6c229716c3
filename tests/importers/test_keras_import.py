"""Importing Keras models: every layer case and every example round trips (spec -> Keras -> import -> the same
counts, node by node, and with the weights carried over the same outputs in Keras and torch); what the language
lacks is one message naming each layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from backends.test_keras import EXTRA
from import_support import examples, inputs, keras_out, randomize_keras, torch_out
from layer_cases import all_cases

import specdsl
import specdsl.weights as W
from specdsl.errors import SourceError
from specdsl.importers import import_model, imported_kinds


@pytest.fixture(autouse=True)
def _fresh_names():
    """Keras numbers the names it makes (conv2d_26) per session: each test starts from conv2d."""
    keras.backend.clear_session()


# every registered kind maps by its Keras class (imported_kinds("keras") is all of them)
CASES = [pytest.param(spec, id=tid) for tid, kind, spec in all_cases() if kind in imported_kinds("keras")] + [
    pytest.param(spec, id=name) for name, spec in EXTRA.items()
]


def _nodes(plan):
    return [(n.kind, n.shape, n.trainable, n.non_trainable) for n in plan.nodes]


@pytest.mark.parametrize("spec", CASES)
def test_every_layer_case_imports_as_itself(spec):
    """Node by node the same kinds, shapes and counts, and with the source's weights the same outputs."""
    plan = specdsl.check(spec)
    source = specdsl.build(plan, "keras")
    randomize_keras(source)
    imported = import_model(source)
    assert _nodes(imported.flat_plan) == _nodes(plan)
    assert _nodes(imported.plan) == _nodes(plan)
    x = inputs(plan.input_shape)
    model = W.set_arrays(specdsl.build(imported.plan, "keras"), imported.plan, imported.weights())
    np.testing.assert_allclose(keras_out(model, x), keras_out(source, x), rtol=1e-5, atol=1e-6)


def _round_trip(plan, tmp_path):
    source = specdsl.build(plan, "keras")
    randomize_keras(source)
    path = tmp_path / f"{plan.name}.keras"
    source.save(path)
    imported = import_model(path)
    counts = (imported.plan.params, imported.plan.trainable, imported.plan.non_trainable)
    assert counts == (plan.params, plan.trainable, plan.non_trainable)
    assert imported.plan.output_shapes == plan.output_shapes
    assert _nodes(imported.flat_plan) == _nodes(plan) and _nodes(imported.plan) == _nodes(plan)
    checkpoint = imported.write_weights(tmp_path / "w.npz")
    x = inputs(plan.input_shape)
    want = keras_out(source, x)
    k = W.load_into(specdsl.build(imported.plan, "keras"), imported.plan, checkpoint)
    np.testing.assert_allclose(keras_out(k, x), want, rtol=1e-5, atol=1e-6)
    t = W.load_into(specdsl.build(imported.plan, "torch"), imported.plan, checkpoint)
    np.testing.assert_allclose(
        torch_out(t, x), want, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(want).max()))
    )
    return imported


@pytest.mark.parametrize("path", examples())
def test_every_example_round_trips_through_a_keras_file(path, tmp_path):
    _round_trip(specdsl.check(path), tmp_path)


def test_an_example_reads_back_as_it_was_written(tmp_path):
    imported = _round_trip(specdsl.check("examples/mnist_cnn.yaml"), tmp_path)
    assert imported.text == (
        "name: mnist_cnn\n"
        f"description: Imported from {tmp_path}/mnist_cnn.keras.\n"
        "input: [28, 28, 1]\n"
        "layers:\n"
        "  - conv2d: {filters: 64, kernel: 3, activation: relu}\n"
        "  - conv2d: {filters: 32, kernel: 3, activation: relu}\n"
        "  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\n"
    )


def test_a_functional_model_keeps_names_edges_and_nested_models():
    from import_helpers import small_cnn

    model = small_cnn()
    randomize_keras(model)
    imported = import_model(model)
    assert imported.text == (
        "name: small_cnn\n"
        "description: Imported from Functional.\n"
        "input: {shape: [16, 16, 3], name: image}\n"
        "layers:\n"
        "  - conv2d: {filters: 8, kernel: 3, padding: same, name: stem_conv}\n"
        "  - batchnorm: {name: stem_bn}\n"
        "  - activation: {function: relu, name: stem_relu}\n"
        "  - conv2d: {filters: 8, kernel: 3, padding: same, activation: relu, name: res_conv}\n"
        "  - add: {inputs: [stem_relu, res_conv], name: res_add}\n"
        "  - maxpool2d: {name: head_max_pooling2d}\n"
        "  - flatten: {name: head_flatten}\n"
        "  - dense: {units: 4, activation: softmax, name: predictions}\n"
    )
    assert (imported.plan.params, imported.plan.non_trainable) == (model.count_params(), 16)
    x = inputs((16, 16, 3))
    k = W.set_arrays(specdsl.build(imported.plan, "keras"), imported.plan, imported.weights())
    np.testing.assert_allclose(keras_out(k, x), keras_out(model, x), rtol=1e-5, atol=1e-6)


def test_keras_classes_without_a_kind_of_their_own():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="causal" if False else "same")(inp)
    x = keras.layers.ReLU(max_value=6.0)(x)
    x = keras.layers.LeakyReLU()(x)
    x = keras.layers.ELU()(x)
    x = keras.layers.Identity()(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Softmax()(x)
    imported = import_model(keras.Model(inp, x))
    assert imported.flat_text.split("layers:\n")[1] == (
        "  - conv2d: {filters: 4, kernel: 3, padding: same}\n"
        "  - activation: {function: relu6, name: re_lu}\n"
        "  - activation: {function: leaky_relu, negative_slope: 0.3, name: leaky_re_lu}\n"
        "  - activation: {function: elu, name: elu}\n"
        "  - global_avgpool2d: {name: global_average_pooling2d_global_avgpool2d}\n"
        "  - reshape: {shape: [1, 1, 4], name: global_average_pooling2d}\n"
        "  - activation: {function: softmax, name: softmax}\n"
    )
    assert imported.plan.output_shape == (1, 1, 4)


def test_a_causal_conv1d_is_its_padding():
    inp = keras.Input((10, 3))
    out = keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2)(inp)
    imported = import_model(keras.Model(inp, out))
    assert (
        imported.text.split("layers:\n")[1]
        == "  - conv1d: {filters: 4, kernel: 3, dilation: 2, padding: [4, 0]}\n"
    )


def test_layers_the_language_lacks_are_named_in_one_message():
    inp = keras.Input((8, 8, 3), name="img")
    x = keras.layers.Conv2D(4, 3, name="c1", data_format="channels_last")(inp)
    x = keras.layers.GaussianNoise(0.1, name="noise")(x)
    x = keras.layers.PReLU(name="prelu")(x)
    x = keras.layers.Conv2D(4, 3, name="c2", kernel_regularizer="l2", activation="exponential")(x)
    x = keras.layers.BatchNormalization(axis=1, name="bn")(x)
    x = keras.layers.Dropout(0.5, noise_shape=(None, 1, 1, 4), name="drop")(x)
    y = keras.ops.add(x, 1.0)
    with pytest.raises(SourceError) as e:
        import_model(keras.Model(inp, y))
    assert str(e.value) == (
        "Functional: layer `noise` (GaussianNoise); layer `prelu` (PReLU); layer `c2` (Conv2D) (activation "
        "'exponential'); layer `bn` (BatchNormalization) (axis=1: normalization is over the last (channel) axis); "
        "layer `drop` (Dropout) (noise_shape=(None, 1, 1, 4)); operation `add` (Add) (a keras.ops call) have no "
        "equivalent in the spec language. Replace them in the source model with layers the language has "
        "(`specdsl schema` lists its kinds), or leave them out and add them to the imported spec by hand."
    )
    assert e.value.exit_code == 2


def test_a_shared_layer_and_a_subclassed_model_are_refused():
    inp = keras.Input((4,))
    dense = keras.layers.Dense(4, name="shared")
    with pytest.raises(SourceError) as e:
        import_model(keras.Model(inp, dense(dense(inp))))
    assert "layer `shared` (Dense) (called 2 times: a spec layer cannot share weights)" in str(e.value)

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(SourceError) as e:
        import_model(Sub())
    assert str(e.value) == (
        "Sub: the Keras model `sub` (Sub) has no graph to import: it is a subclassed model, or a Sequential that "
        "was never built. Build it with an input (keras.Input(shape=...)) as a functional or Sequential model."
    )


def test_a_frozen_layer_is_noted_and_counted_trainable():
    inp = keras.Input((4,))
    layer = keras.layers.Dense(3, name="frozen")
    out = layer(inp)
    layer.trainable = False
    imported = import_model(keras.Model(inp, out))
    assert imported.notes == [
        "1 layer(s) are frozen in the source (`frozen`); the spec counts their weights as trainable."
    ]
    assert (imported.plan.params, imported.plan.trainable) == (15, 15)

"""Portable .keras files (specdsl's own layers written as Keras' built-in ones) import as the spec they were
compiled from: each bias and uneven 'same' average pooling is one node again, under its name, with the same counts,
shapes and, with the weights carried over, the same outputs. Near misses of those patterns stay refused."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import yaml
from import_support import inputs, keras_out, randomize_keras, torch_out
from typer.testing import CliRunner

import specdsl
import specdsl.weights as W
from specdsl.cli import app
from specdsl.errors import SourceError
from specdsl.importers import import_model

runner = CliRunner()

BIASES = {
    "name": "biases",
    "input": [5, 5, 2],
    "layers": [
        {"conv2d": {"filters": 3, "kernel": 3, "padding": "same", "use_bias": False}},
        {"bias": "position"},
        {"bias": "channel"},
        {"avgpool2d": {"pool": 2, "strides": 2, "padding": "same"}},  # padding (0, 1): uneven
        {"avgpool2d": {"pool": 2, "strides": 1, "padding": "same"}},  # again (0, 1), the pieces named _1
        "flatten",
        {"dense": {"units": 4, "use_bias": False}},
        {"bias": "channel"},
        {"activation": "softmax"},
    ],
}
POOL_1D = {
    "name": "pool1d",
    "input": [7, 3],
    "layers": [{"avgpool1d": {"pool": 2, "strides": 2, "padding": "same"}}, {"bias": "position"}],
}


@pytest.fixture(autouse=True)
def _fresh_names():
    keras.backend.clear_session()


def _nodes(plan):
    return [(n.name, n.kind, n.shape, n.trainable, n.non_trainable) for n in plan.nodes[1:]]


def _portable_file(plan, tmp_path):
    """The plan's model with random weights, written as a portable .keras file by the Keras backend's export."""
    model = specdsl.build(plan, "keras")
    randomize_keras(model)
    path = specdsl.backends.get_backend("keras").export(
        plan, tmp_path / f"{plan.name}.keras", "keras", model=model
    )
    classes = {type(layer).__name__ for layer in keras.saving.load_model(path).layers}
    assert {"EinsumDense", "Rescaling"} <= classes and not classes & {"Bias", "PaddedAveragePooling"}
    return path


@pytest.mark.parametrize("spec", [BIASES, POOL_1D], ids=["biases", "pool1d"])
def test_a_portable_file_imports_as_its_spec_with_its_weights(spec, tmp_path):
    plan = specdsl.check(spec)
    path = _portable_file(plan, tmp_path)
    out, weights = tmp_path / "back.yaml", tmp_path / "back"
    result = runner.invoke(app, ["import", str(path), "-o", str(out), "--weights", str(weights), "--flat"])
    assert result.exit_code == 0, result.output
    back = specdsl.check(out)
    assert (back.params, back.trainable, back.non_trainable) == (
        plan.params,
        plan.trainable,
        plan.non_trainable,
    )
    assert back.output_shapes == plan.output_shapes
    assert _nodes(back) == _nodes(plan)
    written = [
        next(iter(item)) if isinstance(item, dict) else item
        for item in yaml.safe_load(out.read_text())["layers"]
    ]
    assert written == [next(iter(item)) if isinstance(item, dict) else item for item in spec["layers"]]
    x = inputs(plan.input_shape)
    want = keras_out(keras.saving.load_model(path), x)
    k = W.load_into(specdsl.build(back, "keras"), back, tmp_path / "back.npz")
    np.testing.assert_allclose(keras_out(k, x), want, rtol=1e-5, atol=1e-6)
    t = W.load_into(specdsl.build(back, "torch"), back, tmp_path / "back.npz")
    np.testing.assert_allclose(torch_out(t, x), want, rtol=1e-4, atol=1e-5)


def test_the_biases_read_back_per_channel_and_per_position(tmp_path):
    imported = import_model(_portable_file(specdsl.check(BIASES), tmp_path))
    assert [(layer.name, layer.kind, layer.args) for layer in imported.graph.layers] == [
        ("conv2d", "conv2d", imported.graph.layers[0].args),
        ("bias", "bias", {"per": "position"}),
        ("bias_1", "bias", {"per": "channel"}),
        ("average_pooling2d", "avgpool2d", {"pool": [2, 2], "strides": [2, 2], "padding": "same"}),
        ("average_pooling2d_1", "avgpool2d", {"pool": [2, 2], "strides": [1, 1], "padding": "same"}),
        ("flatten", "flatten", {}),
        ("dense", "dense", imported.graph.layers[6].args),
        ("bias_2", "bias", {"per": "channel"}),  # of a vector: per channel and per position are one
        ("activation", "activation", {"function": "softmax"}),
    ]
    assert [w.shape for w in imported.graph.layers[1].weights] == [(5, 5, 3)]
    assert [w.shape for w in imported.graph.layers[2].weights] == [(3,)]


def test_alphago_compiled_by_the_cli_imports_to_the_same_counts(tmp_path):
    spec = "examples/alphago_policy.yaml"
    plan = specdsl.check(spec)
    path = tmp_path / "alphago.keras"
    result = runner.invoke(app, ["compile", spec, "-b", "keras", "-f", "keras", "-o", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "alphago.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        f"wrote {out} (alphago_policy: {plan.params:,} params, {plan.params:,} trainable, output 361;"
    )
    back = specdsl.check(out)
    assert (back.params, back.trainable, back.output_shapes) == (plan.params, plan.trainable, [(361,)])
    assert [n.kind for n in back.nodes][-3:] == ["bias", "flatten", "activation"]
    assert back.nodes[-3].name == "bias" and back.nodes[-3].shape == (19, 19, 1)
    assert "  - bias: position\n" in out.read_text()


def _bias_like(
    equation="abcd,bcd->abcd", bias_axes=None, ones=(0.0, 1.0), names=("b_ones", "b", "b_add"), also_out=False
):
    inp = keras.Input((4, 4, 2), name="img")
    o = keras.layers.Rescaling(*ones, name=names[0])(inp)
    kernel = keras.layers.EinsumDense(equation, output_shape=(4, 4, 2), bias_axes=bias_axes, name=names[1])(o)
    out = keras.layers.Add(name=names[2])([inp, kernel])
    return keras.Model(inp, [out, kernel] if also_out else out)


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: _bias_like(bias_axes="d"), id="bias_axes"),
        pytest.param(lambda: _bias_like(equation="abcd,cd->abcd"), id="equation"),
        pytest.param(lambda: _bias_like(ones=(0.0, 2.0)), id="not-ones"),
        pytest.param(lambda: _bias_like(names=("ones", "b", "b_add")), id="names"),
        pytest.param(lambda: _bias_like(also_out=True), id="read-elsewhere"),
    ],
)
def test_an_einsum_dense_of_another_shape_stays_refused(model):
    with pytest.raises(SourceError) as e:
        import_model(model())
    assert str(e.value).startswith(
        "Functional: layer `b` (EinsumDense) has no equivalent in the spec language."
    )


def test_a_divide_of_other_poolings_stays_refused():
    inp = keras.Input((5, 5, 2), name="img")
    pad = keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="p_pad")(inp)  # not 'same' for a 2x2 pool
    total = keras.layers.AveragePooling2D(2, name="p_sum")(pad)
    ones = keras.layers.Rescaling(0.0, 1.0, name="p_ones")(inp)
    share = keras.layers.AveragePooling2D(2, name="p_share")(
        keras.layers.ZeroPadding2D(1, name="p_ones_pad")(ones)
    )
    with pytest.raises(SourceError) as e:
        import_model(keras.Model(inp, keras.ops.divide(total, share)))
    assert str(e.value).startswith(
        "Functional: operation `divide` (Divide) (a keras.ops call) has no equivalent in the spec language."
    )

"""The Keras backend against the plan: every layer case and every example, node by node.

Each node's output shape (computed on a real input, not only Keras' symbolic shape) equals the plan's; total,
trainable and non-trainable parameter counts equal the plan's; the generated source builds the same model;
saved files load back to the same outputs.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from layer_cases import EXPECTED, all_cases

import specdsl
from specdsl.backends import _keras as K
from specdsl.errors import BackendError, BackendMissingError
from specdsl.spec import LAYERS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BIG = 5_000_000  # parameters above which an example is marked slow
HEAVY = 1_000_000_000  # FLOPs per example above which an example is marked slow

CASES = [
    pytest.param(spec, EXPECTED[kind][int(tid.rsplit("-", 1)[1])], id=tid) for tid, kind, spec in all_cases()
]


def _one(shape, *layers, **top):
    return {"input": list(shape), "layers": list(layers), **top}


# Options the shared layer cases leave out, where the backends' own arithmetic could part ways.
# fmt: off
EXTRA = {
    "transpose-output_padding-same": _one((5, 6, 3), {"conv2d_transpose": {"filters": 2, "kernel": 3, "strides": 2, "padding": "same", "output_padding": 1}}),
    "transpose-output_padding-valid": _one((4, 5, 2), {"conv2d_transpose": {"filters": 3, "kernel": 4, "strides": 3, "output_padding": [1, 0]}}),
    "transpose-dilation-same": _one((5, 5, 2), {"conv2d_transpose": {"filters": 2, "kernel": 3, "dilation": 2, "padding": "same", "activation": "relu"}}),
    "transpose-even-kernel-stride-3-same": _one((4, 5, 2), {"conv2d_transpose": {"filters": 2, "kernel": [4, 5], "strides": 3, "padding": "same"}}),
    "conv2d-even-kernel-same": _one((7, 6, 2), {"conv2d": {"filters": 3, "kernel": 4, "padding": "same"}}),
    "conv2d-explicit-groups-leaky": _one((8, 8, 4), {"conv2d": {"filters": 6, "kernel": 3, "padding": [[2, 0], [1, 1]], "groups": 2, "activation": "leaky_relu"}}),
    "conv1d-explicit-padding": _one((9, 3), {"conv1d": {"filters": 4, "kernel": 3, "padding": [2, 1], "activation": "tanh"}}),
    "depthwise-strides-and-dilation": _one((13, 12, 3), {"depthwise_conv2d": {"kernel": 3, "strides": 2, "dilation": 2, "padding": "same", "depth_multiplier": 2}}),
    "separable-explicit-padding-dilation": _one((9, 9, 3), {"separable_conv2d": {"filters": 4, "kernel": 3, "padding": [[1, 0], [0, 1]], "dilation": 2, "use_bias": False}}),
    "avgpool1d-uneven-same": _one((10, 3), {"avgpool1d": {"pool": 3, "strides": 2, "padding": "same"}}),
    "maxpool1d-uneven-same": _one((10, 3), {"maxpool1d": {"pool": 3, "strides": 2, "padding": "same"}}),
    "avgpool2d-even-pool-same": _one((7, 7, 2), {"avgpool2d": {"pool": 2, "strides": 1, "padding": "same"}}),
    "sequence-norms-bias-softmax": _one((7, 4), {"batchnorm": {"scale": False}}, "layernorm", {"bias": "position"}, {"activation": "softmax"}),
    "vector-bias-batchnorm": _one((8,), {"bias": "channel"}, {"batchnorm": {"center": False, "scale": False}}),
    "concat-height": _one((4, 5, 3), {"conv2d": {"filters": 3, "kernel": 1, "name": "a"}}, {"concat": {"inputs": ["input", "a"], "axis": 0}}),
    "concat-width-negative": _one((4, 5, 3), {"conv2d": {"filters": 3, "kernel": 1, "name": "a"}}, {"concat": {"inputs": ["input", "a"], "axis": -2}}),
    "reshape-dense-flatten": _one((4, 6, 2), {"reshape": [8, -1]}, {"dense": {"units": 5, "activation": "gelu"}}, "flatten", {"dense": 3}),
    "two-outputs": _one(
        (6, 6, 2),
        {"conv2d": {"filters": 3, "kernel": 3, "name": "trunk"}},
        {"global_avgpool2d": {"name": "pooled"}},
        {"dense": {"units": 2, "name": "head", "inputs": "pooled"}},
        {"flatten": {"name": "flat", "inputs": "trunk"}},
        outputs=["head", "flat"],
    ),
}
# fmt: on
EXTRAS = [pytest.param(spec, id=name) for name, spec in EXTRA.items()]


def _example_params():
    params = []
    for path in EXAMPLES:
        plan = specdsl.check(path)
        marks = [pytest.mark.slow] if plan.params > BIG or plan.flops > HEAVY else []
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


def _outputs_of_every_node(plan, model, x):
    """The value of every plan node's output on input x (a sub-model over all of them)."""
    names = [node.name for node in plan.nodes]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    values = probe(x, training=False)
    return {name: keras.ops.convert_to_numpy(v) for name, v in zip(names, values, strict=True)}


def _size(weights) -> int:
    return sum(math.prod(w.shape) for w in weights)


def _assert_matches_plan(plan, model):
    x = np.random.default_rng(0).standard_normal((1, *plan.input_shape)).astype("float32")
    for name, value in _outputs_of_every_node(plan, model, x).items():
        assert value.shape == (1, *plan[name].shape), name
    for node in plan.layers:
        layer = model.get_layer(node.name)
        assert (_size(layer.trainable_weights), _size(layer.non_trainable_weights)) == (
            node.trainable,
            node.non_trainable,
        ), node.name
    assert model.count_params() == plan.params
    assert _size(model.trainable_weights) == plan.trainable
    assert _size(model.non_trainable_weights) == plan.non_trainable


def _random_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in model.get_weights()])


def _predict(model, x):
    """The model's output on x; a list of them for a model with several outputs."""
    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


# ----------------------------------------------------------------------------------------------------------
# the registry


def test_every_layer_kind_has_a_keras_builder():
    assert sorted(K.BUILDERS) == sorted(LAYERS)


def test_registering_a_builder_twice_is_an_error():
    with pytest.raises(ValueError, match="a Keras builder for `conv2d` is already registered"):
        K.register_builder("conv2d")(lambda node: [])


def test_a_builder_for_an_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="`conv9d` is not a registered layer kind"):
        K.register_builder("conv9d")(lambda node: [])


# ----------------------------------------------------------------------------------------------------------
# the plan, node by node


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_layer_case_matches_the_plan(spec, expected):
    plan = specdsl.check(spec)
    model = K.build(plan)
    _assert_matches_plan(plan, model)
    shape, trainable, non_trainable = expected
    last = plan.nodes[-1]
    assert (last.shape, last.trainable, last.non_trainable) == (shape, trainable, non_trainable)
    assert [layer.name for layer in model.layers if not layer.name.endswith("_pad")] == [
        n.name for n in plan.nodes
    ]


@pytest.mark.parametrize("spec", EXTRAS)
def test_more_options_match_the_plan(spec):
    plan = specdsl.check(spec)
    _assert_matches_plan(plan, K.build(plan))


@pytest.mark.parametrize("path", _example_params())
def test_example_matches_the_plan(path):
    plan = specdsl.check(path)
    model = specdsl.build(plan, "keras")
    _assert_matches_plan(plan, model)


def test_explicit_padding_is_a_zero_padding_layer_before_a_valid_conv():
    plan = specdsl.check(
        {
            "input": [7, 8, 2],
            "layers": [{"conv2d": {"filters": 3, "kernel": 3, "padding": [[1, 0], [0, 2]], "name": "c"}}],
        }
    )
    model = K.build(plan)
    pad, conv = model.get_layer("c_pad"), model.get_layer("c")
    assert (type(pad).__name__, pad.padding) == ("ZeroPadding2D", ((1, 0), (0, 2)))
    assert (type(conv).__name__, conv.padding) == ("Conv2D", "valid")
    assert tuple(pad.output.shape) == (None, 8, 10, 2)


@pytest.mark.parametrize(
    ("kind", "shape", "options"),
    [
        ("conv2d", [19, 19, 4], {"filters": 2, "kernel": 5, "padding": 2}),  # AlphaGo's first layer
        ("conv2d", [8, 9, 4], {"filters": 2, "kernel": 4, "strides": 2, "padding": [[1, 1], [1, 2]]}),
        ("conv1d", [9, 2], {"filters": 2, "kernel": 3, "padding": 1}),
        ("depthwise_conv2d", [6, 6, 2], {"kernel": 3, "dilation": 2, "padding": 2}),
        ("separable_conv2d", [6, 6, 2], {"filters": 3, "kernel": 3, "padding": [1, 1]}),
    ],
)
def test_explicit_padding_that_equals_same_is_same(kind, shape, options):
    plan = specdsl.check({"input": shape, "layers": [{kind: {**options, "name": "c"}}]})
    model = K.build(plan)
    assert [layer.name for layer in model.layers] == ["input", "c"]
    assert model.get_layer("c").padding == "same"
    _assert_matches_plan(plan, model)


def test_pad_layer_name_does_not_collide_with_a_user_layer():
    plan = specdsl.check(
        {
            "input": [6, 6, 2],
            "layers": [
                {"conv2d": {"filters": 2, "kernel": 3, "padding": [[1, 0], [1, 1]], "name": "c"}},
                {"conv2d": {"filters": 2, "kernel": 1, "name": "c_pad"}},
            ],
        }
    )
    model = K.build(plan)
    assert [layer.name for layer in model.layers] == ["input", "c_pad_1", "c", "c_pad"]


def test_concat_axis_counts_without_the_batch_axis():
    spec = {
        "input": [4, 5, 3],
        "layers": [
            {"conv2d": {"filters": 3, "kernel": 1, "name": "a"}},
            {"concat": {"inputs": ["input", "a"], "axis": 0, "name": "cat"}},
        ],
    }
    plan = specdsl.check(spec)
    model = K.build(plan)
    assert model.get_layer("cat").axis == 1
    _assert_matches_plan(plan, model)
    assert plan["cat"].shape == (8, 5, 3)


def test_leaky_relu_default_slope_is_keras_0_2_and_a_given_slope_is_kept():
    x = np.array([[-10.0, 10.0]], dtype="float32")
    default = K.build(specdsl.check({"input": [2], "layers": [{"activation": "leaky_relu"}]}))
    given = K.build(
        specdsl.check(
            {"input": [2], "layers": [{"activation": {"function": "leaky_relu", "negative_slope": 0.1}}]}
        )
    )
    np.testing.assert_allclose(_predict(default, x), [[-2.0, 10.0]])
    np.testing.assert_allclose(_predict(given, x), [[-1.0, 10.0]])


def test_batchnorm_options_reach_keras():
    plan = specdsl.check(
        {"input": [4], "layers": [{"batchnorm": {"momentum": 0.9, "epsilon": 0.01, "center": False}}]}
    )
    bn = K.build(plan).get_layer("batch_normalization")
    assert (bn.momentum, bn.epsilon, bn.center, bn.scale) == (0.9, 0.01, False, True)
    assert [w.name for w in bn.weights] == ["gamma", "moving_mean", "moving_variance"]


def test_spec_defaults_are_keras_defaults():
    # builders leave out arguments equal to Keras' defaults; the spec's defaults must be those
    plan = specdsl.check(
        {"input": [4], "layers": [{"batchnorm": {"name": "bn"}}, {"layernorm": {"name": "ln"}}]}
    )
    model = K.build(plan)
    bn, ln = model.get_layer("bn"), model.get_layer("ln")
    spec_bn, spec_ln = plan["bn"].layer, plan["ln"].layer
    assert (bn.momentum, bn.epsilon, bn.center, bn.scale) == (
        spec_bn.momentum,
        spec_bn.epsilon,
        spec_bn.center,
        spec_bn.scale,
    )
    assert (ln.epsilon, ln.center, ln.scale) == (spec_ln.epsilon, spec_ln.center, spec_ln.scale)


def test_position_bias_has_one_weight_per_value():
    model = K.build(specdsl.check({"input": [3, 4, 2], "layers": [{"bias": "position"}]}))
    (bias,) = model.get_layer("bias").weights
    assert tuple(bias.shape) == (3, 4, 2)
    values = np.arange(24, dtype="float32").reshape(3, 4, 2)
    bias.assign(values)
    np.testing.assert_allclose(_predict(model, np.ones((1, 3, 4, 2), "float32")), values[None] + 1)


def test_uneven_same_average_pooling_leaves_the_padding_out():
    # width 10, pool 3, stride 2, 'same': padding (0, 1); the last window is [8, 9] and its mean 8.5
    model = K.build(
        specdsl.check(
            {
                "input": [1, 10, 1],
                "layers": [{"avgpool2d": {"pool": [1, 3], "strides": [1, 2], "padding": "same"}}],
            }
        )
    )
    x = np.arange(10, dtype="float32").reshape(1, 1, 10, 1)
    np.testing.assert_allclose(_predict(model, x).ravel(), [1.0, 3.0, 5.0, 7.0, 8.5], rtol=1e-6)


def test_float64_option():
    model = K.build(
        specdsl.check({"input": [5, 5, 2], "layers": [{"conv2d": {"filters": 2, "kernel": 3}}, "batchnorm"]}),
        dtype="float64",
    )
    assert {w.dtype for w in model.weights} == {"float64"}
    assert keras.ops.convert_to_numpy(model(np.zeros((1, 5, 5, 2)))).dtype == np.float64


# ----------------------------------------------------------------------------------------------------------
# what Keras cannot express


@pytest.mark.parametrize("kind", ["conv2d", "conv2d_transpose"])
def test_strides_with_dilation_is_a_backend_error(kind):
    text = f"input: [16, 16, 3]\nlayers:\n  - {kind}: {{filters: 4, kernel: 3, strides: 2, dilation: 2}}\n"
    plan = specdsl.check(text)
    cls = {"conv2d": "Conv2D", "conv2d_transpose": "Conv2DTranspose"}[kind]
    with pytest.raises(BackendError) as info:
        K.build(plan)
    error = info.value
    assert error.message == (
        f"Keras' {cls} refuses strides > 1 with dilation > 1, but got strides=2x2 and dilation=2x2."
    )
    assert error.path == f"layers[0] ({kind})"
    assert (error.loc.line, error.loc.col) == (3, 5)
    assert error.hint.startswith("Use strides: 1")


def test_unknown_build_option_is_a_backend_error():
    plan = specdsl.check({"input": [4], "layers": [{"dense": 2}]})
    with pytest.raises(
        BackendError, match=r"unknown option\(s\) init for the keras backend; options: dtype\."
    ):
        specdsl.build(plan, "keras", init="torch")


def test_unknown_initializer_is_a_backend_error():
    plan = specdsl.check(
        {"input": [4], "layers": [{"dense": {"units": 2, "kernel_initializer": "glorot_unifrom"}}]}
    )
    with pytest.raises(BackendError, match=r"Keras' Dense refuses this layer: .*glorot_unifrom"):
        K.build(plan)


def test_channels_first_configuration_is_a_backend_error(monkeypatch):
    monkeypatch.setattr(keras.config, "image_data_format", lambda: "channels_first")
    with pytest.raises(BackendError, match="specdsl models are channels-last"):
        K.build(specdsl.check({"input": [4], "layers": [{"dense": 2}]}))


# ----------------------------------------------------------------------------------------------------------
# generated source


def _exec_source(plan):
    code = K.source(plan)
    namespace: dict = {"__name__": "generated"}
    exec(compile(code, f"<{plan.name}.py>", "exec"), namespace)
    return code, namespace["build_model"]()


def _assert_source_round_trip(plan):
    built = K.build(plan)
    code, generated = _exec_source(plan)
    assert "import specdsl" not in code and "from specdsl" not in code
    assert [layer.name for layer in generated.layers] == [layer.name for layer in built.layers]
    assert [type(layer).__name__ for layer in generated.layers] == [
        type(layer).__name__ for layer in built.layers
    ]
    assert [(w.path, tuple(w.shape)) for w in generated.weights] == [
        (w.path, tuple(w.shape)) for w in built.weights
    ]
    _random_weights(built)
    generated.set_weights(built.get_weights())
    x = np.random.default_rng(1).standard_normal((1, *plan.input_shape)).astype("float32")
    ours, theirs = _predict(generated, x), _predict(built, x)
    for a, b in zip(
        ours if isinstance(ours, list) else [ours],
        theirs if isinstance(theirs, list) else [theirs],
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", [pytest.param(p.values[0], id=p.id) for p in CASES] + EXTRAS)
def test_source_builds_the_same_model(spec):
    _assert_source_round_trip(specdsl.check(spec))


@pytest.mark.parametrize("path", _example_params())
def test_example_source_builds_the_same_model(path):
    _assert_source_round_trip(specdsl.check(path))


def test_source_is_deterministic_and_reads_like_keras():
    spec = {
        "name": "tiny",
        "input": [7, 8, 2],
        "layers": [
            {
                "conv2d": {
                    "filters": 3,
                    "kernel": 3,
                    "strides": 2,
                    "padding": [[1, 0], [0, 2]],
                    "activation": "relu",
                    "name": "conv1",
                }
            },
            {"bias": "position"},
            "flatten",
            {"dense": {"units": 10, "activation": "softmax", "name": "class"}},
        ],
    }
    code = K.source(specdsl.check(spec))
    assert code == K.source(specdsl.check(spec))
    assert (
        'import os\n\nos.environ.setdefault("KERAS_BACKEND", "torch")\n\nimport keras  # noqa: E402\n' in code
    )
    assert (
        '@keras.saving.register_keras_serializable(package="specdsl")\nclass Bias(keras.layers.Layer):'
        in code
    )
    assert "class PaddedAveragePooling" not in code  # only the custom layers the model uses
    assert code.endswith(
        '    input = keras.Input(shape=(7, 8, 2), name="input")\n'
        '    conv1_pad = keras.layers.ZeroPadding2D(padding=((1, 0), (0, 2)), name="conv1_pad")(input)\n'
        '    conv1 = keras.layers.Conv2D(3, 3, strides=2, activation="relu", name="conv1")(conv1_pad)\n'
        '    bias = Bias(per="position", name="bias")(conv1)\n'
        '    flatten = keras.layers.Flatten(name="flatten")(bias)\n'
        '    class_ = keras.layers.Dense(10, activation="softmax", name="class")(flatten)\n'
        '    return keras.Model(input, class_, name="tiny")\n'
        "\n\n"
        'if __name__ == "__main__":\n'
        "    build_model().summary()\n"
    )
    compile(code, "tiny.py", "exec")
    assert max(len(line) for line in code.splitlines()) <= 110


@pytest.mark.slow  # a fresh interpreter imports keras and torch: seconds of CPU
def test_source_runs_as_a_script(tmp_path):
    import subprocess

    path = K.export(specdsl.check(next(all_cases())[2]), tmp_path / "model", "source")
    assert path.name == "model.py"
    run = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert "Total params: 112" in run.stdout


# ----------------------------------------------------------------------------------------------------------
# saved files

SAVED = [
    "conv2d-6",
    "conv2d_transpose-1",
    "avgpool2d-2",
    "batchnorm-0",
    "concat-1",
    "bias-0",
    "bias-1",
    "dense-2",
]


@pytest.mark.parametrize("tid", SAVED)
def test_keras_file_loads_to_the_same_outputs(tid, tmp_path):
    spec = next(spec for case_id, _, spec in all_cases() if case_id == tid)
    plan = specdsl.check(spec)
    model = K.build(plan)
    _random_weights(model)
    path = K.export(plan, tmp_path, "keras", model=model)
    assert path == tmp_path / "model.keras"
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(2).standard_normal((1, *plan.input_shape)).astype("float32")
    np.testing.assert_allclose(_predict(loaded, x), _predict(model, x), rtol=1e-6, atol=1e-6)
    assert loaded.count_params() == model.count_params() == plan.params
    # specdsl's own layers are written as built-in ones (test_keras_portable.py); the weights keep their names
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert [layer.name for layer in loaded.layers if layer.weights] == weighted
    if not {type(layer).__name__ for layer in model.layers} & {"Bias", "PaddedAveragePooling"}:
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_weights_file_loads_into_a_fresh_build(tmp_path):
    plan = specdsl.check(next(spec for case_id, _, spec in all_cases() if case_id == "separable_conv2d-1"))
    model = K.build(plan)
    _random_weights(model)
    path = K.export(plan, tmp_path / "sep", "weights", model=model)
    assert path.name == "sep.weights.h5"
    fresh = K.build(plan)
    fresh.load_weights(path)
    x = np.random.default_rng(3).standard_normal((1, *plan.input_shape)).astype("float32")
    np.testing.assert_allclose(_predict(fresh, x), _predict(model, x), rtol=1e-6)


def test_export_needs_h5py_for_keras_files(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "h5py" else real(name, *a)
    )
    plan = specdsl.check({"input": [4], "layers": [{"dense": 2}]})
    with pytest.raises(BackendMissingError, match="needs the `h5py` package") as info:
        K.export(plan, tmp_path / "m.weights.h5", "weights")
    assert info.value.package == "h5py"
    assert K.export(plan, tmp_path / "m.py", "source").exists()  # source needs no h5py


def test_export_rejects_an_unknown_format(tmp_path):
    plan = specdsl.check({"input": [4], "layers": [{"dense": 2}]})
    with pytest.raises(BackendError, match=r"exports source, keras, weights, but got format='onnx'"):
        K.export(plan, tmp_path / "m", "onnx")
    assert K.FORMATS == ("source", "keras", "weights")

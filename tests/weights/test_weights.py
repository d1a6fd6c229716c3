"""specdsl.weights: the layout table against both backends, checkpoints across backends, Keras files by structure,
and every way a file can fail to fit, with its exact message."""

from __future__ import annotations

import json
import math

import h5py
import keras
import numpy as np
import pytest
import torch
from keras.src.legacy.saving import legacy_h5_format
from layer_cases import CASES

import specdsl
import specdsl.weights as W
from specdsl.backends._torch._builders import build_node
from specdsl.errors import WeightsError

ONE_PER_KIND = [pytest.param(cases[0], id=kind) for kind, cases in CASES.items()]
ALL = [pytest.param(spec, id=f"{kind}-{i}") for kind, cases in CASES.items() for i, spec in enumerate(cases)]


@pytest.mark.parametrize("spec", ALL)
def test_the_table_is_what_keras_and_torch_hold(spec):
    """Names, shapes and order of every node's weights equal the Keras layer's; the torch backend maps as many."""
    plan = specdsl.check(spec)
    model = specdsl.build(plan, "keras")
    for node in plan.layers:
        layer = model.get_layer(node.name)
        assert W.keras_weights(node) == [(w.name, tuple(w.shape)) for w in layer.weights]
        assert len(build_node(node).keras) == len(layer.weights)
        assert sum(math.prod(s) for _, s in W.keras_weights(node)) == node.params


def _randomized(plan, seed=0):
    model = specdsl.build(plan, "torch").eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if t.is_floating_point():
                t.copy_(
                    0.5 + torch.rand(t.shape, generator=gen)
                    if "running_var" in name
                    else 0.3 * torch.randn(t.shape, generator=gen)
                )
    return model


def _x(plan, seed=1):
    return np.random.default_rng(seed).standard_normal((2, *plan.input_shape)).astype("float32")


def _torch_out(model, x):
    with torch.no_grad():
        t = torch.from_numpy(np.moveaxis(x, -1, 1) if x.ndim > 2 else x)
        y = model(t).numpy()
    return np.moveaxis(y, 1, -1) if y.ndim > 2 else y


def _keras_out(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("spec", ONE_PER_KIND)
def test_a_checkpoint_from_torch_loads_into_keras(spec, tmp_path):
    plan = specdsl.check(spec)
    source = _randomized(plan)
    path = W.save(source, plan, tmp_path / "w")
    assert path == tmp_path / "w.npz"
    model = W.load_into(specdsl.build(plan, "keras"), plan, path)
    x = _x(plan)
    np.testing.assert_allclose(_keras_out(model, x), _torch_out(source, x), rtol=1e-4, atol=1e-5)
    back = W.load_into(specdsl.build(plan, "torch").eval(), plan, W.save(model, plan, tmp_path / "k.npz"))
    np.testing.assert_allclose(_torch_out(back, x), _torch_out(source, x), rtol=1e-5, atol=1e-6)


def test_the_file_format(tmp_path):
    plan = specdsl.check("examples/lenet5.yaml")
    path = W.save(_randomized(plan), plan, tmp_path / "lenet5.npz")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__specdsl__"]))
        assert sorted(data.files)[:3] == ["__specdsl__", "conv2d/bias", "conv2d/kernel"]
        assert data["conv2d/kernel"].shape == (5, 5, 1, 6) and data["dense_1/kernel"].shape == (84, 10)
    assert meta["format"] == "specdsl-weights" and meta["version"] == 1 and meta["model"] == "lenet5"
    assert meta["layers"][0] == {"name": "conv2d", "kind": "conv2d", "weights": ["kernel", "bias"]}
    assert [entry["name"] for entry in meta["layers"]] == [
        "conv2d",
        "conv2d_1",
        "conv2d_2",
        "dense",
        "dense_1",
    ]


def _keras_model_of(plan):
    model = specdsl.build(plan, "keras")
    W.set_arrays(model, plan, W.get_arrays(_randomized(plan), plan))
    return model


def _legacy_h5(model, path):
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


@pytest.mark.parametrize("kind", ["keras", "h5", "legacy", "weights.h5"])
def test_keras_files_load_into_torch(kind, tmp_path):
    plan = specdsl.check("examples/cifar10_cnn.yaml")
    model = _keras_model_of(plan)
    path = tmp_path / f"m.{kind}"
    if kind == "legacy":
        _legacy_h5(model, path)
    elif kind == "h5":
        model.save(path)
    else:
        model.save(path) if kind == "keras" else model.save_weights(path)
    torch_model = W.load_into(specdsl.build(plan, "torch").eval(), plan, path)
    x = _x(plan)
    np.testing.assert_allclose(_torch_out(torch_model, x), _keras_out(model, x), rtol=1e-4, atol=1e-6)


def _renamed(plan):
    """The same architecture built by hand in Keras, with names of its own (a backbone's file)."""
    inp = keras.Input(plan.input_shape)
    x = inp
    for i, node in enumerate(plan.layers):
        from specdsl.backends._keras._build import apply, steps

        (step,) = [s for s in steps(plan) if s.node is node]
        x = apply(step.__class__(f"layer{i}", step.call, (), node), [x])
    return keras.Model(inp, x)


def test_a_file_with_other_names_is_matched_in_order(tmp_path):
    plan = specdsl.check("examples/lenet5.yaml")
    other = _renamed(plan)
    for layer in other.layers:
        if layer.weights:
            layer.set_weights(
                [np.random.default_rng(0).standard_normal(w.shape).astype("float32") for w in layer.weights]
            )
    path = _legacy_h5(other, tmp_path / "other.h5")
    model = W.load_into(specdsl.build(plan, "keras"), plan, path)
    x = _x(plan)
    np.testing.assert_allclose(_keras_out(model, x), _keras_out(other, x), rtol=1e-5, atol=1e-6)


def test_a_file_of_another_architecture_names_the_first_layer_that_differs(tmp_path):
    lenet = specdsl.check("examples/lenet5.yaml")
    cifar = specdsl.check("examples/cifar10_cnn.yaml")
    path = W.save(_randomized(cifar), cifar, tmp_path / "cifar.npz")
    with pytest.raises(WeightsError) as e:
        W.load_into(specdsl.build(lenet, "torch"), lenet, path)
    assert str(e.value) == (
        "examples/lenet5.yaml:5:5: layers[0] (conv2d): `conv2d`'s kernel is (5, 5, 1, 6), but layer `conv2d` "
        f"(conv2d) of {path} has (3, 3, 3, 32) there, matched by name. Is the file the weights of this architecture "
        "(the same input shape, widths and layer order)?"
    )
    assert e.value.exit_code == 2
    legacy = _legacy_h5(_renamed(cifar), tmp_path / "cifar.h5")
    with pytest.raises(WeightsError) as e:
        W.load_into(specdsl.build(lenet, "torch"), lenet, legacy)
    assert str(e.value) == (
        "examples/lenet5.yaml:5:5: layers[0] (conv2d): `conv2d`'s kernel is (5, 5, 1, 6), but layer `layer0` of "
        f"{legacy} has (3, 3, 3, 32) there, matched in order. Is the file the weights of this architecture "
        "(the same input shape, widths and layer order)?"
    )


def test_a_file_with_fewer_or_more_layers(tmp_path):
    lenet = specdsl.check("examples/lenet5.yaml")
    full = _renamed(lenet)
    head = keras.Model(full.input, full.get_layer("layer4").output)  # without the last two dense layers
    short = _legacy_h5(head, tmp_path / "short.h5")
    with pytest.raises(WeightsError) as e:
        W.load_into(specdsl.build(lenet, "torch"), lenet, short)
    assert str(e.value) == (
        f"examples/lenet5.yaml:11:5: layers[6] (dense): {short} holds 3 layers with weights, the model 5: nothing "
        "is left for `dense` and the layers after it."
    )
    more = specdsl.check(
        {
            "input": [32, 32, 1],
            "layers": [{"conv2d": {"filters": 6, "kernel": 5, "activation": "tanh"}}, {"avgpool2d": 2}],
        }
    )
    with pytest.raises(WeightsError) as e:
        W.load_into(specdsl.build(more, "torch"), more, _legacy_h5(full, tmp_path / "full.h5"))
    assert str(e.value) == (
        f"{tmp_path / 'full.h5'} holds 5 layers with weights, but the model `model` has 1: from `layer2` on, the "
        "file's layers have no counterpart. Is the file the weights of this architecture (with its top, or without)?"
    )


def test_files_that_are_not_weights(tmp_path):
    plan = specdsl.check("examples/lenet5.yaml")
    model = specdsl.build(plan, "torch")
    cases = {
        tmp_path / "missing.npz": f"no weights file {tmp_path / 'missing.npz'}.",
        "examples/lenet5.yaml": "examples/lenet5.yaml is not a weights file specdsl reads: a specdsl .npz checkpoint, "
        "a Keras .keras model, or a Keras .h5 file.",
    }
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    cases[tmp_path / "plain.npz"] = (
        f"{tmp_path / 'plain.npz'} is a .npz file but not a specdsl weights file (it has no `__specdsl__` entry). "
        "Write one with specdsl.weights.save(model, plan, path) or `specdsl import --weights`."
    )
    np.savez(tmp_path / "pickled.npz", __specdsl__=np.array([{"a": 1}], dtype=object))
    cases[tmp_path / "pickled.npz"] = (
        f"{tmp_path / 'pickled.npz'} is not a readable specdsl weights file: Object arrays cannot be loaded when "
        "allow_pickle=False."
    )
    for path, message in cases.items():
        with pytest.raises(WeightsError) as e:
            W.load_into(model, plan, path)
        assert str(e.value) == message


def test_a_weights_h5_is_matched_by_name_only(tmp_path):
    lenet = specdsl.check("examples/lenet5.yaml")
    path = tmp_path / "other.weights.h5"
    _renamed(lenet).save_weights(path)
    with pytest.raises(WeightsError) as e:
        W.load_into(specdsl.build(lenet, "torch"), lenet, path)
    assert str(e.value) == (
        f"examples/lenet5.yaml:5:5: layers[0] (conv2d): {path} keeps no layer order, so its layers are matched by "
        "name, and it has no layer `conv2d`. Its layers: `layer0`, `layer2`, `layer4`, `layer6`, `layer7`."
    )


def test_write_checks_the_arrays(tmp_path):
    plan = specdsl.check("examples/lenet5.yaml")
    arrays = W.get_arrays(specdsl.build(plan, "torch"), plan)
    arrays["dense"] = arrays["dense"][:1]
    with pytest.raises(WeightsError) as e:
        W.write(tmp_path / "x.npz", plan, arrays)
    assert str(e.value) == (
        "examples/lenet5.yaml:11:5: layers[6] (dense): `dense` holds 2 weights (kernel (120, 84), bias (84,)), but "
        "layer `dense` of the arrays to write has 1 ((120, 84)), matched by name."
    )
    del arrays["dense"]
    with pytest.raises(WeightsError) as e:
        W.write(tmp_path / "x.npz", plan, arrays)
    assert str(e.value) == (
        "examples/lenet5.yaml:11:5: layers[6] (dense): there are no weights for `dense` in the arrays to write."
    )
    assert not (tmp_path / "x.npz").exists()

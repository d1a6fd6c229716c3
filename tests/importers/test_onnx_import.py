"""Importing ONNX files: the examples exported by torch round trip (the same counts, and with the weights carried
over the outputs onnxruntime gives); what the language lacks is named by node and op type."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from import_support import examples, keras_out, randomize_torch
from onnx import TensorProto, helper, numpy_helper

import specdsl
import specdsl.weights as W
from specdsl.backends import get_backend
from specdsl.errors import SourceError
from specdsl.importers import import_model


def _export(model, x, path):
    """torch.onnx.export keeping batch norms as they are (TrainingMode.EVAL folds them into the convs before)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["input"],
            dynamic_axes={"input": {0: "batch"}},
            opset_version=17,
        )
    return path


def _check_outputs(imported, onnx_path, x):
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    model = W.set_arrays(specdsl.build(imported.plan, "torch").eval(), imported.plan, imported.weights())
    with torch.no_grad():
        got = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("path", examples())
def test_every_example_round_trips_through_onnx(path, tmp_path):
    plan = specdsl.check(path)
    source = specdsl.build(plan, "torch").eval()
    randomize_torch(source)
    x = get_backend("torch").example_input(plan, batch=2)
    onnx_path = _export(source, x, tmp_path / f"{plan.name}.onnx")
    imported = import_model(onnx_path)
    assert (imported.plan.params, imported.plan.trainable, imported.plan.non_trainable) == (
        plan.params,
        plan.trainable,
        plan.non_trainable,
    )
    assert imported.plan.output_shapes == plan.output_shapes
    _check_outputs(imported, onnx_path, x)


def test_specdsls_own_onnx_export_reads_back(tmp_path):
    plan = specdsl.check("examples/cifar10_cnn.yaml")
    source = specdsl.build(plan, "torch").eval()
    randomize_torch(source)
    onnx_path = get_backend("torch").export(plan, tmp_path, "onnx", model=source)
    imported = import_model(onnx_path)
    assert (imported.plan.params, imported.plan.non_trainable) == (1_345_066, 1_920)
    assert imported.text.split("layers:\n")[-1] == (
        "  - stage: {filters: 32}\n"
        "  - stage: {filters: 64}\n"
        "  - stage: {filters: 128}\n"
        "  - flatten\n"
        "  - dense: {units: 512, activation: relu}\n"
        "  - batchnorm\n"
        "  - dense: {units: 10, activation: softmax}\n"
    )
    _check_outputs(imported, onnx_path, get_backend("torch").example_input(plan, batch=3, seed=2))


def _model(nodes, inputs, outputs, initializers=(), name="g"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _w(name, shape, seed=0):
    return numpy_helper.from_array(
        np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name
    )


def test_operators_the_language_lacks_are_named_by_node_and_type(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("LRN", ["c"], ["l"], name="norm", size=3),
        helper.make_node("Sub", ["l", "c"], ["s"], name="diff"),
        helper.make_node("MaxPool", ["s"], ["p"], name="pool", kernel_shape=[2, 2], ceil_mode=1),
        helper.make_node("HardSwish", ["c"], ["h"], name="hs"),
        helper.make_node("Add", ["p", "h"], ["y"], name="sum"),
    ]
    path = tmp_path / "odd.onnx"
    onnx.save(_model(nodes, [x], [y], [_w("w", (4, 3, 3, 3))]), path)
    with pytest.raises(SourceError) as e:
        import_model(path)
    assert str(e.value) == (
        f"{path}: node `norm` (LRN); node `hs` (HardSwish) have no equivalent in the spec language. Replace them in "
        "the source model with layers the language has (`specdsl schema` lists its kinds), or leave them out and "
        "add them to the imported spec by hand."
    )


def test_a_channels_last_input_and_open_sizes(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "h", "w", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv",
            ["t", "w", "b"],
            ["c"],
            name="conv",
            kernel_shape=[3, 3],
            strides=[2, 2],
            auto_pad="SAME_UPPER",
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="fc", transB=1),
    ]
    path = tmp_path / "nhwc.onnx"
    inits = [_w("w", (4, 3, 3, 3)), _w("b", (4,), 1), _w("fc", (5, 4), 2), _w("fb", (5,), 3)]
    onnx.save(_model(nodes, [x], [y], inits), path)
    with pytest.raises(SourceError) as e:
        import_model(path)
    assert str(e.value) == (
        f"{path}: the model's input `x` has sizes (?, ?, 3) after the batch axis; a spec needs them known. Give "
        "them with --input-shape, e.g. 3,224,224."
    )
    imported = import_model(path, input_shape=(9, 9, 3))
    assert imported.text.split("\n", 2)[2] == (
        "input: [9, 9, 3]\n"
        "layers:\n"
        "  - conv2d: {filters: 4, kernel: 3, strides: 2, padding: same, activation: relu, name: conv}\n"
        "  - global_avgpool2d: {name: gap}\n"
        "  - dense: {units: 5, name: fc}\n"
    )
    data = np.random.default_rng(0).standard_normal((2, 9, 9, 3)).astype(np.float32)
    want = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": data})[
        0
    ]
    model = W.set_arrays(specdsl.build(imported.plan, "keras"), imported.plan, imported.weights())
    np.testing.assert_allclose(keras_out(model, data), want, rtol=1e-5, atol=1e-5)


def test_files_that_are_not_onnx_models(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00not a protobuf\xff" * 4)
    with pytest.raises(SourceError) as e:
        import_model(path)
    assert str(e.value) == f"{path}: is not an ONNX model (DecodeError)."

"""ONNX (and the other traced torch exports) with NHWC input, for Keras users: the file takes (N, H, W, C), answers
as the NCHW file does on the transposed input, and computes what the Keras model of the same weights computes."""

from __future__ import annotations

import numpy as np
import pytest
from support import EXAMPLES
from typer.testing import CliRunner

import specdsl
from specdsl.backends import get_backend
from specdsl.cli import app
from specdsl.errors import BackendError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
runner = CliRunner()
T = get_backend("torch")
LENET = EXAMPLES / "lenet5.yaml"
# a fully convolutional net: its output keeps height and width, so its layout matters too
SEGMENTER = {
    "name": "segmenter",
    "input": [6, 5, 3],
    "layers": [
        {"conv2d": {"filters": 4, "kernel": 3, "padding": "same", "activation": "relu"}},
        {"avgpool2d": {"pool": 2, "strides": 2, "padding": "same"}},
        {"conv2d": {"filters": 2, "kernel": 1}},
    ],
}


def run_onnx(path, x: np.ndarray) -> list[np.ndarray]:
    """The file's outputs on ``x``: onnxruntime when installed, else onnx's reference evaluator."""
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        return list(ReferenceEvaluator(str(path)).run(None, {"input": x}))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, {"input": x}))


def input_dims(path) -> list:
    (graph_input,) = onnx.load(str(path)).graph.input
    return [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
def test_nhwc_onnx_answers_as_nchw_on_the_transposed_input(dynamo, tmp_path):
    if dynamo:
        pytest.importorskip("onnxscript")
    plan = specdsl.check(LENET)
    torch.manual_seed(0)
    model = T.build(plan)
    nchw = T.export(plan, tmp_path / "nchw.onnx", "onnx", model=model, dynamo=dynamo)
    nhwc = T.export(plan, tmp_path / "nhwc.onnx", "onnx", model=model, layout="nhwc", dynamo=dynamo)
    assert input_dims(nchw)[1:] == [1, 32, 32]
    assert input_dims(nhwc)[1:] == [32, 32, 1]
    assert isinstance(input_dims(nhwc)[0], str)  # the batch axis stays dynamic
    x = np.random.default_rng(1).standard_normal((5, 32, 32, 1)).astype("float32")
    (a,) = run_onnx(nhwc, x)
    (b,) = run_onnx(nchw, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert a.shape == b.shape == (5, 10)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert model.training  # left in the mode it was in


def test_a_spatial_output_comes_out_channels_last_as_keras_gives_it(tmp_path):
    keras = pytest.importorskip("keras")
    from specdsl.backends import keras_to_torch

    plan = specdsl.check(SEGMENTER)
    keras_model = specdsl.build(plan, "keras")
    model = keras_to_torch(plan, keras_model, T.build(plan)).eval()
    nhwc = T.export(plan, tmp_path / "seg.onnx", "onnx", model=model, layout="nhwc")
    nchw = T.export(plan, tmp_path / "seg_nchw.onnx", "onnx", model=model)
    x = np.random.default_rng(2).standard_normal((2, 6, 5, 3)).astype("float32")
    (got,) = run_onnx(nhwc, x)
    (theirs,) = run_onnx(nchw, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert got.shape == (2, 3, 3, 2) and theirs.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(got, theirs.transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    expected = keras.ops.convert_to_numpy(keras_model(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("format", ["torchscript", "export"])
def test_the_other_traced_formats_take_nhwc_too(format, tmp_path):
    plan = specdsl.check(SEGMENTER)
    torch.manual_seed(0)
    model = T.build(plan).eval()
    path = T.export(plan, tmp_path / "seg", format, model=model, layout="nhwc")
    loaded = torch.jit.load(str(path)) if format == "torchscript" else torch.export.load(str(path)).module()
    x = torch.randn(4, 6, 5, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = loaded(x)
        expected = model(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert tuple(got.shape) == (4, 3, 3, 2)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_the_cli_writes_an_nhwc_onnx_file(tmp_path):
    out = tmp_path / "lenet5.onnx"
    result = runner.invoke(
        app, ["compile", str(LENET), "--format", "onnx", "--layout", "nhwc", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"wrote {out} (lenet5: 61,706 params, torch, onnx, input nhwc)"
    assert input_dims(out)[1:] == [32, 32, 1]
    (y,) = run_onnx(out, np.zeros((1, 32, 32, 1), dtype="float32"))
    assert y.shape == (1, 10)
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-5)  # softmax


def test_layouts_a_backend_cannot_write_are_refused(tmp_path):
    result = runner.invoke(app, ["compile", str(LENET), "--layout", "nhwc"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: generated source builds the torch model, which takes NCHW input; --layout nhwc is for exported "
        "files (onnx, torchscript, export). Give --format onnx (or torchscript, export) with --layout nhwc, or "
        "--backend keras.\n"
    )
    result = runner.invoke(
        app,
        ["compile", str(LENET), "-b", "keras", "-f", "keras", "--layout", "nchw", "-o", str(tmp_path / "m")],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the Keras backend's models take channels-last (nhwc) input, not nchw. For an NCHW model file, "
        "export the torch backend's: --backend torch --format onnx.\n"
    )
    assert list(tmp_path.iterdir()) == []
    result = runner.invoke(app, ["compile", str(LENET), "-f", "onnx", "--layout", "hwcn", "-o", "x.onnx"])
    assert result.exit_code == 2
    assert "'hwcn' is not one of 'nchw', 'nhwc'" in result.output
    plan = specdsl.check(LENET)
    with pytest.raises(
        BackendError, match=r"^an exported file's input layout is nchw or nhwc, but got layout='x'"
    ):
        T.export(plan, tmp_path, "onnx", layout="x")
    with pytest.raises(
        BackendError, match=r"^generated source builds the torch model, which takes NCHW input"
    ):
        T.export(plan, tmp_path, "source", layout="nhwc")
    assert list(tmp_path.iterdir()) == []

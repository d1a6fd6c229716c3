"""`specdsl compile` as a user runs it: standalone source that runs without specdsl, and exported files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import EXAMPLES
from typer.testing import CliRunner

from specdsl.cli import app

runner = CliRunner()


def test_compile_torch_source_to_stdout_runs_without_specdsl(tmp_path):
    result = runner.invoke(app, ["compile", str(EXAMPLES / "lenet5.yaml"), "--backend", "torch"])
    assert result.exit_code == 0, result.output
    source = result.stdout
    assert "import specdsl" not in source and "from specdsl" not in source
    script = tmp_path / "lenet5.py"
    script.write_text(source)
    # run it in a clean folder with specdsl made unimportable
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.modules['specdsl'] = None; exec(open({str(script)!r}).read())",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "61,706" in proc.stdout


def test_compile_is_deterministic(tmp_path):
    a = runner.invoke(app, ["compile", str(EXAMPLES / "resnet50.yaml"), "-b", "torch"]).stdout
    b = runner.invoke(app, ["compile", str(EXAMPLES / "resnet50.yaml"), "-b", "torch"]).stdout
    assert a == b
    assert "class Resnet50(nn.Module):" in a


def test_compile_onnx_needs_an_output_path():
    result = runner.invoke(app, ["compile", str(EXAMPLES / "lenet5.yaml"), "--format", "onnx"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: `--format onnx` writes a file: give it with -o PATH."


def test_compile_unknown_format_lists_the_formats():
    result = runner.invoke(app, ["compile", str(EXAMPLES / "lenet5.yaml"), "--format", "tflite", "-o", "x"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: the torch backend writes source, onnx, torchscript, export, not `tflite`."
    )


def test_compile_onnx_file(tmp_path):
    pytest.importorskip("onnx")
    out = tmp_path / "lenet5.onnx"
    result = runner.invoke(
        app, ["compile", str(EXAMPLES / "lenet5.yaml"), "--format", "onnx", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    import onnx

    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    # torch's exporter may log its own lines first; ours is the last
    assert result.stderr.strip().splitlines()[-1] == f"wrote {out} (lenet5: 61,706 params, torch, onnx)"


def test_compile_invalid_spec_is_one_located_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [4, 4, 1]\nlayers:\n  - conv2d: {filters: 2, kernel: 5}\n")
    result = runner.invoke(app, ["compile", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: {bad}:3:5: layers[0] (conv2d): kernel 5x5 does not fit")


def test_compile_keras_source_and_keras_file(tmp_path):
    result = runner.invoke(app, ["compile", str(EXAMPLES / "cifar10_cnn.yaml"), "--backend", "keras"])
    assert result.exit_code == 0, result.output
    assert "import keras" in result.stdout
    assert "import specdsl" not in result.stdout and "from specdsl" not in result.stdout
    out = tmp_path / "cifar.keras"
    result = runner.invoke(
        app, ["compile", str(EXAMPLES / "cifar10_cnn.yaml"), "-b", "keras", "-f", "keras", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    import keras

    model = keras.models.load_model(out)
    assert model.count_params() == 1_345_066

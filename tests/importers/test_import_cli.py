"""`specdsl import` as a user runs it: what it writes and prints, and one clean message with exit code 2 for every
source it cannot import (a file is never run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from typer.testing import CliRunner

import specdsl
import specdsl.weights as W
from specdsl.cli import app

runner = CliRunner()
HERE = Path(__file__).resolve().parent
HELPERS = HERE / "import_helpers.py"


def _keras_file(tmp_path) -> Path:
    plan = specdsl.check("examples/cifar10_cnn.yaml")
    path = tmp_path / "cifar.keras"
    specdsl.build(plan, "keras").save(path)
    return path


def test_import_writes_the_spec_and_the_weights(tmp_path):
    source = _keras_file(tmp_path)
    out, weights = tmp_path / "specs" / "cifar.yaml", tmp_path / "cifar-weights"
    result = runner.invoke(app, ["import", str(source), "-o", str(out), "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"wrote {out} (cifar10_cnn: 1,345,066 params, 1,343,146 trainable, output 10; compact, 25 lines)",
        f"wrote {tmp_path / 'cifar-weights.npz'} (weights of 15 layers)",
    ]
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    plan = specdsl.check(out)
    model = W.load_into(specdsl.build(plan, "torch"), plan, tmp_path / "cifar-weights.npz")
    assert sum(p.numel() for p in model.parameters()) == 1_343_146


def test_import_to_stdout_and_flat(tmp_path):
    source = _keras_file(tmp_path)
    result = runner.invoke(app, ["import", str(source), "--flat"])
    assert result.exit_code == 0
    assert result.stdout.startswith("name: cifar10_cnn\n") and "blocks:" not in result.stdout
    assert len(result.stdout.splitlines()) == 27 and result.stderr == ""


def test_module_function_and_module_class(tmp_path, monkeypatch):
    result = runner.invoke(app, ["import", f"{HELPERS}:small_cnn"])
    assert result.exit_code == 0, result.output
    assert "  - dense: {units: 4, activation: softmax, name: predictions}\n" in result.stdout
    monkeypatch.chdir(HERE)
    result = runner.invoke(app, ["import", "import_helpers:TinyNet", "--input-shape", "3,16,16"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("name: TinyNet\ndescription: 'Imported from import_helpers:TinyNet.'\n")


def _lambda_file(tmp_path, marker: Path, suffix: str) -> Path:
    inp = keras.Input((4,))
    touch = f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]"
    model = keras.Model(inp, keras.layers.Lambda(eval(touch))(inp))  # noqa: S307 (the test's own code)
    marker.unlink()
    path = tmp_path / f"lambda{suffix}"
    model.save(path)
    return path


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_file_with_code_in_it_is_never_run(tmp_path, suffix):
    marker = tmp_path / "ran"
    path = _lambda_file(tmp_path, marker, suffix)
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: holds a Lambda layer with Python code; importing a file never runs the code in it. Replace "
        "the Lambda with built-in layers, or import the model from your code with module:function."
    )
    assert not marker.exists()


def _bad_sources(tmp_path) -> dict[str, str]:
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbage.keras").write_bytes(b"not a zip")
    (tmp_path / "garbage.h5").write_bytes(b"not hdf5")
    (tmp_path / "model.pt").write_bytes(b"")
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.attrs["layer_names"] = []
    missing = tmp_path / "missing.keras"
    return {
        str(
            missing
        ): f"{missing}: no such file. Give a .keras, .h5 or .onnx file, or module:function (a function "
        "returning a Keras model or a torch module) or module:Class (a torch module class).",
        str(
            tmp_path / "folder"
        ): f"{tmp_path / 'folder'}: is a folder; give a model file (.keras, .h5, .onnx).",
        str(
            tmp_path / "model.pt"
        ): f"{tmp_path / 'model.pt'}: `.pt` files are not a model specdsl imports; it reads "
        ".keras, .h5 and .onnx files, and module:function / module:Class.",
        str(
            tmp_path / "garbage.keras"
        ): f"{tmp_path / 'garbage.keras'}: is not a Keras .keras model (a zip file holding config.json).",
        str(tmp_path / "garbage.h5"): f"{tmp_path / 'garbage.h5'}: is not an HDF5 file.",
        str(
            tmp_path / "weights.h5"
        ): f"{tmp_path / 'weights.h5'}: holds weights only, not a whole model (it has no "
        "model_config). Import the model itself (model.save('model.keras')); weights load into a spec with "
        "specdsl.weights.load_into.",
        "no_such_module_here:build": "no_such_module_here:build: cannot import module `no_such_module_here`: No "
        "module named 'no_such_module_here'. Run from the folder holding it, or give its file: path/to/file.py:name.",
        f"{HELPERS}:smal_cnn": f"{HELPERS}:smal_cnn: module `{HELPERS}` has no `smal_cnn`. Did you mean `small_cnn`?",
        f"{HELPERS}:broken": f"{HELPERS}:broken: calling `broken()` raised RuntimeError: no model today It must make "
        "the model with no arguments.",
        f"{HELPERS}:NOT_A_MODEL": f"{HELPERS}:NOT_A_MODEL: `NOT_A_MODEL` gives a int, not a Keras model or a torch "
        "module. Point at a function returning a Keras model or a torch nn.Module, or at an nn.Module class.",
        f"{tmp_path / 'nope.py'}:f": f"{tmp_path / 'nope.py'}:f: no such file `{tmp_path / 'nope.py'}`.",
    }


def test_bad_sources_get_one_message_and_exit_code_2(tmp_path):
    for source, message in _bad_sources(tmp_path).items():
        result = runner.invoke(app, ["import", source])
        assert (result.exit_code, result.stderr.strip()) == (2, f"error: {message}"), source
    result = runner.invoke(app, ["import", f"{HELPERS}:TinyNet", "--input-shape", "3,sixteen"])
    assert (result.exit_code, result.stderr.strip()) == (
        2,
        "error: --input-shape takes sizes without the batch axis, e.g. 3,224,224, but got '3,sixteen'.",
    )


def test_an_output_that_cannot_be_written(tmp_path):
    result = runner.invoke(app, ["import", str(_keras_file(tmp_path)), "-o", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        f"error: cannot write the spec to {tmp_path}: Is a directory.",
    )


@pytest.mark.slow  # a fresh interpreter imports keras and torch: seconds of CPU
def test_as_a_process_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "specdsl", "import", f"{HELPERS}:Untraceable", "--input-shape", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"error: {HELPERS}:Untraceable: torch.fx cannot trace `Untraceable`: TraceError:"
    )


def test_the_help_says_that_module_sources_run_code():
    result = runner.invoke(app, ["import", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "module:... imports and RUNS YOUR CODE" in text and "read as data with Keras' safe mode" in text


def test_weights_of_an_imported_spec_equal_the_sources(tmp_path):
    plan = specdsl.check("examples/lenet5.yaml")
    source = specdsl.build(plan, "keras")
    path = tmp_path / "lenet.keras"
    source.save(path)
    assert (
        runner.invoke(
            app, ["import", str(path), "-o", str(tmp_path / "l.yaml"), "--weights", str(tmp_path / "l.npz")]
        ).exit_code
        == 0
    )
    imported = specdsl.check(tmp_path / "l.yaml")
    arrays = W.fit(imported, W.read(tmp_path / "l.npz"))
    for node in imported.layers:
        if node.name in arrays:
            for a, b in zip(arrays[node.name], source.get_layer(node.name).get_weights()):
                np.testing.assert_array_equal(a, b)

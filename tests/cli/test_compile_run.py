"""`specdsl compile --run RUN_ID`: every export format holds the weights of the model an MLflow run of `specdsl
train` logged (a real local store: train a tiny CNN, tracked, then compile from its run id), or of the checkpoint an
interrupted run logged; an unknown run, or one with no weights, is one clean error."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mlflow = pytest.importorskip("mlflow")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from train_fixtures import train_tracked, write_spec  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import specdsl  # noqa: E402
from specdsl.cli import app  # noqa: E402

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("mlflow_as_it_was")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`specdsl train` of the digits CNN, one epoch, tracked in SQLite: (folder, spec, tracking URI, run id, the
    model the run logged, as MLflow loads it)."""
    import mlflow.pytorch

    folder = tmp_path_factory.mktemp("compile_run")
    spec, uri, run_id = train_tracked(folder)
    logged = mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location="cpu")
    return folder, spec, uri, run_id, logged


X = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")  # NHWC; torch takes it transposed


def trained_outputs(logged) -> np.ndarray:
    with torch.no_grad():
        return logged(torch.from_numpy(X.transpose(0, 3, 1, 2).copy())).numpy()


def compile_run(args: list[str], uri: str):
    return runner.invoke(app, ["compile", *args, "--tracking-uri", uri])


def test_onnx_of_a_run_answers_as_the_trained_model(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, spec, uri, run_id, logged = trained
    out = tmp_path / "digits.onnx"
    result = compile_run([str(spec), "--run", run_id, "-f", "onnx", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"wrote {out} (digits_cnn: 8,714 params, torch, onnx, weights of MLflow run {run_id})"
    )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X.transpose(0, 3, 1, 2).copy()})
    np.testing.assert_allclose(got, trained_outputs(logged), rtol=1e-5, atol=1e-6)
    fresh = tmp_path / "fresh.onnx"
    assert runner.invoke(app, ["compile", str(spec), "-f", "onnx", "-o", str(fresh)]).exit_code == 0
    (other,) = ort.InferenceSession(str(fresh), providers=["CPUExecutionProvider"]).run(
        None, {"input": X.transpose(0, 3, 1, 2).copy()}
    )
    assert not np.allclose(other, got, atol=1e-3)  # a fresh model answers otherwise


def test_the_runs_own_spec_serves_when_none_is_given(trained, tmp_path):
    _, _, uri, run_id, logged = trained
    out = tmp_path / "digits.pt"
    result = compile_run(["--run", run_id, "-f", "torchscript", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    exported = torch.jit.load(str(out)).state_dict()
    expected = logged.state_dict()
    assert sorted(exported) == sorted(expected)
    assert all(torch.equal(exported[k], expected[k]) for k in expected)


def test_torch_export_and_nhwc_onnx_of_a_run(trained, tmp_path):
    _, spec, uri, run_id, logged = trained
    out = tmp_path / "digits.pt2"
    result = compile_run([str(spec), "--run", run_id, "-f", "export", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        got = torch.export.load(str(out)).module()(torch.from_numpy(X.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(got, trained_outputs(logged), rtol=1e-5, atol=1e-6)
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "nhwc.onnx"
    result = compile_run([str(spec), "--run", run_id, "-f", "onnx", "--layout", "nhwc", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"wrote {out} (digits_cnn: 8,714 params, torch, onnx, input nhwc, weights of MLflow run {run_id})"
    )
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": X})
    np.testing.assert_allclose(got, trained_outputs(logged), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("format", ["keras", "weights"])
def test_keras_files_of_a_run_answer_as_the_trained_model(trained, tmp_path, format):
    keras = pytest.importorskip("keras")
    _, spec, uri, run_id, logged = trained
    out = tmp_path / ("digits.keras" if format == "keras" else "digits.weights.h5")
    result = compile_run([str(spec), "--run", run_id, "-b", "keras", "-f", format, "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"wrote {out} (digits_cnn: 8,714 params, keras, {format}, weights of MLflow run {run_id})"
    )
    if format == "keras":
        model = keras.saving.load_model(out)
    else:
        model = specdsl.build(specdsl.check(spec), "keras")
        model.load_weights(out)
    np.testing.assert_allclose(model.predict(X, verbose=0), trained_outputs(logged), rtol=1e-5, atol=1e-6)


def test_an_interrupted_runs_checkpoint_serves(trained, tmp_path):
    folder, spec, uri, _, _ = trained
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.get_experiment_by_name("digits_cnn").experiment_id, run_name="killed")
    client.log_artifact(run.info.run_id, str(spec), "spec")
    client.log_artifact(run.info.run_id, str(folder / "ckpt" / "best.pt"), "checkpoint")
    client.set_terminated(run.info.run_id, "KILLED")
    out = tmp_path / "digits.pt"
    result = compile_run(["--run", run.info.run_id, "-f", "torchscript", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    exported = torch.jit.load(str(out)).state_dict()
    expected = torch.load(folder / "ckpt" / "best.pt", weights_only=True)
    assert sorted(exported) == sorted(expected)
    assert all(torch.equal(exported[k], expected[k]) for k in expected)


def test_an_unknown_run_is_one_clean_error(trained, tmp_path):
    _, spec, uri, _, _ = trained
    out = tmp_path / "x.onnx"
    result = compile_run([str(spec), "--run", "0123abc", "-f", "onnx", "-o", str(out)], uri)
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: there is no MLflow run 0123abc in {uri}. Pass the run id `specdsl train` printed, and "
        "--tracking-uri where it ran.\n"
    )
    assert result.stdout == "" and not out.exists()


def test_a_run_without_weights_is_one_clean_error(trained, tmp_path):
    """A search trial's run: its concrete spec and summary, no model and no checkpoint."""
    _, spec, uri, _, _ = trained
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.get_experiment_by_name("digits_cnn").experiment_id, run_name="trial-like")
    client.log_text(run.info.run_id, spec.read_text(), "spec/digits_cnn.concrete.yaml")
    client.log_text(run.info.run_id, "summary", "summary.txt")
    client.set_terminated(run.info.run_id)
    out = tmp_path / "x.onnx"
    result = compile_run(["--run", run.info.run_id, "-f", "onnx", "-o", str(out)], uri)
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: MLflow run {run.info.run_id} logged no model. Compile a finished run of `specdsl train` "
        "(search trials keep no model), or pass the spec and --weights.\n"
    )
    assert not out.exists()


def test_weights_of_another_spec_are_refused(trained, tmp_path):
    _, _, uri, run_id, _ = trained
    other = write_spec(
        tmp_path, name="wider.yaml", layers=[{"conv2d": {"filters": 8, "kernel": 3}}, "flatten"]
    )
    result = compile_run([str(other), "--run", run_id, "-f", "onnx", "-o", str(tmp_path / "x.onnx")], uri)
    assert result.exit_code == 5
    assert result.stderr.startswith(
        f"error: the weights in the model of MLflow run {run_id} do not fit the model of the spec ("
    )
    assert "Traceback" not in result.output


def test_what_compile_run_refuses(trained, tmp_path):
    _, spec, uri, run_id, _ = trained
    result = compile_run([str(spec), "--run", run_id], uri)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: generated source builds a freshly initialized model, so it takes no --run; export a model file "
        "with the weights (--format onnx -o PATH), or load them into the source's model with "
        "specdsl.weights.load_into.\n"
    )
    result = compile_run(
        [str(spec), "--run", run_id, "-w", str(tmp_path / "x.npz"), "-f", "onnx", "-o", "x.onnx"], uri
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: compile takes the trained weights from --weights CHECKPOINT or --run RUN_ID, not both. "
        "Drop one of them.\n"
    )
    result = runner.invoke(app, ["compile"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: compile needs a spec file, or --run RUN_ID (whose logged spec it compiles). "
        "specdsl compile model.yaml --format onnx -o model.onnx\n"
    )


@pytest.fixture(scope="module")
def keras_trained(tmp_path_factory):
    """`specdsl train --backend keras` of a digits CNN with a per-position bias (specdsl's own Keras layer), one
    epoch, tracked: (spec, tracking URI, run id, the Keras model the run logged, as MLflow loads it)."""
    pytest.importorskip("keras")
    import mlflow.keras
    from rich.console import Console

    from specdsl.cli._train import run_train

    folder = tmp_path_factory.mktemp("compile_run_keras")
    layers = [
        {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "use_bias": False}},
        {"bias": "position"},
        {"activation": "relu"},
        {"maxpool2d": 2},
        "flatten",
        {"dense": {"units": 10, "activation": "softmax"}},
    ]
    spec = write_spec(folder, name="biased.yaml", layers=layers)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    code = run_train(
        spec,
        data=None,
        epochs=1,
        batch_size=None,
        backend="keras",
        limit=400,
        seed=None,
        output=folder / "ckpt",
        tracking_uri=uri,
        experiment="keras_runs",
        track=True,
        console=Console(file=io.StringIO()),
    )
    assert code == 0
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("keras_runs").experiment_id])
    logged = mlflow.keras.load_model(f"runs:/{run.info.run_id}/model")
    return spec, uri, run.info.run_id, logged


def test_a_keras_run_compiles_to_onnx_and_to_keras(keras_trained, tmp_path):
    keras = pytest.importorskip("keras")
    spec, uri, run_id, logged = keras_trained
    expected = logged.predict(X, verbose=0)
    assert float(np.abs(logged.get_layer("bias").get_weights()[0]).max()) > 0  # trained away from zero
    out = tmp_path / "biased.keras"
    result = compile_run([str(spec), "--run", run_id, "-b", "keras", "-f", "keras", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    loaded = keras.saving.load_model(out)
    assert "Bias" not in {type(layer).__name__ for layer in loaded.layers}  # built-in layers only
    assert loaded.count_params() == logged.count_params() == specdsl.check(spec).params
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "biased.onnx"
    result = compile_run([str(spec), "--run", run_id, "-f", "onnx", "--layout", "nhwc", "-o", str(out)], uri)
    assert result.exit_code == 0, result.output
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": X})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

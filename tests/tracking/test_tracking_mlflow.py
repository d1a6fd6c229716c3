"""specdsl.tracking against a real MLflow SQLite store in a temporary folder, read back with MlflowClient."""

from __future__ import annotations

import numpy as np
import pytest
from support import RaiseAt
from train_fixtures import digits_plan

from specdsl.errors import TrainError
from specdsl.spec import TrainSpec
from specdsl.tracking import MlflowCallback, TrackedRun, spec_params
from specdsl.train import fit

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds); each test uses its own experiment."""
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def client(store):
    import mlflow

    yield mlflow.MlflowClient(store)
    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


def history_of(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_callback_logs_one_step_per_epoch_in_one_call(store, client, tmp_path, digits):
    import mlflow

    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def log_batch(self, run_id, metrics):
            calls.append(len(metrics))
            return self.inner.log_batch(run_id, metrics=metrics)

    mlflow.set_experiment("callback")
    with mlflow.start_run() as run:
        result = fit(
            digits_plan(tmp_path),
            dataset=digits,
            epochs=3,
            callbacks=[MlflowCallback(client=Counting(client))],
        )
    run_id = run.info.run_id
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds", "images_per_s"):
        assert history_of(client, run_id, key) == [
            (e, pytest.approx(h[key])) for e, h in enumerate(result.history)
        ]
    assert calls == [7, 7, 7, 8]  # one call per epoch, one for the summary
    assert history_of(client, run_id, "test_accuracy") == [(3, pytest.approx(result.test["accuracy"]))]
    assert history_of(client, run_id, "best_epoch") == [(3, result.best_epoch)]
    assert history_of(client, run_id, "best_val_loss") == [(3, pytest.approx(result.best["val_loss"]))]


def test_spec_params_flatten_the_sections_and_the_totals(tmp_path):
    plan = digits_plan(tmp_path)
    params = spec_params(plan)
    assert params == {
        "train.optimizer.name": "adam",
        "train.optimizer.lr": "0.003",
        "train.optimizer.momentum": "0.0",
        "train.optimizer.nesterov": "False",
        "train.optimizer.weight_decay": "0.0",
        "train.schedule.name": "constant",
        "train.schedule.step_size": "10",
        "train.schedule.gamma": "0.1",
        "train.schedule.patience": "3",
        "train.schedule.warmup_epochs": "0",
        "train.loss": "sparse_categorical_crossentropy",
        "train.metrics": "['accuracy']",
        "train.epochs": "2",
        "train.batch_size": "32",
        "train.early_stopping": "None",
        "train.seed": "0",
        "train.backend": "torch",
        "train.label_smoothing": "0.0",
        "train.monitor": "None",
        "train.device": "auto",
        "train.precision": "fp32",
        "train.stages": "None",
        "train.channels_last": "auto",
        "train.compile": "False",
        "data.dataset": "digits",
        "data.path": "None",
        "data.image_size": "None",
        "data.split": "None",
        "data.limit": "None",
        "data.seed": "0",
        "data.augment.flip": "none",
        "data.augment.rotation": "0.0",
        "data.augment.shift": "0.0",
        "data.augment.zoom": "0.0",
        "data.augment.brightness": "0.0",
        "data.augment.contrast": "0.0",
        "data.augment.saturation": "0.0",
        "data.augment.hue": "0.0",
        "data.augment.crop": "0",
        "data.augment.cutout": "0.0",
        "data.normalize": "unit",
        "data.resize": "squash",
        "data.storage": "auto",
        "model.params": "8714",
        "model.trainable": "8714",
        "model.non_trainable": "0",
        "model.flops": str(plan.flops),
        "model.activation_bytes": str(plan.activation_bytes),
        "model.input_shape": "[8, 8, 1]",
        "model.output_shape": "[10]",
    }


def test_tracked_run_logs_tags_params_artifacts_and_a_loadable_model(store, client, tmp_path, digits):
    import mlflow.pytorch
    import torch

    plan = digits_plan(tmp_path)
    with TrackedRun(plan, experiment="tracked", run_name="digits-run") as run:
        result = fit(plan, dataset=digits, callbacks=[run.callback])
        run.log_result(result, digits)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "digits-run"
    assert client.get_experiment(got.info.experiment_id).name == "tracked"
    tags = got.data.tags
    assert (tags["specdsl.spec"], tags["specdsl.spec_file"], tags["specdsl.backend"]) == (
        "digits_cnn",
        str(tmp_path / "digits.yaml"),
        "torch",
    )
    assert got.data.params["train.optimizer.lr"] == "0.003" and got.data.params["model.flops"] == str(
        plan.flops
    )
    assert sorted(a.path for a in client.list_artifacts(run.run_id)) == [
        "preprocessing.json",
        "spec",
        "summary.txt",
    ]
    assert [a.path for a in client.list_artifacts(run.run_id, "spec")] == ["spec/digits.yaml"]
    assert client.download_artifacts(run.run_id, "summary.txt", str(tmp_path)).endswith("summary.txt")
    model = mlflow.pytorch.load_model(run.model_uri)
    x = torch.from_numpy(digits.x_test[:5].astype(np.float32).transpose(0, 3, 1, 2) / 255)
    with torch.no_grad():
        torch.testing.assert_close(model(x), result.model(x))
    assert got.data.metrics["test_accuracy"] == pytest.approx(result.test["accuracy"])


def test_ctrl_c_ends_the_run_killed_with_the_best_checkpoint(store, client, tmp_path, digits):
    plan = digits_plan(tmp_path)
    ck = tmp_path / "ck"
    with pytest.raises(KeyboardInterrupt), TrackedRun(plan, experiment="killed", checkpoint_dir=ck) as run:
        fit(
            plan,
            dataset=digits,
            train=TrainSpec(epochs=5),
            checkpoint_dir=ck,
            callbacks=[run.callback, RaiseAt(1, KeyboardInterrupt())],
        )
    assert client.get_run(run.run_id).info.status == "KILLED"
    assert [a.path for a in client.list_artifacts(run.run_id, "checkpoint")] == [
        "checkpoint/best.json",
        "checkpoint/best.pt",
    ]
    assert [s for s, _ in history_of(client, run.run_id, "loss")] == [0, 1]


def test_an_error_ends_the_run_failed(store, client, tmp_path, digits):
    plan = digits_plan(tmp_path)
    with pytest.raises(ValueError), TrackedRun(plan, experiment="failed") as run:
        fit(plan, dataset=digits, callbacks=[run.callback, RaiseAt(0, ValueError("x"))])
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_an_unwritable_artifact_folder_is_one_train_error_before_training(store, client, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    client.create_experiment("unwritable", artifact_location=str(blocker / "artifacts"))
    with pytest.raises(TrainError) as info, TrackedRun(digits_plan(tmp_path), experiment="unwritable"):
        pytest.fail("the run must not start")
    run_id = (
        info.value.__traceback__
        and client.search_runs([client.get_experiment_by_name("unwritable").experiment_id])[0].info.run_id
    )
    assert client.get_run(run_id).info.status == "FAILED"
    e = info.value
    assert e.message.startswith(f"the MLflow artifact folder {blocker}/artifacts/")
    assert e.message.endswith(
        " is not writable (Not a directory), so the run could not keep its model and files."
    )
    assert e.hint == (
        "Run from a folder you can write to, pass --tracking-uri, or use an experiment whose artifact "
        "location is writable (--experiment)."
    )


def test_a_training_run_writes_its_sqlite_store_in_wal_mode_without_fsync_per_commit(store, tmp_path):
    """`specdsl train` and TrackedRun point MLflow at its store through `configure`, which gives that file the
    study stores' pragmas; another SQLite database of the same process keeps SQLite's defaults."""
    import sqlite3

    import mlflow
    from mlflow.store.db.utils import create_sqlalchemy_engine

    from specdsl.tracking import configure

    db, other = tmp_path / "train.db", tmp_path / "other.db"
    try:
        configure(f"sqlite:///{db}", "pragmas")
        mlflow.MlflowClient().create_run(mlflow.get_experiment_by_name("pragmas").experiment_id)
    finally:
        mlflow.set_tracking_uri(store)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone() == ("wal",)  # a property of the file
    with create_sqlalchemy_engine(f"sqlite:///{db}").connect() as con:  # synchronous: one of the connection
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL; SQLite's default is FULL (2)
    with create_sqlalchemy_engine(f"sqlite:///{other}").connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_keras_runs_log_a_keras_model(store, client, tmp_path, digits):
    import mlflow.keras

    plan = digits_plan(tmp_path)
    with TrackedRun(plan, backend="keras", experiment="keras") as run:
        result = fit(plan, dataset=digits, backend="keras", epochs=1, callbacks=[run.callback])
        run.log_result(result, digits)
    assert client.get_run(run.run_id).data.tags["specdsl.backend"] == "keras"
    model = mlflow.keras.load_model(run.model_uri)
    x = digits.x_test[:4].astype(np.float32) / 255
    np.testing.assert_allclose(
        np.asarray(model.predict(x, verbose=0)),
        np.asarray(result.model.predict(x, verbose=0)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_ctrl_c_during_an_mlflow_write_is_raised_once_the_write_is_done():
    import os
    import signal

    from specdsl.tracking._callback import interrupts_held

    done = []
    # Python's own handler, as in a process started from a shell (a library loaded earlier in this test session
    # may have set another)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)  # delivered here, while the "write" goes on
                done.append("write finished")
        assert done == ["write finished"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with interrupts_held():  # nothing received: nothing raised
            done.append("again")
        assert done == ["write finished", "again"]
    finally:
        signal.signal(signal.SIGINT, previous)

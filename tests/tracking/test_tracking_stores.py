"""Stores that fail under `specdsl train`: a corrupt mlflow.db, a read-only working folder, a disk that fills while
the model trains or while its run keeps its files. Real files and file systems (a tmpfs of a few MiB, mounted as
root; skipped where mounting is not permitted), a real MLflow store, the digits CNN of the train tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from support import fill_disk, read_only_folder, small_disk
from train_fixtures import digits_plan, write_spec

from specdsl.errors import StoreError
from specdsl.tracking import TrackedRun
from specdsl.train import Callback, fit

pytestmark = pytest.mark.usefixtures("single_thread")

FULL = (
    "Free space on it, or pass {option} to keep it elsewhere, and run the command again: what was written "
    "before is kept."
)


@pytest.fixture
def mlflow_reset():
    import mlflow

    yield
    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)


def train(spec: Path, **changes):
    from rich.console import Console

    from specdsl.cli._train import run_train

    base = {
        "data": None,
        "epochs": 1,
        "batch_size": None,
        "backend": None,
        "limit": 200,
        "seed": None,
        "output": spec.parent / "ckpt",
        "tracking_uri": None,
        "experiment": None,
        "track": True,
    }
    return run_train(spec, **{**base, **changes}, console=Console(file=io.StringIO(), width=120))


def test_a_corrupt_mlflow_db_stops_train_with_one_store_error(tmp_path, mlflow_reset):
    db = tmp_path / "mlflow.db"
    db.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(StoreError) as info:
        train(write_spec(tmp_path), tracking_uri=f"sqlite:///{db}")
    assert info.value.format() == (
        f"the MLflow tracking store {db} is not a readable SQLite database (file is not a database). Move the file "
        "aside (or delete it) to start a new one there, or pass --tracking-uri to use another."
    )
    assert info.value.exit_code == 6


def test_train_in_a_read_only_folder_names_its_mlflow_store(tmp_path, monkeypatch, mlflow_reset):
    import mlflow

    folder = tmp_path / "project"
    with read_only_folder(folder) as make_read_only:
        spec = write_spec(folder)
        make_read_only()
        monkeypatch.chdir(folder)
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow.set_tracking_uri(None)  # MLflow's default: ./mlflow.db
        with pytest.raises(StoreError) as info:
            train(spec, output=tmp_path / "ckpt")
    assert info.value.format() == (
        f"the MLflow tracking store {folder}/mlflow.db cannot be written: its folder {folder} is not writable (unable "
        "to open database file). Run from a folder you can write to, or pass --tracking-uri to keep it elsewhere."
    )


class FillsTheDisk(Callback):
    """Fills the file system of ``folder`` at the end of the first epoch (before the best checkpoint is written)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_epoch_end(self, epoch, logs):
        if epoch == 0:
            fill_disk(self.folder)


def test_a_disk_that_fills_while_training_stops_at_the_checkpoint_and_the_run_ends_failed(
    tmp_path, digits, mlflow_reset
):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = tmp_path / "disk"
    with small_disk(folder, "4m"):
        plan = digits_plan(tmp_path)
        with pytest.raises(StoreError) as info, TrackedRun(plan, tracking_uri=uri, experiment="full") as run:
            fit(
                plan,
                dataset=digits,
                epochs=2,
                callbacks=[FillsTheDisk(folder), run.callback],
                checkpoint_dir=folder / "ckpt",
            )
        assert info.value.format() == (
            f"the disk of the checkpoint {folder}/ckpt/best.pt is full (No space left on "
            "device). " + FULL.format(option="--output")
        )
        assert sorted(p.name for p in (folder / "ckpt").iterdir()) == []  # no half-written file left
    got = mlflow.MlflowClient(uri).get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert [m.step for m in mlflow.MlflowClient(uri).get_metric_history(run.run_id, "val_loss")] == [0]


def test_a_disk_that_fills_before_the_model_is_logged_ends_the_run_failed(tmp_path, digits, mlflow_reset):
    """The run's artifacts on a small disk that is full when training is done and the model is to be kept."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = tmp_path / "disk"
    with small_disk(folder, "4m"):
        mlflow.MlflowClient(uri).create_experiment(
            "artifacts-full", artifact_location=str(folder / "artifacts")
        )
        plan = digits_plan(tmp_path)
        with (
            pytest.raises(StoreError) as info,
            TrackedRun(plan, tracking_uri=uri, experiment="artifacts-full") as run,
        ):
            result = fit(plan, dataset=digits, epochs=1, callbacks=[run.callback])
            fill_disk(folder)
            run.log_result(result, digits)
        e = info.value
        assert e.message == (
            f"the disk of the MLflow artifact store {folder}/artifacts/{run.run_id}/artifacts is "
            "full (No space left on device)."
        )
        assert (e.kind, e.hint) == ("full", FULL.format(option="--tracking-uri"))
    assert mlflow.MlflowClient(uri).get_run(run.run_id).info.status == "FAILED"

"""run_train, as `specdsl train` runs it: exit codes, the printed table, the MLflow run, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console
from train_fixtures import write_spec

from specdsl.cli._train import run_train
from specdsl.errors import SpecError

pytestmark = pytest.mark.usefixtures("single_thread")


def console() -> Console:
    return Console(file=io.StringIO(), width=120, color_system=None)


def args(**changes):
    base = {
        "data": None,
        "epochs": None,
        "batch_size": None,
        "backend": None,
        "limit": None,
        "seed": None,
        "output": None,
        "tracking_uri": None,
        "experiment": None,
        "track": False,
    }
    return {**base, **changes}


@pytest.fixture
def default_store(tmp_path, monkeypatch):
    """MLflow's own default store, in a fresh working folder."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(None)
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def test_untracked_run_prints_the_table_and_keeps_the_checkpoint(tmp_path):
    spec = write_spec(tmp_path)
    out = console()
    code = run_train(spec, **args(epochs=2, limit=400, output=tmp_path / "out"), console=out)
    text = out.file.getvalue()
    assert code == 0
    assert "digits_cnn: 8,714 parameters" in text
    assert "digits: train 400 / val 269 / test 269, 8x8x1 uint8, 10 classes (0 .. 9)" in text
    assert "epoch 1/2  loss " in text and "epoch 2/2  loss " in text
    assert "best epoch 2 of 2 (by val_loss)" in text or "best epoch 1 of 2 (by val_loss)" in text
    assert "┃ metric   ┃  train ┃ validation ┃   test ┃" in text
    assert (tmp_path / "out" / "best.pt").is_file()
    assert "MLflow" not in text


def test_tracked_run_goes_to_mlflows_default_store(default_store):
    import mlflow

    spec = write_spec(default_store)
    out = console()
    assert run_train(spec, **args(epochs=2, limit=300, track=True), console=out) == 0
    assert (default_store / "mlflow.db").is_file() and (default_store / "mlruns").is_dir()
    client = mlflow.MlflowClient(f"sqlite:///{default_store}/mlflow.db")
    exp = client.get_experiment_by_name("digits_cnn")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss")) == [0, 1]
    assert run.data.params["data.limit"] == "300" and run.data.params["train.epochs"] == "2"
    assert f"MLflow run {run.info.run_id} in experiment `digits_cnn`" in out.file.getvalue()
    assert (default_store / "checkpoints" / "digits_cnn" / "best.pt").is_file()


def test_command_line_values_are_validated_as_the_spec_would_be(tmp_path):
    spec = write_spec(tmp_path)
    with pytest.raises(SpecError) as info:
        run_train(spec, **args(epochs=0), console=console())
    assert info.value.path == "train.epochs"
    assert info.value.message == "--epochs: Input should be greater than or equal to 1 (got 0)."


def test_data_may_name_a_registered_dataset(tmp_path):
    spec = write_spec(tmp_path, data={"dataset": "mnist_5k"})
    out = console()
    assert (
        run_train(spec, **args(data=Path("digits"), epochs=1, limit=200, output=tmp_path), console=out) == 0
    )
    assert "digits: train 200" in out.file.getvalue()


SCRIPT = """
import signal
import sys
from pathlib import Path
# Ctrl-C as from a shell: an ignored SIGINT would be inherited from the test process if a library it loaded
# ignores it, and Python installs its own handler only for a signal that is not ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
from rich.console import Console
import torch
torch.set_num_threads(1)
from specdsl.cli._train import run_train
code = run_train(Path(sys.argv[1]), data=None, epochs=1000, batch_size=None, backend=None, limit=None, seed=None,
                 output=Path(sys.argv[2]), tracking_uri=sys.argv[3], experiment="ctrl-c", track=True,
                 console=Console(width=120))
sys.exit(code)
"""


def test_ctrl_c_keeps_the_checkpoint_marks_the_run_killed_and_exits_130(tmp_path):
    import mlflow

    spec = write_spec(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(spec), str(out), uri],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "best.json").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read() if proc.poll() else "timeout"
            )
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout
    assert "interrupted: the best checkpoint so far is in" in stdout and "marked KILLED" in stdout
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ctrl-c").experiment_id])
    assert run.info.status == "KILLED"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")} == {
        "checkpoint/best.json",
        "checkpoint/best.pt",
    }
    meta = json.loads((out / "best.json").read_text())
    assert meta["monitor"] == "val_loss" and meta["epoch"] >= 0

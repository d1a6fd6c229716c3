"""A staged fine-tune is one MLflow run: its epochs count on across the stages, and the stage is a metric."""

from __future__ import annotations

import pytest
from train_fixtures import write_spec

import specdsl
from specdsl.tracking import TrackedRun
from specdsl.train import fit

pytestmark = pytest.mark.usefixtures("single_thread")

LAYERS = [
    {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "trainable": False}},
    {"batchnorm": {"trainable": False}},
    "flatten",
    {"dense": {"units": 10, "activation": "softmax"}},
]


def test_stages_are_one_run_with_the_stage_per_epoch(tmp_path, digits):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    try:
        stages = [{"epochs": 1}, {"epochs": 2, "unfreeze": "all", "learning_rate": 1e-4}]
        path = write_spec(tmp_path, layers=LAYERS, train={"epochs": None, "stages": stages})
        plan = specdsl.check(path)
        with TrackedRun(plan, experiment="staged") as run:
            result = fit(plan, dataset=digits, callbacks=[run.callback])
            run.log_result(result, digits)
        client = mlflow.MlflowClient(uri)
        (experiment,) = [e for e in client.search_experiments() if e.name == "staged"]
        assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run.run_id]

        def history(key):
            return sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, key))

        params = client.get_run(run.run_id).data.params
        assert (params["train.stages.0.epochs"], params["train.stages.1.unfreeze"]) == ("1", "all")
        assert params["train.stages.1.learning_rate"] == "0.0001" and params["train.epochs"] == "3"
        assert history("stage") == [(0, 1.0), (1, 2.0), (2, 2.0)]
        assert [v for _, v in history("lr")] == pytest.approx([0.003, 1e-4, 1e-4])
        assert [s for s, _ in history("loss")] == [0, 1, 2]
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)

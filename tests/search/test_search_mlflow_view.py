"""What MLflow shows of a study, on the real MLflow store: an experiment of the training kind (MLflow 3 opens it on
its runs), the value the search ranks by as the metric ``objective``, and the study's run lasting its working time,
idle time between resumed invocations left out."""

from __future__ import annotations

import time

import pytest
from search_helpers import mlflow_runs, optuna_trials
from test_search_study import DEEP

from specdsl.search import run_search

# One searched width on 8x8 digits, one epoch: a trial trains in well under a second.
TINY = DEEP.replace("{int: [1, 5], name: convs}", "1").replace("seed: 5", "seed: 3")


@pytest.fixture
def tracking(tmp_path):
    return {
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }


def _search(path, tracking, **kwargs):
    kwargs.setdefault("plots", False)
    return run_search(path, storage=tracking["storage"], tracking_uri=tracking["tracking_uri"], **kwargs)


def test_a_study_experiment_is_of_the_training_kind_and_a_kind_already_set_is_kept(tracking):
    from mlflow import MlflowClient

    from specdsl.tracking import Tracker

    client = MlflowClient(tracking["tracking_uri"])
    new = Tracker(tracking["tracking_uri"], "fresh", "s")
    assert client.get_experiment(new.ensure_experiment()).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )
    old = client.create_experiment("made-before")  # by an older specdsl, or by hand: no kind
    assert Tracker(tracking["tracking_uri"], "made-before", "s").ensure_experiment() == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"
    genai = client.create_experiment("agents", tags={"mlflow.experimentKind": "genai_development"})
    Tracker(tracking["tracking_uri"], "agents", "s").ensure_experiment()
    assert client.get_experiment(genai).tags["mlflow.experimentKind"] == "genai_development"


def test_a_training_run_experiment_is_of_the_training_kind(tracking):
    import mlflow

    from specdsl.tracking import configure

    try:
        exp_id = configure(tracking["tracking_uri"], "trained")
        assert mlflow.MlflowClient().get_experiment(exp_id).tags["mlflow.experimentKind"] == (
            "custom_model_development"
        )
    finally:
        mlflow.set_tracking_uri(None)  # MLflow's default again: ./mlflow.db wherever a later test runs


def test_the_study_run_lasts_the_search_working_time_not_the_idle_time_between_invocations(
    tmp_path, tracking
):
    from mlflow import MlflowClient

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    t0 = time.time()
    first = _search(path, tracking, trials=1, study_name="resumed")
    t1 = time.time()
    time.sleep(4.0)  # idle: nobody searches
    t2 = time.time()
    second = _search(path, tracking, trials=2, study_name="resumed")
    t3 = time.time()
    assert (first.complete, second.complete) == (1, 2)
    (parent,) = mlflow_runs(tracking["tracking_uri"], "resumed")["study"]
    info = parent.info
    duration = (info.end_time - info.start_time) / 1000
    worked = (t1 - t0) + (t3 - t2)
    assert info.status == "FINISHED"
    assert parent.data.metrics["search_seconds"] == pytest.approx(duration, abs=0.002)
    assert duration <= worked and duration < (t3 - t0) - 4.0
    history = MlflowClient(tracking["tracking_uri"]).get_metric_history(info.run_id, "search_seconds")
    assert len(history) == 2 and history[0].value < history[1].value == parent.data.metrics["search_seconds"]


def test_every_trained_trial_logs_objective_and_complete_and_pruned_runs_end_finished(tmp_path, tracking):
    path = tmp_path / "ranked.yaml"
    # median pruning after one complete trial, from the second epoch on: some of 6 trials are pruned
    path.write_text(
        TINY.replace("epochs: 1,", "epochs: 3,").replace(
            "pruner: none,", "pruner: median, startup_trials: 1, warmup_epochs: 1,"
        )
    )
    result = _search(path, tracking, trials=6, study_name="ranked", limit=200)
    trials = optuna_trials(tracking["storage"], "ranked")
    runs = mlflow_runs(tracking["tracking_uri"], "ranked")["trial"]
    assert len(trials) == len(runs) == 6 and result.complete + result.pruned == 6
    # never pruned after its last epoch: that would save nothing and lose a trial trained to its end
    assert [len(t.intermediate_values) for t in trials if t.state.name == "PRUNED"] == [2] * result.pruned
    for t, run in zip(trials, runs):
        assert run.info.status == "FINISHED", (t.number, t.state.name)
        assert run.data.tags.get("specdsl.pruned") == ("true" if t.state.name == "PRUNED" else None)
        best_epoch = max(t.intermediate_values.values())
        assert run.data.metrics["objective"] == (t.value if t.state.name == "COMPLETE" else best_epoch)

"""Studies on real SQLite, real MLflow and the real training loop, on tiny models of the `digits` dataset (8x8)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from search_helpers import mlflow_runs, optuna_trials

pytest.importorskip("optuna")
pytest.importorskip("mlflow")
pytest.importorskip("torch")

import specdsl
from specdsl.cli._search import run_best_command, run_search_command
from specdsl.errors import SearchError
from specdsl.search import run_search

# 1-5 valid 3x3 convolutions on an 8x8 image: 4 and 5 of them leave nothing (8 -> 6 -> 4 -> 2 -> 0).
DEEP = """
input: [8, 8, 1]
layers:
  - repeat: {int: [1, 5], name: convs}
    layers:
      - conv2d: {filters: {choice: [4, 8], name: filters}, kernel: 3, activation: relu}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
search: {sampler: random, pruner: none, seed: 5}
"""

# A choice between two whole layers, each with a parameter of its own.
BRANCHES = """
input: [8, 8, 1]
params:
  units: {choice: [8, 16]}
layers:
  - name: block
    choice:
      - conv2d: {filters: {choice: [4, 6], name: a_filters}, kernel: 3, activation: relu}
      - conv2d: {filters: {int: [2, 5]}, kernel: 2, strides: {choice: [1, 2]}, activation: relu}
  - flatten
  - dense: {units: $units, activation: relu}
  - dropout: {float: [0.0, 0.5], step: 0.25}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: {float: [0.001, 0.01], log: true, name: lr}}, epochs: 1, batch_size: 128}
search: {sampler: tpe, startup_trials: 2, seed: 0}
"""


def console() -> tuple:
    from rich.console import Console

    buf = io.StringIO()
    return Console(file=buf, width=250, force_terminal=False), buf


@pytest.fixture
def search(stores, request):
    """run_search on the session's stores, one study per test (named after it)."""

    def run(path: Path, **kwargs):
        kwargs.setdefault("study_name", request.node.name.replace("[", "-").replace("]", ""))
        kwargs.setdefault("plots", False)
        out, buf = console()
        result = run_search(
            path, storage=stores["storage"], tracking_uri=stores["tracking_uri"], console=out, **kwargs
        )
        result.output = buf.getvalue()
        return result

    return run


def test_names_are_the_same_in_optuna_and_mlflow_and_unchosen_branches_are_never_drawn(search, space, stores):
    result = search(space("branches", BRANCHES), trials=6)
    trials = optuna_trials(stores["storage"], result.study_name)
    runs = mlflow_runs(stores["tracking_uri"], result.study_name)
    assert len(trials) == len(runs["trial"]) == 6
    for t, run in zip(trials, runs["trial"]):
        assert run.data.tags["specdsl.trial"] == str(t.number)
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
        common = {"params.units", "block", "layers.3.dropout", "lr"}
        if t.params["block"] == 0:
            assert set(t.params) == common | {"a_filters"}
        else:
            assert set(t.params) == common | {"layers.0.1.conv2d.filters", "layers.0.1.conv2d.strides"}
    assert {t.params["block"] for t in trials} == {0, 1}
    assert all(t.params["layers.3.dropout"] in (0.0, 0.25, 0.5) for t in trials)
    # the default, auto, is one worker here (the tests' SPECDSL_WORKERS=1), and one line says why; the study's run
    # is tagged with the count
    assert "1 worker (SPECDSL_WORKERS=1: --workers N sets them)" in result.output, result.output
    assert runs["study"][0].data.tags["workers"] == "1"


def test_invalid_samples_are_pruned_in_milliseconds_with_their_reason(search, space, stores, monkeypatch):
    import specdsl.train

    calls = []
    real_fit = specdsl.train.fit

    def spy(plan, **kwargs):
        calls.append(plan.params)
        return real_fit(plan, **kwargs)

    monkeypatch.setattr(specdsl.train, "fit", spy)
    path = space("deep", DEEP)
    result = search(path, trials=4)
    trials = optuna_trials(stores["storage"], result.study_name)
    rejected = [t for t in trials if t.user_attrs.get("specdsl.rejected")]
    trained = [t for t in trials if not t.user_attrs.get("specdsl.rejected")]
    assert (result.trials, result.complete, result.invalid) == (4, 4, len(rejected))
    assert len(rejected) >= 1 and len(calls) == len(trained) == 4
    runs = {
        int(r.data.tags["specdsl.trial"]): r
        for r in mlflow_runs(stores["tracking_uri"], result.study_name)["trial"]
    }
    for t in rejected:
        assert t.state.name == "PRUNED" and t.params["convs"] in (4, 5)
        lost = {
            4: "layers[0].repeat[3].layers[0] (conv2d): kernel 3x3 does not fit its 2x2x{f} input",
            5: "layers[0].repeat[3].layers[0] (conv2d): kernel 3x3 does not fit its 2x2x{f} input",
        }
        reason = t.user_attrs["specdsl.reason"]
        assert reason.startswith(f"{path}:6:9: " + lost[t.params["convs"]].format(f=t.params["filters"]))
        run = runs[t.number]
        assert (run.info.status, run.data.tags["specdsl.state"]) == ("FINISHED", "PRUNED")
        assert run.data.tags["specdsl.pruned"] == "true"
        assert run.data.tags["specdsl.reason"] == f"invalid: {reason}"
        assert run.data.params == {"convs": str(t.params["convs"]), "filters": str(t.params["filters"])}
        assert run.data.metrics["overhead.spec_plan_ms"] < 50  # expand + plan; no framework touched
    for t in trained:
        assert t.state.name == "COMPLETE" and t.params["convs"] <= 3
    assert f"{len(rejected)} invalid samples rejected before training" in result.output


def test_the_overhead_is_measured_whole_by_every_worker(search, space, stores):
    """Everything but training counts: the worker's tally (kept in the study) holds every trial, and a trial's
    overhead is more than the parts timed inside it (Optuna's tell and the bookkeeping are in it too)."""
    import optuna

    path = space("tally", DEEP)
    result = search(path, trials=3)
    study = optuna.load_study(study_name=result.study_name, storage=stores["storage"])
    tallies = [v for k, v in study.user_attrs.items() if k.startswith("specdsl.overhead.")]
    assert len(tallies) == 1  # one worker, one session
    tally = tallies[0]
    assert (tally["trained"], tally["rejected"]) == (3, result.invalid)
    o = result.overhead
    parts = o["suggest_ms"] + o["spec_plan_ms"] + o["tracking_ms"] + o["pruning_ms"]
    assert parts < o["overhead_ms"] < o["trial_s"] * 1000
    assert o["overhead_ms"] == pytest.approx(tally["overhead_s"] / 3 * 1000)
    assert o["share"] == pytest.approx(tally["share"] / 3) and 0 < o["share"] < 1
    assert o["time_share"] == pytest.approx(
        (tally["overhead_s"] + tally["rejected_s"]) / (tally["trial_s"] + tally["rejected_s"])
    )
    line = next(x for x in result.output.splitlines() if x.startswith("overhead per trained trial: "))
    assert f"{o['overhead_ms']:.0f} ms (sample {o['suggest_ms']:.0f} ms, " in line
    assert line.endswith(
        f"{o['time_share']:.2%} of the search's time; an invalid sample costs {o['rejected_ms']:.0f} ms"
    )

    again = search(path, trials=4)  # resumed: a second tally, added to the first
    study = optuna.load_study(study_name=result.study_name, storage=stores["storage"])
    tallies = [v for k, v in study.user_attrs.items() if k.startswith("specdsl.overhead.")]
    assert sorted(t["trained"] for t in tallies) == [1, 3]
    assert again.overhead["overhead_ms"] == pytest.approx(sum(t["overhead_s"] for t in tallies) / 4 * 1000)


def test_a_constraint_rejects_before_training(search, space, stores):
    path = space("constrained", DEEP.replace("search: {", "search: {constraints: {max_params: 2000}, "))
    result = search(path, trials=2)
    trials = optuna_trials(stores["storage"], result.study_name)
    for t in trials:
        if t.user_attrs.get("specdsl.rejected"):
            reason = t.user_attrs["specdsl.reason"]
            assert reason.startswith("constraint max_params: the model has ") or "does not fit" in reason
        else:
            assert t.user_attrs["specdsl.result"]["params"] <= 2000
    assert any(t.user_attrs.get("specdsl.reason", "").startswith("constraint max_params") for t in trials)


NAN = """
input: [8, 8, 1]
blocks:
  scale:
    layers:
      name: blowup
      choice:
        - [{rescaling: 1.0}]
        - [{rescaling: 1.0e38}, {rescaling: 1.0e38}, {rescaling: 0.0}]   # inf * 0: NaN
layers:
  - scale
  - conv2d: {filters: {choice: [4, 8], name: filters}, kernel: 3, activation: relu}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
search: {sampler: grid, pruner: none, seed: 0}
"""


def test_a_raising_trial_and_a_nan_trial_fail_with_their_reasons_and_the_study_goes_on(
    search, space, stores, monkeypatch
):
    import specdsl.train

    real_fit = specdsl.train.fit

    def flaky(plan, **kwargs):
        if len(plan.layers) == 4 and plan.layers[1].layer.filters == 8:  # blowup option 0, 8 filters
            raise RuntimeError("CUDA is on fire")
        return real_fit(plan, **kwargs)

    monkeypatch.setattr(specdsl.train, "fit", flaky)
    result = search(space("nan", NAN), trials=4)  # the grid: blowup x filters, each once
    trials = optuna_trials(stores["storage"], result.study_name)
    got = {
        (t.params["blowup"], t.params["filters"]): (t.state.name, t.user_attrs.get("specdsl.reason"))
        for t in trials
    }
    nan_reason = (
        "NonFiniteLoss: the training loss became NaN in epoch 1/1, batch 1/10 at learning rate 0.01. "
        "Lower `train.optimizer.lr` (or add warmup: `train.schedule.warmup_epochs`), add batchnorm, or check "
        "the data for NaN or unscaled values (`data.normalize`)."
    )
    assert got == {
        (0, 4): ("COMPLETE", None),
        (0, 8): ("FAIL", "RuntimeError: CUDA is on fire"),
        (1, 4): ("FAIL", nan_reason),
        (1, 8): ("FAIL", nan_reason),
    }
    assert (result.complete, result.failed, result.trials) == (1, 3, 4)
    runs = mlflow_runs(stores["tracking_uri"], result.study_name)["trial"]
    by_number = {t.number: t for t in trials}
    for run in runs:
        t = by_number[int(run.data.tags["specdsl.trial"])]
        expected = {"COMPLETE": "FINISHED", "FAIL": "FAILED"}[t.state.name]
        assert (run.info.status, run.data.tags["specdsl.state"]) == (expected, t.state.name)
        assert run.data.tags.get("specdsl.reason") == t.user_attrs.get("specdsl.reason")


def test_a_trial_cut_short_by_the_study_time_limit_is_pruned_not_complete(search, space, stores):
    import re

    # one 3x3 convolution on digits: a few dozen milliseconds an epoch, so 2,000 epochs outlast the 8 s budget
    path = space(
        "cut", DEEP.replace("{int: [1, 5], name: convs}", "1").replace("epochs: 1,", "epochs: 2000,")
    )
    result = search(
        path, trials=3, timeout=8, fit_epochs=False
    )  # the spec's epochs, not fitted to the budget
    (trial,) = optuna_trials(stores["storage"], result.study_name)  # no trial starts after the time limit
    reason = trial.user_attrs["specdsl.reason"]
    found = re.fullmatch(
        r"stopped at the study's time limit after (\d+) of 2000 epochs \(its best epoch's val_accuracy (0\.\d+)\)",
        reason,
    )
    assert trial.state.name == "PRUNED" and found, reason
    epochs = int(found.group(1))
    assert 1 <= epochs < 2000 and len(trial.intermediate_values) == epochs
    assert float(found.group(2)) == pytest.approx(max(trial.intermediate_values.values()), abs=5e-5)
    assert (result.complete, result.pruned) == (0, 1)
    (run,) = mlflow_runs(stores["tracking_uri"], result.study_name)["trial"]
    assert (run.info.status, run.data.tags["specdsl.state"], run.data.tags["specdsl.reason"]) == (
        "FINISHED",
        "PRUNED",
        reason,
    )
    assert run.data.tags["specdsl.pruned"] == "true"
    # its objective over the epochs it trained, as its own metric: the MLflow runs table sorts every trial by it
    assert run.data.metrics["objective.val_accuracy"] == max(trial.intermediate_values.values())
    assert run.data.metrics["objective"] == max(trial.intermediate_values.values())


def test_every_trial_run_logs_the_objective_as_the_search_ranks_it_beside_the_epoch_curves(
    search, space, stores
):
    """val_accuracy is a curve (its last epoch in the runs table); objective.val_accuracy is the value Optuna
    holds for the trial: its best epoch."""
    from mlflow import MlflowClient

    path = space(
        "objective", DEEP.replace("{int: [1, 5], name: convs}", "1").replace("epochs: 1,", "epochs: 4,")
    )
    result = search(path, trials=2)
    assert result.complete == 2
    client = MlflowClient(stores["tracking_uri"])
    trials = optuna_trials(stores["storage"], result.study_name)
    runs = mlflow_runs(stores["tracking_uri"], result.study_name)["trial"]
    for t, run in zip(trials, runs):
        curve = [
            m.value
            for m in sorted(client.get_metric_history(run.info.run_id, "val_accuracy"), key=lambda m: m.step)
        ]
        assert len(curve) == 4 and run.data.metrics["val_accuracy"] == curve[-1]
        assert run.data.metrics["objective.val_accuracy"] == t.value == max(curve)
        assert run.data.metrics["objective"] == t.value  # one name whatever the metric: the table sorts by it
        assert [m.step for m in client.get_metric_history(run.info.run_id, "objective.val_accuracy")] == [0]


def test_the_mlflow_sqlite_store_is_written_in_wal_mode_without_fsync_per_commit(tmp_path, search, space):
    import sqlite3

    from specdsl.search import run_search

    db = tmp_path / "mlflow.db"
    out, _ = console()
    run_search(
        space("wal", DEEP),
        trials=1,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=f"sqlite:///{db}",
        console=out,
        plots=False,
    )
    # WAL is a property of the file: a fresh connection reads it back
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # synchronous is one of the connection: MLflow's own engine reports NORMAL (1), where SQLite's default is FULL (2)
    from mlflow.store.db.utils import create_sqlalchemy_engine

    with create_sqlalchemy_engine(f"sqlite:///{db}").connect() as con:
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_best_freezes_a_spec_that_replans_to_the_same_model(search, space, stores, tmp_path):
    path = space("branches", BRANCHES)
    result = search(path, trials=3)
    out = tmp_path / "best.yaml"
    assert run_best_command(result.study_name, storage=stores["storage"], output=out) == 0
    text = out.read_text()
    assert "distribution" not in text and "choice" not in text and "search:" not in text
    frozen = specdsl.check(out)
    trials = {t.number: t for t in optuna_trials(stores["storage"], result.study_name)}
    best = trials[result.best_number]
    assert frozen.params == best.user_attrs["specdsl.result"]["params"]
    assert frozen.name == f"{result.study_name}_trial_{result.best_number}"
    assert text.splitlines()[0] == (
        f"# Trial {result.best_number} of study {result.study_name}: val_accuracy {result.best_value:.4g}"
    )
    # --trial N, to the console
    other = next(n for n in trials if n != result.best_number)
    out2, buf = console()
    assert run_best_command(result.study_name, storage=stores["storage"], trial=other, console=out2) == 0
    assert specdsl.check(buf.getvalue()).params == trials[other].user_attrs["specdsl.result"]["params"]


def test_a_trial_is_frozen_with_the_epoch_it_kept_even_in_a_study_older_than_the_objective_watch(
    search, space, stores
):
    import optuna
    from optuna.storages import RDBStorage

    from specdsl.search._freeze import frozen_text

    path = space("branches", BRANCHES)
    name = search(path, trials=2).study_name
    study = optuna.load_study(study_name=name, storage=stores["storage"])
    assert study.user_attrs["specdsl.watched_from"] == 0
    assert "monitor: val_accuracy" in frozen_text(study, study.trials[1])
    # a study made before trials kept their objective's best epoch has no such attribute
    engine = RDBStorage(stores["storage"]).engine
    with engine.begin() as con:
        con.exec_driver_sql("DELETE FROM study_user_attributes WHERE key = 'specdsl.watched_from'")
    engine.dispose()
    # its trials trained keeping their best val_loss epoch: frozen so, they train again as they did
    old = optuna.load_study(study_name=name, storage=stores["storage"])
    assert "monitor:" not in frozen_text(old, old.trials[1])
    # resumed, its new trials watch their objective, and are frozen with it
    search(path, trials=3)
    resumed = optuna.load_study(study_name=name, storage=stores["storage"])
    assert resumed.user_attrs["specdsl.watched_from"] == 2
    assert "monitor:" not in frozen_text(resumed, resumed.trials[1])
    assert "monitor: val_accuracy" in frozen_text(resumed, resumed.trials[2])


def test_best_names_the_studies_when_one_is_missing(stores, search, space):
    search(space("branches", BRANCHES), trials=1, study_name="alpha-study")
    with pytest.raises(SearchError, match="no study `alpha-studdy` in .*; did you mean `alpha-study`?"):
        run_best_command("alpha-studdy", storage=stores["storage"])


def test_several_objectives_give_a_pareto_front_and_no_pruning(search, space, stores, tmp_path):
    pytest.importorskip("plotly")
    text = BRANCHES.replace(
        "search: {sampler: tpe, startup_trials: 2, seed: 0}",
        "search: {objectives: [{metric: val_accuracy, direction: maximize}, {metric: params, direction: minimize}],"
        " sampler: nsga2, pruner: median, seed: 0}",
    )
    result = search(space("pareto", text), trials=4, plots=True)
    trials = optuna_trials(stores["storage"], result.study_name)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(
        t.intermediate_values == {} for t in trials
    )  # nothing reported: Optuna prunes single objectives only
    for t in trials:
        assert t.values[1] == t.user_attrs["specdsl.result"]["params"]
    assert 1 <= len(result.pareto) <= 4
    assert result.best_number in {n for n, _ in result.pareto}
    parent = mlflow_runs(stores["tracking_uri"], result.study_name)["study"][0]
    from mlflow import MlflowClient

    client = MlflowClient(stores["tracking_uri"])
    files = {f.path for f in client.list_artifacts(parent.info.run_id, "plots")}
    assert files == {
        f"plots/{name}.{suffix}"
        for name in ("optimization_history", "param_importances", "parallel_coordinate", "pareto_front")
        for suffix in ("html", "png")
    }
    # plotly.js inside (they show offline), the Pareto front's axes named after the objectives
    (tmp_path / "plots").mkdir()
    pareto = Path(
        client.download_artifacts(parent.info.run_id, "plots/pareto_front.html", str(tmp_path / "plots"))
    )
    page = pareto.read_text()
    assert '<script src="http' not in page and len(page) > 3_000_000
    assert '"title":{"text":"val_accuracy"}' in page and '"title":{"text":"params"}' in page
    # the architecture of every trial, and of the best beside its spec
    for run in mlflow_runs(stores["tracking_uri"], result.study_name)["trial"]:
        assert "model.svg" in {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"best.yaml", "best_model.svg"} <= {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert parent.data.params["pruner"] == "none (several objectives)"
    (tmp_path / "kept").mkdir()
    kept = MlflowClient(stores["tracking_uri"]).download_artifacts(
        parent.info.run_id, "pareto.yaml", str(tmp_path / "kept")
    )
    assert Path(kept).read_text() == text  # the space as it was read, not read again


def test_rerunning_resumes_the_study_in_the_working_folder(tmp_path, space, monkeypatch):
    """No storage or tracking flags: optuna.db and MLflow's mlflow.db in the working folder; the rerun continues."""
    monkeypatch.chdir(tmp_path)
    path = space("resumable", BRANCHES)
    out, buf = console()
    code = run_search_command(path, trials=2, timeout="10m", epochs=1, console=out)
    assert code == 0 and (tmp_path / "optuna.db").exists() and (tmp_path / "mlflow.db").exists()
    code = run_search_command(path, trials=3, console=out)
    assert code == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = optuna_trials("sqlite:///optuna.db", "resumable")
    runs = mlflow_runs(uri, "resumable")
    assert [t.number for t in trials] == [0, 1, 2]
    assert [int(r.data.tags["specdsl.trial"]) for r in runs["trial"]] == [0, 1, 2]
    assert len(runs["study"]) == 1  # one parent run, reused
    assert {r.data.tags["mlflow.parentRunId"] for r in runs["trial"]} == {runs["study"][0].info.run_id}
    assert runs["study"][0].info.status == "FINISHED"
    assert "specdsl best resumable -o best.yaml" in buf.getvalue()
    assert "mlflow ui    # experiment resumable" in buf.getvalue()
    # --new starts another study instead
    result = run_search(path, trials=1, resume=False, plots=False)
    assert result.study_name == "resumable-2"


def test_a_trial_run_sends_its_parameters_with_its_first_batch(stores):
    """A trial's parameters ride on its first metrics batch (one MLflow call fewer per trial): a trial that trains
    for long shows them at its first flush, a short one with its final batch; both keep them exactly."""
    from mlflow import MlflowClient

    from specdsl.tracking import EpochBuffer, Tracker

    tracker = Tracker(stores["tracking_uri"], "first-batch", "first-batch")
    tracker.ensure_experiment()
    tracker.ensure_parent(None, {}, {})
    client = MlflowClient(stores["tracking_uri"])
    params = {"filters": 16, "lr": 0.003, "layers": [1, 2]}

    long = tracker.start_trial(0, params)
    assert client.get_run(long).data.params == {}
    buffer = EpochBuffer(tracker, long, every=0.0)  # flushes at every epoch
    buffer.add(0, {"loss": 0.5, "val_accuracy": 0.75})
    run = client.get_run(long)
    assert run.info.status == "RUNNING"
    assert run.data.params == {"filters": "16", "lr": "0.003", "layers": "[1, 2]"}
    assert run.data.metrics == {"loss": 0.5, "val_accuracy": 0.75}
    buffer.add(1, {"loss": 0.25, "val_accuracy": 0.875})
    tracker.finish_trial(long, "COMPLETE", metrics={"params": 1234}, buffer=buffer)
    run = client.get_run(long)
    assert (run.info.status, run.data.params["filters"]) == ("FINISHED", "16")
    assert [m.value for m in client.get_metric_history(long, "val_accuracy")] == [0.75, 0.875]

    short = tracker.start_trial(1, params)
    buffer = EpochBuffer(tracker, short)  # every 10 s: nothing sent before the end
    buffer.add(0, {"loss": 0.5})
    assert client.get_run(short).data.params == {}
    tracker.finish_trial(short, "PRUNED", reason="pruned by the median pruner after epoch 1", buffer=buffer)
    run = client.get_run(short)
    assert (run.info.status, run.data.tags["specdsl.reason"], run.data.tags["specdsl.pruned"]) == (
        "FINISHED",
        "pruned by the median pruner after epoch 1",
        "true",
    )
    assert run.data.params == {"filters": "16", "lr": "0.003", "layers": "[1, 2]"}
    assert run.data.metrics == {"loss": 0.5}


def test_batches_keep_to_mlflow_limits():
    from specdsl.tracking._study import _chunks

    chunks = list(_chunks(list(range(1500)), list(range(150)), list(range(3))))
    sizes = [(len(c["metrics"]), len(c["params"]), len(c["tags"])) for c in chunks]
    assert sizes == [(897, 100, 3), (603, 50, 0)]
    assert [m for c in chunks for m in c["metrics"]] == list(range(1500))
    assert list(_chunks([], [], [])) == []

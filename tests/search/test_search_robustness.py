"""A search meets a machine's limits: a trial over its memory bound (estimated before it is built, or measured while
it trains), an allocation that fails, an MLflow artifact folder that cannot be written. Real SQLite, MLflow, torch
and allocations; the `digits` dataset (8x8)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from search_helpers import cli_env, mlflow_runs, optuna_trials, searched, specdsl_cmd
from support import address_space_limit

pytest.importorskip("optuna")
pytest.importorskip("mlflow")
pytest.importorskip("torch")


# units 16: 1,210 parameters, an estimated 259.4 KiB to train; units 100000: 7,500,010 parameters, 318.3 MiB.
BOUNDED = """
input: [8, 8, 1]
layers:
  - flatten
  - dense: {units: {choice: [16, 100000], name: units}, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
search: {sampler: random, pruner: none, seed: 0, trial_memory: 64MiB}
"""

STATIC_REASON = (
    "trial_memory: training would take about 318.3 MiB (171.7 MiB for 7,500,010 parameters with their "
    "gradients and adam state, 146.7 MiB of activations for batches of 128), more than the 64.0 MiB "
    "allowed."
)
# the process running the tests holds torch, MLflow and Optuna: far more than 64 MiB before any trial trains
GUARD_REASON = re.compile(
    r"out of memory: the process's resident memory reached [\d,]+\.\d [MG]iB when training began "
    r"\(the model built, the data in memory\), beyond the 64\.0 MiB of search\.trial_memory\. "
    r"Lower `train\.batch_size`, make the model smaller, or raise search\.trial_memory\."
)


def run(path: Path, stores: dict, study: str, **kwargs):
    return searched(path, stores, study, **kwargs)


def test_a_model_over_the_memory_bound_is_pruned_before_it_is_built_and_one_that_passes_it_fails(
    space, stores
):
    path = space("bounded", BOUNDED)
    result = run(path, stores, "bounded", trials=2)
    trials = optuna_trials(stores["storage"], "bounded")
    runs = {
        int(r.data.tags["specdsl.trial"]): r for r in mlflow_runs(stores["tracking_uri"], "bounded")["trial"]
    }
    assert len(runs) == len(trials)
    rejected = [t for t in trials if t.user_attrs.get("specdsl.rejected")]
    trained = [t for t in trials if not t.user_attrs.get("specdsl.rejected")]
    # the budget counts trained trials: two of them, whatever the bound did to them; invalid samples on top
    assert (result.trials, result.failed, result.complete, result.invalid) == (2, 2, 0, len(rejected))
    assert len(rejected) >= 1 and len(trials) == 2 + len(rejected)
    for t in rejected:  # statically: planned, estimated, never built
        assert (t.state.name, t.params, t.user_attrs["specdsl.reason"]) == (
            "PRUNED",
            {"units": 100000},
            STATIC_REASON,
        )
        r = runs[t.number]
        assert (r.info.status, r.data.tags["specdsl.state"], r.data.tags["specdsl.pruned"]) == (
            "FINISHED",
            "PRUNED",
            "true",
        )
        assert r.data.tags["specdsl.reason"] == f"invalid: {STATIC_REASON}"
        assert r.data.metrics["overhead.spec_plan_ms"] < 50
        assert "specdsl.mlflow_run_id" not in t.user_attrs  # no training run was started for it
    for t in trained:  # at run time: the process is over the bound as soon as the model is built
        reason = t.user_attrs["specdsl.reason"]
        assert (t.state.name, t.params) == ("FAIL", {"units": 16})
        assert GUARD_REASON.fullmatch(reason), reason
        r = runs[t.number]
        assert (r.info.status, r.data.tags["specdsl.state"], r.data.tags["specdsl.reason"]) == (
            "FAILED",
            "FAIL",
            reason,
        )
        assert r.data.metrics["memory_estimate"] == 265_584  # 24 x 1,210 parameters + 3 x 616 bytes x 128
        assert r.data.metrics["memory_peak"] > 64 * 1024**2
        assert t.user_attrs["specdsl.result"]["epochs"] == 0
    assert re.search(
        r"note: this process already holds [\d,]+\.\d [MG]iB of memory, more than the 64\.0 MiB of "
        r"search\.trial_memory: every trial will fail; raise it\.",
        result.output,
    )
    assert f"{len(rejected)} invalid samples rejected before training" in result.output


# Option 1 asks for a 8000x8000x16 output per example: 524,288,000,000 bytes for a batch of 128.
ALLOCATION = """
input: [8, 8, 1]
layers:
  - name: layer
    choice:
      - conv2d: {filters: 4, kernel: 3, activation: relu}
      - conv2d_transpose: {filters: 16, kernel: 1, strides: 1000}
      - conv2d: {filters: 8, kernel: 3, activation: relu}
  - global_avgpool2d
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
search: {sampler: grid, pruner: none, seed: 0}
"""

OOM_REASON = (
    "out of memory: an allocation failed while training (RuntimeError: DefaultCPUAllocator: can't allocate "
    "memory: you tried to allocate 524288000000 bytes. Error code 12 (Cannot allocate memory)). Lower "
    "`train.batch_size`, or make the model smaller."
)


def test_a_failed_allocation_fails_its_trial_as_out_of_memory_and_the_study_goes_on(space, stores):
    path = space("allocation", ALLOCATION)
    with address_space_limit(4 * 1024**3):  # a 488 GiB request fails here on any machine
        result = run(path, stores, "allocation", trials=3)
    trials = optuna_trials(stores["storage"], "allocation")
    got = {t.params["layer"]: (t.state.name, t.user_attrs.get("specdsl.reason")) for t in trials}
    assert got == {0: ("COMPLETE", None), 1: ("FAIL", OOM_REASON), 2: ("COMPLETE", None)}
    assert (result.trials, result.complete, result.failed, result.invalid) == (3, 2, 1, 0)
    runs = {
        int(r.data.tags["specdsl.trial"]): r
        for r in mlflow_runs(stores["tracking_uri"], "allocation")["trial"]
    }
    oom = next(t for t in trials if t.params["layer"] == 1)
    assert (runs[oom.number].info.status, runs[oom.number].data.tags["specdsl.reason"]) == (
        "FAILED",
        OOM_REASON,
    )
    assert oom.number < max(t.number for t in trials)  # a trial trained after it


def test_an_unwritable_artifact_folder_stops_the_search_before_any_trial(tmp_path, stores):
    """As root, permissions do not stop writes: the experiment's artifact folder is below a regular file."""
    from mlflow import MlflowClient

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    client = MlflowClient(stores["tracking_uri"])
    exp = client.create_experiment("blocked-artifacts", artifact_location=str(blocker / "artifacts"))
    path = tmp_path / "blocked.yaml"
    path.write_text(BOUNDED.replace("trial_memory: 64MiB", "trial_memory: 8GiB"))
    storage = tmp_path / "optuna.db"
    done = subprocess.run(
        specdsl_cmd(
            "search",
            str(path),
            "--trials",
            "2",
            "--storage",
            f"sqlite:///{storage}",
            "--tracking-uri",
            stores["tracking_uri"],
            "--experiment",
            "blocked-artifacts",
        ),
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (done.returncode, done.stdout) == (5, "")
    assert done.stderr == (
        f"error: the MLflow artifact folder {blocker}/artifacts is not writable (Not a directory), so the runs of "
        "experiment `blocked-artifacts` could not keep their files; no trial was started. Run from a folder you can "
        "write to, pass --tracking-uri, or use an experiment whose artifact location is writable (--experiment).\n"
    )
    assert not storage.exists()  # no Optuna study was made
    assert client.search_runs([exp]) == []  # and no MLflow run: neither the study's nor a trial's

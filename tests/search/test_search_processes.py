"""The search as processes: kill -9 in the middle of a trial and resume; workers sharing SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from search_helpers import cli_env as env
from search_helpers import mlflow_runs, optuna_trials, specdsl_cmd

pytest.importorskip("optuna")
pytest.importorskip("mlflow")
pytest.importorskip("torch")

SPACE = """
input: [8, 8, 1]
layers:
  - conv2d: {filters: {choice: [4, 8], name: filters}, kernel: 3, activation: relu}
  - flatten
  - dense: {units: {int: [8, 32], step: 8, name: units}, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: {float: [0.001, 0.01], log: true, name: lr}}, epochs: EPOCHS, batch_size: 64}
search: {sampler: random, pruner: none, seed: 0}
"""


def check_every_trial_once(storage: str, uri: str, study: str, trained: int) -> list:
    """Every Optuna trial has exactly one MLflow run, closed with the trial's state; none is left running."""
    trials = optuna_trials(storage, study)
    runs = mlflow_runs(uri, study)
    assert [t.number for t in trials] == list(range(len(trials)))
    assert [int(r.data.tags["specdsl.trial"]) for r in runs["trial"]] == [t.number for t in trials]
    status = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
    for t, run in zip(trials, runs["trial"]):
        assert (run.info.status, run.data.tags["specdsl.state"]) == (status[t.state.name], t.state.name)
        assert run.data.tags.get("specdsl.pruned") == ("true" if t.state.name == "PRUNED" else None)
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
    assert len(runs["study"]) == 1
    assert sum(1 for t in trials if not t.user_attrs.get("specdsl.rejected")) == trained
    return trials


def test_two_workers_on_sqlite_killed_with_kill_9_then_the_same_command_resumes(tmp_path, stores):
    """`specdsl search --workers 2` is killed (kill -9) while training; rerunning the same command keeps every
    finished trial, fails the killed ones in Optuna and MLflow, and completes the budget: every trial once."""
    path = tmp_path / "killme.yaml"
    path.write_text(SPACE.replace("EPOCHS", "40"))
    cmd = specdsl_cmd(
        "search",
        str(path),
        "--trials",
        "5",
        "--workers",
        "2",
        "--storage",
        stores["storage"],
        "--tracking-uri",
        stores["tracking_uri"],
    )
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed: list[int] = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
            try:
                trials = optuna_trials(stores["storage"], "killme")
            except KeyError:
                continue
            if any(t.state.name == "RUNNING" and "specdsl.mlflow_run_id" in t.user_attrs for t in trials):
                os.kill(proc.pid, signal.SIGKILL)  # the other worker follows its parent within a second
                killed = [t.number for t in trials if t.state.name == "RUNNING"]
                break
    finally:
        proc.wait(timeout=30)
    assert killed, "the search should have been killed while training"
    time.sleep(1.5)
    before = {t.number: t.state.name for t in optuna_trials(stores["storage"], "killme")}
    assert set(before.values()) == {"RUNNING"}  # 40 epochs: nothing finished
    runs = mlflow_runs(stores["tracking_uri"], "killme")["trial"]
    assert runs and {r.info.status for r in runs} == {"RUNNING"}

    path.write_text(SPACE.replace("EPOCHS", "1"))  # the rerun trains quickly
    done = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    left = sorted(before)
    assert (
        f"{len(left)} trial(s) left running by a stopped worker were marked failed: "
        + ", ".join(f"#{n}" for n in left)
    ) in done.stdout
    trials = check_every_trial_once(stores["storage"], stores["tracking_uri"], "killme", trained=5)
    assert [t.state.name for t in trials] == ["FAIL"] * len(left) + ["COMPLETE"] * (5 - len(left))
    runs = mlflow_runs(stores["tracking_uri"], "killme")["trial"]
    for t in trials[: len(left)]:
        reason = t.user_attrs["specdsl.reason"]
        assert reason.startswith("its worker process (") and reason.endswith(") died while it ran")
        assert runs[t.number].data.tags["specdsl.reason"] == reason
    assert (
        len({t.user_attrs["specdsl.worker"]["pid"] for t in trials[len(left) :]}) == 2
    )  # both workers trained


@pytest.mark.postgres
def test_four_workers_on_postgresql_run_every_trial_once(tmp_path, stores, postgres_url):
    path = tmp_path / "four.yaml"
    path.write_text(SPACE.replace("EPOCHS", "1"))
    done = subprocess.run(
        specdsl_cmd(
            "search",
            str(path),
            "--trials",
            "8",
            "--workers",
            "4",
            "--storage",
            postgres_url,
            "--tracking-uri",
            stores["tracking_uri"],
        ),
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trials = check_every_trial_once(postgres_url, stores["tracking_uri"], "four", trained=8)
    assert len({t.user_attrs["specdsl.worker"]["pid"] for t in trials}) >= 2
    assert "8 trials trained (8 complete, 0 pruned, 0 failed)" in done.stdout

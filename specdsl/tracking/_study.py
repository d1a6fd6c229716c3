"""MLflow for a study: one parent run per study, one nested run per trial, through ``MlflowClient``.

Calls are few and batched: a trial's run is ``create_run`` (with its tags), two small text artifacts written
straight to the run's artifact store, one ``log_batch`` with its parameters and every epoch's metrics, and
``set_terminated``; a trial that trains for long sends its parameters and epochs so far every 10 s (EpochBuffer), so
the MLflow UI follows it. Runs are found again by their tags (``specdsl.study``, ``specdsl.trial``), so a run left
RUNNING by a killed worker is closed FAILED when the study resumes, with its parameters if it had not sent them.
A store that fails (a corrupt or read-only ``mlflow.db``, a full disk) is one StoreError naming it, from any call.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from typing import Any

from ._store import StoreClient, check_artifacts_writable
from ._tags import (
    EXPERIMENT_KIND_TAG,
    PARENT_TAG,
    PRUNED_TAG,
    REASON_MAX,
    REASON_TAG,
    REJECTED_TAG,
    ROLE_TAG,
    SEARCH_SECONDS_METRIC,
    STATE_TAG,
    STUDY_TAG,
    TRAINING_KIND,
    TRIAL_TAG,
    param_text,
    tag_values,
)

# Optuna state -> MLflow run status: a pruned trial ran as the search asked (its tag says it was pruned)
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Tracker:
    """The MLflow side of one study (in one process)."""

    def __init__(self, tracking_uri: str, experiment: str, study_name: str):
        self.uri = tracking_uri
        self.client = StoreClient(tracking_uri)
        self.experiment_name = experiment
        self.study_name = study_name
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self._params: dict[str, dict[str, Any]] = {}  # a trial run's parameters until its first batch
        self._artifact_uris: dict[str, str] = {}
        # the parent run's duration is the study's working time: what earlier invocations worked (their runs'
        # durations), and when this one began
        self.parent_start_ms: int | None = None
        self.worked_before_s = 0.0
        self.began = time.time()

    # -- study level

    def ensure_experiment(self) -> str:
        """The study's experiment, created (or restored) when needed, and tagged as model training
        (``mlflow.experimentKind``: MLflow 3 opens it on its runs table) unless it says its kind already."""
        from mlflow.exceptions import MlflowException

        kind = {EXPERIMENT_KIND_TAG: TRAINING_KIND}
        exp = self.client.get_experiment_by_name(self.experiment_name)
        if exp is None:
            try:
                self.experiment_id = self.client.create_experiment(self.experiment_name, tags=kind)
                return self.experiment_id
            except MlflowException:  # another worker created it meanwhile
                exp = self.client.get_experiment_by_name(self.experiment_name)
        elif exp.lifecycle_stage == "deleted":
            self.client.restore_experiment(exp.experiment_id)
        self.experiment_id = exp.experiment_id
        if EXPERIMENT_KIND_TAG not in exp.tags:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
        return self.experiment_id

    def check_artifacts(self) -> None:
        """A TrainError, before any trial trains, when the experiment's (local) artifact folder cannot be written:
        every trial's run keeps files there."""
        location = self.client.get_experiment(self.experiment_id).artifact_location
        self.client.artifacts = location
        check_artifacts_writable(
            location,
            consequence=f"so the runs of experiment `{self.experiment_name}` could not keep their files; "
            "no trial was started",
        )

    def ensure_parent(
        self, known_id: str | None, params: dict[str, Any], tags: dict[str, str]
    ) -> tuple[str, bool]:
        """The study's parent run: ``known_id`` if it still exists, else a new one. Returns (run id, created)."""
        from mlflow.entities import Param, RunTag
        from mlflow.exceptions import MlflowException

        self.began = time.time()
        if known_id:
            try:
                run = self.client.get_run(known_id)
                if run.info.lifecycle_stage != "deleted":
                    self.parent_id = known_id
                    self.parent_start_ms = run.info.start_time
                    self.worked_before_s = _worked_s(run)
                    if run.info.status != "RUNNING":
                        self.client.update_run(known_id, status="RUNNING")
                    self.client.log_batch(known_id, tags=[RunTag(k, v) for k, v in tag_values(tags).items()])
                    return known_id, False
            except MlflowException:
                pass
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.study_name,
            tags=tag_values({STUDY_TAG: self.study_name, ROLE_TAG: "study", **tags}),
        )
        self.parent_id = run.info.run_id
        self.parent_start_ms = run.info.start_time
        self.worked_before_s = 0.0
        self.client.log_batch(self.parent_id, params=[Param(k, param_text(v)) for k, v in params.items()])
        return self.parent_id, True

    def worked_s(self) -> float:
        """The study's working time so far: its earlier invocations' and this one's (idle time between them
        left out)."""
        return self.worked_before_s + (time.time() - self.began)

    def log_space(self, path: str, text: str) -> None:
        """The search space as it was read (the file is not read again: it may have changed since)."""
        self.client.log_text(self.parent_id, text, os.path.basename(path))

    def finish_parent(
        self,
        status: str,
        metrics: dict[str, float],
        tags: dict[str, str],
        texts: dict[str, str],
        files: Iterable[str] = (),
    ) -> None:
        """Close the study's run with its final metrics, tags and files; its end is set so that its duration is
        the study's working time (``search_seconds``, a metric too), not the time since it was first started."""
        worked = self.worked_s()
        self.send(self.parent_id, _final({**metrics, SEARCH_SECONDS_METRIC: worked}), tags)
        for name, text in texts.items():
            self.client.log_text(self.parent_id, text, name)
        for path in files:
            self.client.log_artifact(self.parent_id, path, "plots")
        end = None if self.parent_start_ms is None else self.parent_start_ms + round(worked * 1000)
        self.client.set_terminated(self.parent_id, status, end_time=end)

    # -- trial level

    def _trial_tags(self, number: int, extra: dict[str, str]) -> dict[str, str]:
        """The tags of trial ``number``'s run: its study, parent and number, and ``extra``."""
        tags = {
            PARENT_TAG: self.parent_id,
            STUDY_TAG: self.study_name,
            TRIAL_TAG: str(number),
            ROLE_TAG: "trial",
        }
        return tag_values({**tags, **extra})

    def start_trial(self, number: int, params: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """A nested run for trial ``number`` (1 call). Its parameters are sent with the run's first batch of metrics
        (``flush`` or ``finish_trial``), one call fewer per trial than a batch of their own."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study_name}-{number}",
            tags=self._trial_tags(number, tags or {}),
        )
        run_id = run.info.run_id
        self._params[run_id] = params
        self._artifact_uris[run_id] = run.info.artifact_uri
        return run_id

    def rejected_trial(
        self, number: int, params: dict[str, Any], reason: str, metrics: dict[str, float]
    ) -> str:
        """A closed nested run for an invalid sample (3 calls: no artifacts, nothing was built)."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study_name}-{number}",
            tags=self._trial_tags(
                number,
                {
                    STATE_TAG: "PRUNED",
                    PRUNED_TAG: "true",
                    REASON_TAG: f"invalid: {reason}"[:REASON_MAX],
                    REJECTED_TAG: "true",
                },
            ),
        )
        run_id = run.info.run_id
        self._params[run_id] = params
        self.send(run_id, _final(metrics))
        self.client.set_terminated(run_id, STATUS["PRUNED"])
        return run_id

    def log_texts(self, run_id: str, texts: dict[str, str]) -> None:
        """Small text artifacts, in one call to the run's artifact store (known from ``start_trial``: MLflow would
        read the run back to find it)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for name, text in texts.items():
                with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                    f.write(text)
            repo = self._artifact_repo(run_id)
            if repo is not None:
                self.client.call(repo.log_artifacts, tmp)
            else:
                self.client.log_artifacts(run_id, tmp)

    def _artifact_repo(self, run_id: str) -> Any:
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            return None
        try:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            return get_artifact_repository(uri, tracking_uri=self.uri)
        except Exception:  # an MLflow without this registry: its client finds the store itself
            return None

    def send(self, run_id: str, metrics: list[Any], tags: dict[str, str] | None = None) -> None:
        """Metrics (and tags) of a run, with its parameters if not sent yet, in as few ``log_batch`` calls as
        MLflow's limits allow (1,000 values a call, 100 of them parameters or tags)."""
        from mlflow.entities import Param, RunTag

        params = [Param(k, param_text(v)) for k, v in (self._params.pop(run_id, None) or {}).items()]
        tag_list = [RunTag(k, v) for k, v in tag_values(tags or {}).items()]
        if not (metrics or params or tag_list):
            return
        for chunk in _chunks(metrics, params, tag_list):
            self.client.log_batch(run_id, **chunk)

    def log_values(self, run_id: str, values: dict[str, float]) -> None:
        """Final values (step 0) added to a run, finished or not: e.g. a trial's re-evaluation after the study."""
        self.send(run_id, _final(values))

    def finish_trial(
        self,
        run_id: str,
        state: str,
        *,
        reason: str | None = None,
        metrics: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        buffer: EpochBuffer | None = None,
    ) -> None:
        """Final metrics, the buffered epoch metrics, the parameters if not sent yet, the state and reason in one
        batch; then the run's status."""
        all_tags = {STATE_TAG: state, **(tags or {})}
        if state == "PRUNED":
            all_tags[PRUNED_TAG] = "true"
        if reason:
            all_tags[REASON_TAG] = reason[:REASON_MAX]
        batch = buffer.take() if buffer is not None else []
        batch += _final(metrics or {})
        self.send(run_id, batch, all_tags)
        self._artifact_uris.pop(run_id, None)
        self.client.set_terminated(run_id, STATUS.get(state, "FAILED"))

    # -- reconciliation after a crash

    def trial_runs(self) -> dict[int, list[Any]]:
        """Every nested run of this study, by trial number."""
        runs: dict[int, list[Any]] = {}
        token = None
        while True:
            study = _quote(self.study_name)
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=(f"tags.`{STUDY_TAG}` = {study} and " if study else "")
                + f"tags.`{ROLE_TAG}` = 'trial'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                if run.data.tags.get(STUDY_TAG) == self.study_name:
                    runs.setdefault(int(run.data.tags[TRIAL_TAG]), []).append(run)
            token = page.token
            if not token:
                return runs

    def reconcile(self, trials: list[Any]) -> int:
        """Make MLflow agree with Optuna for finished trials: a run still RUNNING is closed with the trial's state
        and reason, and a finished trial with no run (its worker died before creating it) gets a closed one.
        Returns how many runs were closed or created."""
        runs = self.trial_runs()
        fixed = 0
        for t in trials:
            if t.state.name not in STATUS:
                continue
            # the reason the search keeps in the trial's user attributes (under the name of the MLflow tag)
            reason = t.user_attrs.get(REASON_TAG) or "its worker stopped (killed or interrupted) while it ran"
            mine = runs.get(t.number, [])
            if not mine:
                run_id = self.start_trial(t.number, {k: v for k, v in t.params.items()})
                self.finish_trial(run_id, t.state.name, reason=reason)
                fixed += 1
                continue
            for run in mine:
                if run.info.status == "RUNNING":
                    if (
                        not run.data.params and t.params
                    ):  # killed before its first batch: the trial's parameters
                        self._params[run.info.run_id] = dict(t.params)
                    self.finish_trial(run.info.run_id, t.state.name, reason=reason)
                    fixed += 1
        return fixed


class EpochBuffer:
    """Per-epoch metrics of one run, sent in batches: at most one call every ``every`` seconds, and the rest with
    the run's final batch (one call per epoch would cost a few % of a short epoch)."""

    def __init__(self, tracker: Tracker, run_id: str, every: float = 10.0):
        self.tracker = tracker
        self.run_id = run_id
        self.every = every
        self.pending: list[Any] = []
        self.last = time.monotonic()

    def add(self, step: int, logs: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        ts = _now_ms()
        self.pending += [Metric(str(k), float(v), ts, step) for k, v in logs.items() if _finite(v)]
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        self.tracker.send(self.run_id, self.take())

    def take(self) -> list[Any]:
        batch, self.pending = self.pending, []
        self.last = time.monotonic()
        return batch


def _worked_s(run: Any) -> float:
    """What a study's run says its study worked before: its duration once closed, else (a run left RUNNING by a
    killed search) the working time it last logged."""
    if run.info.status != "RUNNING" and run.info.end_time and run.info.start_time:
        return max(0.0, (run.info.end_time - run.info.start_time) / 1000)
    value = run.data.metrics.get(SEARCH_SECONDS_METRIC)
    return float(value) if _finite(value) else 0.0


def _final(values: dict[str, Any]) -> list[Any]:
    """A run's final values as MLflow metrics (step 0, now); values that are not finite numbers are left out."""
    from mlflow.entities import Metric

    ts = _now_ms()
    return [Metric(k, float(v), ts, 0) for k, v in values.items() if _finite(v)]


def _chunks(metrics: list[Any], params: list[Any], tags: list[Any]) -> Iterable[dict[str, list[Any]]]:
    """``log_batch`` arguments within MLflow's limits: at most 1,000 values a call, of which at most 100
    parameters and 100 tags."""
    while metrics or params or tags:
        p, params = params[:100], params[100:]
        t, tags = tags[:100], tags[100:]
        m, metrics = metrics[: 1000 - len(p) - len(t)], metrics[1000 - len(p) - len(t) :]
        yield {"metrics": m, "params": p, "tags": t}


def _quote(text: str) -> str | None:
    """``text`` as a string in an MLflow filter, which has no escapes: in the quotes it does not hold, or None when it
    holds both (the runs are then matched on the tag after the search)."""
    for quote in ("'", '"'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    return None

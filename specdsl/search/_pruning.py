"""A trained trial's epochs: each reported to the pruner (the first objective's metric), to MLflow (buffered)
and to the progress; the pruner fed the study as the trial began (:class:`StudyAsAsked`) rather than a read
of the storage at every epoch."""

from __future__ import annotations

import math
import time
from typing import Any

from .._compat._optuna import cached_trials, latest_trial


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def epoch_reporter(objective: Any, trial: Any, run_id: str, epochs: int | None) -> Any:
    """A ``specdsl.train.Callback`` reporting every epoch of ``trial`` (run by ``objective``, an Objective):
    to the pruner, to MLflow (buffered, see EpochBuffer), to the progress. It keeps the epochs' logs
    (``history``) and the time spent reporting them (``track_s``, ``prune_s``)."""
    from ..tracking import EpochBuffer
    from ..train import Callback

    class EpochReporter(Callback):
        def __init__(self) -> None:
            self.history: list[dict] = []
            self.epochs_done = 0
            self.track_s = 0.0
            self.prune_s = 0.0  # Optuna's report and the pruner
            self.buffer = EpochBuffer(objective.tracker, run_id)
            self.study = StudyAsAsked(trial.study)
            self.stop_at: int | None = None  # the epochs fitted to the budget, when this trial fitted them

        def on_epoch_end(self, epoch: int, logs: dict) -> None:
            import optuna

            logs = dict(logs or {})
            self.history.append(logs)
            self.epochs_done = epoch + 1
            t = time.perf_counter()
            self.buffer.add(epoch, logs)
            self.track_s += time.perf_counter() - t
            metric = objective.prune_metric
            if objective.progress is not None:
                objective.progress.epoch(trial.number, epoch, epochs, logs, metric or objective.metrics[0])
            budget = objective.budget
            fitted = budget.after_epoch(trial.study, epoch, logs, epochs)
            if fitted is not None:
                self.stop_at = fitted
                if objective.progress is not None and budget.note:
                    objective.progress.say(budget.note)
            value = logs.get(metric) if metric else None
            if is_number(value) and math.isfinite(value):  # a non-finite loss is the training loop's to fail
                t = time.perf_counter()
                trial.report(float(value), epoch)
                # every pruner here leaves the first `warmup_epochs` epochs alone: no need to ask it then; and
                # pruning after the last epoch would save nothing, only lose a trial that trained to its end
                last = epochs is not None and epoch + 1 >= epochs
                prune = epoch >= objective.search.warmup_epochs and not last and self._should_prune()
                self.prune_s += time.perf_counter() - t
                if prune:
                    raise optuna.TrialPruned(
                        f"pruned by the {objective.search.pruner} pruner after epoch {epoch + 1} "
                        f"({metric} {value:.4g})"
                    )
            if (
                self.stop_at is not None
                and epoch + 1 >= self.stop_at
                and epochs is not None
                and epoch + 1 < epochs
            ):
                self.stop_training = True  # complete at the fitted epochs: the test split is evaluated

        def _should_prune(self) -> bool:
            """Trial.should_prune, with the study as the trial began (see StudyAsAsked); Optuna's own
            should_prune where the trial as its pruner sees it cannot be had."""
            latest = latest_trial(trial)
            if latest is None:
                return trial.should_prune()
            return trial.study.pruner.prune(self.study, latest)

    return EpochReporter()


class StudyAsAsked:
    """The study as a pruner sees it during a trial: its trials from the copy Optuna keeps in memory for the
    trial's sampler (read once a trial, at its first suggestion or its first pruning check), instead of a read of
    the storage at every epoch (7 ms with 150 trials on SQLite, more with more). With one worker nothing differs;
    with several, trials that others finish meanwhile count from the next trial on. All else is the study's."""

    def __init__(self, study: Any):
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[Any]:
        return cached_trials(self._study, deepcopy=deepcopy, states=states)

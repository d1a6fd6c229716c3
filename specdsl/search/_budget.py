"""A study's work fitted to its time budget: the first trial's first epoch is timed, and from it and the time left
every trial's epochs are chosen so that about :data:`FULL_TRIALS` trials a worker could train to their end in it
(pruned trials cost less, so more trials run). The first trial stops at the chosen count (its epoch reporter asks
training to stop, ``stop_training``, so its test split is evaluated as any trial's) and counts as complete; the
count is kept in the study (``specdsl.fitted_epochs``), so that every worker and every resumption
trains the same epochs and the trials stay comparable.

Only for a study with a timeout whose epochs the command line did not set (``--epochs``, or
``SearchOptions(fit_epochs=False)``, keep the spec's ``train.epochs``). Pure apart from the study's user attribute.
"""

from __future__ import annotations

import time
from typing import Any

from ._config import FITTED_ATTR, StudyConfig

FULL_TRIALS = 8  # trials of the chosen epochs that the time left after the first epoch would hold
MIN_EPOCHS = 2  # and never fewer epochs a trial than this (or the warm-up before pruning, plus one)


def fitted_epochs(epoch_s: float, left_s: float, planned: int, warmup: int = 0, workers: int = 1) -> int:
    """Epochs a trial, for epochs of ``epoch_s`` seconds and ``left_s`` seconds left: about :data:`FULL_TRIALS`
    trials' worth, at least :data:`MIN_EPOCHS` (and ``warmup`` + 1), at most ``planned`` (the spec's).
    ``workers`` training in parallel (each epoch timed as one of them takes it) hold that many times the trials.

        >>> fitted_epochs(30.0, 800.0, 50)   # a busy machine: 800 s hold 8 trials of 3 epochs
        3
        >>> fitted_epochs(30.0, 800.0, 50, workers=2)   # two workers: 16 trials of 6 epochs
        6
        >>> fitted_epochs(2.0, 800.0, 50)    # a quiet one: the spec's 50 epochs fit
        50
    """
    fit = int(left_s * max(1, workers) // (FULL_TRIALS * epoch_s)) if epoch_s > 0 else planned
    floor = min(planned, max(MIN_EPOCHS, warmup + 1))
    return max(floor, min(planned, fit))


class EpochBudget:
    """One worker's side of fitting epochs to the budget: :meth:`epochs_for` at a trial's start, :meth:`after_epoch`
    after each of its epochs (it says when the first trial is to stop). ``note`` says what was chosen, once."""

    def __init__(self, cfg: StudyConfig, warmup: int = 0):
        self.on = cfg.fit_epochs and cfg.deadline is not None
        self.workers = cfg.workers
        self.deadline = cfg.deadline
        self.warmup = warmup
        self.fitted: int | None = None
        self.note: str | None = None

    def epochs_for(self, study: Any, planned: int | None) -> int | None:
        """The epochs a trial trains: the study's fitted count once there is one, else the spec's."""
        if not self.on or planned is None:
            return planned
        if self.fitted is None:
            stored = study.user_attrs.get(FITTED_ATTR)
            self.fitted = stored if isinstance(stored, int) else None
        return planned if self.fitted is None else min(planned, self.fitted)

    def after_epoch(self, study: Any, epoch: int, logs: dict[str, Any], epochs: int | None) -> int | None:
        """After the first trial's first epoch: the fitted count, kept in the study (and returned: the trial stops
        there); None otherwise."""
        if not self.on or self.fitted is not None or epoch != 0 or epochs is None or self.deadline is None:
            return None
        epoch_s = logs.get("epoch_seconds")
        if not isinstance(epoch_s, (int, float)) or epoch_s <= 0:
            return None
        stored = study.user_attrs.get(FITTED_ATTR)  # another worker's first trial fitted them meanwhile
        if isinstance(stored, int):
            self.fitted = stored
            return stored
        left = self.deadline - time.time()
        self.fitted = fitted_epochs(float(epoch_s), left, epochs, self.warmup, self.workers)
        study.set_user_attr(FITTED_ATTR, self.fitted)
        if self.fitted < epochs:
            self.note = (
                f"budget: the first epoch took {epoch_s:.1f} s and {left:.0f} s are left, so every trial trains "
                f"{self.fitted} of its {epochs} epochs (about {FULL_TRIALS * max(1, self.workers)} trials' worth"
                f"{f' in {self.workers} workers' if self.workers > 1 else ''}; --epochs N sets them)"
            )
        else:
            self.note = (
                f"budget: the first epoch took {epoch_s:.1f} s; the spec's {epochs} epochs fit the time left"
            )
        return self.fitted


def cut_info(done: int, planned: int | None, values: list[float], history: list[dict]) -> dict[str, Any]:
    """What a trial cut at the study's time limit keeps (``specdsl.cut``): its epochs, its best epoch's values and
    the seconds an epoch took, for the summary when no trial completed."""
    secs = [h["epoch_seconds"] for h in history if isinstance(h.get("epoch_seconds"), (int, float))]
    return {
        "epochs": done,
        "of": planned,
        "values": [float(v) for v in values],
        "epoch_s": sum(secs) / len(secs) if secs else None,
    }

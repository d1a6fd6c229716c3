"""What a study did: its trials counted by state, the best (and for several objectives, the Pareto front), and
what its trials cost besides training, from what every worker kept in the study (:class:`OverheadTally`)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ._config import CHOSEN_ATTR, CUT_ATTR, HELD_OUT, OVERHEAD_ATTR, REJECTED, RESULT
from ._storage import DEFAULT_STORAGE

MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


@dataclass
class StudyResult:
    """What a search did. ``best_*`` are for the first objective (for several objectives, the Pareto-optimal
    trial that is best on the first); ``pareto`` lists (trial number, values) of the Pareto front."""

    study_name: str
    storage: str
    experiment: str
    tracking_uri: str
    parent_run_id: str | None
    metrics: list[str]
    directions: list[str]
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    invalid: int = 0
    running: int = 0
    best_number: int | None = None
    best_values: tuple[float, ...] | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    pareto: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)
    seconds: float = 0.0
    overhead: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    experiment_id: str | None = None
    timeout: float | None = None  # the budget, in seconds
    # when no trial completed: the best trial cut at the time limit, which stands in as the best (specdsl.cut)
    best_cut: dict[str, Any] | None = None
    # the final model chosen by re-evaluation (_select.Chosen): it is the best trial, with an estimate
    chosen: Any = None

    @property
    def trials(self) -> int:
        """Trials that trained (complete + pruned + failed)."""
        return self.complete + self.pruned + self.failed

    @property
    def invalid_fraction(self) -> float:
        total = self.trials + self.invalid
        return self.invalid / total if total else 0.0

    @property
    def best_value(self) -> float | None:
        return self.best_values[0] if self.best_values else None

    def summary(self) -> str:
        lines = [
            f"study {self.study_name} ({self.storage}): {self.trials} trials trained "
            f"({self.complete} complete, {self.pruned} pruned, {self.failed} failed), {self.invalid} invalid samples "
            f"rejected before training ({self.invalid_fraction:.0%}), {self.seconds:.0f}s"
        ]
        if self.best_cut is not None:
            lines.append(self._nothing_completed())
        elif self.chosen is not None and self.chosen.trial == self.best_number:
            lines.append(self._chosen())
        elif self.best_number is not None:
            vals = ", ".join(f"{m}={v:.4g}" for m, v in zip(self.metrics, self.best_values))
            lines.append(f"best: trial {self.best_number}: {vals}")
        if self.best_number is not None:
            lines.append("  " + ", ".join(f"{k}={_short(v)}" for k, v in self.best_params.items()))
        if len(self.metrics) > 1 and self.pareto:
            lines.append(
                f"Pareto front ({len(self.pareto)} trials): "
                + "; ".join(f"#{n} " + ", ".join(f"{v:.4g}" for v in vals) for n, vals in self.pareto[:10])
            )
        if self.overhead:
            o = self.overhead
            parts = (
                f"sample {o.get('suggest_ms', 0):.0f} ms, spec and plan {o.get('spec_plan_ms', 0):.0f} ms, "
                f"tracking {o.get('tracking_ms', 0):.0f} ms, pruner {o.get('pruning_ms', 0):.0f} ms"
            )
            if "overhead_ms" in o:
                text = (
                    f"overhead per trained trial: {o['overhead_ms']:.0f} ms ({parts}; the rest is Optuna's tell "
                    f"and bookkeeping) = {o['share']:.2%} of its {o['trial_s']:.1f} s on average; "
                    f"{o['time_share']:.2%} of the search's time"
                )
            else:  # a study whose workers kept no tally (one made before tallies): the parts only
                share, secs = o.get("share", 0), o.get("trial_s", 0)
                text = f"overhead per trained trial: {parts} = {share:.2%} of its {secs:.1f} s"
            if "rejected_ms" in o:
                text += f"; an invalid sample costs {o['rejected_ms']:.0f} ms"
            lines.append(text)
        lines += self.notes
        if self.best_number is not None:
            cut = self.best_cut is not None
            lines.append(
                f"specdsl best {self.study_name}"
                + ("" if self.storage == DEFAULT_STORAGE else f" --storage {self.storage}")
                + (f" --trial {self.best_number}" if cut else "")
                + " -o best.yaml    # the best trial"
                + (" so far (cut at the time limit)" if cut else "")
                + " as a concrete spec"
            )
        here = self.tracking_uri == "sqlite:///" + os.path.abspath("mlflow.db")
        # MLflow 3.x opens an experiment in its GenAI view unless the address asks for model training
        where = (
            f", at {MLFLOW_UI}/#/experiments/{self.experiment_id}/runs?workflowType=machine_learning"
            if self.experiment_id
            else ""
        )
        lines.append(
            "mlflow ui"
            + ("" if here else f" --backend-store-uri {self.tracking_uri}")
            + f"    # experiment {self.experiment}: the study's run, one nested run per trial{where}"
        )
        return "\n".join(lines)

    def _chosen(self) -> str:
        """The chosen trial with the estimate to trust, beside its own search value and the others re-evaluated."""
        c, m = self.chosen, self.metrics[0]
        spread = "" if c.spread != c.spread else f" +- {c.spread:.3f}"  # NaN: no spread
        how = (
            f"{c.n} fresh split"
            + ("s" if c.n > 1 else "")
            + (" (binomial standard error)" if c.n == 1 else "")
            + (HELD_OUT if c.held_out else "")
        )
        others = "; ".join(
            f"#{n} {v:.3f} -> {mean:.3f}" for n, (v, mean, _) in sorted(c.candidates.items()) if n != c.trial
        )
        text = (
            f"best: trial {c.trial}, chosen by re-evaluation: {m} {c.mean:.3f}{spread} over {how}, the estimate "
            f"to trust (its value in the search, on one split: {c.search_value:.3f})"
        )
        if others:
            text += f"; the others re-evaluated, search value -> fresh mean: {others}"
        return text + (f"; {c.note}" if c.note else "")

    def _nothing_completed(self) -> str:
        """One message: no trial completed, the numbers, the best trial so far, the way out."""
        cut = self.best_cut or {}
        budget = f"the {self.timeout:.0f} s budget" if self.timeout else "the time limit"
        vals = ", ".join(f"{m}={v:.4g}" for m, v in zip(self.metrics, self.best_values or ()))
        text = (
            f"no trial completed in {budget}: {self.trials} trained. Best so far: trial {self.best_number}, "
            f"cut at the time limit after {cut.get('epochs')} of {cut.get('of')} epochs, {vals} (its best epoch)"
        )
        epoch_s, planned = cut.get("epoch_s"), cut.get("of")
        if isinstance(epoch_s, (int, float)) and epoch_s > 0 and isinstance(planned, int):
            whole = epoch_s * planned
            fit = max(1, int((self.timeout or whole) * 0.8 // epoch_s))
            text += (
                f". An epoch took {epoch_s:.1f} s, so its {planned} epochs need about {whole:.0f} s: "
                f"raise --timeout (above {whole:.0f} s) or lower --epochs (to {fit} or fewer)"
            )
        return text + "."


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class OverheadTally:
    """What one worker's trials cost besides training, all of it: Optuna's ask and tell, sampling, expanding and
    planning the spec, MLflow, the pruner, the budget and progress bookkeeping. A trial's time runs from its ask
    to its line on the progress; its training is ``fit`` less its epochs' reporting. Kept in the study as a user
    attribute when the worker stops, so that every worker and machine of a study is counted."""

    def __init__(self) -> None:
        self.trained = 0
        self.trial_s = 0.0  # trained trials: all their time
        self.overhead_s = 0.0  # trained trials: all but training
        self.share = 0.0  # sum over trained trials of overhead / time
        self.rejected = 0
        self.rejected_s = 0.0  # invalid samples: all their time (nothing trains)

    def add(self, trial_s: float, training_s: float, rejected: bool) -> None:
        if rejected:
            self.rejected += 1
            self.rejected_s += trial_s
            return
        self.trained += 1
        self.trial_s += trial_s
        self.overhead_s += trial_s - training_s
        self.share += (trial_s - training_s) / trial_s

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))

    @contextlib.contextmanager
    def kept_in(self, study: Any) -> Any:
        key = f"{OVERHEAD_ATTR}{socket.gethostname()}.{os.getpid()}.{time.time():.3f}"
        try:
            yield self
        finally:
            if self.trained or self.rejected:
                with contextlib.suppress(Exception):  # bookkeeping: never hide why the worker stopped
                    study.set_user_attr(key, self.as_dict())

    @staticmethod
    def of(study: Any) -> dict[str, float]:
        """The tallies of every worker of ``study``, added up."""
        total: dict[str, float] = {}
        for k, v in study.user_attrs.items():
            if k.startswith(OVERHEAD_ATTR) and isinstance(v, dict):
                for name, x in v.items():
                    if isinstance(x, (int, float)):
                        total[name] = total.get(name, 0.0) + x
        return total


def study_result(study: Any, trials: list[Any], r: StudyResult) -> StudyResult:
    """``r`` (a study's names, nothing counted yet) with the counts, overhead and best of ``trials``."""
    shares, rejected_ms = [], []
    parts: dict[str, list[float]] = {
        "suggest_ms": [],
        "spec_plan_ms": [],
        "tracking_ms": [],
        "pruning_ms": [],
    }
    trial_s = []
    for t in trials:
        s = t.state.name
        if t.user_attrs.get(REJECTED):
            r.invalid += 1
            if t.datetime_complete and t.datetime_start:
                rejected_ms.append((t.datetime_complete - t.datetime_start).total_seconds() * 1000)
        elif s == "COMPLETE":
            r.complete += 1
        elif s == "PRUNED":
            r.pruned += 1
        elif s == "FAIL":
            r.failed += 1
        elif s == "RUNNING":
            r.running += 1
        info = t.user_attrs.get(RESULT)
        if isinstance(info, dict) and isinstance(info.get("overhead_ms"), dict) and info.get("trial_s"):
            o = info["overhead_ms"]
            for k in parts:
                parts[k].append(float(o.get(k, 0.0)))
            trial_s.append(float(info["trial_s"]))
            shares.append(sum(float(o.get(k, 0.0)) for k in parts) / 1000 / float(info["trial_s"]))
    if trial_s:
        r.overhead = {k: sum(v) / len(v) for k, v in parts.items()}
        r.overhead["trial_s"] = sum(trial_s) / len(trial_s)
        r.overhead["share"] = sum(shares) / len(shares)
    if rejected_ms:
        r.overhead["rejected_ms"] = sum(rejected_ms) / len(rejected_ms)
    tally = OverheadTally.of(study)
    if tally.get("trained"):  # all of it, measured by the workers: these replace the parts' sums
        n = tally["trained"]
        r.overhead["overhead_ms"] = tally["overhead_s"] / n * 1000
        r.overhead["trial_s"] = tally["trial_s"] / n
        r.overhead["share"] = tally["share"] / n
        r.overhead["time_share"] = (tally["overhead_s"] + tally.get("rejected_s", 0.0)) / (
            tally["trial_s"] + tally.get("rejected_s", 0.0)
        )
    best = best_trial(study, trials)
    if best is not None:
        r.best_number, r.best_values, r.best_params = best.number, tuple(best.values), dict(best.params)
    elif (cut := best_cut(trials, r.directions[0])) is not None:
        r.best_number, r.best_params = cut.number, dict(cut.params)
        r.best_cut = cut.user_attrs[CUT_ATTR]
        r.best_values = tuple(r.best_cut["values"])
    if len(r.metrics) > 1:
        try:
            r.pareto = [
                (t.number, tuple(t.values)) for t in sorted(study.best_trials, key=lambda t: t.number)
            ]
        except Exception:
            r.pareto = []
    return r


def best_cut(trials: list[Any], direction: str) -> Any:
    """Of the trials cut at the study's time limit, the best by its best epoch's first objective; None if none."""
    cut = [t for t in trials if isinstance(t.user_attrs.get(CUT_ATTR), dict)]
    if not cut:
        return None
    sign = 1 if direction == "maximize" else -1
    return max(cut, key=lambda t: (sign * t.user_attrs[CUT_ATTR]["values"][0], -t.number))


def best_trial(study: Any, trials: list[Any] | None = None) -> Any:
    """The best complete trial: the one chosen by re-evaluation where there is one (``_select``), else Optuna's for
    one objective; for several, the Pareto-optimal trial that is best on the first objective. None when no trial
    completed."""
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    if not any(t.state.name == "COMPLETE" for t in trials):
        return None
    chosen = study.user_attrs.get(CHOSEN_ATTR)
    if isinstance(chosen, dict):  # chosen by re-evaluation (_select)
        for t in trials:
            if t.number == chosen.get("trial") and t.state.name == "COMPLETE":
                return t
    if len(study.directions) == 1:
        return study.best_trial
    front = study.best_trials
    sign = 1 if study.directions[0].name == "MAXIMIZE" else -1
    return max(front, key=lambda t: (sign * t.values[0], -t.number)) if front else None

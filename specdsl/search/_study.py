"""``run_search``: an Optuna study over a search space, every trial planned before anything is built, every trial
a nested MLflow run.

One trial:

1. draw the space's distributions from the trial (:class:`OptunaSampler`), expand and plan the spec;
2. a shape or spec error, a broken constraint, or an estimated training memory above ``trial_memory`` ends the trial
   at once as PRUNED, marked ``specdsl.rejected``, with the reason in ``specdsl.reason`` and in MLflow (no framework
   is touched; the trial takes milliseconds);
3. otherwise train it (``specdsl.train.fit``), reporting the first objective's metric every epoch to the pruner and,
   with ``trial_memory``, checking the process's resident memory after every batch (``MemoryGuard``);
4. a crash, a non-finite loss, a failed allocation or a passed memory bound ends it as FAIL with its reason; the
   study goes on. A store that fails (the study storage, MLflow's store: a full disk, a corrupt file) and data
   that cannot be loaded stop the study instead: every later trial would fail the same way. The study's MLflow
   run is then closed FAILED, and the trials already told stay in the study.

``trials`` counts the trials that train (complete, pruned by the pruner, failed): invalid samples come on top, so a
space where a third of the samples do not plan still trains ``trials`` models.
"""

from __future__ import annotations

import contextlib
import gc
import math
import multiprocessing
import os
import socket
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._sqlite import sqlite_path
from .._text import terminal
from ..errors import BackendMissingError, DataError, Loc, SearchError, SpecdslError, StoreError
from ..plan import Plan, plan
from ..report import svg_later
from ..spec import SearchSpec, load
from ..spec._document import from_tree
from ..spec._yaml import load_text
from ..train._compat import check_compatible
from ..train._memory import (
    MemoryGuard,
    OutOfMemory,
    allocation_failure,
    iec_bytes,
    is_allocation_failure,
    peak_bytes,
    reset_peak,
    resident_bytes,
    training_memory,
)
from ._freeze import dump, freeze, plain
from ._progress import Progress, row_of
from ._sampler import OptunaSampler
from ._space import (
    FINAL_METRICS,
    PLAN_METRICS,
    Distribution,
    check_space,
    constraint_violation,
    distributions,
    grid_space,
    memory_violation,
    parse_duration,
    read_search,
    read_space,
)
from ._storage import (
    DEFAULT_STORAGE,
    HEARTBEAT_SECONDS,
    WORKER_ATTR,
    display_url,
    fail_dead_trials,
    heartbeat,
    open_storage,
    sqlalchemy_url,
    study_store_error,
    worker_id,
)

REASON = "specdsl.reason"
REJECTED = "specdsl.rejected"
RESULT = "specdsl.result"
SPACE_ATTR = "specdsl.space"
SPACE_FILE_ATTR = "specdsl.space_file"
METRICS_ATTR = "specdsl.metrics"
OVERHEAD_ATTR = "specdsl.overhead."  # + a worker's key: what its trials cost besides training (OverheadTally)
MAX_CONSECUTIVE_REJECTED = 1000  # then the study stops: the sampler cannot find a model that plans


@dataclass
class StudyConfig:
    """Everything a worker needs to run its share of a study (picklable, for worker processes)."""

    space_file: str
    space_text: str
    study_name: str
    storage: str
    tracking_uri: str
    experiment: str
    parent_run_id: str
    search: dict
    budget: int | None
    deadline: float | None  # time.time() after which no trial starts
    epochs: int | None
    limit: int | None
    seed: int | None
    workers: int
    worker_index: int = 0
    parent_pid: int | None = None


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
        if self.best_number is not None:
            vals = ", ".join(f"{m}={v:.4g}" for m, v in zip(self.metrics, self.best_values))
            lines.append(f"best: trial {self.best_number}: {vals}")
            lines.append("  " + ", ".join(f"{k}={_short(v)}" for k, v in self.best_params.items()))
        if len(self.metrics) > 1 and self.pareto:
            lines.append(f"Pareto front ({len(self.pareto)} trials): " + "; ".join(
                f"#{n} " + ", ".join(f"{v:.4g}" for v in vals) for n, vals in self.pareto[:10]))
        if self.overhead:
            o = self.overhead
            parts = (f"sample {o.get('suggest_ms', 0):.0f} ms, spec and plan {o.get('spec_plan_ms', 0):.0f} ms, "
                     f"tracking {o.get('tracking_ms', 0):.0f} ms, pruner {o.get('pruning_ms', 0):.0f} ms")
            if "overhead_ms" in o:
                text = (f"overhead per trained trial: {o['overhead_ms']:.0f} ms ({parts}; the rest is Optuna's tell "
                        f"and bookkeeping) = {o['share']:.2%} of its {o['trial_s']:.1f} s on average; "
                        f"{o['time_share']:.2%} of the search's time")
            else:  # a study whose workers kept no tally (one made before tallies): the parts only
                text = f"overhead per trained trial: {parts} = {o.get('share', 0):.2%} of its {o.get('trial_s', 0):.1f} s"
            if "rejected_ms" in o:
                text += f"; an invalid sample costs {o['rejected_ms']:.0f} ms"
            lines.append(text)
        lines += self.notes
        lines.append(f"specdsl best {self.study_name}" + ("" if self.storage == DEFAULT_STORAGE else f" --storage {self.storage}")
                     + " -o best.yaml    # the best trial as a concrete spec")
        here = self.tracking_uri == "sqlite:///" + os.path.abspath("mlflow.db")
        lines.append("mlflow ui" + ("" if here else f" --backend-store-uri {self.tracking_uri}")
                     + f"    # experiment {self.experiment}: the study's run, one nested run per trial")
        return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------------------------------------------
# Optuna objects from the search section


def make_sampler(search: SearchSpec, dists: list[Distribution], seed: int | None, workers: int) -> Any:
    import optuna

    kind = search.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for multivariate / group / constant_liar
        if kind == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=search.startup_trials, multivariate=True, group=True,
                constant_liar=workers > 1,
            )
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "cmaes":
            import importlib.util

            if importlib.util.find_spec("cmaes") is None:
                raise BackendMissingError("cmaes", "The cmaes sampler", extra="search")
            return optuna.samplers.CmaEsSampler(
                seed=seed, n_startup_trials=search.startup_trials, warn_independent_sampling=False,
                independent_sampler=optuna.samplers.TPESampler(seed=seed),
            )
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if kind == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        if kind == "grid":
            class Grid(optuna.samplers.GridSampler):
                def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                    pass  # the worker loop asks is_exhausted() itself (GridSampler's study.stop() is for optimize())

            return Grid(grid_space(dists), seed=seed)
    raise SearchError(f"unknown sampler `{kind}`.")  # the SearchSpec model allows no other


def make_pruner(search: SearchSpec, epochs: int) -> Any:
    import optuna

    if len(search.objectives) > 1 or search.pruner == "none":
        return optuna.pruners.NopPruner()
    # Epochs are reported from step 0: a warm-up of w epochs lets steps 0 .. w-1 pass.
    warmup = search.warmup_epochs
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials, n_warmup_steps=warmup)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=max(epochs, warmup))
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup)
    raise SearchError(f"unknown pruner `{search.pruner}`.")


# ---------------------------------------------------------------------------------------------------------------
# one trial


class _TimedSampler(OptunaSampler):
    """OptunaSampler that adds up the time spent in Optuna's suggest calls (storage writes, the sampler)."""

    def __init__(self, trial: Any):
        super().__init__(trial)
        self.seconds = 0.0

    def choice(self, name, options):
        t = time.perf_counter()
        try:
            return super().choice(name, options)
        finally:
            self.seconds += time.perf_counter() - t

    def int(self, name, low, high, step, log):
        t = time.perf_counter()
        try:
            return super().int(name, low, high, step, log)
        finally:
            self.seconds += time.perf_counter() - t

    def float(self, name, low, high, step, log):
        t = time.perf_counter()
        try:
            return super().float(name, low, high, step, log)
        finally:
            self.seconds += time.perf_counter() - t


class TrialFailed(SpecdslError):
    """A trial that cannot give a value (a non-finite objective)."""


class Objective:
    """The function Optuna calls for every trial of one worker."""

    def __init__(self, cfg: StudyConfig, tracker: Any, progress: Progress | None):
        self.cfg = cfg
        self.tracker = tracker
        self.progress = progress
        self.tree = load_text(cfg.space_text, cfg.space_file)
        self.search = SearchSpec.model_validate(cfg.search)
        self.metrics = [o.metric for o in self.search.objectives]
        self.directions = [o.direction for o in self.search.objectives]
        self.multi = len(self.metrics) > 1
        first = self.metrics[0]
        self.prune_metric = None if self.multi or first in PLAN_METRICS or first in FINAL_METRICS else first
        self.fatal: BaseException | None = None
        self._data: dict[Any, Any] = {}
        self.ask_s = 0.0  # Optuna's ask for the trial about to run (timed by the worker's loop)
        self.training_s = 0.0  # the last trial's time in training itself: fit, less its epochs' reporting
        self._diagram: Any = dict  # the running trial's architecture diagram, being drawn (report.svg_later)

    # -- the trial

    def __call__(self, trial: Any) -> Any:
        import optuna

        t0 = time.perf_counter()
        self.training_s = 0.0
        trial.set_user_attr(WORKER_ATTR, worker_id())
        if self.progress is not None:
            self.progress.started(trial.number)
        sampler = _TimedSampler(trial)
        spec = p = None
        try:
            spec = from_tree(self.tree, self.cfg.space_file, sampler=sampler)
            p = plan(spec)
            check_compatible(p, spec.train, spec.data)  # loss vs output, classes: static too
            reason = (constraint_violation(p, self.search.constraints)
                      or memory_violation(p, spec.train, self.search.trial_memory))
        except SearchError as e:  # a malformed space: checked before the study starts, so not expected here
            self._crashed(trial, e)
            raise
        except SpecdslError as e:
            reason = e.format()
        except Exception as e:  # a bug in expanding or planning: this trial fails, with its reason
            self._crashed(trial, e)
            raise
        check_s = time.perf_counter() - t0 - sampler.seconds
        suggest_s = sampler.seconds + self.ask_s
        params = dict(trial.params)
        if reason is not None:
            t1 = time.perf_counter()
            self._reject(trial, reason, params, spec, suggest_s, check_s, t1)
            raise optuna.TrialPruned(reason)
        return self._train(trial, spec, p, params, suggest_s, check_s)

    def _crashed(self, trial: Any, e: BaseException) -> None:
        reason = _reason(e)
        self._safe(trial.set_user_attr, REASON, reason)
        try:
            run_id = self.tracker.start_trial(trial.number, dict(trial.params))
            self.tracker.log_texts(run_id, {"traceback.txt": traceback.format_exc()})
            self.tracker.finish_trial(run_id, "FAIL", reason=reason)
        except Exception:  # tracking must not hide the error being raised
            pass

    def _reject(self, trial: Any, reason: str, params: dict, spec: Any, suggest_s: float, check_s: float, t1: float) -> None:
        trial.set_user_attr(REASON, reason)
        trial.set_user_attr(REJECTED, True)
        self.tracker.rejected_trial(trial.number, params, reason, {
            "overhead.suggest_ms": suggest_s * 1000, "overhead.spec_plan_ms": check_s * 1000,
        })

    def _train(self, trial: Any, spec: Any, p: Plan, params: dict, suggest_s: float, check_s: float) -> Any:
        import optuna

        t1 = time.perf_counter()
        run_id = self.tracker.start_trial(trial.number, params, tags={"specdsl.model": spec.name})
        self._diagram = svg_later(p)  # Graphviz draws it while the trial trains; logged with the trial's end
        try:
            trial.set_user_attr("specdsl.mlflow_run_id", run_id)
            self.tracker.log_texts(run_id, {"spec.yaml": self._spec_yaml(spec, trial.number),
                                            "summary.txt": _summary(p)})
        except Exception as e:  # a store that fails: the run is closed (when MLflow still takes it)
            failure = study_store_error(e, self.cfg.storage) or e
            self._safe(self.tracker.finish_trial, run_id, "FAIL", reason=_reason(failure))
            raise
        track_s = time.perf_counter() - t1
        plan_metrics = {"params": p.params, "trainable": p.trainable, "flops": p.flops,
                        "activation_bytes": p.activation_bytes,
                        "memory_estimate": training_memory(p, spec.train).total}
        epochs = self.cfg.epochs or (spec.train.epochs if spec.train is not None else None)
        callback = _epoch_callback(self, trial, run_id, epochs)
        t2 = time.perf_counter()
        # the process's peak memory is measured from here (the data, the model, training): a metric of every trial,
        # and with trial_memory a bound checked after every batch
        guard = None if self.search.trial_memory is None else MemoryGuard(self.search.trial_memory,
                                                                           setting="search.trial_memory")
        metered = reset_peak() if guard is None else guard.exact
        try:
            try:
                result = self._fit(p, spec, [callback] if guard is None else [callback, guard], epochs)
            finally:
                train_s = time.perf_counter() - t2
                self.training_s = train_s - callback.track_s - callback.prune_s
            values = [self._value(m, d, result, p, callback.history) for m, d in zip(self.metrics, self.directions)]
            for m, v in zip(self.metrics, values):
                if not math.isfinite(v):
                    raise TrialFailed(f"the objective {m} is {v} (the loss diverged?)")
            if getattr(result, "stop_reason", None) == "max_seconds":  # cut short: not comparable with the others
                raise optuna.TrialPruned(
                    f"stopped at the study's time limit after {len(callback.history)} of {epochs} epochs "
                    f"({self.metrics[0]} {values[0]:.4g})")
        except optuna.TrialPruned as e:
            reason = str(e)
            trial.set_user_attr(REASON, reason)
            plan_metrics["memory_peak"] = _peak(metered, guard)
            plan_metrics.update(self._objective_metrics(p, callback.history))
            self._finish(trial, run_id, "PRUNED", reason, plan_metrics, callback, t2, suggest_s, check_s, track_s, t1)
            raise
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C) while training"
            self._safe(trial.set_user_attr, REASON, reason)
            self._safe(self.tracker.finish_trial, run_id, "FAIL", reason=reason, buffer=callback.buffer)
            raise
        except Exception as e:
            if is_allocation_failure(e):  # outside fit, which says so itself: e.g. while loading the data
                e = allocation_failure(e)
            e = study_store_error(e, self.cfg.storage) or e
            reason = _reason(e)
            self._safe(trial.set_user_attr, REASON, reason)
            self._safe(self.tracker.log_texts, run_id, {"traceback.txt": traceback.format_exc()})
            plan_metrics["memory_peak"] = _peak(metered, guard)
            self._safe(self._finish, trial, run_id, "FAIL", reason, plan_metrics, callback, t2, suggest_s, check_s,
                       track_s, t1)
            if isinstance(e, (BackendMissingError, DataError, StoreError)):  # every trial would fail the same way
                self.fatal = e
            raise
        final = dict(plan_metrics)
        final["epochs"] = len(getattr(result, "history", None) or callback.history)
        final.update({f"objective.{m}": v for m, v in zip(self.metrics, values)})  # what Optuna ranks
        final.update(_final_metrics(result))
        final["train_seconds"] = train_s
        final["memory_peak"] = _peak(metered, guard)
        self._finish(trial, run_id, "COMPLETE", None, final, callback, t2, suggest_s, check_s, track_s, t1,
                     result=result)
        return values[0] if not self.multi else values

    def _finish(self, trial: Any, run_id: str, state: str, reason: str | None, metrics: dict, callback: Any,
                t_train: float, suggest_s: float, check_s: float, track_s: float, t1: float, result: Any = None) -> None:
        t3 = time.perf_counter()
        trial_s = t3 - t1 + suggest_s + check_s
        overhead = {"suggest_ms": suggest_s * 1000, "spec_plan_ms": check_s * 1000,
                    "tracking_ms": (track_s + callback.track_s) * 1000, "pruning_ms": callback.prune_s * 1000}
        info = {
            "params": metrics.get("params"),
            "flops": metrics.get("flops"),
            "epochs": callback.epochs_done,
            "train_s": round(t3 - t_train, 3),
            "trial_s": round(trial_s, 3),
        }
        if result is not None:
            info.update({k: v for k, v in _final_metrics(result).items() if isinstance(v, (int, float))})
        m = dict(metrics)
        m.update({f"overhead.{k}": v for k, v in overhead.items()})
        t4 = time.perf_counter()
        if picture := self._diagram():
            self._safe(self.tracker.log_texts, run_id, picture)
        self.tracker.finish_trial(run_id, state, reason=reason, metrics=m, buffer=callback.buffer)
        overhead["tracking_ms"] += (time.perf_counter() - t4) * 1000
        info["overhead_ms"] = {k: round(v, 2) for k, v in overhead.items()}
        info["trial_s"] = round(trial_s + time.perf_counter() - t3, 3)
        trial.set_user_attr(RESULT, info)

    @staticmethod
    def _safe(fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            pass

    def _spec_yaml(self, spec: Any, number: int) -> str:
        doc = plain(spec.raw)
        doc.pop("search", None)
        header = [f"trial {number} of study {self.cfg.study_name} ({self.cfg.space_file})"]
        return dump({"name": f"{self.cfg.study_name}_trial_{number}", **{k: v for k, v in doc.items() if k != "name"}}, header)

    # -- training

    def _fit(self, p: Plan, spec: Any, callbacks: list[Any], epochs: int | None) -> Any:
        from ..train import fit

        remaining = None
        if self.cfg.deadline is not None:  # the study's timeout: stop after the epoch that passes it
            remaining = max(self.cfg.deadline - time.time(), 1.0)
        return fit(p, dataset=self._dataset(p, spec), callbacks=callbacks, epochs=epochs, max_seconds=remaining)

    def _dataset(self, p: Plan, spec: Any) -> Any:
        """The trial's data, loaded once per worker: every trial of a space reads the same data (``--limit``
        caps each split)."""
        from ..data._dataset import DataWarning, data_warnings
        from ..train._compat import load_for

        data = spec.data
        if data is None:
            return None  # fit says there is no data to train on
        if self.cfg.limit is not None:
            data = data.model_copy(update={"limit": self.cfg.limit})
        key = (data.model_dump_json(), tuple(p.input_shape))
        if key not in self._data:
            with data_warnings() as notes:
                ds = load_for(p, data)
            for note in notes:  # a damaged cache rebuilt, images skipped: one line each, once per worker
                if self.progress is not None:
                    self.progress.say(f"warning: {note}")
                else:
                    warnings.warn(note, DataWarning, stacklevel=1)
            self._data[key] = _cap(ds, self.cfg.limit) if self.cfg.limit is not None else ds
        return self._data[key]

    def _objective_metrics(self, p: Plan, history: list[dict]) -> dict[str, float]:
        """``objective.<metric>`` of a trial stopped before its end (by the pruner or the time limit): each
        objective over the epochs it trained, as a complete trial's value is computed."""
        out = {}
        for m, d in zip(self.metrics, self.directions):
            with contextlib.suppress(TrialFailed):  # no epoch reported the metric
                out[f"objective.{m}"] = self._value(m, d, None, p, history)
        return out

    def _value(self, metric: str, direction: str, result: Any, p: Plan, history: list[dict]) -> float:
        if metric in PLAN_METRICS:
            return float(getattr(p, metric))
        final = _final_metrics(result)
        if metric in final:
            return float(final[metric])
        seen = [h[metric] for h in (getattr(result, "history", None) or history) if _number(h.get(metric))]
        if not seen:
            raise TrialFailed(f"training reported no `{metric}` (reported: {', '.join(sorted(history[-1])) if history else 'nothing'}).")
        # the best epoch's value, as KerasTuner scores a trial
        return float(max(seen) if direction == "maximize" else min(seen))


def _epoch_callback(objective: Objective, trial: Any, run_id: str, epochs: int | None) -> Any:
    """A ``specdsl.train.Callback`` reporting every epoch: to the pruner (the first objective's metric), to MLflow
    (buffered, see EpochBuffer), to the progress."""
    from ..train import Callback
    from ._tracking import EpochBuffer

    class EpochReporter(Callback):
        def __init__(self) -> None:
            self.history: list[dict] = []
            self.epochs_done = 0
            self.track_s = 0.0
            self.prune_s = 0.0  # Optuna's report and the pruner
            self.buffer = EpochBuffer(objective.tracker, run_id)
            self.study = StudyAsAsked(trial.study)

        def on_epoch_end(self, epoch: int, logs: dict) -> None:
            import optuna

            logs = dict(logs or {})
            self.history.append(logs)
            self.epochs_done = epoch + 1
            t = time.perf_counter()
            self.buffer.add(epoch, logs)
            self.track_s += time.perf_counter() - t
            if objective.progress is not None:
                objective.progress.epoch(trial.number, epoch, epochs)
            metric = objective.prune_metric
            value = logs.get(metric) if metric else None
            if _number(value) and math.isfinite(value):  # a non-finite loss is the training loop's to fail
                t = time.perf_counter()
                trial.report(float(value), epoch)
                # every pruner here leaves the first `warmup_epochs` epochs alone: no need to ask it then
                # (Trial.should_prune, with the study as the trial began: see StudyAsAsked)
                latest = getattr(trial, "_get_latest_trial", None)  # Optuna >= 4.x; else its own should_prune
                prune = epoch >= objective.search.warmup_epochs and (
                    trial.study.pruner.prune(self.study, latest()) if latest else trial.should_prune())
                self.prune_s += time.perf_counter() - t
                if prune:
                    raise optuna.TrialPruned(
                        f"pruned by the {objective.search.pruner} pruner after epoch {epoch + 1} ({metric} {value:.4g})")

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
        return self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=True)


def _peak(metered: bool, guard: MemoryGuard | None) -> int | None:
    """The process's peak resident memory during a trial (None where it cannot be read; not a metric then)."""
    if metered:
        return peak_bytes()
    return guard.peak if guard is not None and guard.peak else None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _final_metrics(result: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    test = getattr(result, "test", None)
    if isinstance(test, dict):
        for k, v in test.items():
            if _number(v):
                out[k if k.startswith("test_") else f"test_{k}"] = float(v)
    for name in ("seconds", "images_per_s", "best_epoch"):
        v = getattr(result, name, None)
        if _number(v):
            out[name] = float(v)
    return out


def _reason(e: BaseException) -> str:
    if isinstance(e, OutOfMemory):  # its message starts "out of memory: "
        return e.format()
    text = e.format() if isinstance(e, SpecdslError) else str(e)
    text = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _summary(p: Plan) -> str:
    try:
        from ..plan import summary_text

        return summary_text(p)
    except Exception:  # a summary is a courtesy: never fail a trial over it
        return "\n".join(f"{n.name:30s} {n.shape!s:20s} {n.params:>12,}" for n in p.nodes) + f"\nTotal params: {p.params:,}\n"


def _cap(ds: Any, limit: int) -> Any:
    """Validation and test sets cut to ``limit`` examples too (``--limit`` is for quick runs)."""
    import dataclasses

    changes = {}
    for part in ("val", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        if x is not None and len(x) > limit:
            changes[f"x_{part}"], changes[f"y_{part}"] = x[:limit], y[:limit]
    return dataclasses.replace(ds, **changes) if changes else ds


# ---------------------------------------------------------------------------------------------------------------
# one worker


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures and prunes are reported by the progress instead
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _open_study(cfg: StudyConfig, dists: list[Distribution], search: SearchSpec) -> Any:
    import optuna

    storage = open_storage(cfg.storage)
    seed = cfg.seed
    study = optuna.load_study(study_name=cfg.study_name, storage=storage)
    n = len(study.get_trials(deepcopy=False))
    if seed is not None:  # another stream per worker, and per resumption: a rerun must not redraw the same samples
        seed = (seed + 7919 * cfg.worker_index + n) % 2**32  # Optuna's samplers take 32-bit seeds
    epochs = cfg.epochs or _space_epochs(cfg)
    study.sampler = make_sampler(search, dists, seed, cfg.workers)
    study.pruner = make_pruner(search, epochs)
    return study


def _space_epochs(cfg: StudyConfig) -> int:
    tree = load_text(cfg.space_text, cfg.space_file)
    train = tree.get("train") if isinstance(tree, dict) else None
    epochs = train.get("epochs") if isinstance(train, dict) else None
    return epochs if isinstance(epochs, int) else 10


def admitted(study: Any) -> int:
    """Trials that train or trained (every state but invalid samples), for the budget."""
    trials = study.get_trials(deepcopy=False)
    return sum(1 for t in trials if not t.user_attrs.get(REJECTED) and t.state.name != "WAITING")


def work(cfg: StudyConfig, progress: Progress | None) -> dict[str, Any]:
    """Run trials until the budget, the deadline or a stop; returns what this worker saw.

    Optuna's ask-and-tell, so that "is the budget reached?" and asking for a trial happen under one lock shared by
    every worker of the study (a file lock on SQLite, an advisory lock on PostgreSQL): ``trials`` trained trials,
    not one more, however many workers and machines.
    """
    import optuna
    from optuna.trial import TrialState

    from ._tracking import Tracker

    _quiet_optuna()
    tree = load_text(cfg.space_text, cfg.space_file)
    dists = distributions(tree, cfg.space_file)
    search = SearchSpec.model_validate(cfg.search)
    study = _open_study(cfg, dists, search)
    tracker = Tracker(cfg.tracking_uri, cfg.experiment, cfg.study_name)
    tracker.ensure_experiment()
    tracker.parent_id = cfg.parent_run_id
    objective = Objective(cfg, tracker, progress)
    tally = OverheadTally()
    state = {"consecutive_rejected": 0, "dead_end": False, "last_refresh": 0.0, "last_stale_check": 0.0}
    grid = study.sampler if isinstance(study.sampler, optuna.samplers.GridSampler) else None

    def budget_reached() -> bool:
        if cfg.budget is None:
            return False
        if study._storage.get_n_trials(study._study_id) < cfg.budget:
            return False  # fewer trials of any kind than the budget: no need to read them
        return admitted(study) >= cfg.budget

    def after_trial(trial: Any) -> None:
        rejected = bool(trial.user_attrs.get(REJECTED))
        state["consecutive_rejected"] = state["consecutive_rejected"] + 1 if rejected else 0
        if progress is not None:
            progress.finished(row_of(trial))
            now = time.monotonic()
            if now - state["last_refresh"] > 10.0:  # trials of other workers and machines too (a read of them all)
                state["last_refresh"] = now
                progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])

    with _BudgetLock(cfg.storage, cfg.study_name) as lock, tally.kept_in(study):
        while True:
            t0 = time.perf_counter()  # a trial's time: from here to its end on the progress, all of it
            if cfg.deadline is not None and time.time() >= cfg.deadline:
                break
            if state["consecutive_rejected"] >= MAX_CONSECUTIVE_REJECTED:
                state["dead_end"] = True
                break
            if time.monotonic() - state["last_stale_check"] > HEARTBEAT_SECONDS:
                state["last_stale_check"] = time.monotonic()
                fail_dead_trials(study)  # their reason recorded; they count as failed trials of the budget
            with lock.held():
                if budget_reached() or (grid is not None and grid.is_exhausted(study)):
                    break
                t_ask = time.perf_counter()
                trial = study.ask()
                objective.ask_s = time.perf_counter() - t_ask
            frozen = _run_trial(study, trial, objective, TrialState)
            after_trial(frozen)
            tally.add(time.perf_counter() - t0, objective.training_s, bool(frozen.user_attrs.get(REJECTED)))
            if objective.fatal is not None:
                raise objective.fatal
    return state


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


def _run_trial(study: Any, trial: Any, objective: Objective, TrialState: Any) -> Any:
    """One trial, told to Optuna whatever happens; a KeyboardInterrupt is told (FAIL) and raised again. A failing
    store stops the study (``objective.fatal``); when the study storage takes no more, not even the trial's end,
    the trial stays RUNNING in it, and the next run of the study fails it."""
    import optuna

    values, state = None, None
    with heartbeat(study._storage, trial._trial_id):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as e:  # recorded by the objective (reason, MLflow); the study goes on, unless a store failed
            state = TrialState.FAIL
            objective.fatal = objective.fatal or study_store_error(e, objective.cfg.storage)
    if state == TrialState.FAIL:
        gc.collect()  # a failed trial's model and tensors may hang in reference cycles of its traceback
    try:
        if state is None:
            return study.tell(trial, values)
        return study.tell(trial, state=state)
    except Exception as e:
        failure = study_store_error(e, objective.cfg.storage)
        if failure is None:
            raise
        raise (objective.fatal or failure) from None


class _BudgetLock:
    """A lock every worker of a study takes to check the budget and ask for a trial: ``flock`` on the SQLite or
    journal file (SQLite itself uses POSIX locks, which do not interact with flock), a PostgreSQL advisory lock
    keyed by the study name. Other databases: no lock (the budget may be overshot by a trial per worker)."""

    def __init__(self, url: str, study_name: str):
        self.url = url
        self.study_name = study_name
        self.fd: int | None = None
        self.conn: Any = None
        self.engine: Any = None
        self.key = int.from_bytes(__import__("hashlib").sha1(study_name.encode()).digest()[:8], "big", signed=True)

    def __enter__(self) -> _BudgetLock:
        path = sqlite_path(self.url)
        if self.url.startswith("journal:"):
            path = self.url[len("journal:"):]
            path = path.removeprefix("//")
        if path and os.path.exists(path):
            self.fd = os.open(path, os.O_RDONLY)
        elif self.url.startswith("postgresql"):
            import sqlalchemy

            self.engine = sqlalchemy.create_engine(sqlalchemy_url(self.url), poolclass=sqlalchemy.pool.NullPool)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
        if self.engine is not None:
            self.engine.dispose()

    @contextlib.contextmanager
    def held(self) -> Any:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        elif self.engine is not None:
            import sqlalchemy

            self.conn = self.engine.connect()
            self.conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
        elif self.conn is not None:
            import sqlalchemy

            try:
                self.conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            finally:
                self.conn.close()
                self.conn = None


def _worker_main(cfg: StudyConfig) -> None:
    """Entry point of a worker process (``--workers N``): quiet, and gone when its parent is."""
    if cfg.parent_pid is not None:
        def watch() -> None:
            while True:
                time.sleep(1.0)
                if os.getppid() != cfg.parent_pid:
                    os._exit(3)  # the parent was killed: leave the trial RUNNING; the next run fails it

        threading.Thread(target=watch, daemon=True).start()
    try:
        try:
            work(cfg, None)
        except Exception as e:
            raise study_store_error(e, cfg.storage) or e
    except KeyboardInterrupt:
        os._exit(130)
    except SpecdslError as e:
        import sys

        print(f"worker {cfg.worker_index}: error: {e.format()}", file=sys.stderr)
        os._exit(StoreError.exit_code if isinstance(e, StoreError) else 2)


# ---------------------------------------------------------------------------------------------------------------
# the study


def run_search(
    space_path: str | os.PathLike,
    *,
    trials: int | None = None,
    timeout: float | str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    resume: bool = True,
    workers: int = 1,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    seed: int | None = None,
    console: Any = None,
    plots: bool = True,
) -> StudyResult:
    """Search a space with Optuna; every trial is a nested MLflow run under one run for the study.

    Settings come from the space's ``search:`` section; the arguments given here win. ``storage`` defaults to
    ``sqlite:///optuna.db`` in the working folder, ``study_name`` to the space file's name and ``experiment`` to the
    space file's name; ``tracking_uri`` to MLflow's own default. Rerunning the same call resumes the study
    (``resume=False`` starts a new study under the next free name instead: ``catsdogs-2``). ``trials`` counts
    trials that train; ``timeout`` (seconds or "15m", "2h") stops starting new ones. ``workers`` > 1 runs that many
    processes on this machine sharing the storage; more machines join by running the same command on the same
    PostgreSQL storage. ``epochs`` and ``limit`` (examples per split) shrink trials for quick runs.
    ``plots=False`` (or the environment variable ``SPECDSL_PLOTS=0``) skips Optuna's plots at the end (they need
    plotly, and take seconds to import and draw).

        >>> r = run_search("search_spaces/catsdogs.yaml", trials=20, timeout="15m")
        >>> r.best_value, r.best_params["lr"]
    """
    started = time.time()
    # Everything static first, so that an invalid space is refused before optuna, mlflow or torch is imported.
    tree, file, text = read_space(space_path)
    dists = distributions(tree, file)
    search = read_search(tree, file)
    updates: dict[str, Any] = {}
    for key, value in (("trials", trials), ("storage", storage), ("study_name", study_name), ("seed", seed),
                       ("tracking_uri", tracking_uri), ("experiment", experiment)):
        if value is not None:
            updates[key] = value
    if timeout is not None:
        updates["timeout"] = max(1, math.ceil(parse_duration(timeout)))  # the section holds whole seconds
    search = _with_options(search, updates, file)
    timeout_s = parse_duration(search.timeout)
    if workers < 1:
        raise SearchError(f"`workers` must be at least 1, but got {workers}.")
    quick = check_space(file, samples=30, seed=search.seed or 0, tree=tree)
    if quick.all_invalid:
        raise SearchError(
            f"none of {quick.samples} sampled architectures plans; the most common reason: "
            f"{quick.reasons.most_common(1)[0][0]}",
            loc=quick.first_error.loc if quick.first_error else None,
            hint="Narrow the distributions so that some choices plan (`specdsl validate` shows the reasons).",
        )

    import optuna

    from ._tracking import Tracker, resolve_tracking_uri

    stem = Path(file).stem
    url = search.storage or DEFAULT_STORAGE
    name = search.study_name or stem
    metrics = [o.metric for o in search.objectives]
    directions = [o.direction for o in search.objectives]

    # MLflow first: a store or an artifact folder that cannot be written stops the search before any study exists
    uri = resolve_tracking_uri(search.tracking_uri)
    exp_name = search.experiment or stem
    tracker = Tracker(uri, exp_name, name)
    tracker.ensure_experiment()
    tracker.check_artifacts()

    with _stopping_cleanly(tracker, url):  # from here on, the study's MLflow run is closed whatever happens
        _quiet_optuna()
        store = open_storage(url)
        name = _study_for(store, name, directions, resume)
        tracker.study_name = name
        study = optuna.create_study(storage=store, study_name=name, directions=directions, load_if_exists=True)
        if [d.name.lower() for d in study.directions] != directions:
            raise SearchError(
                f"study `{name}` optimizes {', '.join(d.name.lower() for d in study.directions)}, but this search "
                f"{', '.join(directions)}.", hint="Use another --study-name for other objectives.")
        attrs = study.user_attrs
        if SPACE_ATTR not in attrs:
            study.set_user_attr(SPACE_ATTR, text)
            study.set_user_attr(SPACE_FILE_ATTR, file)
            study.set_user_attr(METRICS_ATTR, metrics)
        notes: list[str] = []
        if attrs.get(SPACE_ATTR, text) != text:
            notes.append(f"note: {file} changed since study {name} started; the new trials use the file as it is now.")
            study.set_user_attr(SPACE_ATTR, text)
        held = resident_bytes() if search.trial_memory is not None else None
        if held is not None and held > search.trial_memory:
            notes.append(f"note: this process already holds {iec_bytes(held)} of memory, more than the "
                         f"{iec_bytes(search.trial_memory)} of search.trial_memory: every trial will fail; raise it.")

        settings = {
            "sampler": search.sampler,
            "pruner": search.pruner if len(metrics) == 1 else "none (several objectives)",
            "objectives": ", ".join(f"{o.direction} {o.metric}" for o in search.objectives),
            "startup_trials": search.startup_trials, "seed": search.seed, "space": file,
            "constraints": search.constraints.model_dump_json(exclude_none=True),
            "trial_memory": search.trial_memory,
        }
        run_tags = {"specdsl.storage": display_url(url), "trials": search.trials, "timeout": timeout_s,
                    "workers": workers, "epochs": epochs, "limit": limit, "host": socket.gethostname()}
        parent_id, created = tracker.ensure_parent(attrs.get("specdsl.mlflow_parent_run_id"), settings,
                                                  {k: v for k, v in run_tags.items() if v is not None})
        if created:
            study.set_user_attr("specdsl.mlflow_parent_run_id", parent_id)
            tracker.log_space(file, text)

        # whatever a killed or interrupted run left behind
        failed_now = fail_dead_trials(study)
        tracker.reconcile(study.get_trials(deepcopy=False))
        if failed_now:
            notes.append(f"{len(failed_now)} trial(s) left running by a stopped worker were marked failed: "
                         + ", ".join(f"#{t.number}" for t in failed_now))

        cfg = StudyConfig(
            space_file=file, space_text=text, study_name=name, storage=url, tracking_uri=uri, experiment=exp_name,
            parent_run_id=parent_id, search=search.model_dump(), budget=search.trials,
            deadline=None if timeout_s is None else started + timeout_s, epochs=epochs, limit=limit, seed=search.seed,
            workers=workers, parent_pid=os.getpid(),
        )
        progress = Progress(console, study_name=name, metrics=metrics, directions=directions, budget=search.trials,
                            timeout=timeout_s, workers=workers)
        progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])
        progress.printed.update(progress.rows)  # lines only for trials finished from now on
        for line in notes:
            progress.say(line)
        interrupted = False
        state: dict[str, Any] = {}
        with progress:
            pruning = "no pruning" if settings["pruner"].startswith("none") else f"{settings['pruner']} pruner"
            if settings["pruner"] == "none (several objectives)":
                pruning = "no pruning (Optuna prunes single-objective studies only)"
            progress.say(f"study {name} on {display_url(url)}: {search.sampler} sampler, {pruning}, "
                         f"{len(dists)} parameters; MLflow experiment {exp_name} at {uri}")
            try:
                if workers == 1:
                    state = work(cfg, progress)
                else:
                    state = _run_workers(cfg, study, progress)
            except KeyboardInterrupt:
                interrupted = True
                progress.say("interrupted: the running trial is marked failed; rerun the same command to resume.")
            progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])  # the final state on screen
        if state.get("dead_end"):
            notes.append(f"stopped: the last {MAX_CONSECUTIVE_REJECTED} sampled architectures were all invalid; "
                         "narrow the space (`specdsl validate` shows why).")

        fail_dead_trials(study)
        all_trials = study.get_trials(deepcopy=False)
        tracker.reconcile(all_trials)
        result = _result(study, all_trials, name, url, exp_name, uri, parent_id, metrics, directions)
        result.seconds = time.time() - started
        result.interrupted = interrupted
        result.notes = notes
        plots = plots and os.environ.get("SPECDSL_PLOTS", "1") not in ("0", "false", "no")
        _finish_parent(tracker, study, result, file, text, plots and not interrupted, interrupted)
    if console is not None:
        for line in result.summary().splitlines():
            console.print(terminal(line), markup=False, highlight=False, soft_wrap=True)
    return result


def _with_options(search: SearchSpec, updates: dict[str, Any], file: str) -> SearchSpec:
    """The search section with the command line's values, checked as the section's own are."""
    if not updates:
        return search
    try:
        return SearchSpec.model_validate({**search.model_dump(), **updates})
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = str(err["loc"][0])
        text = err["msg"].removeprefix("Value error, ")
        raise SearchError(f"--{field.replace('_', '-')}: {text[0].lower() + text[1:]}".rstrip(".") + ".",
                          loc=Loc(file), path=f"search.{field}") from None


@contextlib.contextmanager
def _stopping_cleanly(tracker: Any, url: str) -> Any:
    """Whatever stops a search in the block: a failing store becomes one StoreError naming it, and the study's
    MLflow run, once there is one, is closed with the reason: KILLED on Ctrl-C, FAILED otherwise (if MLflow's store
    still takes it; else the next run of the study closes it)."""
    from ._tracking import REASON_TAG

    try:
        yield
    except BaseException as e:
        failure = study_store_error(e, url) if isinstance(e, Exception) else None
        if tracker.parent_id is not None:
            status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
            reason = failure.format() if failure is not None else _reason(e)
            with contextlib.suppress(Exception):
                tracker.finish_parent(status, {}, {REASON_TAG: reason[:5000]}, {})
        if failure is not None and failure is not e:
            raise failure from None
        raise


def _study_for(store: Any, name: str, directions: list[str], resume: bool) -> str:
    import optuna

    if resume:
        return name
    names = set(optuna.get_all_study_names(store))
    if name not in names:
        return name
    i = 2
    while f"{name}-{i}" in names:
        i += 1
    return f"{name}-{i}"


def _run_workers(cfg: StudyConfig, study: Any, progress: Progress) -> dict[str, Any]:
    """``cfg.workers`` processes share the study: this one (worker 0, which also shows the progress) and
    ``workers - 1`` spawned ones."""
    import dataclasses

    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(1, cfg.workers):
        p = ctx.Process(target=_worker_main, args=(dataclasses.replace(cfg, worker_index=i),), daemon=False)
        p.start()
        procs.append(p)
    try:
        state = work(cfg, progress)
        while any(p.is_alive() for p in procs):  # the others finish their trials
            time.sleep(1.0)
            progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])
    except BaseException:
        for p in procs:  # on Ctrl-C they got the SIGINT too (same process group): give them time to record it
            p.join(timeout=15)
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
    progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])
    codes = [p.exitcode for p in procs]
    if any(c == StoreError.exit_code for c in codes):
        raise StoreError(f"a worker stopped on a store that failed (exit codes {codes}); its message above names "
                         "the store and the way out.", store=display_url(cfg.storage), kind="other")
    if any(c == 2 for c in codes):
        raise SearchError(f"a worker stopped on an error (exit codes {codes}); see its message above.")
    return state


def _result(study: Any, trials: list[Any], name: str, url: str, exp: str, uri: str, parent: str | None,
            metrics: list[str], directions: list[str]) -> StudyResult:
    r = StudyResult(study_name=name, storage=display_url(url), experiment=exp, tracking_uri=uri, parent_run_id=parent,
                    metrics=metrics, directions=directions)
    shares, rejected_ms = [], []
    parts: dict[str, list[float]] = {"suggest_ms": [], "spec_plan_ms": [], "tracking_ms": [], "pruning_ms": []}
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
        r.overhead["time_share"] = ((tally["overhead_s"] + tally.get("rejected_s", 0.0))
                                    / (tally["trial_s"] + tally.get("rejected_s", 0.0)))
    best = best_trial(study, trials)
    if best is not None:
        r.best_number, r.best_values, r.best_params = best.number, tuple(best.values), dict(best.params)
    if len(metrics) > 1:
        try:
            r.pareto = [(t.number, tuple(t.values)) for t in sorted(study.best_trials, key=lambda t: t.number)]
        except Exception:
            r.pareto = []
    return r


def best_trial(study: Any, trials: list[Any] | None = None) -> Any:
    """The best complete trial: Optuna's for one objective; for several, the Pareto-optimal trial that is best
    on the first objective. None when no trial completed."""
    trials = trials if trials is not None else study.get_trials(deepcopy=False)
    if not any(t.state.name == "COMPLETE" for t in trials):
        return None
    if len(study.directions) == 1:
        return study.best_trial
    front = study.best_trials
    sign = 1 if study.directions[0].name == "MAXIMIZE" else -1
    return max(front, key=lambda t: (sign * t.values[0], -t.number)) if front else None


def _finish_parent(tracker: Any, study: Any, result: StudyResult, file: str, text: str, plots: bool,
                   interrupted: bool) -> None:
    from ..report import study_plots

    metrics: dict[str, float] = {
        "trials_complete": result.complete, "trials_pruned": result.pruned, "trials_failed": result.failed,
        "samples_invalid": result.invalid, "invalid_fraction": result.invalid_fraction,
    }
    tags: dict[str, str] = {}
    texts: dict[str, str] = {}
    if result.best_number is not None:
        for m, v in zip(result.metrics, result.best_values):
            metrics[f"best.{m}"] = v
        tags["best.trial"] = str(result.best_number)
        for k, v in result.best_params.items():
            tags[f"best.{k}"] = str(v)
        try:
            texts["best.yaml"] = frozen_text(study, study._storage.get_trial(
                study._storage.get_trial_id_from_study_id_trial_number(study._study_id, result.best_number)))
            texts.update(svg_later(plan(load(texts["best.yaml"])), "best_model.svg")())
        except SpecdslError:
            pass
    for k, v in result.overhead.items():
        metrics[f"overhead.{k}"] = v
    files: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if plots and result.complete > 0:
            files, note = study_plots(study, tmp, metrics=result.metrics)
            if note:
                result.notes.append(note)
                tags["specdsl.plots"] = note
        tracker.finish_parent("KILLED" if interrupted else "FINISHED", metrics, tags, texts, files)


# ---------------------------------------------------------------------------------------------------------------
# best


def frozen_text(study: Any, trial: Any, note: str | None = None) -> str:
    """A trial of a study frozen into a concrete spec (YAML), from the search space text kept with the study."""
    text = study.user_attrs.get(SPACE_ATTR)
    file = study.user_attrs.get(SPACE_FILE_ATTR, "search space")
    if text is None:
        raise SearchError(f"study `{study.study_name}` was not created by `specdsl search` (it keeps no search space).")
    tree = load_text(text, file)
    doc, spec = freeze(tree, file, dict(trial.params), name=f"{study.study_name}_trial_{trial.number}")
    metrics = study.user_attrs.get(METRICS_ATTR) or [f"objective {i}" for i in range(len(study.directions))]
    values = ", ".join(f"{m} {v:.4g}" for m, v in zip(metrics, trial.values or ()))
    p = plan(spec)
    header = [
        f"Trial {trial.number} of study {study.study_name}" + (f": {values}" if values else f" ({trial.state.name})"),
        f"frozen from {file} by `specdsl best`: {p.params:,} parameters.",
    ]
    if note:
        header.append(note)
    return dump(doc, header)

"""One trial of a study, in the process that runs it: draw the space's distributions from the Optuna trial,
expand, plan and check the spec (an invalid sample ends here, PRUNED and marked rejected, in milliseconds),
then train it, reporting its epochs (see ``_pruning``), and record it: its MLflow run, its reason, its cost.

:class:`Objective` takes what it works with (the study's config, a tracker, a progress) and runs in-process:
a worker's loop (``_workers``) asks Optuna for trials and calls it; a test calls it with a trial of its own.
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import BackendMissingError, DataError, SearchError, SpecdslError, StoreError
from ..plan import Plan, plan, summary_text
from ..report import svg_later
from ..spec import SearchSpec, from_tree, load_text
from ..train import (
    MemoryGuard,
    OutOfMemory,
    allocation_failure,
    check_compatible,
    is_allocation_failure,
    peak_bytes,
    reset_peak,
    training_memory,
)
from ._budget import EpochBudget, cut_info
from ._config import CUT_ATTR, REASON, REJECTED, RESULT, RUN_ATTR, StudyConfig
from ._freeze import dump, plain
from ._progress import Progress
from ._pruning import epoch_reporter, is_number
from ._sampler import OptunaSampler
from ._space import PLAN_METRICS, constraint_violation, logged_objective, memory_violation, watch_objective
from ._storage import WORKER_ATTR, study_store_error, worker_id


class TrialTracker(Protocol):
    """What an :class:`Objective` records its trials with (``specdsl.tracking.Tracker``: in MLflow)."""

    def start_trial(self, number: int, params: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """Start trial ``number``'s run; returns its id."""

    def rejected_trial(
        self, number: int, params: dict[str, Any], reason: str, metrics: dict[str, float]
    ) -> str:
        """A closed run for an invalid sample."""

    def log_texts(self, run_id: str, texts: dict[str, str]) -> None:
        """Small text files (name -> text) of a run."""

    def send(self, run_id: str, metrics: list[Any], tags: dict[str, str] | None = None) -> None:
        """A batch of a run's metrics (``mlflow.entities.Metric``), as an EpochBuffer flushes them."""

    def finish_trial(
        self,
        run_id: str,
        state: str,
        *,
        reason: str | None = None,
        metrics: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        buffer: Any = None,
    ) -> None:
        """Close a run with the trial's Optuna ``state``, its final metrics and the buffered epochs."""


class _TimedSampler(OptunaSampler):
    """OptunaSampler that adds up the time spent in Optuna's suggest calls (storage writes, the sampler)."""

    def __init__(self, trial: Any):
        super().__init__(trial)
        self.seconds = 0.0

    def _timed(self, draw: Any, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return draw(*args)
        finally:
            self.seconds += time.perf_counter() - t

    def choice(self, name, options):
        return self._timed(super().choice, name, options)

    def int(self, name, low, high, step, log):
        return self._timed(super().int, name, low, high, step, log)

    def float(self, name, low, high, step, log):
        return self._timed(super().float, name, low, high, step, log)


class TrialFailed(SpecdslError):
    """A trial that cannot give a value (a non-finite objective)."""


class Objective:
    """The function Optuna calls for every trial of one worker: ``cfg`` says what the study runs (the space,
    the search section, the storage, ``--epochs`` and ``--limit``, the deadline), ``tracker`` records each
    trial (the study's :class:`~specdsl.tracking.Tracker`, or any :class:`TrialTracker`), ``progress`` shows
    it (None: nothing is shown). Called with an Optuna trial, it returns the trial's objective value(s), or
    raises ``optuna.TrialPruned`` (an invalid sample, the pruner, the time limit) or the error that failed it.

    ``fatal`` is set when a trial failed in a way every later trial would (a store, missing data or backend):
    the worker then stops. ``ask_s`` is set by the caller (Optuna's ask for the next trial); ``training_s`` is
    the last trial's time in training itself."""

    def __init__(self, cfg: StudyConfig, tracker: TrialTracker, progress: Progress | None):
        self.cfg = cfg
        self.tracker = tracker
        self.progress = progress
        self.search = SearchSpec.model_validate(cfg.search)
        self.metrics = [o.metric for o in self.search.objectives]
        self.directions = [o.direction for o in self.search.objectives]
        self.multi = len(self.metrics) > 1
        self.prune_metric = logged_objective(self.metrics)
        self.tree = watch_objective(load_text(cfg.space_text, cfg.space_file), self.metrics)
        self.fatal: BaseException | None = None
        self._data: dict[Any, Any] = {}
        self._threads_set = False
        self.ask_s = 0.0  # Optuna's ask for the trial about to run (timed by the worker's loop)
        self.training_s = 0.0  # the last trial's time in training itself: fit, less its epochs' reporting
        self._diagram: Any = dict  # the running trial's architecture diagram, being drawn (report.svg_later)
        self.budget = EpochBudget(cfg, self.search.warmup_epochs)  # epochs fitted to the time budget
        self.epoch_s: float | None = None  # the last trial's mean epoch: what the next one costs at least

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
            reason = constraint_violation(p, self.search.constraints) or memory_violation(
                p, spec.train, self.search.trial_memory
            )
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
            self._reject(trial, reason, params, suggest_s, check_s)
            raise optuna.TrialPruned(reason)
        return self._train(trial, spec, p, params, suggest_s, check_s)

    def _crashed(self, trial: Any, e: BaseException) -> None:
        reason = reason_of(e)
        self._safe(trial.set_user_attr, REASON, reason)
        try:
            run_id = self.tracker.start_trial(trial.number, dict(trial.params))
            self.tracker.log_texts(run_id, {"traceback.txt": traceback.format_exc()})
            self.tracker.finish_trial(run_id, "FAIL", reason=reason)
        except Exception:  # tracking must not hide the error being raised
            pass

    def _reject(self, trial: Any, reason: str, params: dict, suggest_s: float, check_s: float) -> None:
        trial.set_user_attr(REASON, reason)
        trial.set_user_attr(REJECTED, True)
        self.tracker.rejected_trial(
            trial.number,
            params,
            reason,
            {
                "overhead.suggest_ms": suggest_s * 1000,
                "overhead.spec_plan_ms": check_s * 1000,
            },
        )

    def _train(self, trial: Any, spec: Any, p: Plan, params: dict, suggest_s: float, check_s: float) -> Any:
        import optuna

        from ..tracking import MODEL_TAG, OBJECTIVE_METRIC

        t1 = time.perf_counter()
        run_id = self.tracker.start_trial(trial.number, params, tags={MODEL_TAG: spec.name})
        self._diagram = svg_later(p)  # Graphviz draws it while the trial trains; logged with the trial's end
        try:
            trial.set_user_attr(RUN_ATTR, run_id)
            self.tracker.log_texts(
                run_id, {"spec.yaml": self._spec_yaml(spec, trial.number), "summary.txt": _summary(p)}
            )
        except Exception as e:  # a store that fails: the run is closed (when MLflow still takes it)
            failure = study_store_error(e, self.cfg.storage) or e
            self._safe(self.tracker.finish_trial, run_id, "FAIL", reason=reason_of(failure))
            raise
        track_s = time.perf_counter() - t1
        plan_metrics = {
            "params": p.params,
            "trainable": p.trainable,
            "flops": p.flops,
            "activation_bytes": p.activation_bytes,
            "memory_estimate": training_memory(p, spec.train).total,
        }
        epochs = self.cfg.epochs or self.budget.epochs_for(
            trial.study, spec.train.epochs if spec.train is not None else None
        )
        callback = epoch_reporter(self, trial, run_id, epochs)
        t2 = time.perf_counter()
        run = _Trained(
            trial,
            run_id,
            callback,
            suggest_s=suggest_s,
            check_s=check_s,
            start=t1,
            track_s=track_s,
            train_start=t2,
        )
        # the process's peak memory is measured from here (the data, the model, training): a metric of every trial,
        # and with trial_memory a bound checked after every batch
        guard = (
            None
            if self.search.trial_memory is None
            else MemoryGuard(self.search.trial_memory, setting="search.trial_memory")
        )
        metered = reset_peak() if guard is None else guard.exact
        try:
            try:  # the first trial of a fitted study stops at the epochs fitted to the budget, complete
                result = self._fit(p, spec, [callback] if guard is None else [callback, guard], epochs)
            finally:
                train_s = time.perf_counter() - t2
                self.training_s = train_s - callback.track_s - callback.prune_s
                self._note_epochs(callback.history)
            values = [
                self._value(m, d, result, p, callback.history) for m, d in zip(self.metrics, self.directions)
            ]
            for m, v in zip(self.metrics, values):
                if not math.isfinite(v):
                    raise TrialFailed(f"the objective {m} is {v} (the loss diverged?)")
            if getattr(result, "stop_reason", None) == "max_seconds":  # cut short: not ranked with the others
                done = len(callback.history)
                trial.set_user_attr(CUT_ATTR, cut_info(done, epochs, values, callback.history))
                raise optuna.TrialPruned(
                    f"stopped at the study's time limit after {done} of {epochs} epochs "
                    f"(its best epoch's {self.metrics[0]} {values[0]:.4g})"
                )
        except optuna.TrialPruned as e:
            reason = str(e)
            trial.set_user_attr(REASON, reason)
            plan_metrics["memory_peak"] = _peak(metered, guard)
            plan_metrics.update(self._objective_metrics(p, callback.history))
            self._finish(run, "PRUNED", plan_metrics, reason=reason)
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
            reason = reason_of(e)
            self._safe(trial.set_user_attr, REASON, reason)
            self._safe(self.tracker.log_texts, run_id, {"traceback.txt": traceback.format_exc()})
            plan_metrics["memory_peak"] = _peak(metered, guard)
            self._safe(self._finish, run, "FAIL", plan_metrics, reason=reason)
            if isinstance(
                e, (BackendMissingError, DataError, StoreError)
            ):  # every trial would fail the same way
                self.fatal = e
            raise
        final = dict(plan_metrics)
        final["epochs"] = len(getattr(result, "history", None) or callback.history)
        final.update({f"objective.{m}": v for m, v in zip(self.metrics, values)})  # what Optuna ranks
        final[OBJECTIVE_METRIC] = values[0]  # one name in every study: the runs table sorts and charts by it
        final.update(_final_metrics(result))
        final["train_seconds"] = train_s
        final["memory_peak"] = _peak(metered, guard)
        self._finish(run, "COMPLETE", final, result=result)
        return values[0] if not self.multi else values

    def _note_epochs(self, history: list[dict]) -> None:
        secs = [h["epoch_seconds"] for h in history if isinstance(h.get("epoch_seconds"), (int, float))]
        if secs:
            self.epoch_s = sum(secs) / len(secs)

    def _finish(
        self, run: _Trained, state: str, metrics: dict, *, reason: str | None = None, result: Any = None
    ) -> None:
        """The trial's run closed with its final metrics; what the trial cost kept in its RESULT attribute."""
        t3 = time.perf_counter()
        callback = run.callback
        trial_s = t3 - run.start + run.suggest_s + run.check_s
        overhead = {
            "suggest_ms": run.suggest_s * 1000,
            "spec_plan_ms": run.check_s * 1000,
            "tracking_ms": (run.track_s + callback.track_s) * 1000,
            "pruning_ms": callback.prune_s * 1000,
        }
        info = {
            "params": metrics.get("params"),
            "flops": metrics.get("flops"),
            "epochs": callback.epochs_done,
            "train_s": round(t3 - run.train_start, 3),
            "trial_s": round(trial_s, 3),
        }
        if result is not None:
            info.update({k: v for k, v in _final_metrics(result).items() if isinstance(v, (int, float))})
        m = dict(metrics)
        m.update({f"overhead.{k}": v for k, v in overhead.items()})
        t4 = time.perf_counter()
        if picture := self._diagram():
            self._safe(self.tracker.log_texts, run.run_id, picture)
        self.tracker.finish_trial(run.run_id, state, reason=reason, metrics=m, buffer=callback.buffer)
        overhead["tracking_ms"] += (time.perf_counter() - t4) * 1000
        info["overhead_ms"] = {k: round(v, 2) for k, v in overhead.items()}
        info["trial_s"] = round(trial_s + time.perf_counter() - t3, 3)
        run.trial.set_user_attr(RESULT, info)

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
        return dump(
            {
                "name": f"{self.cfg.study_name}_trial_{number}",
                **{k: v for k, v in doc.items() if k != "name"},
            },
            header,
        )

    # -- training

    def _fit(self, p: Plan, spec: Any, callbacks: list[Any], epochs: int | None) -> Any:
        from ..train import fit

        remaining = None
        if self.cfg.deadline is not None:  # the study's timeout: stop after the epoch that passes it
            remaining = max(self.cfg.deadline - time.time(), 1.0)
        data = self._dataset(p, spec)
        device = self._device(spec)
        return fit(p, dataset=data, callbacks=callbacks, epochs=epochs, max_seconds=remaining, device=device)

    def _device(self, spec: Any) -> str:
        """Where this worker trains the trial: its GPU, or its share of the cores (torch's threads, set once)."""
        from ..train import device_for_worker

        asked = self.cfg.device or getattr(spec.train, "device", "auto")
        placed = device_for_worker(self.cfg.worker_index, self.cfg.workers, asked)
        if self.cfg.workers > 1 and not self._threads_set:
            import torch

            torch.set_num_threads(placed.threads)
            self._threads_set = True
        return placed.device

    def _dataset(self, p: Plan, spec: Any) -> Any:
        """The trial's data, loaded once per worker: every trial of a space reads the same data (``--limit``
        caps each split)."""
        from ..data import DataWarning, data_warnings
        from ..train import load_for

        data = spec.data
        if data is None:
            return None  # fit says there is no data to train on
        if self.cfg.limit is not None:
            data = data.model_copy(update={"limit": self.cfg.limit})
        key = (data.model_dump_json(), tuple(p.input_shape))
        if key not in self._data:
            what = data.dataset or data.path or "the data"
            t0 = time.perf_counter()
            with (
                self.progress.preparing(what) if self.progress else contextlib.nullcontext(),
                data_warnings() as notes,
            ):
                ds = load_for(p, data)
            if self.progress is not None:
                sizes = (len(ds.y_train), len(ds.y_val), len(ds.y_test))
                self.progress.say(
                    f"data ready in {time.perf_counter() - t0:.1f} s: {sizes[0]} training, {sizes[1]} validation, "
                    f"{sizes[2]} test examples"
                )
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
        from ..tracking import OBJECTIVE_METRIC

        out = {}
        for m, d in zip(self.metrics, self.directions):
            with contextlib.suppress(TrialFailed):  # no epoch reported the metric
                out[f"objective.{m}"] = self._value(m, d, None, p, history)
        if f"objective.{self.metrics[0]}" in out:
            out[OBJECTIVE_METRIC] = out[f"objective.{self.metrics[0]}"]
        return out

    def _value(self, metric: str, direction: str, result: Any, p: Plan, history: list[dict]) -> float:
        if metric in PLAN_METRICS:
            return float(getattr(p, metric))
        final = _final_metrics(result)
        if metric in final:
            return float(final[metric])
        seen = [h[metric] for h in (getattr(result, "history", None) or history) if is_number(h.get(metric))]
        if not seen:
            reported = ", ".join(sorted(history[-1])) if history else "nothing"
            raise TrialFailed(f"training reported no `{metric}` (reported: {reported}).")
        # the best epoch's value, as KerasTuner scores a trial
        return float(max(seen) if direction == "maximize" else min(seen))


@dataclass
class _Trained:
    """A trial being trained: its run, its epoch reporter, and where its time goes (``time.perf_counter``)."""

    trial: Any
    run_id: str
    callback: Any  # its epoch_reporter
    suggest_s: float  # Optuna's ask and suggest calls
    check_s: float  # expanding, planning and checking the spec
    start: float  # when its run was started, after the checks
    track_s: float  # starting the run and writing its first files
    train_start: float  # when training began


def _peak(metered: bool, guard: MemoryGuard | None) -> int | None:
    """The process's peak resident memory during a trial (None where it cannot be read; not a metric then)."""
    if metered:
        return peak_bytes()
    return guard.peak if guard is not None and guard.peak else None


def _final_metrics(result: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    test = getattr(result, "test", None)
    if isinstance(test, dict):
        for k, v in test.items():
            if is_number(v):
                out[k if k.startswith("test_") else f"test_{k}"] = float(v)
    for name in ("seconds", "images_per_s", "best_epoch"):
        v = getattr(result, name, None)
        if is_number(v):
            out[name] = float(v)
    return out


def reason_of(e: BaseException) -> str:
    """What failed a trial, in one line (``specdsl.reason``): an error's type and its message's first line."""
    if isinstance(e, OutOfMemory):  # its message starts "out of memory: "
        return e.format()
    text = e.format() if isinstance(e, SpecdslError) else str(e)
    text = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _summary(p: Plan) -> str:
    try:
        return summary_text(p)
    except Exception:  # a summary is a courtesy: never fail a trial over it
        return (
            "\n".join(f"{n.name:30s} {n.shape!s:20s} {n.params:>12,}" for n in p.nodes)
            + f"\nTotal params: {p.params:,}\n"
        )


def _cap(ds: Any, limit: int) -> Any:
    """Validation and test sets cut to ``limit`` examples too (``--limit`` is for quick runs)."""
    import dataclasses

    changes = {}
    for part in ("val", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        if x is not None and len(x) > limit:
            changes[f"x_{part}"], changes[f"y_{part}"] = x[:limit], y[:limit]
    return dataclasses.replace(ds, **changes) if changes else ds

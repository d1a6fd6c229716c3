"""The workers of a study: each runs trials until the budget, the deadline or a stop (:func:`work`), one in
this process and, with ``--workers N``, N - 1 more in spawned processes sharing the study's storage
(:func:`run_workers`). Asking for a trial and checking the budget happen under one lock of every worker of
the study (``BudgetLock``), so a study trains its ``trials``, not one more. A trial is told to Optuna whatever
happens to it; a store that fails stops the worker. How many workers ``--workers auto`` runs:
:func:`resolve_workers` (the environment variable ``SPECDSL_WORKERS``, else ``specdsl.train.workers_here``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
from typing import Any

from .._compat._optuna import storage_of, trial_count, trial_id
from ..errors import SearchError, SpecdslError, StoreError
from ..spec import SearchSpec, load_text
from ._config import MAX_CONSECUTIVE_REJECTED, REJECTED, StudyConfig
from ._progress import Progress, row_of
from ._results import OverheadTally
from ._setup import open_study, quiet_optuna
from ._space import distributions
from ._storage import (
    HEARTBEAT_SECONDS,
    BudgetLock,
    display_url,
    fail_dead_trials,
    heartbeat,
    study_store_error,
)
from ._trial import Objective

WORKERS_ENV = "SPECDSL_WORKERS"  # what --workers auto means where it is set: a count (or auto)


def _count(value: Any, what: str, hint: str) -> int | None:
    """``value`` as a worker count (an int, or the text of one), None for ``auto``; a SearchError otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        n = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise SearchError(f"{what} must be auto or a whole number at least 1, but got {value!r}.", hint=hint)
    return n


def resolve_workers(asked: int | str, device: str = "auto") -> tuple[int, str | None]:
    """The worker processes of a study and, for ``auto``, why that many: ``asked`` as given when a count; for
    ``auto`` the count in ``$SPECDSL_WORKERS`` where set, else ``specdsl.train.workers_here(device)`` (one a GPU,
    one on MPS, one a CPU core up to 4)."""
    n = _count(asked, "`workers` (--workers)", "Pass --workers auto, or a count such as --workers 2.")
    if n is not None:
        return n, None
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        n = _count(env, f"${WORKERS_ENV}", f"Set {WORKERS_ENV} to auto or a count such as 2, or unset it.")
        if n is not None:
            return n, f"{WORKERS_ENV}={n}"
    from ..train import workers_here

    return workers_here(device)


def workers_line(n: int, why: str | None) -> str | None:
    """What the progress says of the workers once: for ``auto``, how many and why.

    >>> workers_line(2, "one a core")
    '2 workers (one a core: --workers N sets them)'
    >>> workers_line(1, "one on MPS"), workers_line(3, None)
    ('1 worker (one on MPS: --workers N sets them)', None)
    """
    if why is None:
        return None
    return f"{n} worker{'s' if n != 1 else ''} ({why}: --workers N sets them)"


def admitted(study: Any) -> int:
    """Trials that train or trained (every state but invalid samples), for the budget."""
    trials = study.get_trials(deepcopy=False)
    return sum(1 for t in trials if not t.user_attrs.get(REJECTED) and t.state.name != "WAITING")


def time_for_another(deadline: float | None, epoch_s: float | None, now: float) -> bool:
    """Whether a worker starts another trial: no deadline, or one that an epoch as long as the last trial's
    (on average) ends before: a trial trains at least one epoch, so one started later would end past the study's
    budget, and a time-limited trial stops once its next epoch would end past it, with less than that left.

        >>> time_for_another(100.0, None, 90.0), time_for_another(100.0, 12.0, 90.0), time_for_another(None, 5.0, 1e9)
        (True, False, True)
    """
    return deadline is None or now + (epoch_s or 0.0) < deadline


def work(cfg: StudyConfig, progress: Progress | None) -> dict[str, Any]:
    """Run trials until the budget, the deadline or a stop; returns what this worker saw.

    Optuna's ask-and-tell, so that "is the budget reached?" and asking for a trial happen under one lock shared by
    every worker of the study (a lock on the SQLite file's folder, an advisory lock on PostgreSQL): ``trials``
    trained trials, not one more, however many workers and machines.
    """
    import optuna
    from optuna.trial import TrialState

    from ..tracking import Tracker

    quiet_optuna()
    tree = load_text(cfg.space_text, cfg.space_file)
    dists = distributions(tree, cfg.space_file)
    search = SearchSpec.model_validate(cfg.search)
    study = open_study(cfg, dists, search)
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
        if trial_count(study) < cfg.budget:
            return False  # fewer trials of any kind than the budget: no need to read them
        return admitted(study) >= cfg.budget

    def after_trial(trial: Any) -> None:
        rejected = bool(trial.user_attrs.get(REJECTED))
        state["consecutive_rejected"] = state["consecutive_rejected"] + 1 if rejected else 0
        if progress is not None:
            progress.finished(row_of(trial))
            now = time.monotonic()
            if (
                now - state["last_refresh"] > 10.0
            ):  # trials of other workers and machines too (a read of them all)
                state["last_refresh"] = now
                progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])

    with BudgetLock(cfg.storage, cfg.study_name) as lock, tally.kept_in(study):
        while True:
            t0 = time.perf_counter()  # a trial's time: from here to its end on the progress, all of it
            if not time_for_another(cfg.deadline, objective.epoch_s, time.time()):
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


def _run_trial(study: Any, trial: Any, objective: Objective, TrialState: Any) -> Any:
    """One trial, told to Optuna whatever happens; a KeyboardInterrupt is told (FAIL) and raised again. A failing
    store stops the study (``objective.fatal``); when the study storage takes no more, not even the trial's end,
    the trial stays RUNNING in it, and the next run of the study fails it."""
    import optuna

    values, state = None, None
    with heartbeat(storage_of(study), trial_id(trial)):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except (
            Exception
        ) as e:  # recorded by the objective (reason, MLflow); the study goes on, unless a store failed
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


def watch_parent(parent_pid: int | None) -> None:
    """End this process (exit code 3) within a second of its parent's end: a killed search leaves no worker
    behind (its running trial stays RUNNING, and the next run fails it)."""
    if parent_pid is None:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(cfg: StudyConfig) -> None:
    """Entry point of a worker process (``--workers N``): quiet, and gone when its parent is."""
    watch_parent(cfg.parent_pid)
    try:
        try:
            work(cfg, None)
        except Exception as e:
            raise (study_store_error(e, cfg.storage) or e) from None  # a store's failure in its own words
    except KeyboardInterrupt:
        os._exit(130)
    except SpecdslError as e:
        import sys

        print(f"worker {cfg.worker_index}: error: {e.format()}", file=sys.stderr)
        os._exit(StoreError.exit_code if isinstance(e, StoreError) else 2)


def run_workers(cfg: StudyConfig, study: Any, progress: Progress) -> dict[str, Any]:
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
        raise StoreError(
            f"a worker stopped on a store that failed (exit codes {codes}); its message above names "
            "the store and the way out.",
            store=display_url(cfg.storage),
            kind="other",
        )
    if any(c == 2 for c in codes):
        raise SearchError(f"a worker stopped on an error (exit codes {codes}); see its message above.")
    return state

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

Here: setting a study up (the options over the space's section, the storage, the study, its MLflow run),
running its workers, and closing it with its results. A trial is ``_trial`` (its epochs ``_pruning``), the
workers ``_workers``, the counts and overhead ``_results``, freezing a trial ``_freeze``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._compat._optuna import stored_trial
from .._text import terminal
from ..errors import Loc, SearchError, SpecdslError
from ..plan import plan
from ..report import svg_later
from ..spec import SearchSpec, load
from ..train import iec_bytes, resident_bytes
from ._config import (
    MAX_CONSECUTIVE_REJECTED,
    METRICS_ATTR,
    PARENT_ATTR,
    RUN_ATTR,
    SPACE_ATTR,
    SPACE_FILE_ATTR,
    WATCHED_ATTR,
    SearchOptions,
    StudyConfig,
)
from ._freeze import frozen_text
from ._progress import Progress, row_of
from ._results import StudyResult, study_result
from ._select import reevaluate, select_top, worker_threads
from ._setup import quiet_optuna
from ._space import check_space, distributions, parse_duration, read_search, read_space
from ._storage import DEFAULT_STORAGE, display_url, fail_dead_trials, open_storage, study_store_error
from ._trial import reason_of
from ._workers import admitted, resolve_workers, run_workers, work, workers_line

# the options that are fields of the search section too (checked as the section's own values are)
_SECTION_OPTIONS = ("trials", "storage", "study_name", "seed", "tracking_uri", "experiment")


def run_search(
    space_path: str | os.PathLike,
    options: SearchOptions | None = None,
    *,
    console: Any = None,
    plots: bool = True,
    **settings: Any,
) -> StudyResult:
    """Search a space with Optuna; every trial is a nested MLflow run under one run for the study.

    Settings come from the space's ``search:`` section; ``options`` win over it, and keyword arguments named
    as the fields of :class:`SearchOptions` (``trials=20``, ``timeout="15m"``, ...) win over ``options``.
    Rerunning the same call resumes the study. ``workers`` processes on this machine share the storage (the
    default ``auto``: ``$SPECDSL_WORKERS``, else one a GPU, one on MPS, one a CPU core up to 4, and no more
    than the trials); more machines join by running the same command on the same PostgreSQL storage.
    ``console`` (a rich Console) shows the progress and the summary. ``plots=False`` (or the environment
    variable ``SPECDSL_PLOTS=0``) skips Optuna's plots at the end (they need plotly, and take seconds to
    import and draw).

        >>> r = run_search("search_spaces/catsdogs.yaml", trials=20, timeout="15m")
        >>> r.best_value, r.best_params["lr"]
    """
    started = time.time()
    opts = dataclasses.replace(options or SearchOptions(), **settings)
    # Everything static first, so that an invalid space is refused before optuna, mlflow or torch is imported.
    tree, file, text = read_space(space_path)
    dists = distributions(tree, file)
    search = read_search(tree, file)
    updates: dict[str, Any] = {k: getattr(opts, k) for k in _SECTION_OPTIONS if getattr(opts, k) is not None}
    if opts.timeout is not None:
        # the section holds whole seconds
        updates["timeout"] = max(1, math.ceil(parse_duration(opts.timeout)))
    search = _with_options(search, updates, file)
    timeout_s = parse_duration(search.timeout)
    if opts.device is not None:
        from ..train import device_name

        device_name(opts.device)  # a device this machine lacks: one error before the study, not one a trial
    train = tree.get("train") if isinstance(tree, dict) else None
    spec_device = train.get("device") if isinstance(train, dict) else None  # a distribution: auto's rule
    workers, workers_why = resolve_workers(
        opts.workers, opts.device or (spec_device if isinstance(spec_device, str) else "auto")
    )
    if workers_why is not None and search.trials is not None and search.trials < workers:
        workers, workers_why = search.trials, f"as many as the {search.trials} trials"
    quick = check_space(file, samples=30, seed=search.seed or 0, tree=tree)
    if quick.all_invalid and not quick.distributions and quick.first_error is not None:
        raise quick.first_error  # a fixed spec: its own error, said once
    if quick.all_invalid:
        raise SearchError(
            f"none of {quick.samples} sampled architectures plans; the most common reason: "
            f"{quick.reasons.most_common(1)[0][0]}",
            loc=quick.first_error.loc if quick.first_error else None,
            hint="Narrow the distributions so that some choices plan (`specdsl validate` shows the reasons).",
        )

    import optuna

    from ..tracking import STORAGE_TAG, Tracker, resolve_tracking_uri

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
        quiet_optuna()
        store = open_storage(url)
        name = _study_for(store, name, opts.resume)
        tracker.study_name = name
        study = optuna.create_study(
            storage=store, study_name=name, directions=directions, load_if_exists=True
        )
        if [d.name.lower() for d in study.directions] != directions:
            raise SearchError(
                f"study `{name}` optimizes {', '.join(d.name.lower() for d in study.directions)}, but this search "
                f"{', '.join(directions)}.",
                hint="Use another --study-name for other objectives.",
            )
        attrs = study.user_attrs
        if SPACE_ATTR not in attrs:
            study.set_user_attr(SPACE_ATTR, text)
            study.set_user_attr(SPACE_FILE_ATTR, file)
            study.set_user_attr(METRICS_ATTR, metrics)
        if WATCHED_ATTR not in attrs:  # the trials from here on keep their objective's best epoch
            study.set_user_attr(WATCHED_ATTR, len(study.get_trials(deepcopy=False)))
        notes: list[str] = []
        if attrs.get(SPACE_ATTR, text) != text:
            notes.append(
                f"note: {file} changed since study {name} started; the new trials use the file as it is now."
            )
            study.set_user_attr(SPACE_ATTR, text)
        held = resident_bytes() if search.trial_memory is not None else None
        if held is not None and held > search.trial_memory:
            notes.append(
                f"note: this process already holds {iec_bytes(held)} of memory, more than the "
                f"{iec_bytes(search.trial_memory)} of search.trial_memory: every trial will fail; raise it."
            )

        settings = {
            "sampler": search.sampler,
            "pruner": search.pruner if len(metrics) == 1 else "none (several objectives)",
            "objectives": ", ".join(f"{o.direction} {o.metric}" for o in search.objectives),
            "startup_trials": search.startup_trials,
            "seed": search.seed,
            "space": file,
            "constraints": search.constraints.model_dump_json(exclude_none=True),
            "trial_memory": search.trial_memory,
        }
        run_tags = {
            STORAGE_TAG: display_url(url),
            "trials": search.trials,
            "timeout": timeout_s,
            "workers": workers,
            "epochs": opts.epochs,
            "limit": opts.limit,
            "host": socket.gethostname(),
        }
        parent_id, created = tracker.ensure_parent(
            attrs.get(PARENT_ATTR), settings, {k: v for k, v in run_tags.items() if v is not None}
        )
        if created:
            study.set_user_attr(PARENT_ATTR, parent_id)
            tracker.log_space(file, text)

        # whatever a killed or interrupted run left behind
        failed_now = fail_dead_trials(study)
        tracker.reconcile(study.get_trials(deepcopy=False))
        if failed_now:
            notes.append(
                f"{len(failed_now)} trial(s) left running by a stopped worker were marked failed: "
                + ", ".join(f"#{t.number}" for t in failed_now)
            )

        # with a timeout, the re-evaluation of the top trials keeps its share of it (_select)
        top = select_top(search.select, timeout_s)
        trials_until = None if timeout_s is None else started + timeout_s
        if trials_until is not None and top >= 2:
            trials_until = started + timeout_s * (1 - search.select.share)
        cfg = StudyConfig(
            space_file=file,
            space_text=text,
            study_name=name,
            storage=url,
            tracking_uri=uri,
            experiment=exp_name,
            parent_run_id=parent_id,
            search=search.model_dump(),
            budget=search.trials,
            deadline=trials_until,
            epochs=opts.epochs,
            limit=opts.limit,
            seed=search.seed,
            workers=workers,
            device=opts.device,
            parent_pid=os.getpid(),
            fit_epochs=opts.fit_epochs and opts.epochs is None and timeout_s is not None,
        )
        progress = Progress(
            console,
            study_name=name,
            metrics=metrics,
            directions=directions,
            budget=search.trials,
            timeout=timeout_s,
            workers=workers,
        )
        progress.replace([row_of(t) for t in study.get_trials(deepcopy=False)])
        progress.printed.update(progress.rows)  # lines only for trials finished from now on
        for line in notes:
            progress.say(line)
        interrupted = False
        state: dict[str, Any] = {}
        chosen = None
        with progress:
            pruning = (
                "no pruning" if settings["pruner"].startswith("none") else f"{settings['pruner']} pruner"
            )
            if settings["pruner"] == "none (several objectives)":
                pruning = "no pruning (Optuna prunes single-objective studies only)"
            progress.say(
                f"study {name} on {display_url(url)}: {search.sampler} sampler, {pruning}, "
                f"{len(dists)} parameters; MLflow experiment {exp_name} at {uri}"
            )
            if (line := workers_line(workers, workers_why)) is not None:
                progress.say(line)
            try:
                if workers == 1:
                    state = work(cfg, progress)
                else:
                    state = run_workers(cfg, study, progress)
                if search.trials is not None and timeout_s is not None and not state.get("dead_end"):
                    left = (started + timeout_s) - time.time()
                    if left > 0.1 * timeout_s and admitted(study) >= search.trials:
                        notes.append(
                            f"the {search.trials}-trial cap was reached with {left:.0f} s of the {timeout_s:.0f} s "
                            "budget left: raise --trials to let the budget decide."
                        )
                with worker_threads(cfg):  # worker 0's threads, as its trials trained
                    chosen = reevaluate(
                        study,
                        cfg,
                        search,
                        top,
                        None if timeout_s is None else started + timeout_s,
                        progress.say,
                    )
            except KeyboardInterrupt:
                interrupted = True
                progress.say(
                    "interrupted: the running trial is marked failed; rerun the same command to resume."
                )
            progress.replace(
                [row_of(t) for t in study.get_trials(deepcopy=False)]
            )  # the final state on screen
        if state.get("dead_end"):
            notes.append(
                f"stopped: the last {MAX_CONSECUTIVE_REJECTED} sampled architectures were all invalid; "
                "narrow the space (`specdsl validate` shows why)."
            )

        fail_dead_trials(study)
        all_trials = study.get_trials(deepcopy=False)
        tracker.reconcile(all_trials)
        result = study_result(
            study,
            all_trials,
            StudyResult(
                study_name=name,
                storage=display_url(url),
                experiment=exp_name,
                tracking_uri=uri,
                parent_run_id=parent_id,
                metrics=metrics,
                directions=directions,
                experiment_id=tracker.experiment_id,
                timeout=timeout_s,
            ),
        )
        result.chosen = chosen
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
        raise SearchError(
            f"--{field.replace('_', '-')}: {text[0].lower() + text[1:]}".rstrip(".") + ".",
            loc=Loc(file),
            path=f"search.{field}",
        ) from None


@contextlib.contextmanager
def _stopping_cleanly(tracker: Any, url: str) -> Any:
    """Whatever stops a search in the block: a failing store becomes one StoreError naming it, and the study's
    MLflow run, once there is one, is closed with the reason: KILLED on Ctrl-C, FAILED otherwise (if MLflow's store
    still takes it; else the next run of the study closes it)."""
    from ..tracking import REASON_MAX, REASON_TAG

    try:
        yield
    except BaseException as e:
        failure = study_store_error(e, url) if isinstance(e, Exception) else None
        if tracker.parent_id is not None:
            status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
            reason = failure.format() if failure is not None else reason_of(e)
            with contextlib.suppress(Exception):
                tracker.finish_parent(status, {}, {REASON_TAG: reason[:REASON_MAX]}, {})
        if failure is not None and failure is not e:
            raise failure from None
        raise


def _trial_run(study: Any, number: int) -> str | None:
    for t in study.get_trials(deepcopy=False):
        if t.number == number:
            return t.user_attrs.get(RUN_ATTR)
    return None


def _study_for(store: Any, name: str, resume: bool) -> str:
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


def _finish_parent(
    tracker: Any, study: Any, result: StudyResult, file: str, text: str, plots: bool, interrupted: bool
) -> None:
    from ..report import study_plots
    from ..tracking import PLOTS_TAG

    metrics: dict[str, float] = {
        "trials_complete": result.complete,
        "trials_pruned": result.pruned,
        "trials_failed": result.failed,
        "samples_invalid": result.invalid,
        "invalid_fraction": result.invalid_fraction,
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
            texts["best.yaml"] = frozen_text(study, stored_trial(study, result.best_number))
            texts.update(svg_later(plan(load(texts["best.yaml"])), "best_model.svg")())
        except SpecdslError:
            pass
    if (c := result.chosen) is not None:  # the estimate to trust, on the study's run and the trials' own
        m = result.metrics[0]
        metrics.update({f"chosen.{m}": c.mean, f"chosen.{m}.spread": c.spread, "chosen.splits": c.n})
        for number, (_, mean, n) in c.candidates.items():
            run_id = _trial_run(study, number)
            if run_id:
                tracker.log_values(run_id, {f"reevaluated.{m}": mean, "reevaluated.splits": n})
    for k, v in result.overhead.items():
        metrics[f"overhead.{k}"] = v
    files: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if plots and result.complete > 0:
            files, note = study_plots(study, tmp, metrics=result.metrics)
            if note:
                result.notes.append(note)
                tags[PLOTS_TAG] = note
        tracker.finish_parent("KILLED" if interrupted else "FINISHED", metrics, tags, texts, files)

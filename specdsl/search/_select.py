"""The final model chosen by re-evaluation, not by one validation split (``search.select``).

A study ranks its trials by one validation set; with a few hundred validation examples and many trials, the
trial ranked first is the one whose split was luckiest, and its value overstates what a user gets. So once the
trials have run, the ``top`` complete trials by their validation curves (each trial's best epoch averaged with
its neighbours, not one epoch's value) are trained again ``repeats`` times each on fresh stratified splits of the
training and validation examples (the test set untouched), with fresh seeds, breadth first. A fresh split
repeats what made the trial's model: it trains on as many examples, keeps the epoch that half of its validation
examples scores best (as the trial kept its best epoch on its own validation split), and its fresh value is the
score of the other half, which took no part in that choice. Scored on the half that chose the epoch (the best of
20 noisy epochs, picked on the examples that score them), the estimate was 2.8 points high on Fashion-MNIST (3
seeds); read at the trial's kept epoch, 1.5 points low (standard error 1.0) in 15-minute searches: the epoch a run
picks by its own validation is better than a fixed one in a run with another seed. (An objective with no test
counterpart, such as the training ``loss``, is read at the kept epoch.) The trial with the best mean of
its fresh values is chosen. That mean is a lucky one too (the best of ``top`` noisy means), so the chosen trial is
then trained on ``confirm`` more fresh splits, which take no part in any choice, and their mean and spread are the
estimate reported. What was measured is kept in the study (``specdsl.reevaluated`` and ``specdsl.confirmed`` per
trial, ``specdsl.chosen``), so a resumed study re-trains nothing twice, and :func:`~specdsl.search.best_trial`
returns the chosen trial. With a deadline the choice leaves the estimate its time (the costliest candidate's
training, once a round of the workers).

The re-evaluations run after the workers end: with one worker in this process, and with several in as many
spawned processes at once, each with a worker's device and torch threads (its share of the cores), as the trials
trained: a trial's training time is then what its re-evaluation costs, for the deadline. Measured on a busy
2-core machine, a small Fashion-MNIST CNN trained 2.6x faster on one thread than on two (medians of 3
interleaved runs: 191 vs 73 img/s, and 225 vs 109 in a second measurement; ``benchmarks/reevaluation_threads.py``),
so two one-thread processes re-evaluate about twice as fast as this one would with both threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

from ._config import CHOSEN_ATTR, CONFIRMED_ATTR, REEVALUATED_ATTR, REJECTED, RESULT, StudyConfig
from ._space import FINAL_METRICS, PLAN_METRICS

DEFAULT_TOP = 3  # trials re-evaluated in a search with a timeout, unless search.select.top says otherwise


def select_top(select: Any, timeout: float | None) -> int:
    """How many trials a study re-evaluates: ``select.top``, or :data:`DEFAULT_TOP` with a timeout, 0 without."""
    if select.top is not None:
        return select.top
    return DEFAULT_TOP if timeout is not None else 0


def curve_score(values: dict[int, float], maximize: bool) -> float | None:
    """A trial's validation curve in one number: its best epoch's value averaged with the epochs beside it.

    >>> curve_score({0: 0.60, 1: 0.80, 2: 0.70}, True)   # (0.60 + 0.80 + 0.70) / 3
    0.7
    >>> curve_score({0: 0.5, 1: 0.9}, True), curve_score({}, True)
    (0.7, None)
    """
    if not values:
        return None
    steps = sorted(values)
    seen = [values[s] for s in steps]
    best = seen.index(max(seen) if maximize else min(seen))
    window = seen[max(0, best - 1) : best + 2]
    return round(sum(window) / len(window), 12)


def estimate(fresh: list[float], n_val: int | None, accuracy: bool) -> tuple[float, float]:
    """(mean, spread) of a trial's fresh values: their sample standard deviation, or for a single accuracy the
    binomial standard error of a proportion over ``n_val`` examples.

    >>> estimate([0.70, 0.74], 300, True)
    (0.72, 0.028284271247461926)
    >>> estimate([0.75], 300, True)
    (0.75, 0.025)
    """
    mean = statistics.fmean(fresh)
    if len(fresh) > 1:
        return mean, statistics.stdev(fresh)
    if accuracy and n_val:
        return mean, math.sqrt(mean * (1 - mean) / n_val)
    return mean, math.nan


def scored_apart(metric: str) -> bool:
    """Whether a fresh split of a study with objective ``metric`` is scored apart: the epoch chosen on half its
    validation examples, ``metric`` read on the other half as a test metric (``val_accuracy``: ``accuracy``)."""
    return metric.startswith("val_")


def resplit(ds: Any, seed: int, *, apart: bool = False) -> Any:
    """``ds`` with its training and validation examples pooled and split again by ``seed``, stratified, each
    class giving validation its share of the pool (rounded per class, as every split of the data package is);
    the test examples untouched. Images on disk stay there (the split is of their rows). ``apart``: validation's
    share is halved, and the other half takes the test examples' place, to score the epoch the first half
    chooses (the true test examples are not in the result)."""
    import numpy as np

    from ..data import MappedImages, stratified_split

    a, b = ds.x_train, ds.x_val
    if isinstance(a, MappedImages) and isinstance(b, MappedImages) and a.base is b.base:
        pooled = MappedImages(
            a.base, np.concatenate([a.index, b.index]), a.mapping
        )  # images on disk: rows only
        take = pooled.subset
    else:
        take = np.concatenate([np.asarray(a), np.asarray(b)]).__getitem__
    y = np.concatenate([ds.y_train, ds.y_val])
    val = len(ds.y_val) / len(y)
    share = (val / 2, val / 2) if apart else (val, 0.0)
    train_idx, val_idx, score_idx = stratified_split(y, *share, np.random.default_rng(seed))
    r = dataclasses.replace(
        ds, x_train=take(train_idx), y_train=y[train_idx], x_val=take(val_idx), y_val=y[val_idx]
    )
    return dataclasses.replace(r, x_test=take(score_idx), y_test=y[score_idx]) if apart else r


@contextlib.contextmanager
def worker_threads(cfg: StudyConfig) -> Iterator[int | None]:
    """torch's threads in this process set to worker 0's (``cfg.workers`` > 1; one worker keeps torch's own, as
    its trials did) for the block, and put back after it; yields the count set, or None."""
    if cfg.workers <= 1:
        yield None
        return
    import torch

    from ..train import device_for_worker

    before = torch.get_num_threads()
    threads = device_for_worker(0, cfg.workers, cfg.device or "auto").threads
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass
class Chosen:
    """The trial chosen by re-evaluation: its number, the estimate (mean, spread over ``n`` fresh splits) and its
    search value; ``candidates`` maps each re-evaluated trial to (its search value, its fresh mean, n)."""

    trial: int
    mean: float
    spread: float
    n: int
    search_value: float
    candidates: dict[int, tuple[float, float, int]]
    held_out: bool = False  # the estimate is of splits that took no part in the choice (``select.confirm``)
    note: str | None = None

    def as_attr(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "mean": self.mean,
            "spread": None if math.isnan(self.spread) else self.spread,
            "n": self.n,
            "search_value": self.search_value,
            "candidates": {str(k): list(v) for k, v in self.candidates.items()},
            "held_out": self.held_out,
        }


@dataclasses.dataclass(frozen=True)
class Job:
    """One re-evaluation: trial ``number`` (its frozen spec ``text``) trained on fresh split ``repeat``."""

    number: int
    repeat: int
    text: str
    epochs: int | None
    cost: float  # the trial's own training time: what the deadline must leave for it
    epoch: int | None = None  # the epoch whose value is read: the one whose weights the trial kept (its best)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a re-evaluation measured (``value``; None where it failed or was cut) and what to say of it."""

    job: Job
    value: float | None = None
    n_val: int | None = None
    skipped: bool = False
    message: str | None = None
    worker: int | None = None  # the re-evaluation process (several workers), None in this process


def run_job(
    job: Job, objective: Any, deadline: float | None, metric: str, maximize: bool, worker: int | None = None
) -> Outcome:
    """Train ``job`` once; any failure is its outcome (a re-evaluation that fails costs its value, never the
    study). ``objective`` loads the data (once per process) and places the training as its trials are placed
    (its worker's device and threads)."""
    from ..plan import plan
    from ..spec import load
    from ..train import fit

    if deadline is not None and time.time() + job.cost > deadline:
        return Outcome(job, skipped=True, worker=worker)
    try:
        spec = load(job.text, file=f"trial {job.number}")
        p = plan(spec)
        apart = scored_apart(metric)
        ds = resplit(objective._dataset(p, spec), seed=1000 * job.repeat + job.number, apart=apart)
        train = spec.train.model_copy(update={"seed": spec.train.seed + job.repeat})
        left = None if deadline is None else max(deadline - time.time(), 1.0)
        device = objective._device(spec)
        result = fit(p, dataset=ds, train=train, epochs=job.epochs, max_seconds=left, device=device)
    except Exception as e:
        return Outcome(
            job, message=f"re-evaluating trial {job.number} failed: {type(e).__name__}: {e}", worker=worker
        )
    if getattr(result, "stop_reason", None) == "max_seconds":  # fewer epochs than the trial: not comparable
        return Outcome(
            job,
            skipped=True,
            worker=worker,
            message=f"re-evaluating trial {job.number} was cut at the time limit; its value is not kept",
        )
    if apart:
        scored = (result.test or {}).get(metric[len("val_") :])
        if not isinstance(scored, (int, float)):
            return Outcome(job, worker=worker)
        return Outcome(job, float(scored), len(ds.y_test), worker=worker)
    seen = [h.get(metric) for h in result.history]
    at = len(seen) - 1 if job.epoch is None else min(job.epoch, len(seen) - 1)
    if not seen or not isinstance(seen[at], (int, float)):
        return Outcome(job, worker=worker)
    return Outcome(job, float(seen[at]), len(ds.y_val), worker=worker)


def _in_this_process(jobs: list[Job], cfg: StudyConfig, *args: Any) -> Iterator[Outcome]:
    from ._trial import Objective

    objective = Objective(cfg, tracker=None, progress=None)  # its data loading, without MLflow
    for job in jobs:
        yield run_job(job, objective, *args)


def _pool_main(cfg: StudyConfig, index: int, jobs: Any, out: Any, args: tuple[Any, ...]) -> None:
    """A re-evaluation process: worker ``index``'s device and threads, jobs until the queue's end."""
    from ._trial import Objective
    from ._workers import watch_parent

    watch_parent(cfg.parent_pid)
    objective = Objective(dataclasses.replace(cfg, worker_index=index), tracker=None, progress=None)
    try:
        while (job := jobs.get()) is not None:
            out.put(run_job(job, objective, *args, worker=index))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the search says it once
        os._exit(130)


def _in_processes(jobs: list[Job], cfg: StudyConfig, *args: Any) -> Iterator[Outcome]:
    """The jobs shared by ``cfg.workers`` spawned processes (each a worker's device and threads), outcomes as they
    come; a process that dies costs its job only, and the end of all of them ends the wait."""
    import multiprocessing
    import queue

    ctx = multiprocessing.get_context("spawn")
    todo, out = ctx.Queue(), ctx.Queue()
    n = min(cfg.workers, len(jobs))
    for job in [*jobs, *([None] * n)]:
        todo.put(job)
    procs = [ctx.Process(target=_pool_main, args=(cfg, i, todo, out, args)) for i in range(n)]
    for proc in procs:
        proc.start()
    try:
        for _ in jobs:
            while True:
                try:
                    yield out.get(timeout=1.0)
                    break
                except queue.Empty:
                    if not any(proc.is_alive() for proc in procs) and out.empty():
                        return
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def reevaluate(
    study: Any, cfg: StudyConfig, search: Any, top: int, deadline: float | None, say: Any
) -> Chosen | None:
    """Re-evaluate the study's ``top`` complete trials (see the module) until ``deadline``, then the chosen one on
    ``search.select.confirm`` more fresh splits for its estimate: in this process, or with several workers in as
    many processes at once (each a worker's device and threads); the chosen trial, kept in the study, or None
    where there is nothing to choose between (one objective of an epoch metric, two complete trials at least)."""
    metric, direction = search.objectives[0].metric, search.objectives[0].direction
    if top < 2 or len(search.objectives) > 1 or metric in PLAN_METRICS or metric in FINAL_METRICS:
        return None
    maximize = direction == "maximize"
    ranked = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "COMPLETE" and not t.user_attrs.get(REJECTED):
            score = curve_score(dict(t.intermediate_values), maximize)
            if score is not None:
                ranked.append((score, t))
    ranked.sort(key=lambda st: (-st[0] if maximize else st[0], st[1].number))
    candidates = [t for _, t in ranked[:top]]
    if len(candidates) < 2:
        return None
    repeats, confirm = search.select.repeats, search.select.confirm
    say(
        f"choosing the final model: the top {len(candidates)} trials by their validation curves "
        f"(#{', #'.join(str(t.number) for t in candidates)}) trained again on {repeats} fresh "
        f"train/validation splits each"
        + (f", then the one chosen on {confirm} more for its estimate" if confirm else "")
    )
    kept: dict[str, list[float]] = dict(study.user_attrs.get(REEVALUATED_ATTR) or {})
    jobs = [  # breadth first; what an earlier run of the study measured is kept
        _job(study, t, r, maximize)
        for r in range(1, repeats + 1)
        for t in candidates
        if len(kept.get(str(t.number), [])) < r
    ]
    searched = {t.number: float(t.value) for t in candidates}
    # the choice leaves the estimate its time: the costliest candidate's training, once a round of the workers
    reserve = 0.0
    if deadline is not None and confirm:
        costliest = max(float((t.user_attrs.get(RESULT) or {}).get("train_s") or 0.0) for t in candidates)
        reserve = costliest * math.ceil(confirm / max(cfg.workers, 1))
    args = (cfg, metric, maximize, searched, study, say)
    skipped, n_val = _measure(
        jobs, kept, REEVALUATED_ATTR, None if deadline is None else deadline - reserve, *args
    )
    measured = {t.number: kept.get(str(t.number), []) for t in candidates}
    if not any(measured.values()):
        return None
    table = {
        t.number: (searched[t.number], statistics.fmean(measured[t.number]), len(measured[t.number]))
        for t in candidates
        if measured[t.number]
    }
    sign = 1 if maximize else -1
    best = max(table, key=lambda n: (sign * table[n][1], -n))
    held = sum(len(v) for v in measured.values())

    confirmed: dict[str, list[float]] = dict(study.user_attrs.get(CONFIRMED_ATTR) or {})
    trial = next(t for t in candidates if t.number == best)
    jobs = [
        _job(study, trial, repeats + r, maximize)  # splits and seeds after the choice's own
        for r in range(len(confirmed.get(str(best), [])) + 1, confirm + 1)
    ]
    _, seen = _measure(jobs, confirmed, CONFIRMED_ATTR, deadline, *args)
    n_val = n_val or seen
    values = confirmed.get(str(best), [])[:confirm]
    basis = values or measured[best]  # without an estimate split, the mean that chose it
    accuracy = metric.endswith(("accuracy", "acc"))
    if n_val is None and len(basis) == 1 and accuracy:  # all measured earlier
        n_val = _val_size(study, candidates[0], cfg, apart=scored_apart(metric))
    mean, spread = estimate(basis, n_val, accuracy)
    chosen = Chosen(best, mean, spread, len(basis), table[best][0], table, held_out=bool(values))
    notes = []
    if skipped:
        notes.append(f"the time left held {held} of {len(candidates) * repeats} re-evaluations")
    if confirm and len(values) < confirm:
        notes.append(
            f"{len(values)} of its {confirm} estimate splits were trained"
            + ("" if values else ": the estimate is the mean that chose it, which overstates")
        )
    chosen.note = "; ".join(notes) or None
    study.set_user_attr(CHOSEN_ATTR, chosen.as_attr())
    return chosen


def _measure(
    jobs: list[Job],
    kept: dict[str, list[float]],
    attr: str,
    deadline: float | None,
    cfg: StudyConfig,
    metric: str,
    maximize: bool,
    searched: dict[int, float],
    study: Any,
    say: Any,
) -> tuple[int, int | None]:
    """Run ``jobs`` (see :func:`reevaluate`), each value added to ``kept`` and the study's ``attr`` as it comes;
    (how many were skipped for time, the validation examples of a fresh split or None)."""
    run = _in_processes if cfg.workers > 1 and len(jobs) > 1 else _in_this_process
    skipped, n_val = 0, None
    for outcome in run(jobs, cfg, deadline, metric, maximize):
        job = outcome.job
        skipped += outcome.skipped
        if outcome.message is not None:
            say(outcome.message)
        if outcome.value is None:
            continue
        kept.setdefault(str(job.number), []).append(outcome.value)
        n_val = outcome.n_val
        study.set_user_attr(attr, kept)
        where = "" if outcome.worker is None else f" (worker {outcome.worker})"
        what = (
            "for its estimate" if attr == CONFIRMED_ATTR else f"(its search value {searched[job.number]:.4f})"
        )
        say(
            f"re-evaluated trial {job.number} on split {job.repeat}{where}: {metric} {outcome.value:.4f} {what}"
        )
    return skipped, n_val


def _job(study: Any, t: Any, repeat: int, maximize: bool) -> Job:
    from ._freeze import frozen_text

    info = t.user_attrs.get(RESULT) or {}
    return Job(
        t.number,
        repeat,
        frozen_text(study, t),
        info.get("epochs") or None,
        float(info.get("train_s") or 0.0),
        kept_epoch(t, maximize),
    )


def kept_epoch(t: Any, maximize: bool) -> int | None:
    """The epoch whose weights trial ``t`` kept (and its test score measured): its ``best_epoch``, else its best
    reported epoch; None where it reported none."""
    best = (t.user_attrs.get(RESULT) or {}).get("best_epoch")
    if isinstance(best, (int, float)):
        return int(best)
    values = dict(t.intermediate_values)
    if not values:
        return None
    return (max if maximize else min)(values, key=lambda step: values[step])


def _val_size(study: Any, t: Any, cfg: StudyConfig, apart: bool) -> int | None:
    """The examples that score a fresh split of trial ``t``'s data: its validation examples (as many as its own
    split), or with ``apart`` the half of them that did not choose the epoch."""
    from ..plan import plan
    from ..spec import load
    from ._freeze import frozen_text
    from ._trial import Objective

    spec = load(frozen_text(study, t), file=f"trial {t.number}")
    p = plan(spec)
    ds = Objective(cfg, tracker=None, progress=None)._dataset(p, spec)
    if ds is None:
        return None
    return len(resplit(ds, seed=0, apart=True).y_test) if apart else len(ds.y_val)

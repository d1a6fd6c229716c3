"""The final model chosen by re-evaluation, not by one validation split (``search.select``).

A study ranks its trials by one validation set; with a few hundred validation examples and many trials, the
trial ranked first is the one whose split was luckiest, and its value overstates what a user gets. So once the
trials have run, the ``top`` complete trials by their validation curves (each trial's best epoch averaged with
its neighbours, not one epoch's value) are trained again ``repeats`` times each on fresh stratified splits of the
training and validation examples (the test set untouched), with fresh seeds, breadth first; the trial with the
best mean of its fresh values is chosen, and that mean with its spread is the estimate reported (the original
value took part in ranking it, so it is left out of the estimate). What was measured is kept in the study
(``specdsl.reevaluated`` per trial, ``specdsl.chosen``), so a resumed study re-trains nothing twice, and
:func:`~specdsl.search.best_trial` returns the chosen trial.

The re-evaluations run in this process after the workers end, with the torch threads of worker 0 (its share of
the cores, :func:`worker_threads`): a trial's training time is then what its re-evaluation costs, for the
deadline. Measured on a busy 2-core machine, a small Fashion-MNIST CNN trained 2.6x faster on one thread than on
two (medians of 3 interleaved runs: 191 vs 73 img/s, and 225 vs 109 in a second measurement;
``benchmarks/reevaluation_threads.py``), so the share is the faster choice too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import time
from collections.abc import Iterator
from typing import Any

from ._config import CHOSEN_ATTR, REEVALUATED_ATTR, REJECTED, RESULT, StudyConfig
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


def resplit(ds: Any, seed: int) -> Any:
    """``ds`` with its training and validation examples pooled and split again by ``seed``, stratified, each
    class giving validation its share of the pool (rounded per class, as every split of the data package is);
    the test examples untouched. Images on disk stay there (the split is of their rows)."""
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
    train_idx, val_idx, _ = stratified_split(y, val, 0.0, np.random.default_rng(seed))
    return dataclasses.replace(
        ds, x_train=take(train_idx), y_train=y[train_idx], x_val=take(val_idx), y_val=y[val_idx]
    )


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
    note: str | None = None

    def as_attr(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "mean": self.mean,
            "spread": None if math.isnan(self.spread) else self.spread,
            "n": self.n,
            "search_value": self.search_value,
            "candidates": {str(k): list(v) for k, v in self.candidates.items()},
        }


def reevaluate(
    study: Any, cfg: StudyConfig, search: Any, top: int, deadline: float | None, say: Any
) -> Chosen | None:
    """Re-evaluate the study's ``top`` complete trials (see the module) until ``deadline``; the chosen trial, kept
    in the study, or None where there is nothing to choose between (one objective of an epoch metric, two complete
    trials at least)."""
    from ..plan import plan
    from ..spec import load
    from ..train import fit
    from ._freeze import frozen_text
    from ._trial import Objective

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
    kept: dict[str, list[float]] = dict(study.user_attrs.get(REEVALUATED_ATTR) or {})
    objective = Objective(cfg, tracker=None, progress=None)  # its data loading, without MLflow
    say(
        f"choosing the final model: the top {len(candidates)} trials by their validation curves "
        f"(#{', #'.join(str(t.number) for t in candidates)}) trained again on {search.select.repeats} fresh "
        f"train/validation splits each"
    )

    def data_of(t: Any) -> tuple[Any, Any, Any]:
        spec = load(frozen_text(study, t), file=f"trial {t.number}")
        p = plan(spec)
        return p, spec, objective._dataset(p, spec)  # loaded once, kept by the objective

    skipped = 0
    for r in range(1, search.select.repeats + 1):
        for t in candidates:
            fresh = kept.setdefault(str(t.number), [])
            if len(fresh) >= r:
                continue  # measured by an earlier run of the study
            cost = float((t.user_attrs.get(RESULT) or {}).get("train_s") or 0.0)
            if deadline is not None and time.time() + cost > deadline:
                skipped += 1
                continue
            try:
                p, spec, ds = data_of(t)
                ds = resplit(ds, seed=1000 * r + t.number)
                train = spec.train.model_copy(update={"seed": spec.train.seed + r})
                epochs = (t.user_attrs.get(RESULT) or {}).get("epochs") or None
                left = None if deadline is None else max(deadline - time.time(), 1.0)
                result = fit(p, dataset=ds, train=train, epochs=epochs, max_seconds=left)
            except Exception as e:  # a re-evaluation that fails costs its value, never the study
                say(f"re-evaluating trial {t.number} failed: {type(e).__name__}: {e}")
                continue
            if (
                getattr(result, "stop_reason", None) == "max_seconds"
            ):  # fewer epochs than the trial: not comparable
                skipped += 1
                say(f"re-evaluating trial {t.number} was cut at the time limit; its value is not kept")
                continue
            seen = [h[metric] for h in result.history if isinstance(h.get(metric), (int, float))]
            if not seen:
                continue
            value = float(max(seen) if maximize else min(seen))
            fresh.append(value)
            study.set_user_attr(REEVALUATED_ATTR, kept)
            say(
                f"re-evaluated trial {t.number} on split {r}: {metric} {value:.4f} (its search value {t.value:.4f})"
            )
    measured = {t.number: kept.get(str(t.number), []) for t in candidates}
    if not any(measured.values()):
        return None
    accuracy = metric.endswith(("accuracy", "acc"))
    table = {
        t.number: (float(t.value), statistics.fmean(measured[t.number]), len(measured[t.number]))
        for t in candidates
        if measured[t.number]
    }
    sign = 1 if maximize else -1
    best = max(table, key=lambda n: (sign * table[n][1], -n))
    n_val = len(data_of(candidates[0])[2].y_val)
    mean, spread = estimate(measured[best], n_val, accuracy)
    chosen = Chosen(best, mean, spread, len(measured[best]), table[best][0], table)
    if skipped:
        chosen.note = (
            f"the time left held {sum(len(v) for v in measured.values())} of "
            f"{len(candidates) * search.select.repeats} re-evaluations"
        )
    study.set_user_attr(CHOSEN_ATTR, chosen.as_attr())
    return chosen

"""Searching architectures and hyperparameters written in the spec language: Optuna studies tracked in MLflow.

    >>> from specdsl.search import check_space, run_search
    >>> check_space("search_spaces/catsdogs.yaml").invalid          # no optuna, mlflow or torch involved
    0
    >>> result = run_search("search_spaces/catsdogs.yaml", trials=20)
    >>> result.best_value, result.best_params
    >>> number, text = freeze_best("catsdogs")                       # the best trial as a concrete spec

The modules, along the way a search goes:

- ``_space``: a space's distributions and ``search:`` section, and how many sampled architectures plan
  (:func:`check_space`, what ``specdsl validate`` runs); ``_grid``: the grid sampler's grid, bounded.
- ``_sampler``: drawing a spec's distributions from an Optuna trial, or replaying a trial's values.
- ``_config``: the options of a run (:class:`SearchOptions`), what every worker is handed, the names kept in
  Optuna.
- ``_study``: :func:`run_search`, setting a study up, running its workers and closing it.
- ``_setup``: the section's sampler and pruner as Optuna objects; ``_storage``: Optuna storages, dead workers'
  trials, the lock every worker takes to ask for a trial.
- ``_workers``: the worker loop and its processes, and how many (:func:`resolve_workers`: ``--workers auto``
  or ``$SPECDSL_WORKERS``); ``_trial``: one trial (``Objective``), ``_pruning``: its
  epochs reported to the pruner, MLflow and the progress; ``_progress``: what a running study shows.
- ``_results``: what a study did (:class:`StudyResult`, :func:`best_trial`) and what it cost besides training.
- ``_freeze``: a trial frozen into a concrete spec (:func:`freeze`, :func:`frozen_text`, :func:`freeze_best`).

MLflow is reached through ``specdsl.tracking`` only, Optuna's private APIs through
``specdsl._compat._optuna``. Nothing heavy is imported here: optuna and mlflow are imported by the functions
that run a study. The commands (``specdsl search``, ``specdsl best``) are in ``specdsl.cli``.
"""

from ._config import SearchOptions
from ._freeze import dump, freeze, freeze_best, frozen_text
from ._results import StudyResult, best_trial
from ._sampler import OptunaSampler, ReplaySampler
from ._space import (
    Distribution,
    SpaceReport,
    check_space,
    distributions,
    param_name,
    parse_duration,
    read_search,
)
from ._storage import DEFAULT_STORAGE
from ._study import run_search
from ._workers import resolve_workers

__all__ = [
    "DEFAULT_STORAGE",
    "Distribution",
    "OptunaSampler",
    "ReplaySampler",
    "SearchOptions",
    "SpaceReport",
    "StudyResult",
    "best_trial",
    "check_space",
    "distributions",
    "dump",
    "freeze",
    "freeze_best",
    "frozen_text",
    "param_name",
    "parse_duration",
    "read_search",
    "resolve_workers",
    "run_search",
]

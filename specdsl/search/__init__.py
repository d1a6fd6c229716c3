"""Searching architectures and hyperparameters written in the spec language: Optuna studies tracked in MLflow.

    >>> from specdsl.search import check_space, run_search
    >>> check_space("search_spaces/catsdogs.yaml").invalid          # no optuna, mlflow or torch involved
    0
    >>> result = run_search("search_spaces/catsdogs.yaml", trials=20)
    >>> result.best_value, result.best_params

Nothing heavy is imported here: optuna and mlflow are imported by the functions that run a study.
"""

from ._freeze import dump, freeze
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
from ._study import StudyResult, best_trial, frozen_text, run_search

__all__ = [
    "DEFAULT_STORAGE",
    "Distribution",
    "OptunaSampler",
    "ReplaySampler",
    "SpaceReport",
    "StudyResult",
    "best_trial",
    "check_space",
    "distributions",
    "dump",
    "freeze",
    "frozen_text",
    "param_name",
    "parse_duration",
    "read_search",
    "run_search",
]

"""Optuna set up from a search section: its sampler and its pruner, a worker's study opened with them, and
Optuna's logging kept quiet (the progress reports failures and prunes instead). optuna is imported inside the
functions."""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import BackendMissingError, SearchError
from ..spec import SearchSpec, load_text
from ._config import StudyConfig
from ._grid import grid_space
from ._space import Distribution
from ._storage import open_storage


def quiet_optuna() -> None:
    """Optuna's own log lines and warnings off: the progress shows each trial's end, with its reason."""
    import optuna

    optuna.logging.set_verbosity(
        optuna.logging.ERROR
    )  # failures and prunes are reported by the progress instead
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings(
        "ignore", message="Heartbeat of storage is supposed to be used with Study.optimize"
    )


def make_sampler(search: SearchSpec, dists: list[Distribution], seed: int | None, workers: int) -> Any:
    """The Optuna sampler the section names, seeded; TPE with a constant liar when workers share the study."""
    import optuna

    kind = search.sampler
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # Optuna's ExperimentalWarning for multivariate / group / constant_liar
        if kind == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=search.startup_trials,
                multivariate=True,
                group=True,
                constant_liar=workers > 1,
            )
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "cmaes":
            import importlib.util

            if importlib.util.find_spec("cmaes") is None:
                raise BackendMissingError("cmaes", "The cmaes sampler", extra="search")
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=search.startup_trials,
                warn_independent_sampling=False,
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
    """The Optuna pruner the section names (none for several objectives: Optuna prunes single-objective
    studies only), for trials of ``epochs`` epochs."""
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


def open_study(cfg: StudyConfig, dists: list[Distribution], search: SearchSpec) -> Any:
    """The study as one worker runs it: from its storage, with the section's sampler (seeded for this worker
    and this resumption) and pruner."""
    import optuna

    storage = open_storage(cfg.storage)
    seed = cfg.seed
    study = optuna.load_study(study_name=cfg.study_name, storage=storage)
    n = len(study.get_trials(deepcopy=False))
    if (
        seed is not None
    ):  # another stream per worker, and per resumption: a rerun must not redraw the same samples
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

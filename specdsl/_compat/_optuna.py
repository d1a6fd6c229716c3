"""Optuna's private APIs, reached from here only (tests/compat/test_optuna_compat.py fails naming the Optuna
version when an upgrade changes one of them).

What they are for: a study's storage and ids (the search asks for trials and counts them under a lock of its
own, and fails the trials of dead workers), heartbeats of trials run outside ``Study.optimize``, and a pruner
fed the trials Optuna already read for the running trial instead of a read of the storage at every epoch.
Optuna is imported inside the functions (importing this module costs nothing).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any


def storage_of(study: Any) -> Any:
    """The ``BaseStorage`` a study reads and writes (``Study._storage``)."""
    return study._storage


def study_id(study: Any) -> int:
    """The study's id in its storage (``Study._study_id``)."""
    return study._study_id


def trial_id(trial: Any) -> int:
    """A trial's id in its storage, for a ``Trial`` or a ``FrozenTrial`` (``_trial_id``)."""
    return trial._trial_id


def trial_count(study: Any) -> int:
    """How many trials the study has, of any state, counted by the storage without reading them."""
    return storage_of(study).get_n_trials(study_id(study))


def stored_trial(study: Any, number: int) -> Any:
    """The study's trial ``number`` as a ``FrozenTrial``, read from the storage by its number."""
    storage = storage_of(study)
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id(study), number))


def heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` keeps heartbeats of running trials (``optuna.storages._heartbeat``)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


def stale_trial_ids(storage: Any, study_id: int) -> list[int]:
    """Ids of the study's RUNNING trials whose heartbeat is older than the storage's grace period (only for a
    storage with heartbeats, see :func:`heartbeat_enabled`)."""
    return storage._get_stale_trial_ids(study_id)


def cached_trials(study: Any, deepcopy: bool = True, states: Container[Any] | None = None) -> list[Any]:
    """``Study.get_trials`` from the copy Optuna keeps in memory for the running trial's sampler (read once a
    trial) instead of a read of the storage (``Study._get_trials(use_cache=True)``)."""
    return study._get_trials(deepcopy=deepcopy, states=states, use_cache=True)


def latest_trial(trial: Any) -> Any:
    """A running ``Trial`` as a ``FrozenTrial`` with what it reported so far, as its pruner is given it
    (``Trial._get_latest_trial``); None for an Optuna without it."""
    latest = getattr(trial, "_get_latest_trial", None)
    return latest() if latest is not None else None

"""Each function of specdsl._compat._optuna against real studies (in memory and SQLite). When an Optuna
upgrade changes a private API the search relies on, these fail with a message naming the Optuna version and
the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from specdsl._compat import _optuna as compat

optuna = pytest.importorskip("optuna")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval`` is an experimental feature"),
    pytest.mark.filterwarnings("ignore:Argument ``grace_period`` is an experimental feature"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]
VERSION = f"Optuna {optuna.__version__}"


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args)``, or a failure naming the Optuna version and the private API that is gone or changed."""
    try:
        return fn(*args, **kwargs)
    except (AttributeError, ImportError, TypeError) as e:
        pytest.fail(
            f"{VERSION} changed a private API that specdsl._compat._optuna.{fn.__name__} uses: "
            f"{type(e).__name__}: {e}",
            pytrace=False,
        )


@pytest.fixture(params=["memory", "sqlite"])
def study(request, tmp_path):
    """A study with three finished trials (x = 0.0, 0.5, 1.0) in memory or in a SQLite file."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = None if request.param == "memory" else optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")
    sampler = optuna.samplers.RandomSampler(seed=0)
    s = optuna.create_study(storage=storage, study_name="compat", sampler=sampler)
    for x in (0.0, 0.5, 1.0):
        s.enqueue_trial({"x": x})
        trial = s.ask()
        s.tell(trial, trial.suggest_float("x", 0, 1))
    return s


def test_a_study_s_storage_and_ids(study):
    storage = call(compat.storage_of, study)
    assert isinstance(storage, optuna.storages.BaseStorage), f"{VERSION}: Study._storage is {type(storage)}"
    sid = call(compat.study_id, study)
    assert storage.get_study_id_from_name("compat") == sid, f"{VERSION}: Study._study_id is another id"
    frozen = study.trials[1]
    assert storage.get_trial(call(compat.trial_id, frozen)).number == 1, f"{VERSION}: FrozenTrial._trial_id"
    running = study.ask()
    assert storage.get_trial(call(compat.trial_id, running)).number == 3, f"{VERSION}: Trial._trial_id"
    study.tell(running, state=optuna.trial.TrialState.FAIL)


def test_trials_counted_and_read_by_number(study):
    assert call(compat.trial_count, study) == 3, f"{VERSION}: the storage's get_n_trials"
    trial = call(compat.stored_trial, study, 2)
    assert (trial.number, trial.params, trial.value) == (2, {"x": 1.0}, 1.0), (
        f"{VERSION}: get_trial_id_from_study_id_trial_number"
    )


def test_heartbeats_are_seen_where_a_storage_keeps_them(tmp_path):
    assert call(compat.heartbeat_enabled, optuna.storages.InMemoryStorage()) is False, VERSION
    url = f"sqlite:///{tmp_path}/h.db"
    assert call(compat.heartbeat_enabled, optuna.storages.RDBStorage(url)) is False, VERSION
    beating = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    assert call(compat.heartbeat_enabled, beating) is True, f"{VERSION}: optuna.storages._heartbeat"


def test_a_trial_whose_heartbeat_stopped_is_stale(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="stale")
    beating, silent = study.ask(), study.ask()
    storage.record_heartbeat(compat.trial_id(beating))
    assert call(compat.stale_trial_ids, storage, compat.study_id(study)) == [], VERSION
    time.sleep(2.1)  # past the grace period (SQLite keeps whole seconds)
    assert call(compat.stale_trial_ids, storage, compat.study_id(study)) == [compat.trial_id(beating)], (
        f"{VERSION}: RDBStorage._get_stale_trial_ids"
    )
    assert silent.number == 1  # a trial that never beat is not stale: it is found by its worker's process id


def test_the_trials_optuna_keeps_for_a_running_trial_are_read_once(tmp_path):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/c.db"))
    for value in (1.0, 2.0):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)
    study.ask()  # running: the copy is the running trial's
    first = call(compat.cached_trials, study, deepcopy=False)
    assert [t.number for t in first] == [0, 1, 2, 3], VERSION
    statements: list[str] = []

    def listener(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", listener)
    try:
        complete = call(
            compat.cached_trials, study, deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    assert [t.number for t in complete] == [0, 1], f"{VERSION}: Study._get_trials(states=...)"
    assert statements == [], f"{VERSION}: Study._get_trials(use_cache=True) read the storage again"


def test_a_running_trial_as_its_pruner_sees_it():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()
    trial = study.ask()
    trial.report(0.25, 0)
    trial.report(0.5, 1)
    latest = compat.latest_trial(trial)
    assert latest is not None, f"{VERSION} has no Trial._get_latest_trial: pruners would read the storage"
    seen = (latest.number, latest.intermediate_values, latest.state.name)
    assert seen == (0, {0: 0.25, 1: 0.5}, "RUNNING"), f"{VERSION}: Trial._get_latest_trial"

"""Where studies live: Optuna storages, and the trials that a dead worker left running.

Default: ``sqlite:///optuna.db`` in the working folder, one file for every study run there (``specdsl best NAME``
finds them with no flags, and ``optuna-dashboard sqlite:///optuna.db`` shows them). The file is put in WAL mode with
``synchronous=NORMAL`` and a 60 s busy timeout, so that ``--workers N`` processes share it.
Many machines: ``--storage postgresql://user:password@host/db``. Both are Optuna ``RDBStorage`` with a heartbeat, so
a trial whose worker died is failed once its heartbeat is older than the grace period; on one machine a trial whose
worker process is gone is failed at once (see :func:`fail_dead_trials`).
A journal file (``--storage journal:path.log``, Optuna's ``JournalFileBackend``) is accepted too: faster per trial, one
machine only, and no heartbeat (dead workers are still found by their process id).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable
from typing import Any

from .._sqlite import apply_pragmas, sqlite_path

DEFAULT_STORAGE = "sqlite:///optuna.db"
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30
SQLITE_TIMEOUT = 60.0
WORKER_ATTR = "specdsl.worker"  # {"host": ..., "pid": ...} of the process running the trial


def worker_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def display_url(url: str) -> str:
    """The URL without its password, for logs and MLflow."""
    if "://" not in url or "@" not in url.split("://", 1)[1]:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def _sqlite_creator(path: str) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT, check_same_thread=False)
        apply_pragmas(con)  # WAL, no fsync per commit
        return con

    return connect


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 reads it as psycopg (3), while
    ``pip install psycopg2-binary`` is what most have; an explicit ``postgresql+driver://`` is kept."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def open_storage(url: str, *, stale_callback: Callable | None = None) -> Any:
    """An Optuna storage for ``url``: SQLite (WAL) or any SQLAlchemy URL as RDBStorage with a heartbeat, or a
    journal file for ``journal:PATH``."""
    import optuna

    from ..errors import SearchError

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:"):]
        path = path.removeprefix("//")
        return JournalStorage(JournalFileBackend(path))
    engine_kwargs: dict[str, Any] = {}
    path = sqlite_path(url)
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise SearchError(f"the folder of the study storage does not exist: {folder}", hint=f"storage: {url}")
        engine_kwargs["creator"] = _sqlite_creator(path)
    elif url.startswith(("postgresql", "mysql")):
        engine_kwargs["pool_pre_ping"] = True
    try:
        return optuna.storages.RDBStorage(
            sqlalchemy_url(url),
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=stale_callback,
        )
    except ImportError as e:
        raise SearchError(f"cannot open the study storage {display_url(url)}: {e}",
                          hint="For PostgreSQL: pip install psycopg2-binary (or psycopg).") from None
    except Exception as e:  # sqlalchemy's OperationalError and friends: one clean message
        raise SearchError(f"cannot open the study storage {display_url(url)}: {type(e).__name__}: {e}".split("\n")[0],
                          hint="Check the URL, that the server runs, and the credentials.") from None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: Any) -> list[Any]:
    """Fail the RUNNING trials whose worker is gone: on this machine, those whose process no longer exists (after
    Ctrl-C or kill -9: at once); on any machine, those whose heartbeat is older than the grace period.

    The reason is written to the trial's ``specdsl.reason`` before it is failed (a finished trial takes no more
    attributes). Returns the trials failed here, as frozen trials.
    """
    import optuna
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    host = socket.gethostname()
    doomed: dict[int, str] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(WORKER_ATTR)
        if isinstance(owner, dict) and owner.get("host") == host and not process_alive(int(owner.get("pid", 0))):
            doomed[t._trial_id] = f"its worker process ({host}:{owner['pid']}) died while it ran"
    if is_heartbeat_enabled(storage):
        for trial_id in storage._get_stale_trial_ids(study._study_id):
            doomed.setdefault(trial_id, f"its worker sent no heartbeat for over {GRACE_SECONDS} s (stopped or lost)")
    failed = []
    for trial_id, reason in doomed.items():
        try:
            storage.set_trial_user_attr(trial_id, "specdsl.reason", reason)
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(storage.get_trial(trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process got there first
    return failed

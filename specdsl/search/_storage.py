"""Where studies live: Optuna storages, and the trials that a dead worker left running.

Default: ``sqlite:///optuna.db`` in the working folder, one file for every study run there (``specdsl best NAME``
finds them with no flags, and ``optuna-dashboard sqlite:///optuna.db`` shows them). The file is put in WAL mode with
``synchronous=NORMAL`` and a 60 s busy timeout, so that ``--workers N`` processes share it.
Many machines: ``--storage postgresql://user:password@host/db``. Both are Optuna ``RDBStorage`` with a heartbeat, so
a trial whose worker died is failed once its heartbeat is older than the grace period; on one machine a trial whose
worker process is gone is failed at once (see :func:`fail_dead_trials`).
A journal file (``--storage journal:path.log``, Optuna's ``JournalFileBackend``) is accepted too: faster per trial, one
machine only, and no heartbeat (dead workers are still found by their process id).

Every worker of a study takes one lock (:class:`BudgetLock`) to check the budget and ask for a trial: a file
lock on the folder of SQLite and journal files (not the file: see the class), an advisory lock on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from .._compat._optuna import heartbeat_enabled, stale_trial_ids, storage_of, study_id, trial_id
from .._sqlite import apply_pragmas, display_url, sqlite_path, store_error
from ._config import REASON

DEFAULT_STORAGE = "sqlite:///optuna.db"
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30
SQLITE_TIMEOUT = 60.0
WORKER_ATTR = "specdsl.worker"  # {"host": ..., "pid": ...} of the process running the trial


def worker_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _sqlite_creator(path: str, read_only: bool = False) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        if (
            read_only
        ):  # a folder nobody can write: SQLite cannot make the -shm file it reads a WAL database with
            # a WAL left behind is read (mode=ro, with the -shm beside it); without one, the file is all there is
            mode = "mode=ro" if os.path.exists(path + "-wal") else "immutable=1"
            uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}"
            return sqlite3.connect(uri, uri=True, check_same_thread=False)
        con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT, check_same_thread=False)
        apply_pragmas(con)  # WAL, no fsync per commit
        return con

    return connect


def study_store_error(e: BaseException, url: str) -> Any:
    """A failure of the study storage at ``url`` as one StoreError (see ``store_error``); None for other errors."""
    return store_error(e, "study storage", url, "--storage")


@contextlib.contextmanager
def study_store_errors(url: str) -> Iterator[None]:
    """A failure of the study storage at ``url`` in the block, raised as one StoreError naming it."""
    try:
        yield
    except Exception as e:
        failure = study_store_error(e, url)
        if failure is None or failure is e:
            raise
        raise failure from None


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 reads it as psycopg (3), while
    ``pip install psycopg2-binary`` is what most have; an explicit ``postgresql+driver://`` is kept."""
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def open_storage(url: str, *, stale_callback: Callable | None = None, read_only: bool = False) -> Any:
    """An Optuna storage for ``url``: SQLite (WAL) or any SQLAlchemy URL as RDBStorage with a heartbeat, or a
    journal file for ``journal:PATH``. ``read_only`` (for readers such as ``specdsl best``): a SQLite file in a
    folder that cannot be written is opened read-only. A store that cannot be opened (a corrupt file, a folder
    that cannot be written, a server that does not answer) is a StoreError; a URL SQLAlchemy cannot read, a
    SearchError."""
    import optuna

    from ..errors import SearchError, StoreError

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:") :]
        path = path.removeprefix("//")
        return JournalStorage(JournalFileBackend(path))
    engine_kwargs: dict[str, Any] = {}
    path = sqlite_path(url)
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise StoreError(
                f"the folder of the study storage {os.path.abspath(path)} does not exist.",
                store=os.path.abspath(path),
                hint="Create it, or pass --storage to use another.",
            )
        engine_kwargs["creator"] = _sqlite_creator(
            path, read_only and os.path.isfile(path) and not os.access(folder, os.W_OK)
        )
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
        raise SearchError(
            f"cannot open the study storage {display_url(url)}: {e}",
            hint="For PostgreSQL: pip install psycopg2-binary (or psycopg).",
        ) from None
    except Exception as e:  # a store that fails, or a URL that SQLAlchemy cannot read: one clean message
        failure = study_store_error(e, url)
        if failure is not None:
            raise failure from None
        raise SearchError(
            f"cannot open the study storage {display_url(url)}: {type(e).__name__}: {e}".split("\n")[0],
            hint="Check the URL: sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, journal:PATH.",
        ) from None


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Optuna's heartbeat of a running trial, recorded every ``HEARTBEAT_SECONDS`` in a thread while the block runs
    (as Optuna's own heartbeat thread, which prints a traceback when the store fails: this one stops beating, and
    the trial's next write to the store reports the failure). Nothing for a storage without heartbeats."""
    if not heartbeat_enabled(storage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                storage.record_heartbeat(trial_id)
            except Exception:
                return
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
    from optuna.trial import TrialState

    storage = storage_of(study)
    host = socket.gethostname()
    doomed: dict[int, str] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get(WORKER_ATTR)
        if (
            isinstance(owner, dict)
            and owner.get("host") == host
            and not process_alive(int(owner.get("pid", 0)))
        ):
            doomed[trial_id(t)] = f"its worker process ({host}:{owner['pid']}) died while it ran"
    if heartbeat_enabled(storage):
        for stale in stale_trial_ids(storage, study_id(study)):
            doomed.setdefault(
                stale, f"its worker sent no heartbeat for over {GRACE_SECONDS} s (stopped or lost)"
            )
    failed = []
    for doomed_id, reason in doomed.items():
        try:
            storage.set_trial_user_attr(doomed_id, REASON, reason)
            if storage.set_trial_state_values(doomed_id, state=TrialState.FAIL):
                failed.append(storage.get_trial(doomed_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process got there first
    return failed


class BudgetLock:
    """A lock every worker of a study takes to check the budget and ask for a trial: ``flock`` on the folder that
    holds the SQLite or journal file, a PostgreSQL advisory lock keyed by the study name. Other databases: no lock
    (the budget may be overshot by a trial per worker).

    The folder, not the database file: SQLite's own locks are POSIX locks, and a process loses all of them on a
    file the moment it closes any descriptor of that file. A descriptor of the database opened for this lock and
    closed at a worker's end let another worker that closed its connection take itself for the last one and
    delete the ``-wal`` and ``-shm`` files under this process (whose next read failed: "disk I/O error")."""

    def __init__(self, url: str, study_name: str):
        self.url = url
        self.study_name = study_name
        self.fd: int | None = None
        self.conn: Any = None
        self.engine: Any = None
        import hashlib

        self.key = int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:8], "big", signed=True)

    def __enter__(self) -> BudgetLock:
        path = sqlite_path(self.url)
        if self.url.startswith("journal:"):
            path = self.url[len("journal:") :]
            path = path.removeprefix("//")
        if path and os.path.exists(path):
            self.fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)  # see the class
        elif self.url.startswith("postgresql"):
            import sqlalchemy

            self.engine = sqlalchemy.create_engine(
                sqlalchemy_url(self.url), poolclass=sqlalchemy.pool.NullPool
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
        if self.engine is not None:
            self.engine.dispose()

    @contextlib.contextmanager
    def held(self) -> Any:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        elif self.engine is not None:
            import sqlalchemy

            self.conn = self.engine.connect()
            self.conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
        elif self.conn is not None:
            import sqlalchemy

            try:
                self.conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            finally:
                self.conn.close()
                self.conn = None

"""The pragmas of every SQLite store specdsl writes: Optuna's study store and MLflow's tracking store.

WAL lets readers (other workers, the progress, ``mlflow ui``) read while one writer writes; ``synchronous=NORMAL``
drops the fsync of every commit (in WAL mode a killed process still loses nothing it committed; only a power cut
may lose the last commits). Measured here, they halve a trial's MLflow calls (99 -> 54 ms).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any


def apply_pragmas(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")


_FILES: set[str] = set()  # the database files whose SQLAlchemy connections get the pragmas
_LOCK = threading.Lock()
_LISTENING = False


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL, as written; None for other URLs and in-memory databases."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def mlflow_pragmas(tracking_uri: str) -> None:
    """Give the SQLAlchemy connections MLflow opens to ``tracking_uri``'s file the pragmas above. MLflow takes no
    connection factory, so this is an engine ``connect`` event; it touches only the files named here, not other
    SQLite databases of the process. Idempotent; no-op for other stores."""
    global _LISTENING
    path = sqlite_path(tracking_uri)
    if path is None:
        return
    with _LOCK:
        _FILES.add(os.path.realpath(path))
        if _LISTENING:
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _on_connect)
        _LISTENING = True


def _on_connect(connection: Any, _record: Any) -> None:
    if not isinstance(connection, sqlite3.Connection):
        return
    try:
        rows = connection.execute("PRAGMA database_list").fetchall()
        main = next((r[2] for r in rows if r[1] == "main"), "")
        if main and os.path.realpath(main) in _FILES:
            apply_pragmas(connection)
    except sqlite3.Error:  # e.g. a read-only file: MLflow says what it cannot do itself
        pass

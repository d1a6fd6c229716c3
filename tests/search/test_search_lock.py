"""The lock the workers of a study take to ask for trials (``BudgetLock``) must leave SQLite's own locks alone.

SQLite's locks are POSIX locks, which a process loses on the database file as soon as it closes *any* descriptor
of that file. A lock taken on the database file itself therefore let a worker that closed its connection believe
it was the last one, check the WAL in and delete the ``-wal`` and ``-shm`` files under the parent process, whose
next read failed with ``disk I/O error`` (SQLITE_IOERR_SHORT_READ), measured after a two-worker search. Real
SQLite, a real Optuna storage and a second real process."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from specdsl.search._storage import BudgetLock, open_storage

optuna = pytest.importorskip("optuna")

READ_AND_CLOSE = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA journal_mode=WAL")
print(con.execute("SELECT count(*) FROM studies").fetchone()[0])
con.close()
"""


def test_the_lock_leaves_sqlites_locks_and_files_in_place(tmp_path):
    db = tmp_path / "optuna.db"
    url = f"sqlite:///{db}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.set_user_attr("kept", 1)
    with BudgetLock(url, "s") as lock, lock.held():
        pass  # a worker's whole loop: the lock opened, taken, released and closed
    # another process opens the study and closes it, as a finished worker does
    out = subprocess.run([sys.executable, "-c", READ_AND_CLOSE, str(db)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert (tmp_path / "optuna.db-shm").exists()  # this process still has the database open
    assert study.user_attrs == {"kept": 1}
    study.set_user_attr("after", 2)
    assert optuna.load_study(study_name="s", storage=url).user_attrs == {"kept": 1, "after": 2}


def test_the_lock_excludes_another_holder_of_the_same_study(tmp_path):
    db = tmp_path / "optuna.db"
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    order: list[str] = []
    first = BudgetLock(url, "s").__enter__()
    first.acquire()

    def second() -> None:
        with BudgetLock(url, "s") as lock, lock.held():
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    t.join(timeout=0.5)
    assert t.is_alive()  # waiting for the first holder
    order.append("first released")
    first.release()
    first.__exit__(None, None, None)
    t.join(timeout=10)
    assert order == ["first released", "second"]

"""Stores that fail under `specdsl search` and `specdsl best`: a corrupt SQLite file, a read-only working folder, a
disk that fills during the search, a server that does not answer. Real files and real file systems (a tmpfs of a
few MiB, mounted as root; skipped where mounting is not permitted), real SQLite, Optuna and MLflow; the `digits`
dataset (8x8)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from search_helpers import cli_env, mlflow_runs, optuna_trials, specdsl_cmd
from support import read_only_folder, small_disk

pytest.importorskip("optuna")
pytest.importorskip("mlflow")
pytest.importorskip("torch")

from specdsl.errors import StoreError
from specdsl.search import run_search

TINY = """
input: [8, 8, 1]
layers:
  - flatten
  - dense: {units: {choice: [8, 16], name: units}, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 2, batch_size: 128}
search: {sampler: random, pruner: none, seed: 0}
"""
GARBAGE = bytes(range(256)) * 16  # 4 KiB that no SQLite page holds


def search(path: Path, storage: str, tracking_uri: str, study: str = "tiny", **kwargs):
    from rich.console import Console

    buf = io.StringIO()
    kwargs.setdefault("trials", 1)
    result = run_search(
        path,
        storage=storage,
        tracking_uri=tracking_uri,
        study_name=study,
        plots=False,
        console=Console(file=buf, width=250),
        **kwargs,
    )
    result.output = buf.getvalue()
    return result


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        specdsl_cmd(*args),
        cwd=folder,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_study_storage_that_is_not_a_database_is_one_message_exit_6_for_search_and_best(tmp_path, stores):
    """The first page of a real optuna.db overwritten with garbage."""
    import optuna

    db = tmp_path / "optuna.db"
    optuna.create_study(storage=f"sqlite:///{db}", study_name="tiny")
    with open(db, "r+b") as f:
        f.write(GARBAGE)
    (tmp_path / "tiny.yaml").write_text(TINY)
    message = (
        f"error: the study storage {db} is not a readable SQLite database (file is not a database). Move the "
        "file aside (or delete it) to start a new one there, or pass --storage to use another.\n"
    )
    assert mlflow_runs(stores["tracking_uri"], "tiny")["study"] == []  # (the MLflow store made: no log lines)
    done = cli(tmp_path, "search", "tiny.yaml", "--trials", "1", "--tracking-uri", stores["tracking_uri"])
    assert (done.returncode, done.stdout, done.stderr) == (6, "", message)  # no traceback: the one line
    assert (
        mlflow_runs(stores["tracking_uri"], "tiny")["study"] == []
    )  # stopped before the study's run was made
    done = cli(tmp_path, "best", "tiny")
    assert (done.returncode, done.stdout, done.stderr) == (6, "", message)


def test_a_corrupt_mlflow_store_is_one_message_exit_6_before_any_study(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(GARBAGE * 4)
    (tmp_path / "tiny.yaml").write_text(TINY)
    done = cli(tmp_path, "search", "tiny.yaml", "--trials", "1")
    assert (done.returncode, done.stdout) == (6, "")
    assert done.stderr == (
        f"error: the MLflow tracking store {db} is not a readable SQLite database (file is not a database). Move the "
        "file aside (or delete it) to start a new one there, or pass --tracking-uri to use another.\n"
    )
    assert not (tmp_path / "optuna.db").exists()


def test_a_study_storage_damaged_inside_stops_the_resumed_search_and_closes_its_run_failed(
    space, tmp_path, stores
):
    """A study that ran, then the pages of its trials table overwritten: the next run reads them, and stops."""
    import sqlite3

    path = space("damaged", TINY)
    db = tmp_path / "damaged.db"
    storage = f"sqlite:///{db}"
    first = search(path, storage, stores["tracking_uri"], "damaged", epochs=1)
    assert first.complete == 1
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()[0]
    con.close()
    with open(db, "r+b") as f:
        f.seek((root - 1) * page)
        f.write(GARBAGE)
    with pytest.raises(StoreError) as info:
        search(path, storage, stores["tracking_uri"], "damaged", trials=2, epochs=1)
    assert info.value.format() == (
        f"the study storage {db} is not a readable SQLite database (database disk image is malformed). Move the file "
        f"aside (or delete it) to start a new one there, or pass --storage to use another; `sqlite3 {db} .recover` "
        "may save what it still holds."
    )
    assert (info.value.exit_code, info.value.kind, info.value.store) == (6, "corrupt", str(db))
    (parent,) = mlflow_runs(stores["tracking_uri"], "damaged")[
        "study"
    ]  # the first run's, resumed, then closed
    assert (parent.info.status, parent.data.tags["specdsl.reason"]) == ("FAILED", info.value.format())


def test_a_read_only_working_folder_is_one_message_for_search_and_best_reads_it(tmp_path, monkeypatch):
    """The default stores (./optuna.db, ./mlflow.db) that a search left in a folder that cannot be written now.
    `best` only reads: it works there, unless asked to write its file there."""
    from mlflow import MlflowClient
    from rich.console import Console

    from specdsl.cli._search import run_best_command

    folder = tmp_path / "project"
    with read_only_folder(folder) as make_read_only:
        (folder / "tiny.yaml").write_text(TINY)
        (folder / "fresh").mkdir()
        (folder / "fresh" / "tiny.yaml").write_text(TINY)
        done = cli(folder, "search", "tiny.yaml", "--trials", "1", "--epochs", "1")
        assert done.returncode == 0, done.stderr
        make_read_only()
        done = cli(folder, "search", "tiny.yaml", "--trials", "2")  # resuming
        assert (done.returncode, done.stdout) == (6, "")
        assert done.stderr == (
            f"error: the MLflow tracking store {folder}/mlflow.db cannot be written: its folder {folder} is not "
            "writable (unable to open database file). Run from a folder you can write to, or pass --tracking-uri "
            "to keep it elsewhere.\n"
        )
        # the study storage alone in a read-only folder (MLflow and its artifacts elsewhere)
        elsewhere = f"sqlite:///{tmp_path / 'mlflow.db'}"
        MlflowClient(elsewhere).create_experiment("elsewhere", artifact_location=str(tmp_path / "artifacts"))
        with pytest.raises(StoreError) as info:
            run_search(
                folder / "fresh" / "tiny.yaml",
                storage=f"sqlite:///{folder}/fresh/optuna.db",
                tracking_uri=elsewhere,
                experiment="elsewhere",
                trials=1,
            )
        assert info.value.format() == (
            f"the study storage {folder}/fresh/optuna.db cannot be written: its folder {folder}/fresh is not "
            "writable (unable to open database file). Run from a folder you can write to, or pass --storage to "
            "keep it elsewhere."
        )
        monkeypatch.chdir(folder)
        out = Console(file=io.StringIO(), width=200)
        assert run_best_command("tiny", console=out) == 0
        assert out.file.getvalue().startswith("# Trial 0 of study tiny: val_accuracy 0.")
        with pytest.raises(StoreError) as info:
            run_best_command("tiny", output=Path("best.yaml"), console=out)
        assert info.value.format() == (
            f"the output file {folder}/best.yaml cannot be written: its folder {folder} is not writable (Read-only "
            "file system). Run from a folder you can write to, or pass -o to keep it elsewhere."
        )


# `specdsl search` whose disk fills up when the second training starts (from within the process: a real full disk)
FILLING_SEARCH = """
import sys
sys.path.insert(0, {tests!r})
import specdsl.train
from support import fill_disk
from pathlib import Path
fit, calls = specdsl.train.fit, []
def filling_fit(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        fill_disk(Path({folder!r}))
    return fit(*args, **kwargs)
specdsl.train.fit = filling_fit
from specdsl.cli import main
main()
"""


def test_a_disk_that_fills_during_a_search_stops_it_keeping_the_finished_trials(space, tmp_path):
    """Both stores on a 32 MiB file system that fills up while the second trial trains: one message, exit 6, the
    study's run closed FAILED. The first trial stays COMPLETE; the second, which could not be told, is failed when
    the study resumes on a disk with room again."""
    import sys

    folder = tmp_path / "disk"
    with small_disk(folder, "32m"):
        path = space("full", TINY)
        storage, tracking = f"sqlite:///{folder / 'optuna.db'}", f"sqlite:///{folder / 'mlflow.db'}"
        args = [
            "search",
            path.name,
            "--trials",
            "2",
            "--epochs",
            "1",
            "--storage",
            storage,
            "--tracking-uri",
            tracking,
        ]
        code = FILLING_SEARCH.format(tests=str(Path(__file__).parents[1]), folder=str(folder))
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=path.parent,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        message = (
            f"the disk of the study storage {folder}/optuna.db is full (database or disk is full). Free space "
            "on it, or pass --storage to keep it elsewhere, and run the command again: what was written "
            "before is kept."
        )
        assert (done.returncode, done.stderr.splitlines()[-1]) == (6, f"error: {message}")
        assert "Traceback" not in done.stderr
        (folder / "filler").unlink()
        trials = optuna_trials(storage, "full")
        assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "RUNNING")]
        runs = mlflow_runs(tracking, "full")
        assert [(r.info.status, r.data.tags.get("specdsl.reason")) for r in runs["study"]] == [
            ("FAILED", message)
        ]
        assert [(r.info.status, r.data.tags.get("specdsl.reason")) for r in runs["trial"]] == [
            ("FINISHED", None),
            ("FAILED", f"StoreError: {message}"),
        ]
        assert runs["trial"][0].data.metrics["objective.val_accuracy"] == trials[0].value

        done = cli(
            path.parent, *args
        )  # room again: the same command resumes; the stopped trial counts as failed
        assert done.returncode == 0, done.stderr
        trials = optuna_trials(storage, "full")
        assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "FAIL")]
        assert "2 trials trained (1 complete, 0 pruned, 1 failed)" in done.stdout
        runs = mlflow_runs(tracking, "full")
        assert [r.info.status for r in runs["study"]] == ["FINISHED"]
        assert [r.info.status for r in runs["trial"]] == ["FINISHED", "FAILED"]


def test_a_study_storage_server_that_does_not_answer_names_it_without_its_password():
    pytest.importorskip("psycopg2")
    from specdsl.search._storage import open_storage

    with pytest.raises(StoreError) as info:
        open_storage("postgresql://search:s3cret@127.0.0.1:9/studies")
    e = info.value
    assert e.format() == (
        "cannot use the study storage postgresql://search:***@127.0.0.1:9/studies: connection to server at "
        '"127.0.0.1", port 9 failed: Connection refused. Check that the server runs and answers at that address, '
        "and the user name and password in the URL."
    )
    assert (e.exit_code, e.kind, e.store) == (6, "server", "postgresql://search:***@127.0.0.1:9/studies")
    assert "s3cret" not in e.format()


def test_store_urls_are_shown_without_their_passwords():
    from specdsl._sqlite import display_url

    assert display_url("postgresql://u:p@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert (
        display_url("postgresql://h/db?user=u&password=p&sslmode=require")
        == "postgresql://h/db?user=u&password=***&sslmode=require"
    )
    assert display_url("sqlite:///optuna.db") == "sqlite:///optuna.db"

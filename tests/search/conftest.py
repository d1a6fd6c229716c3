"""Fixtures of the search tests: one Optuna SQLite file and one MLflow store per session (creating an MLflow store
costs seconds), tiny search spaces, and a real PostgreSQL server on loopback for the many-worker test."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``{"storage": optuna URL, "tracking_uri": MLflow URI}`` shared by the tests of a session."""
    folder = tmp_path_factory.mktemp("stores")
    return {
        "storage": f"sqlite:///{folder / 'optuna.db'}",
        "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
    }


@pytest.fixture
def space(tmp_path: Path):
    """Write a search space (YAML text) to a file named ``NAME.yaml``; returns its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL on loopback


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return found[0] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL server of our own in a temporary folder on 127.0.0.1 (a free port), stopped after the session.
    As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: apt-get install postgresql"
        )
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is None:
        pytest.skip("no PostgreSQL driver: pip install psycopg2-binary")
    folder = tempfile.mkdtemp(prefix="specdsl-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        shutil.chown(folder, "postgres")
        os.chmod(folder, 0o700)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log, port = os.path.join(folder, "data"), os.path.join(folder, "log"), _free_port()
    subprocess.run(
        [*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run(
        [*run_as, pg_ctl, "-D", data, "-o", options, "-l", log, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)

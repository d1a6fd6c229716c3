"""The MLflow tracking store: where it is, opening it the same way for a training run and for a study, its
failures as one StoreError naming it, and its artifact folder checked before anything trains.

MLflow is imported inside the functions.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .._sqlite import check_sqlite, mlflow_pragmas, store_error
from ..errors import StoreError, TrainError


def store_failure(e: BaseException, tracking_uri: str, artifacts: str | None = None) -> StoreError | None:
    """A failure of the MLflow tracking store at ``tracking_uri`` (a corrupt or read-only ``mlflow.db``, a full disk,
    a server that does not answer), or of a file of its artifact store (at ``artifacts``, when known), as one
    StoreError naming it; None for other errors."""
    folder = local_path(artifacts) if artifacts else None
    return store_error(
        e,
        "MLflow tracking store",
        tracking_uri,
        "--tracking-uri",
        files=("MLflow artifact store", str(folder) if folder else None),
    )


def check_store(tracking_uri: str) -> None:
    """A StoreError at once when ``tracking_uri`` is a SQLite file that cannot be opened and read."""
    check_sqlite(tracking_uri, "MLflow tracking store", "--tracking-uri")


class _NoStoreTraceback(logging.Filter):
    """MLflow logs a traceback for every database error it then raises; the error is reported once, as a
    StoreError."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("SQLAlchemy database error")


_QUIET = _NoStoreTraceback()


def quiet_store_log() -> None:
    logging.getLogger("mlflow.store.db.utils").addFilter(_QUIET)  # a filter added twice is kept once


def prepare_store(tracking_uri: str) -> None:
    """Before MLflow's first connection to ``tracking_uri``: a SQLite file gets WAL and no fsync per commit,
    MLflow's tracebacks of store errors are kept quiet, and a file that cannot be opened is a StoreError at
    once."""
    mlflow_pragmas(tracking_uri)
    quiet_store_log()
    check_store(tracking_uri)


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI to use: the one given, else MLflow's own default (``sqlite:///mlflow.db`` in the working
    folder, so that ``mlflow ui`` there shows the runs), made absolute so worker processes agree on it."""
    import mlflow

    if uri is None:
        uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + os.path.abspath(uri[len("sqlite:///") :])
    return uri


class StoreClient:
    """An ``MlflowClient`` whose calls raise a failure of the store as one StoreError (``store_failure``)."""

    def __init__(self, tracking_uri: str):
        from mlflow import MlflowClient

        prepare_store(tracking_uri)
        self.uri = tracking_uri
        self.artifacts: str | None = None  # the experiment's artifact location, once known: named when full
        self._client = self.call(MlflowClient, tracking_uri)  # opens the store (a SQLite file: creates it)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            failure = store_failure(e, self.uri, self.artifacts)
            if failure is not None:
                raise failure from None
            raise

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        return functools.partial(self.call, attr) if callable(attr) else attr


def local_path(uri: str) -> Path | None:
    """The folder of a local artifact URI (a path or ``file:``), or None for a remote store."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
    return None


def check_artifacts_writable(
    artifact_uri: str, *, consequence: str = "so the run could not keep its model and files"
) -> None:
    """A TrainError unless the (local) artifact folder can be created and written; remote stores are not probed.
    ``consequence`` ends the message's first sentence (what the unwritable folder would cost)."""
    folder = local_path(artifact_uri)
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".specdsl-probe-"):
            pass
    except OSError as e:
        raise TrainError(
            f"the MLflow artifact folder {folder} is not writable ({e.strerror or e}), {consequence}.",
            hint="Run from a folder you can write to, pass --tracking-uri, or use an experiment whose artifact "
            "location is writable (--experiment).",
        ) from None

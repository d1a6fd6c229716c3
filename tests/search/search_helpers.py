"""Helpers of the search tests (a module of their own: several test folders have a conftest.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def specdsl_cmd(*args: str) -> list[str]:
    """The `specdsl` command as a user runs it (this checkout's package)."""
    return [sys.executable, "-c", "from specdsl.cli import main; main()", *args]


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="torch", SPECDSL_PLOTS="0")


def mlflow_runs(tracking_uri: str, study: str) -> dict[str, list]:
    """The study's MLflow runs: {"study": [parent], "trial": [nested runs]}, trials in number order."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, f"tags.`specdsl.study` = '{study}'", max_results=5000)
    out: dict[str, list] = {"study": [], "trial": []}
    for run in runs:
        out[run.data.tags["specdsl.role"]].append(run)
    out["trial"].sort(key=lambda r: int(r.data.tags["specdsl.trial"]))
    return out


def optuna_trials(storage: str, study: str) -> list:
    import optuna

    from specdsl.search._storage import sqlalchemy_url

    return optuna.load_study(study_name=study, storage=sqlalchemy_url(storage)).get_trials(deepcopy=False)


def searched(path: Path, stores: dict, study: str, **kwargs):
    """run_search on the session's stores with its output kept (``result.output``), no plots."""
    import io

    from rich.console import Console

    from specdsl.search import run_search

    buf = io.StringIO()
    result = run_search(
        path,
        storage=stores["storage"],
        tracking_uri=stores["tracking_uri"],
        study_name=study,
        plots=False,
        console=Console(file=buf, width=250),
        **kwargs,
    )
    result.output = buf.getvalue()
    return result

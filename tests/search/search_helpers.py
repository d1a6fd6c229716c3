"""Helpers of the search tests (a module of their own: several test folders have a conftest.py)."""

from __future__ import annotations


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

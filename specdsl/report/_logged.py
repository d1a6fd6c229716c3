"""A command's files and metrics in MLflow (``specdsl explain``, ``specdsl evaluate``): into the run of
``specdsl train`` that logged the model, or into a new run. mlflow is imported inside the function."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Logged:
    """Where MLflow holds what a command logged: the run, its experiment, the tracking URI."""

    run_id: str
    experiment: str
    tracking_uri: str


def log_to_mlflow(
    folder: Path,
    *,
    role: str,
    model: str,
    source: str,
    metrics: dict[str, float],
    run: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    tags: dict[str, str] | None = None,
) -> Logged:
    """The files in ``folder`` as artifacts under ``<role>/`` and ``metrics``: into ``run``, or into a new run
    ``<role> <model>`` in ``experiment`` (default: ``model``) tagged with the role, the model, the weights'
    ``source`` and ``tags``. A store that cannot be opened or written is a StoreError."""
    import mlflow
    from mlflow.entities import Metric

    from ..tracking import configure, store_failure

    try:
        if run is not None:
            client = mlflow.MlflowClient()
            if metrics:
                now = int(time.time() * 1000)
                client.log_batch(run, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
            client.log_artifacts(run, str(folder), role)
            name = client.get_experiment(client.get_run(run).info.experiment_id).name
            return Logged(run, name, mlflow.get_tracking_uri())
        configure(tracking_uri, experiment or model)
        every = {
            "specdsl.role": role,
            "specdsl.spec": model[:5000],
            "specdsl.weights": source[:5000],
            **(tags or {}),
        }
        with mlflow.start_run(run_name=f"{role} {model}"[:250], tags=every) as active:
            if metrics:
                mlflow.log_metrics(metrics)
            mlflow.log_artifacts(str(folder), role)
            run_id = active.info.run_id
        return Logged(run_id, experiment or model, mlflow.get_tracking_uri())
    except Exception as e:
        failure = store_failure(e, mlflow.get_tracking_uri())
        if failure is not None:
            raise failure from None
        raise

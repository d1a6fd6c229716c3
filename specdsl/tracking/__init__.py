"""Tracking training runs in MLflow (imported lazily: importing this package does not import mlflow).

    >>> from specdsl.tracking import TrackedRun
    >>> with TrackedRun(plan, backend="torch", checkpoint_dir="ckpt") as run:
    ...     result = fit(plan, callbacks=[run.callback], checkpoint_dir="ckpt")
    ...     run.log_result(result, dataset)

Without a tracking URI MLflow's own default store is used (MLflow 3: ``./mlflow.db``, artifacts in ``./mlruns``),
so ``mlflow ui`` in the same folder shows the runs.
"""

from ._callback import MlflowCallback
from ._run import (
    TrackedRun,
    check_artifacts_writable,
    configure,
    example_input,
    log_model,
    pip_requirements,
    spec_params,
)

__all__ = [
    "MlflowCallback",
    "TrackedRun",
    "check_artifacts_writable",
    "configure",
    "example_input",
    "log_model",
    "pip_requirements",
    "spec_params",
]

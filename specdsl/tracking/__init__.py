"""MLflow tracking, all of it: a training run of a spec, and a study's runs.

A training run (:class:`TrackedRun`, with :class:`MlflowCallback` for its epochs): tags, parameters
(:func:`spec_params`), the spec and its summary, the trained model and its preprocessing, the final status.

    >>> from specdsl.tracking import TrackedRun
    >>> with TrackedRun(plan, backend="torch", checkpoint_dir="ckpt") as run:
    ...     result = fit(plan, callbacks=[run.callback], checkpoint_dir="ckpt")
    ...     run.log_result(result, dataset)

A study (:class:`Tracker`, used by ``specdsl.search``): one parent run, one nested run per trial, every
epoch's metrics batched (:class:`EpochBuffer`), runs left RUNNING by a killed worker closed when the study
resumes (the study's plots are drawn by ``specdsl.report``).

Both open the store the same way (``_store``: a SQLite file tuned and checked before MLflow's first
connection, a failing store one StoreError naming it) and name what they record with one tag scheme
(``_tags``). Without a
tracking URI MLflow's own default store is used (MLflow 3: ``./mlflow.db``, artifacts in ``./mlruns``), so
``mlflow ui`` in the same folder shows the runs. Importing this package does not import mlflow.
"""

from ._callback import MlflowCallback
from ._run import TrackedRun, configure, example_input, log_model, pip_requirements, spec_params
from ._store import (
    check_artifacts_writable,
    check_store,
    quiet_store_log,
    resolve_tracking_uri,
    store_failure,
)
from ._study import EpochBuffer, Tracker
from ._tags import MODEL_TAG, PLOTS_TAG, REASON_MAX, REASON_TAG, STORAGE_TAG

__all__ = [
    "MODEL_TAG",
    "PLOTS_TAG",
    "REASON_MAX",
    "REASON_TAG",
    "STORAGE_TAG",
    "EpochBuffer",
    "MlflowCallback",
    "TrackedRun",
    "Tracker",
    "check_artifacts_writable",
    "check_store",
    "configure",
    "example_input",
    "log_model",
    "pip_requirements",
    "quiet_store_log",
    "resolve_tracking_uri",
    "spec_params",
    "store_failure",
]

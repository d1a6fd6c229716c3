"""MLflow tracking, all of it: a training run of a spec, and a study's runs.

A training run (:class:`TrackedRun`, with :class:`MlflowCallback` for its epochs): tags, parameters
(:func:`spec_params`), the spec and its summary, the trained model and its preprocessing, the final status.

    >>> from specdsl.tracking import TrackedRun
    >>> with TrackedRun(plan, backend="torch", checkpoint_dir="ckpt") as run:
    ...     result = fit(plan, callbacks=[run.callback], checkpoint_dir="ckpt")
    ...     run.log_result(result, dataset)

A study (:class:`Tracker`, used by ``specdsl.search``): one parent run, one nested run per trial, every
epoch's metrics batched (:class:`EpochBuffer`), runs left RUNNING by a killed worker closed when the study
resumes (the study's plots are drawn by ``specdsl.report``). Its experiment is tagged as model training
(``mlflow.experimentKind``: MLflow 3's UI up to its GenAI/model-training switch opens it on its runs by this tag;
later ones by the address's ``workflowType=machine_learning``, which the search's summary prints); a pruned
trial's run ends FINISHED with the tag ``specdsl.pruned``; every trained trial logs ``objective``, its value as
the search ranks it; the parent run's duration is the study's working time, idle time between resumed invocations
left out.

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
from ._tags import (
    EXPERIMENT_KIND_TAG,
    MODEL_TAG,
    OBJECTIVE_METRIC,
    PLOTS_TAG,
    PRUNED_TAG,
    REASON_MAX,
    REASON_TAG,
    SEARCH_SECONDS_METRIC,
    STORAGE_TAG,
    TRAINING_KIND,
)

__all__ = [
    "EXPERIMENT_KIND_TAG",
    "MODEL_TAG",
    "OBJECTIVE_METRIC",
    "PLOTS_TAG",
    "PRUNED_TAG",
    "REASON_MAX",
    "REASON_TAG",
    "SEARCH_SECONDS_METRIC",
    "STORAGE_TAG",
    "TRAINING_KIND",
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

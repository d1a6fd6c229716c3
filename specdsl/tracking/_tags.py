"""The names specdsl gives what it records in MLflow, for a training run and for a study's runs, and MLflow's
limits on a tag's and a parameter's value."""

from __future__ import annotations

import json
from typing import Any

TAG_MAX = 8000  # MLflow's limit on a tag value's length
PARAM_MAX = 6000  # and on a parameter value's
REASON_MAX = 5000  # a reason kept in a tag: its start (a traceback's first line is what tells)

# a training run (TrackedRun)
SPEC_TAG = "specdsl.spec"  # the spec's name
SPEC_FILE_TAG = "specdsl.spec_file"
BACKEND_TAG = "specdsl.backend"
VERSION_TAG = "specdsl.version"
# a study's parent run and its trials' nested runs (Tracker); runs are found again by these
STUDY_TAG = "specdsl.study"
TRIAL_TAG = "specdsl.trial"  # the trial's number
ROLE_TAG = "specdsl.role"  # study | trial
STATE_TAG = "specdsl.state"  # the trial's Optuna state
REASON_TAG = "specdsl.reason"  # why it was rejected, pruned, failed or stopped
REJECTED_TAG = "specdsl.rejected"  # an invalid sample: nothing was built
MODEL_TAG = "specdsl.model"  # the name of the model a trial trains
STORAGE_TAG = "specdsl.storage"  # the study storage, without its password
PLOTS_TAG = "specdsl.plots"  # why some of the study's plots were not drawn
PRUNED_TAG = "specdsl.pruned"  # "true" on a pruned trial's run (which ends FINISHED: it ran as asked)
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: nests a run under another
# MLflow 3's UI opens an experiment by this tag (its runs table for the training kind, a GenAI overview else), up to
# the versions with a GenAI/model-training switch, which read the address's `workflowType` instead
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
OBJECTIVE_METRIC = "objective"  # a trial's value as the search ranks it (the first objective's)
SEARCH_SECONDS_METRIC = "search_seconds"  # a study's working time, all its invocations (its run's duration)


def tag_values(tags: dict[str, Any]) -> dict[str, str]:
    """Tag values as text within MLflow's limit (MLflow would cut them itself, logging the text raw)."""
    return {k: str(v)[:TAG_MAX] for k, v in tags.items()}


def param_text(value: Any) -> str:
    """A parameter's value as MLflow keeps it: text (lists and mappings as JSON) within its limit."""
    if isinstance(value, str):
        return value[:PARAM_MAX]
    return (json.dumps(value) if isinstance(value, (list, dict)) else str(value))[:PARAM_MAX]

"""What a study runs with: the options a caller sets over a space's ``search:`` section
(:class:`SearchOptions`), what every worker of the study is handed (:class:`StudyConfig`), and the names of
what specdsl keeps in Optuna's user attributes. Pure: nothing here imports optuna or mlflow."""

from __future__ import annotations

from dataclasses import dataclass

# Optuna user attributes of a trial
REASON = "specdsl.reason"  # why it was rejected, pruned or failed
REJECTED = "specdsl.rejected"  # an invalid sample: ended before anything was built
RESULT = "specdsl.result"  # what it cost: its time, its training, its overhead
RUN_ATTR = "specdsl.mlflow_run_id"  # its MLflow run
# ... and of a study
SPACE_ATTR = "specdsl.space"  # the search space's text, as the study last ran it
SPACE_FILE_ATTR = "specdsl.space_file"
METRICS_ATTR = "specdsl.metrics"  # the objectives' metrics, in order
# the first trial that kept its objective's best epoch (_space.watch_objective); absent in a study made before
WATCHED_ATTR = "specdsl.watched_from"
PARENT_ATTR = "specdsl.mlflow_parent_run_id"  # the study's MLflow run
OVERHEAD_ATTR = "specdsl.overhead."  # + a worker's key: its trials' cost besides training (OverheadTally)
REEVALUATED_ATTR = "specdsl.reevaluated"  # {trial number: [its fresh values]}, by re-evaluation (_select)
CONFIRMED_ATTR = "specdsl.confirmed"  # {trial number: [its values on the estimate's splits]} (_select)
CHOSEN_ATTR = "specdsl.chosen"  # the trial chosen by re-evaluation, with its estimate (_select.Chosen)
HELD_OUT = " that took no part in choosing it"  # said of an estimate's splits (select.confirm)
FITTED_ATTR = "specdsl.fitted_epochs"  # every trial's epochs, fitted to the time budget (_budget)
# ... and of a trial cut at the study's time limit: {"epochs": trained, "of": planned, "values": [...] its best
# epoch's, "epoch_s": seconds an epoch}; the best of them stands in for the best trial when none completed
CUT_ATTR = "specdsl.cut"

MAX_CONSECUTIVE_REJECTED = 1000  # then the study stops: the sampler cannot find a model that plans


@dataclass(frozen=True)
class SearchOptions:
    """What a run of a search sets over the space's ``search:`` section and the defaults; None keeps them.

    ``trials`` counts trials that train; ``timeout`` (seconds, or "90s", "15m", "2h") stops starting new ones.
    ``storage`` is an Optuna storage URL (default ``sqlite:///optuna.db`` in the working folder);
    ``study_name`` the study's name (default the space file's name); ``resume=False`` starts a new study under
    the next free name instead of continuing one (``catsdogs-2``). ``workers`` processes on this machine share
    the study: worker i trains on GPU i mod G, or with its share of the CPU cores as torch's threads
    (``specdsl.train.device_for_worker``); ``auto`` (the default) is ``$SPECDSL_WORKERS`` where set, else one
    worker a GPU, one on MPS, one a CPU core up to 4 (``specdsl.train.auto_workers``); ``device`` overrides
    every trial's ``train.device``.
    ``tracking_uri`` and ``experiment`` say where MLflow records it (default: MLflow's own store;
    the space file's name). ``epochs`` overrides every trial's ``train.epochs``, ``limit`` caps the examples
    of each split, and ``seed`` seeds the sampler. ``fit_epochs`` (with a timeout and no ``epochs``) times the
    first epoch and trains every trial the epochs that let about 8 trials end in the time left (``_budget``).
    """

    trials: int | None = None
    timeout: float | str | None = None
    storage: str | None = None
    study_name: str | None = None
    resume: bool = True
    workers: int | str = "auto"
    device: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    epochs: int | None = None
    limit: int | None = None
    seed: int | None = None
    fit_epochs: bool = True


@dataclass
class StudyConfig:
    """Everything a worker needs to run its share of a study (picklable, for worker processes)."""

    space_file: str
    space_text: str
    study_name: str
    storage: str
    search: dict  # the search section, as SearchSpec.model_dump() gives it
    tracking_uri: str = ""
    experiment: str = ""
    parent_run_id: str = ""
    budget: int | None = None
    deadline: float | None = None  # time.time() after which no trial starts
    epochs: int | None = None
    limit: int | None = None
    seed: int | None = None
    workers: int = 1
    worker_index: int = 0
    device: str | None = None  # over every trial's train.device
    parent_pid: int | None = None
    fit_epochs: bool = False  # epochs fitted to the budget (_budget)

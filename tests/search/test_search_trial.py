"""One trial in this process: an Objective called with a trial of a real SQLite study, with a tracker that
keeps what it is told instead of MLflow, and no worker, lock or subprocess around it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from specdsl.search import read_search
from specdsl.search._config import StudyConfig
from specdsl.search._space import read_space
from specdsl.search._storage import open_storage
from specdsl.search._trial import Objective

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")
pytestmark = [
    pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval`` is an experimental feature"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]

# 8x8 -> conv 3x3 (valid) -> 6x6xF -> dense 10: 10F + 360F + 10 parameters; the 7x7 conv of `extra` does
# not fit.
SPACE = """
name: tiny
input: [8, 8, 1]
layers:
  - conv2d: {filters: {choice: [4, 8], name: filters}, kernel: 3, activation: relu}
  - repeat: {choice: [0, 1], name: extra}
    layers:
      - conv2d: {filters: 4, kernel: 7}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 2, batch_size: 32}
search:
  sampler: random
  pruner: none
  objectives: [{metric: val_accuracy}, {metric: params, direction: minimize}]
"""


class KeptTracker:
    """A TrialTracker that keeps its calls, and the epochs' metrics it is sent (as (step, name), whenever the
    EpochBuffer sends them: during training after 10 s, or with the run's end)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.epochs: set[tuple[int, str]] = set()

    def start_trial(self, number: int, params: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        self.calls.append(("start_trial", number, params, tags))
        return f"run-{number}"

    def rejected_trial(
        self, number: int, params: dict[str, Any], reason: str, metrics: dict[str, float]
    ) -> str:
        self.calls.append(("rejected_trial", number, params, reason, sorted(metrics)))
        return f"run-{number}"

    def log_texts(self, run_id: str, texts: dict[str, str]) -> None:
        self.calls.append(("log_texts", run_id, {name: text.splitlines() for name, text in texts.items()}))

    def send(self, run_id: str, metrics: list[Any], tags: dict[str, str] | None = None) -> None:
        self.epochs.update((m.step, m.key) for m in metrics)

    def finish_trial(
        self,
        run_id: str,
        state: str,
        *,
        reason: str | None = None,
        metrics: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        buffer: Any = None,
    ) -> None:
        if buffer is not None:
            self.send(run_id, buffer.take())
        self.calls.append(("finish_trial", run_id, state, reason, metrics))


@pytest.fixture
def trial_of(tmp_path):
    """(objective, tracker, study) for the space above, on a SQLite study in ``tmp_path``."""
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE, encoding="utf-8")
    tree, file, text = read_space(path)
    search = read_search(tree, file)
    cfg = StudyConfig(
        space_file=file,
        space_text=text,
        study_name="tiny",
        storage=f"sqlite:///{tmp_path}/optuna.db",
        search=search.model_dump(),
        limit=64,
    )
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        storage=open_storage(cfg.storage), study_name="tiny", directions=["maximize", "minimize"]
    )
    tracker = KeptTracker()
    return Objective(cfg, tracker, None), tracker, study


def test_an_objective_trains_a_trial_in_process_and_records_it(trial_of):
    objective, tracker, study = trial_of
    study.enqueue_trial({"filters": 4, "extra": 0})
    trial = study.ask()
    values = objective(trial)
    study.tell(trial, values)

    frozen = study.trials[0]
    assert (frozen.state.name, frozen.params) == ("COMPLETE", {"filters": 4, "extra": 0})
    assert values[1] == 1490  # the second objective: the plan's parameters, 370 * 4 + 10
    assert 0.0 <= values[0] <= 1.0
    assert frozen.user_attrs["specdsl.mlflow_run_id"] == "run-0"
    assert "specdsl.reason" not in frozen.user_attrs
    result = frozen.user_attrs["specdsl.result"]
    assert (result["params"], result["epochs"]) == (1490, 2)
    assert sorted(result["overhead_ms"]) == ["pruning_ms", "spec_plan_ms", "suggest_ms", "tracking_ms"]

    # the spec and its summary when the trial starts, its architecture drawn while it trains, then its end
    assert [c[0] for c in tracker.calls] == ["start_trial", "log_texts", "log_texts", "finish_trial"]
    assert tracker.calls[0] == ("start_trial", 0, {"filters": 4, "extra": 0}, {"specdsl.model": "tiny"})
    _, run_id, texts = tracker.calls[1]
    assert (run_id, sorted(texts)) == ("run-0", ["spec.yaml", "summary.txt"])
    assert texts["spec.yaml"][:3] == [
        f"# trial 0 of study tiny ({objective.cfg.space_file})",
        "name: tiny_trial_0",
        "input: [8, 8, 1]",
    ]
    assert "search:" not in texts["spec.yaml"]
    summary = texts["summary.txt"]
    assert (summary[0], summary[-5]) == ('Model: "tiny"', "Total params: 1,490 (5.8 KiB)")
    _, run_id, picture = tracker.calls[2]
    assert (run_id, sorted(picture)) == ("run-0", ["model.svg"])
    assert picture["model.svg"][0].startswith("<?xml") and picture["model.svg"][-1] == "</svg>"
    _, run_id, state, reason, metrics = tracker.calls[3]
    assert (run_id, state, reason) == ("run-0", "COMPLETE", None)
    assert (metrics["params"], metrics["epochs"], metrics["objective.params"]) == (1490, 2, 1490)
    assert metrics["objective.val_accuracy"] == values[0]
    assert sorted(step for step, key in tracker.epochs if key == "val_accuracy") == [0, 1]
    assert objective.fatal is None
    assert objective.training_s > 0
    # its mean epoch: the least a next trial costs, by which a worker decides whether one fits before the deadline
    assert 0 < objective.epoch_s < objective.training_s


def test_a_worker_starts_no_trial_that_an_epoch_as_long_as_the_last_trials_would_end_past_the_deadline():
    from specdsl.search._workers import time_for_another

    assert time_for_another(None, 30.0, 1e9)  # no deadline
    assert time_for_another(100.0, None, 99.0)  # no epoch seen yet: up to the deadline
    assert not time_for_another(100.0, None, 100.0)
    assert time_for_another(100.0, 12.0, 87.9)
    assert not time_for_another(100.0, 12.0, 88.0)  # 12 s left, and the last trial's epochs took 12 s


def test_an_invalid_sample_is_pruned_with_its_reason_and_nothing_is_built(trial_of, monkeypatch):
    import specdsl.train

    objective, tracker, study = trial_of

    def no_fit(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an invalid sample must not train")

    monkeypatch.setattr(specdsl.train, "fit", no_fit)
    study.enqueue_trial({"filters": 8, "extra": 1})  # a 7x7 kernel on a 6x6 input
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned) as raised:
        objective(trial)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    frozen = study.trials[0]
    reason = frozen.user_attrs["specdsl.reason"]
    assert str(raised.value) == reason
    assert frozen.user_attrs["specdsl.rejected"] is True
    assert reason == (
        f"{objective.cfg.space_file}:8:9: layers[1].repeat[0].layers[0] (conv2d): kernel "
        "7x7 does not fit its 6x6x8 input with padding=valid (output would be 0x0). "
        "Use padding: same or a smaller kernel, or give the model a larger input."
    )
    assert tracker.calls == [
        (
            "rejected_trial",
            0,
            {"filters": 8, "extra": 1},
            reason,
            ["overhead.spec_plan_ms", "overhead.suggest_ms"],
        )
    ]


@pytest.mark.parametrize(
    ("workers", "index", "device", "gpus", "placed", "threads"),
    [
        (1, 0, None, 0, "cpu", None),  # one worker: the spec's train.device (auto), torch's threads untouched
        (2, 1, None, 0, "cpu", 1),  # two on 2 cores: one thread each
        (3, 2, "cuda", 2, "cuda:0", 1),  # worker 2 of 3 on GPU 2 mod 2
        (2, 1, "cpu", 2, "cpu", 1),  # --device cpu over the GPUs
    ],
)
def test_a_worker_trains_where_its_placement_says(
    trial_of, monkeypatch, workers, index, device, gpus, placed, threads
):
    import dataclasses

    import torch

    import specdsl.train
    from specdsl.train import placement

    objective, _, study = trial_of
    objective.cfg = dataclasses.replace(objective.cfg, workers=workers, worker_index=index, device=device)
    monkeypatch.setattr(
        specdsl.train,
        "device_for_worker",
        lambda i, n, asked: placement(i, n, asked, gpus=gpus, cores=2),
    )
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    spec = SimpleNamespace(train=None)  # a spec without a `train:` section: its device is auto
    assert objective._device(spec) == placed
    assert objective._device(spec) == placed
    assert set_to == ([] if threads is None else [threads])  # set once, for the worker's first trial


def test_a_device_this_machine_lacks_fails_before_the_study(tmp_path, monkeypatch):
    import specdsl.train._device as device_module
    from specdsl.errors import TrainError
    from specdsl.search import SearchOptions, run_search

    monkeypatch.setattr(device_module, "_counts", lambda: (0, False))  # no GPU, whatever the machine
    path = tmp_path / "tiny.yaml"
    path.write_text(SPACE, encoding="utf-8")
    options = SearchOptions(
        device="cuda:7",
        trials=1,
        storage=f"sqlite:///{tmp_path}/o.db",
        tracking_uri=f"sqlite:///{tmp_path}/m.db",
    )
    with pytest.raises(TrainError) as e:
        run_search(path, options)
    assert e.value.message.startswith("train.device cuda:7 cannot be used: ")
    assert e.value.message.endswith("; available: cpu.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # no study, no MLflow store

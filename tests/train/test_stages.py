"""Frozen layers in training, and `train.stages` (a staged fine-tune in one run), in both backends.

A frozen layer's weights, and a frozen batch norm's moving statistics, come out of an epoch bit-identical while
the rest trains; a stage that unfreezes them makes them train from its first epoch; epochs count on, the stage
is logged per epoch, early stopping ends a stage; what an unfreeze names is checked against the plan."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from train_fixtures import DIGITS_SPEC

import specdsl
from specdsl.train import Callback, check_compatible, fit

pytestmark = pytest.mark.usefixtures("single_thread")

FROZEN = ["c1.weight", "c1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "d1.weight"]
TRAINS = ["d2.weight", "d2.bias", "out.weight", "out.bias"]
# Keras' names of the same weights
KERAS = {
    "c1.weight": "c1/kernel",
    "c1.bias": "c1/bias",
    "bn.weight": "bn/gamma",
    "bn.bias": "bn/beta",
    "bn.running_mean": "bn/moving_mean",
    "bn.running_var": "bn/moving_variance",
    "d1.weight": "d1/kernel",
    "d1.bias": "d1/bias",
    "d2.weight": "d2/kernel",
    "d2.bias": "d2/bias",
    "out.weight": "out/kernel",
    "out.bias": "out/bias",
}


def spec(**train) -> dict:
    """The digits CNN with a frozen conv, batch norm and dense layer (d1); d2 and out train."""
    doc = copy.deepcopy(DIGITS_SPEC)
    doc["layers"] = [
        {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "trainable": False, "name": "c1"}},
        {"batchnorm": {"trainable": False, "name": "bn"}},
        "relu",
        {"maxpool2d": 2},
        "flatten",
        {"dense": {"units": 16, "activation": "relu", "trainable": False, "name": "d1"}},
        {"dense": {"units": 16, "activation": "relu", "name": "d2"}},
        {"dense": {"units": 10, "activation": "softmax", "name": "out"}},
    ]
    doc["train"] = {"optimizer": {"name": "adam", "lr": 0.003}, "batch_size": 64, **train}
    return doc


class Snapshots(Callback):
    """Every weight after each epoch, by torch's state_dict names."""

    def __init__(self):
        self.model = None
        self.epochs: list[dict[str, np.ndarray]] = []

    def on_train_begin(self, info):
        self.model = info["model"]
        self.epochs.append(self.weights())

    def on_epoch_end(self, epoch, logs):
        self.epochs.append(self.weights())

    def weights(self) -> dict[str, np.ndarray]:
        if not hasattr(self.model, "get_weights"):  # torch (a Keras model on torch is a Module too)
            return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}
        keras_weights = {w.path: np.array(w.numpy()) for w in self.model.weights}
        return {ours: keras_weights[theirs] for ours, theirs in KERAS.items()}


def _same(a: dict, b: dict, names: list[str]) -> dict[str, bool]:
    return {n: bool(np.array_equal(a[n], b[n])) for n in names}


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_an_epoch_leaves_frozen_weights_and_batch_norm_statistics_bit_identical(digits, backend):
    snaps = Snapshots()
    result = fit(specdsl.check(spec(epochs=1)), dataset=digits, backend=backend, callbacks=[snaps])
    before, after = snaps.epochs
    assert _same(before, after, FROZEN) == dict.fromkeys(FROZEN, True)
    assert _same(before, after, TRAINS) == dict.fromkeys(TRAINS, False)
    assert "stage" not in result.history[0]  # a run without stages logs no stage


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_two_stages_train_the_head_then_unfreeze_in_one_run(digits, backend):
    stages = [{"epochs": 1}, {"epochs": 1, "unfreeze": 2, "learning_rate": 1e-4}]
    plan = specdsl.check(spec(stages=stages))
    assert plan.spec.train.epochs == 2
    snaps = Snapshots()
    result = fit(plan, dataset=digits, backend=backend, callbacks=[snaps])
    start, stage1, stage2 = snaps.epochs
    assert _same(start, stage1, FROZEN) == dict.fromkeys(FROZEN, True)
    # unfreeze: 2 is the last two frozen layers with weights: d1 and the batch norm; c1 stays frozen
    assert _same(stage1, stage2, FROZEN) == {
        "c1.weight": True,
        "c1.bias": True,
        "bn.weight": False,
        "bn.bias": False,
        "bn.running_mean": False,
        "bn.running_var": False,
        "d1.weight": False,
    }
    assert [h["stage"] for h in result.history] == [1.0, 2.0]
    assert [h["lr"] for h in result.history] == [0.003, 1e-4]
    assert result.stop_reason is None and len(result.history) == 2


def test_early_stopping_ends_a_stage_and_the_next_one_follows(digits):
    stages = [{"epochs": 3}, {"epochs": 2, "unfreeze": "all"}]
    # no epoch improves by 100: each stage stops after patience 1 epoch without improving
    early = {"monitor": "val_loss", "patience": 1, "min_delta": 100.0}
    result = fit(specdsl.check(spec(stages=stages, early_stopping=early)), dataset=digits)
    assert [h["stage"] for h in result.history] == [1.0, 1.0, 2.0]
    assert result.stop_reason == "early_stopping"


def test_a_budget_cuts_the_stages_short(digits):
    stages = [{"epochs": 1}, {"epochs": 3, "unfreeze": "all"}]
    result = fit(specdsl.check(spec(stages=stages)), dataset=digits, epochs=2)
    assert [h["stage"] for h in result.history] == [1.0, 2.0]


def test_a_stage_may_name_what_it_unfreezes_and_its_optimizer(digits):
    stages = [{"epochs": 1, "unfreeze": ["c1"], "optimizer": {"name": "sgd", "momentum": 0.9}}]
    snaps = Snapshots()
    result = fit(specdsl.check(spec(stages=stages)), dataset=digits, callbacks=[snaps])
    assert _same(*snaps.epochs, FROZEN) == {
        "c1.weight": False,
        "c1.bias": False,
        "bn.weight": True,
        "bn.bias": True,
        "bn.running_mean": True,
        "bn.running_var": True,
        "d1.weight": True,
    }
    assert result.history[0]["lr"] == 0.01  # Keras' sgd default


@pytest.mark.parametrize(
    "stages,message",
    [
        (
            "[{epochs: 1, unfreeze: [c11]}]",
            "{file}:14:34: train.stages[0].unfreeze: `unfreeze` names `c11`, which is no layer of the model; "
            "did you mean `c1`? Frozen layers with weights: c1, bn, d1.",
        ),
        (
            "[{epochs: 1, unfreeze: [d2]}]",
            "{file}:14:34: train.stages[0].unfreeze: `unfreeze` names `d2`, which is not frozen: it trains "
            "from the start (no `trainable: false`). Frozen layers with weights: c1, bn, d1.",
        ),
        (
            "[{epochs: 1, unfreeze: all}, {epochs: 1, unfreeze: [bn]}]",
            "{file}:14:62: train.stages[1].unfreeze: `unfreeze` names `bn`, which is not frozen: an earlier "
            "stage unfroze it. Frozen layers with weights: none.",
        ),
        (
            "[{epochs: 1, unfreeze: 2}, {epochs: 1, unfreeze: 2}]",
            "{file}:14:60: train.stages[1].unfreeze: `unfreeze: 2` unfreezes the last 2 frozen layers with "
            "weights, but 1 is frozen still. Unfreeze at most 1, or freeze more layers with `trainable: false`.",
        ),
    ],
)
def test_an_unfreeze_that_names_no_frozen_layer_is_a_located_error(tmp_path, stages, message):
    path = tmp_path / "staged.yaml"
    path.write_text(
        """\
name: staged
input: [8, 8, 1]
layers:
  - conv2d: {filters: 8, kernel: 3, padding: same, trainable: false, name: c1}
  - batchnorm: {trainable: false, name: bn}
  - relu
  - maxpool2d: 2
  - flatten: {trainable: false}
  - dense: {units: 16, activation: relu, trainable: false, name: d1}
  - dense: {units: 16, activation: relu, name: d2}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train:
  stages: """
        + stages
        + "\n"
    )
    with pytest.raises(specdsl.SpecError) as e:
        check_compatible(specdsl.check(path))
    assert str(e.value) == message.format(file=path)


def test_epochs_beside_stages_must_be_their_sum():
    doc = spec(epochs=3, stages=[{"epochs": 1}, {"epochs": 1, "unfreeze": "all"}])
    with pytest.raises(specdsl.SpecError) as e:
        specdsl.check(doc)
    assert str(e.value).endswith(
        "train: with `stages`, `epochs` is the sum of the stages' epochs (2), but got epochs: 3; leave "
        "`epochs` out."
    )


def test_a_search_space_may_sample_what_a_stage_unfreezes(tmp_path):
    from specdsl.search import check_space
    from specdsl.spec import RandomSampler, load

    path = tmp_path / "space.yaml"
    path.write_text(
        """\
name: staged_space
input: [8, 8, 1]
layers:
  - conv2d: {filters: 8, kernel: 3, padding: same, trainable: false}
  - batchnorm: {trainable: false}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train:
  stages:
    - {epochs: 1}
    - {epochs: 1, unfreeze: {int: [0, 3], name: unfreeze}, learning_rate: {float: [1.0e-5, 1.0e-3], log: true}}
"""
    )
    report = check_space(path, samples=40)
    # 0, 1 and 2 of the two frozen layers with weights plan; 3 does not
    assert [d.name for d in report.distributions] == ["unfreeze", "train.stages.1.learning_rate"]
    assert 0 < report.invalid < 40
    assert list(report.reasons.values()) == [report.invalid]
    drawn = {load(path, sampler=RandomSampler(seed)).train.stages[1].unfreeze for seed in range(30)}
    assert drawn == {0, 1, 2, 3}


def test_the_train_command_takes_epochs_as_a_budget_over_the_stages(tmp_path):
    import io

    import yaml
    from rich.console import Console

    from specdsl.cli._train import run_train

    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump(spec(stages=[{"epochs": 1}, {"epochs": 3, "unfreeze": "all"}])))
    out = Console(file=io.StringIO(), width=120, color_system=None)
    options = {"data": None, "batch_size": None, "backend": None, "seed": None, "output": tmp_path / "out"}
    options.update(tracking_uri=None, experiment=None, track=False)
    assert run_train(path, epochs=2, limit=300, console=out, **options) == 0
    text = out.file.getvalue()
    assert "2 epochs, batch 64" in text
    assert "epoch 2/2  loss " in text and "epoch 3/" not in text

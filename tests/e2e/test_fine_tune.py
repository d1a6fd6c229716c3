"""Transfer learning as a user does it: a small backbone trained here on MNIST (`specdsl train`), its checkpoint
loaded frozen under a new head on Fashion-MNIST (`backbone:` with `weights:` and `trainable: false`), trained in two
stages (`train.stages`): the head alone first, the backbone's weights and batch-norm statistics bit-identical to
the file after it; then everything unfrozen at a lower rate, and the backbone trains."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import specdsl
from specdsl.cli import app
from specdsl.train import Callback, fit

pytestmark = pytest.mark.usefixtures("single_thread")

BASE = {
    "name": "mnist_base",
    "input": [28, 28, 1],
    "layers": [
        {"conv2d": {"filters": 8, "kernel": 3, "activation": "relu", "name": "c1"}},
        {"batchnorm": {"name": "bn1"}},
        {"maxpool2d": 2},
        {"conv2d": {"filters": 16, "kernel": 3, "activation": "relu", "name": "c2"}},
        {"maxpool2d": 2},
        "flatten",  # the top starts here: include_top: false drops it and the layers after it
        {"dense": {"units": 10, "activation": "softmax", "name": "digits"}},
    ],
    "data": {"dataset": "mnist", "limit": 600},
    "train": {"optimizer": {"name": "adam", "lr": 0.003}, "epochs": 1, "batch_size": 64, "seed": 0},
}

# what the backbone holds, by torch's state_dict names in the base's checkpoint and in the new model
BASE_WEIGHTS = ["c1.weight", "c1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"]
BASE_WEIGHTS += ["c2.weight", "c2.bias"]


def fine_tune_spec(weights: str) -> dict:
    return {
        "name": "fashion_head",
        "input": [28, 28, 1],
        "layers": [
            {"backbone": {"spec": "base.yaml", "include_top": False, "weights": weights, "trainable": False}},
            "flatten",
            {"dense": {"units": 32, "activation": "relu", "name": "head"}},
            {"dense": {"units": 10, "activation": "softmax", "name": "classes"}},
        ],
        "data": {"dataset": "fashion_mnist", "limit": 600},
        "train": {
            "optimizer": {"name": "adam", "lr": 0.003},
            "batch_size": 64,
            "seed": 0,
            "stages": [{"epochs": 1}, {"epochs": 1, "unfreeze": "all", "learning_rate": 0.0003}],
        },
    }


class Snapshots(Callback):
    """The model's state after training began and after each epoch, by state_dict names."""

    def __init__(self):
        self.model = None
        self.states: list[dict[str, np.ndarray]] = []

    def on_train_begin(self, info):
        self.model = info["model"]
        self.states.append(self.state())

    def on_epoch_end(self, epoch, logs):
        self.states.append(self.state())

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}


def test_a_backbone_trained_here_fine_tunes_frozen_then_unfrozen_on_another_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    r = CliRunner().invoke(app, ["train", "base.yaml", "--output", "ckpt", "--no-track"])
    assert r.exit_code == 0, r.output
    saved = torch.load(tmp_path / "ckpt" / "best.pt", weights_only=True)

    (tmp_path / "head.yaml").write_text(yaml.safe_dump(fine_tune_spec("ckpt/best.pt"), sort_keys=False))
    plan = specdsl.check(tmp_path / "head.yaml")
    frozen = (
        8 * 9 + 8 + 4 * 8 + 16 * 8 * 9 + 16
    )  # both convs and the batch norm (its gamma, beta and statistics)
    head = 400 * 32 + 32 + 32 * 10 + 10
    assert (plan.trainable, plan.non_trainable) == (head, frozen)

    # the new model's state_dict names for the backbone's weights: the same layers, in the same order
    model = specdsl.build(plan, "torch")
    names = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    ours = names[: len(BASE_WEIGHTS)]
    for mine, theirs in zip(ours, BASE_WEIGHTS, strict=True):  # built with the file's weights
        np.testing.assert_array_equal(model.state_dict()[mine].numpy(), saved[theirs].numpy())

    snaps = Snapshots()
    result = fit(plan, callbacks=[snaps])
    assert [h["stage"] for h in result.history] == [1, 2]
    begin, after_head, after_all = snaps.states
    for mine, theirs in zip(ours, BASE_WEIGHTS, strict=True):
        np.testing.assert_array_equal(
            after_head[mine], saved[theirs].numpy(), err_msg=mine
        )  # frozen: untouched
    assert not np.array_equal(after_head["head.weight"], begin["head.weight"])  # the head trained in stage 1
    changed = [m for m in ours if not np.array_equal(after_all[m], after_head[m])]
    assert changed == ours  # stage 2 unfroze everything: every weight and statistic of the backbone moved

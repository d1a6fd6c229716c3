"""fit() on the torch loop, on sklearn's digits: determinism, accuracy, early stopping, the best checkpoint,
non-finite losses, callbacks, losses and optimizers as Keras defines them."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support import RaiseAt
from train_fixtures import DIGITS_SPEC, digits_plan

import specdsl
from specdsl.data import Dataset
from specdsl.errors import TrainError
from specdsl.spec import TrainSpec
from specdsl.train import Callback, NonFiniteLoss, fit
from specdsl.train._batches import normalization, to_tensor
from specdsl.train._metrics import make_correct, make_loss
from specdsl.train._schedule import out_of_time
from specdsl.train._torch import make_optimizer

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds", "images_per_s"]


def spec_train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {"optimizer": {"name": "adam", "lr": 0.003}, "epochs": 2, "batch_size": 32, **changes}
    )


class Record(Callback):
    def __init__(self):
        self.calls: list = []

    def on_train_begin(self, info):
        self.calls.append(("begin", info["n_train"], info["steps_per_epoch"], info["monitor"]))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch", epoch, list(logs)))

    def on_train_end(self, result):
        self.calls.append(("end", result.best_epoch))


def test_logs_callbacks_and_result(tmp_path, digits):
    plan = digits_plan(tmp_path)
    rec = Record()
    result = fit(plan, dataset=digits, callbacks=[rec])
    n = len(digits.y_train)
    assert rec.calls == [
        ("begin", n, math.ceil(n / 32), "val_loss"),
        ("epoch", 0, LOG_KEYS),
        ("epoch", 1, LOG_KEYS),
        ("end", result.best_epoch),
    ]
    assert len(result.history) == 2 and result.best == result.history[result.best_epoch]
    assert sorted(result.test) == ["accuracy", "loss"]
    assert (result.checkpoint, result.stopped_early, result.stop_reason, result.backend) == (
        None,
        False,
        None,
        "torch",
    )
    assert result.history[0]["lr"] == 0.003
    # the returned model outputs probabilities again (training ran on the logits), in eval mode
    out = result.model(torch.zeros(3, 1, 8, 8))
    torch.testing.assert_close(out.sum(1), torch.ones(3))
    assert not result.model.training


def test_same_seed_same_history_other_seed_other_history(tmp_path, digits):
    plan = digits_plan(tmp_path, data={"augment": {"flip": "horizontal", "rotation": 10}})
    losses = [
        [h["loss"] for h in fit(plan, dataset=digits, train=spec_train(seed=s)).history] for s in (7, 7, 8)
    ]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_a_small_cnn_learns_digits(tmp_path, digits):
    # measured: seeds 0..3 reach test accuracy 0.914 .. 0.941 after 5 epochs (val 0.944 .. 0.963)
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(epochs=5, seed=0))
    assert result.best["val_accuracy"] >= 0.90
    assert result.test["accuracy"] >= 0.88
    assert result.history[-1]["loss"] < result.history[0]["loss"] / 2


def test_loads_the_data_section_when_no_dataset_is_given(tmp_path):
    result = fit(digits_plan(tmp_path, data={"limit": 300}), epochs=1)
    assert result.info["n_train"] == 300 and result.info["image_shape"] == (8, 8, 1)


def test_early_stopping_stops_at_the_right_epoch(tmp_path, digits):
    # accuracy can never improve by more than 1: epoch 0 is the best, and patience 2 stops after epoch 2
    es = {"monitor": "val_accuracy", "patience": 2, "min_delta": 1.0}
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(epochs=10, early_stopping=es))
    assert len(result.history) == 3
    assert (result.best_epoch, result.stopped_early, result.stop_reason, result.monitor) == (
        0,
        True,
        "early_stopping",
        "val_accuracy",
    )


def test_train_monitor_picks_the_best_epoch_and_early_stopping_watches_it(tmp_path, digits):
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(epochs=4, monitor="val_accuracy"))
    accuracies = [h["val_accuracy"] for h in result.history]
    assert result.monitor == "val_accuracy"
    assert (
        result.best_epoch == accuracies.index(max(accuracies))
        and result.best == result.history[result.best_epoch]
    )
    # early stopping that names no monitor watches train.monitor: accuracy never improves by more than 1
    es = {"patience": 2, "min_delta": 1.0}
    result = fit(
        digits_plan(tmp_path),
        dataset=digits,
        train=spec_train(epochs=10, monitor="val_accuracy", early_stopping=es),
    )
    assert (len(result.history), result.best_epoch, result.monitor) == (3, 0, "val_accuracy")


class Sabotage(Callback):
    """Zeroes every weight at the end of one epoch, so the next epochs cannot get better than that one."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_begin(self, info):
        self.model = info["model"]

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.zero_()


def test_the_best_checkpoint_is_kept_restored_and_tested(tmp_path, digits):
    plan = digits_plan(tmp_path)
    result = fit(
        plan,
        dataset=digits,
        train=spec_train(epochs=4),
        callbacks=[Sabotage(1)],
        checkpoint_dir=tmp_path / "ck",
    )
    assert result.best_epoch == 1
    assert result.history[2]["val_loss"] > result.history[1]["val_loss"]
    assert result.checkpoint == tmp_path / "ck" / "best.pt"
    meta = json.loads((tmp_path / "ck" / "best.json").read_text())
    assert (meta["epoch"], meta["monitor"], meta["value"]) == (1, "val_loss", result.history[1]["val_loss"])
    # a fresh model with the checkpoint's weights gives the test metrics fit reported
    model = specdsl.build(plan)
    model.load_state_dict(torch.load(result.checkpoint))
    model.eval()
    x = to_tensor(digits.x_test, *normalization(digits.x_train, "unit"))
    y = torch.from_numpy(digits.y_test)
    with torch.no_grad():
        probs = model(x)
    assert (probs.argmax(1) == y).sum().item() / len(y) == result.test["accuracy"]
    assert F.nll_loss(probs.log(), y).item() == pytest.approx(result.test["loss"], rel=1e-5)
    for key, value in model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[key])


def test_restore_best_false_keeps_the_last_weights(tmp_path, digits):
    es = {"monitor": "val_loss", "patience": 5, "restore_best": False}
    result = fit(
        digits_plan(tmp_path),
        dataset=digits,
        train=spec_train(epochs=3, early_stopping=es),
        callbacks=[Sabotage(1)],
    )
    assert result.best_epoch == 1
    assert result.test["accuracy"] < 0.5  # the sabotaged last weights


def test_a_diverging_loss_raises_nonfiniteloss(tmp_path, digits):
    with pytest.raises(NonFiniteLoss) as info:
        fit(digits_plan(tmp_path), dataset=digits, train=spec_train(optimizer={"name": "sgd", "lr": 1e20}))
    e = info.value
    assert isinstance(e, TrainError)
    assert (e.epoch, e.batch, math.isnan(e.value)) == (0, 1, True)
    assert str(e) == (
        "the training loss became NaN in epoch 1/2, batch 2/40 at learning rate 1e+20. Lower `train.optimizer.lr` "
        "(or add warmup: `train.schedule.warmup_epochs`), add batchnorm, or check the data for NaN or unscaled "
        "values (`data.normalize`)."
    )


class Boom(Exception):
    pass


def test_callback_exceptions_propagate_unchanged(tmp_path, digits):
    exc = Boom("pruned")
    with pytest.raises(Boom) as info:
        fit(digits_plan(tmp_path), dataset=digits, callbacks=[RaiseAt(0, exc)])
    assert info.value is exc


class StopAt(Callback):
    """Asks training to stop after epoch ``at``."""

    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, epoch, logs):
        self.stop_training = epoch >= self.at


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_callback_that_asks_to_stop_ends_training_as_early_stopping_does(tmp_path, digits, backend):
    result = fit(
        digits_plan(tmp_path),
        dataset=digits,
        train=spec_train(epochs=5),
        callbacks=[StopAt(1)],
        backend=backend,
    )
    assert (len(result.history), result.stop_reason, result.stopped_early) == (2, "callback", True)
    assert sorted(result.test) == ["accuracy", "loss"]  # the test split is evaluated as usual
    # asked after the last epoch: training ended as planned, not stopped
    last = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(epochs=2), callbacks=[StopAt(1)])
    assert (len(last.history), last.stop_reason) == (2, None)


def test_keyboard_interrupt_keeps_the_best_checkpoint(tmp_path, digits):
    plan = digits_plan(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        fit(
            plan,
            dataset=digits,
            train=spec_train(epochs=5),
            callbacks=[RaiseAt(1, KeyboardInterrupt())],
            checkpoint_dir=tmp_path,
        )
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 0
    specdsl.build(plan).load_state_dict(torch.load(tmp_path / "best.pt"))


def test_max_seconds_stops_after_the_first_epoch(tmp_path, digits):
    result = fit(digits_plan(tmp_path), dataset=digits, max_seconds=0)
    assert (len(result.history), result.stop_reason, result.stopped_early) == (1, "max_seconds", True)


class Slow(Callback):
    """Makes every epoch last at least ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs):
        time.sleep(self.seconds)


def test_max_seconds_stops_before_an_epoch_that_would_end_past_it(tmp_path, digits):
    # epochs of 0.5 s and more, a limit of 0.8 s: a second epoch would end past it, so the run stops after one
    result = fit(digits_plan(tmp_path), dataset=digits, max_seconds=0.8, callbacks=[Slow(0.5)])
    assert (len(result.history), result.stop_reason) == (1, "max_seconds")


@pytest.mark.parametrize(
    ("elapsed", "epoch_s", "limit", "stops"),
    [
        (50.0, 30.0, 100.0, False),
        (70.0, 30.0, 100.0, False),
        (70.5, 30.0, 100.0, True),
        (120.0, 1.0, 100.0, True),
        (5.0, 5.0, None, False),
    ],
)
def test_a_run_stops_when_its_next_epoch_would_end_past_the_limit(elapsed, epoch_s, limit, stops):
    assert out_of_time(elapsed, epoch_s, limit) is stops


def test_metrics_follow_the_train_section(tmp_path, digits):
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(metrics=["top5_accuracy"], epochs=1))
    assert list(result.history[0]) == [
        "loss",
        "top5_accuracy",
        "val_loss",
        "val_top5_accuracy",
        "lr",
        "epoch_seconds",
        "images_per_s",
    ]
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(metrics=[], epochs=1))
    assert list(result.history[0]) == ["loss", "val_loss", "lr", "epoch_seconds", "images_per_s"]
    assert list(result.test) == ["loss"]


def test_schedule_and_warmup_set_the_logged_rate(tmp_path, digits):
    schedule = {"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 1}
    result = fit(digits_plan(tmp_path), dataset=digits, train=spec_train(epochs=3, schedule=schedule))
    assert [h["lr"] for h in result.history] == [0.003, 0.003, 0.0015]


def two_classes(digits) -> Dataset:
    """Digits 0 and 1 only, as a binary dataset."""
    parts = {}
    for split in ("train", "val", "test"):
        x, y = getattr(digits, f"x_{split}"), getattr(digits, f"y_{split}")
        keep = y < 2
        parts[f"x_{split}"], parts[f"y_{split}"] = x[keep], y[keep]
    return Dataset("zero_or_one", class_names=["0", "1"], **parts)


def test_binary_crossentropy_with_one_sigmoid_unit(tmp_path, digits):
    layers = DIGITS_SPEC["layers"][:-1] + [{"dense": {"units": 1, "activation": "sigmoid"}}]
    plan = digits_plan(tmp_path, layers=layers, train={"loss": "binary_crossentropy"}, data=None)
    result = fit(plan, dataset=two_classes(digits), train=spec_train(loss="binary_crossentropy", epochs=3))
    assert result.test["accuracy"] >= 0.95  # 0 vs 1 is easy: measured 1.0
    p = result.model(torch.zeros(2, 1, 8, 8))
    assert p.shape == (2, 1) and bool(((p > 0) & (p < 1)).all())


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_logits_and_probability_losses_agree(smoothing):
    torch.manual_seed(0)
    z = torch.randn(16, 10) * 3
    y = torch.randint(0, 10, (16,))
    for loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        train = TrainSpec(loss=loss, label_smoothing=smoothing)
        a = make_loss(train, "softmax")(z, y)
        b = make_loss(train, None)(torch.softmax(z, 1), y)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert make_correct(train, "softmax")(z, y) == make_correct(train, None)(torch.softmax(z, 1), y)
    zb, yb = torch.randn(16, 1) * 3, torch.randint(0, 2, (16,))
    train = TrainSpec(loss="binary_crossentropy", label_smoothing=smoothing)
    torch.testing.assert_close(
        make_loss(train, "sigmoid")(zb, yb),
        make_loss(train, None)(torch.sigmoid(zb), yb),
        rtol=1e-5,
        atol=1e-6,
    )
    assert make_correct(train, "sigmoid")(zb, yb) == make_correct(train, None)(torch.sigmoid(zb), yb)


def test_label_smoothing_as_keras_defines_it():
    # Keras: y = y * (1 - ls) + ls / K, loss = -sum(y * log p)
    p = torch.tensor([[0.7, 0.2, 0.1]])
    y = torch.tensor([0])
    want = -(0.9 + 0.1 / 3) * math.log(0.7) - (0.1 / 3) * math.log(0.2) - (0.1 / 3) * math.log(0.1)
    got = make_loss(TrainSpec(label_smoothing=0.1), None)(p, y)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_optimizers_take_keras_defaults():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam, decay = make_optimizer(params, TrainSpec(optimizer={"name": "adam", "weight_decay": 0.01}))
    g = adam.param_groups[0]
    assert (type(adam).__name__, g["betas"], g["eps"], g["weight_decay"], decay) == (
        "AdamW",
        (0.9, 0.999),
        1e-7,
        0.01,
        0.0,
    )
    rms, decay = make_optimizer(
        params, TrainSpec(optimizer={"name": "rmsprop", "momentum": 0.5, "weight_decay": 0.1})
    )
    g = rms.param_groups[0]
    assert (g["alpha"], g["eps"], g["momentum"], decay) == (0.9, 1e-7, 0.5, 0.1)
    sgd, _ = make_optimizer(
        params, TrainSpec(optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True})
    )
    g = sgd.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"]) == (0.1, 0.9, True)


def test_standard_normalization_gives_mean_zero_std_one(digits):
    scale, offset = normalization(digits.x_train, "standard")
    x = to_tensor(digits.x_train, scale, offset)
    assert x.shape == (len(digits.x_train), 1, 8, 8) and x.dtype == torch.float32
    assert x.mean().item() == pytest.approx(0.0, abs=1e-5) and x.std().item() == pytest.approx(1.0, abs=1e-3)
    assert np.allclose(normalization(digits.x_train, "unit")[0], 1 / 255)


def test_bad_arguments(tmp_path, digits):
    plan = digits_plan(tmp_path)
    with pytest.raises(TrainError, match=r"backend must be one of torch, keras, but got backend='jax'\."):
        fit(plan, dataset=digits, backend="jax")
    with pytest.raises(TrainError, match=r"epochs must be a positive integer, but got epochs=0\."):
        fit(plan, dataset=digits, epochs=0)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TrainError, match="the checkpoint folder .* is not writable"):
        fit(plan, dataset=digits, checkpoint_dir=blocker / "ck")


def test_without_validation_and_test_splits_the_training_loss_is_monitored(tmp_path, digits):
    only_train = Dataset(
        "digits",
        digits.x_train,
        digits.y_train,
        digits.x_val[:0],
        digits.y_val[:0],
        digits.x_test[:0],
        digits.y_test[:0],
        digits.class_names,
    )
    result = fit(digits_plan(tmp_path), dataset=only_train)
    assert (result.monitor, result.test) == ("loss", None)
    assert list(result.history[0]) == ["loss", "accuracy", "lr", "epoch_seconds", "images_per_s"]
    assert result.best_epoch == 1  # the training loss fell


def test_the_progress_callback_prints_one_line_per_epoch(tmp_path, digits):
    import io

    from rich.console import Console

    from specdsl.train import ProgressCallback

    out = io.StringIO()
    fit(digits_plan(tmp_path), dataset=digits, callbacks=[ProgressCallback(Console(file=out, width=200))])
    lines = [line for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all(" img/s" in line and "val_accuracy 0." in line for line in lines)

"""fit(backend="keras"): Keras' own fit on the same arrays, reporting the same keys, stopping by the same rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from train_fixtures import digits_plan

from specdsl.spec import TrainSpec
from specdsl.train import Callback, NonFiniteLoss, fit

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds", "images_per_s"]


def spec_train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "optimizer": {"name": "adam", "lr": 0.003},
            "epochs": 2,
            "batch_size": 32,
            "backend": "keras",
            **changes,
        }
    )


class Record(Callback):
    def __init__(self):
        self.calls: list = []

    def on_train_begin(self, info):
        self.calls.append(("begin", info["backend"], info["steps_per_epoch"]))

    def on_batch_end(self, batch, logs):
        if batch == 0:
            self.calls.append(("batch", list(logs)))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch", epoch, list(logs)))

    def on_train_end(self, result):
        self.calls.append(("end", result.best_epoch))


def test_keras_fit_reports_the_same_keys_and_keeps_the_best_weights(tmp_path, digits):
    import keras

    rec = Record()
    result = fit(
        digits_plan(tmp_path),
        dataset=digits,
        train=spec_train(),
        callbacks=[rec],
        checkpoint_dir=tmp_path / "ck",
    )
    steps = math.ceil(len(digits.y_train) / 32)
    assert rec.calls == [
        ("begin", "keras", steps),
        ("batch", ["loss", "accuracy"]),
        ("epoch", 0, LOG_KEYS),
        ("batch", ["loss", "accuracy"]),
        ("epoch", 1, LOG_KEYS),
        ("end", result.best_epoch),
    ]
    assert isinstance(result.model, keras.Model) and result.backend == "keras"
    assert sorted(result.test) == ["accuracy", "loss"]
    assert result.checkpoint == tmp_path / "ck" / "best.weights.h5" and result.checkpoint.is_file()
    assert result.history[-1]["val_accuracy"] > 0.5
    # the checkpoint holds the weights the model was left with (the best epoch's)
    other = keras.models.clone_model(result.model)
    other.load_weights(result.checkpoint)
    for a, b in zip(other.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_early_stopping_and_augmentation(tmp_path, digits):
    es = {"monitor": "val_accuracy", "patience": 1, "min_delta": 1.0}
    plan = digits_plan(tmp_path, data={"augment": {"flip": "horizontal", "shift": 0.1}})
    result = fit(
        plan, dataset=digits, train=spec_train(epochs=5, early_stopping=es, loss="categorical_crossentropy")
    )
    assert (len(result.history), result.best_epoch, result.stop_reason) == (2, 0, "early_stopping")


def test_keras_nonfinite_loss_and_callback_exceptions(tmp_path, digits):
    plan = digits_plan(tmp_path)
    with pytest.raises(NonFiniteLoss) as info:
        fit(plan, dataset=digits, train=spec_train(optimizer={"name": "sgd", "lr": 1e20}))
    assert info.value.epoch == 0

    class Boom(Exception):
        pass

    class Raise(Callback):
        def on_epoch_end(self, epoch, logs):
            raise Boom(epoch)

    with pytest.raises(Boom):
        fit(plan, dataset=digits, train=spec_train(epochs=1), callbacks=[Raise()])

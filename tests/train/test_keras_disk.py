"""fit(backend="keras") on images memory-mapped from disk (data.storage: disk): batches read from the map by a
keras.utils.PyDataset, the same batches as the arrays in memory give, so the same run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from train_fixtures import digits_plan

from specdsl.data import MappedImages, load_dataset
from specdsl.spec import TrainSpec
from specdsl.train import fit
from specdsl.train._batches import normalization
from specdsl.train._keras_data import batches_class

pytestmark = pytest.mark.usefixtures("single_thread")
TIMES = ("epoch_seconds", "images_per_s")


def keras_train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "optimizer": {"name": "adam", "lr": 0.003},
            "epochs": 2,
            "batch_size": 32,
            "backend": "keras",
            **changes,
        }
    )


@pytest.fixture
def both(tmp_path):
    """sklearn's digits in memory and memory-mapped from a cache of this test's own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapped = load_dataset("digits", seed=0, cache_dir=tmp_path / "cache", storage="disk")
    return load_dataset("digits", seed=0), mapped


def _history(result):
    return [{k: v for k, v in h.items() if k not in TIMES} for h in result.history]


def test_the_batches_from_disk_are_those_from_memory(both):
    import keras

    memory, mapped = both
    assert isinstance(mapped.x_train, MappedImages) and isinstance(memory.x_train, np.ndarray)
    scale, offset = normalization(memory.x_train, "standard")
    ImageBatches = batches_class(keras)
    a = ImageBatches(memory.x_train, memory.y_train, 50, scale, offset, seed=3)
    b = ImageBatches(mapped.x_train, mapped.y_train, 50, scale, offset, seed=3)
    assert len(a) == len(b) == -(-len(memory.y_train) // 50)
    for _ in range(2):  # two epochs, a new order in each
        for i in range(len(a)):
            (xa, ya), (xb, yb) = a[i], b[i]
            assert xa.dtype == np.float32 and xa.shape == (len(ya), 8, 8, 1)
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
        a.on_epoch_end()
        b.on_epoch_end()
    ordered = ImageBatches(mapped.x_val, mapped.y_val, 64, scale, offset)
    x0, y0 = ordered[0]
    np.testing.assert_array_equal(y0, memory.y_val[:64])
    np.testing.assert_array_equal(
        x0, memory.x_val[:64].astype(np.float32) * scale.astype(np.float32) + offset.astype(np.float32)
    )


def test_keras_from_disk_trains_as_from_memory(tmp_path, both):
    memory, mapped = both
    plan = digits_plan(tmp_path, data={"dataset": "digits", "augment": {"flip": "horizontal"}})
    runs = [fit(plan, dataset=d, train=keras_train()) for d in (memory, mapped)]
    assert _history(runs[0]) == _history(runs[1])  # augmented: both read by the same PyDataset
    assert runs[0].test == runs[1].test and runs[1].test is not None


def test_keras_from_disk_without_augmentation_learns(tmp_path, both):
    memory, mapped = both
    plan = digits_plan(tmp_path)
    disk = fit(plan, dataset=mapped, train=keras_train(epochs=3))
    ram = fit(plan, dataset=memory, train=keras_train(epochs=3))
    losses = [h["loss"] for h in disk.history]
    assert losses[-1] < losses[0] * 0.5 and disk.history[-1]["val_accuracy"] > 0.85
    # another shuffle (Keras' own for arrays) but the same data: the first epoch's loss close to the arrays'
    assert disk.history[0]["loss"] == pytest.approx(ram.history[0]["loss"], rel=0.15)
    assert disk.test["accuracy"] == pytest.approx(ram.test["accuracy"], abs=0.05)

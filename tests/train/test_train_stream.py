"""Training on images memory-mapped from disk (data.storage: disk): the background loader gives the batches the
in-memory path gives, so a run's history is the same to the last bit; its thread ends with the epoch."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch
from train_fixtures import digits_plan

from specdsl.data import MappedImages, load_dataset
from specdsl.spec import Augment
from specdsl.train import fit
from specdsl.train._augment import Augmenter
from specdsl.train._batches import Batches, normalization, to_labels, to_tensor
from specdsl.train._stream import StreamBatches, normalizer

pytestmark = pytest.mark.usefixtures("single_thread")

CPU = torch.device("cpu")
TIMES = ("epoch_seconds", "images_per_s")


@pytest.fixture
def mapped(tmp_path):
    """sklearn's digits, memory-mapped from a cache of this test's own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("digits", seed=0, cache_dir=tmp_path / "cache", storage="disk")


def _augmenter(scale, offset, seed, **augment):
    low = torch.tensor(offset, dtype=torch.float32)
    return Augmenter(
        Augment(**augment), torch.Generator().manual_seed(seed), low, low + torch.tensor(255 * scale)
    )


def _both(digits, mapped, batch_size=100, **augment):
    scale, offset = normalization(digits.x_train, "unit")
    fmt = torch.channels_last
    memory = Batches(
        to_tensor(digits.x_train, scale, offset),
        to_labels(digits.y_train),
        batch_size,
        torch.Generator().manual_seed(5),
        _augmenter(scale, offset, 6, **augment),
        fmt,
    )
    stream = StreamBatches(
        mapped.x_train,
        mapped.y_train,
        batch_size,
        torch.Generator().manual_seed(5),
        _augmenter(scale, offset, 6, **augment),
        fmt,
        normalizer(scale, offset, CPU),
        CPU,
    )
    return memory, stream


@pytest.mark.parametrize("augment", [{}, {"flip": "both", "rotation": 20, "brightness": 0.2}])
def test_streamed_batches_are_the_in_memory_batches(digits, mapped, augment):
    memory, stream = _both(digits, mapped, **augment)
    assert isinstance(mapped.x_train, MappedImages) and len(stream) == len(memory) == 13
    for _ in range(2):  # two epochs: each its own order
        pairs = list(zip(memory.epoch(), stream.epoch(), strict=True))
        assert len(pairs) == 13
        for (xm, ym), (xs, ys) in pairs:
            assert xs.shape == xm.shape and xs.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(xs, xm) and torch.equal(ys, ym)


def test_a_run_from_disk_has_the_history_of_a_run_in_memory(tmp_path, digits, mapped):
    plan = digits_plan(tmp_path)
    a = fit(plan, dataset=digits, epochs=2)
    b = fit(plan, dataset=mapped, epochs=2)

    def strip(history):
        return [{k: v for k, v in logs.items() if k not in TIMES} for logs in history]

    assert strip(a.history) == strip(b.history) and a.test == b.test
    assert b.history[-1]["val_accuracy"] > 0.8


def test_standard_normalization_of_mapped_images_is_numpys(digits, mapped):
    s1, o1 = normalization(digits.x_train, "standard")
    s2, o2 = normalization(mapped.x_train, "standard")
    assert np.allclose(s1, s2, rtol=1e-12) and np.allclose(o1, o2, rtol=1e-12)


def test_the_loader_thread_ends_with_an_epoch_left_early(digits, mapped):
    _, stream = _both(digits, mapped, batch_size=10)
    before = threading.active_count()
    epoch = stream.epoch()
    next(epoch)
    assert threading.active_count() == before + 1
    epoch.close()  # a run stopped mid-epoch (an exception, a time limit)
    assert threading.active_count() == before


def test_a_read_error_reaches_the_training_thread(digits, mapped):
    _, stream = _both(digits, mapped)

    class Broken:
        shape = mapped.x_train.shape

        def gather(self, rows):
            raise OSError("Input/output error")

    stream.images = Broken()
    with pytest.raises(OSError, match="Input/output error"):
        list(stream.epoch())


def test_evaluation_batches_read_from_disk_are_bounded():
    from specdsl.train._stream import EVAL_INPUT_BYTES, stream_eval_batch_size

    assert EVAL_INPUT_BYTES == 64 * 1024**2
    assert stream_eval_batch_size(2048, 64, (150, 150, 3)) == 248
    assert stream_eval_batch_size(2048, 64, (32, 32, 3)) == 2048
    assert stream_eval_batch_size(2048, 512, (224, 224, 3)) == 512  # never below the training batch

"""Training on a CUDA device: the MNIST lab CNN in fp16 and bf16 (the loss falls), channels_last with
torch.compile, and the memory-mapped disk loader feeding the GPU as the in-memory tensors do. Marked ``gpu`` and
skipped without a CUDA device (scripts/gpu_check.sh runs them on a machine with one). The data are sklearn's
digits at 28x28 (a GPU machine may have no network for MNIST)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import specdsl
from specdsl.data import MappedImages, load_dataset
from specdsl.spec import TrainSpec
from specdsl.train import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

MNIST_CNN = {
    "name": "mnist_lab_cnn",
    "input": [28, 28, 1],
    "layers": [
        {"conv2d": {"filters": 64, "kernel": 3, "activation": "relu"}},
        {"conv2d": {"filters": 32, "kernel": 3, "activation": "relu"}},
        "flatten",
        {"dense": {"units": 10, "activation": "softmax"}},
    ],
}
TIMES = ("epoch_seconds", "images_per_s")


def cuda_train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "optimizer": {"name": "adam", "lr": 0.001},
            "epochs": 4,
            "batch_size": 64,
            "device": "cuda",
            **changes,
        }
    )


@pytest.fixture(scope="module")
def digits28():
    return load_dataset("digits", image_size=(28, 28), seed=0)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_the_mnist_cnn_trains_on_cuda_in_mixed_precision(digits28, precision):
    result = fit(specdsl.check(MNIST_CNN), dataset=digits28, train=cuda_train(precision=precision))
    assert (result.device, result.precision, result.info["channels_last"]) == ("cuda:0", precision, True)
    losses = [h["loss"] for h in result.history]
    assert all(map(math.isfinite, losses))  # the fp16 scaler kept them so
    assert losses[-1] < losses[0] * 0.5
    assert result.history[-1]["val_accuracy"] > result.history[0]["val_accuracy"] - 0.01
    assert result.history[-1]["val_accuracy"] > 0.85
    assert next(result.model.parameters()).device == torch.device("cpu")


def test_channels_last_and_compile_on_cuda(digits28):
    plan = specdsl.check(MNIST_CNN)
    done = fit(plan, dataset=digits28, train=cuda_train(precision="bf16", channels_last=True, compile=True))
    assert (done.info["channels_last"], done.info["compile"]) == (True, True)
    losses = [h["loss"] for h in done.history]
    assert losses[-1] < losses[0] * 0.5 and done.history[-1]["val_accuracy"] > 0.85
    plain = fit(plan, dataset=digits28, train=cuda_train(precision="fp32", channels_last=False, epochs=1))
    assert plain.info["channels_last"] is False  # auto on CUDA in fp32: off; asked off: off
    assert fit(plan, dataset=digits28, train=cuda_train(epochs=1)).info["channels_last"] is False


def test_the_disk_loader_feeds_cuda_as_memory_does(tmp_path, digits28):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapped = load_dataset(
            "digits", image_size=(28, 28), seed=0, cache_dir=tmp_path / "cache", storage="disk"
        )
    assert isinstance(mapped.x_train, MappedImages)
    plan = specdsl.check(MNIST_CNN)
    runs = [fit(plan, dataset=d, train=cuda_train(epochs=2)) for d in (digits28, mapped)]
    for a, b in zip(runs[0].history, runs[1].history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-3), key  # cuDNN's sums: not bit-exact
    assert runs[1].device == "cuda:0"
    assert runs[1].test["accuracy"] == pytest.approx(runs[0].test["accuracy"], abs=0.01)

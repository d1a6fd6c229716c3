"""train.device and train.precision: the field's static check, what a device name resolves to on a machine, the
torch loop on the CPU (fp32 as before, bf16 and fp16 autocast training), the errors for a device that is not
there, and `specdsl train --device`. Tests that need a CUDA device are marked `gpu` and skipped without one."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys

import pytest
import torch
from rich.console import Console
from train_fixtures import digits_plan, write_spec

import specdsl
from specdsl.errors import SpecError, TrainError
from specdsl.spec import TrainSpec
from specdsl.train import available_devices, device_name, fit

pytestmark = pytest.mark.usefixtures("single_thread")
gpu = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

RESULT_KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds", "images_per_s"]


def train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {"optimizer": {"name": "adam", "lr": 0.003}, "epochs": 2, "batch_size": 32, **changes}
    )


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_the_device_forms(value):
    assert TrainSpec(device=value).device == value


@pytest.mark.parametrize(
    "key, value, col, rule",
    [
        ("device", "gpu", 11, "must be auto, cpu, cuda, cuda:N or mps, but got 'gpu'"),
        ("precision", "fp8", 14, "input should be 'fp32', 'bf16' or 'fp16' (got 'fp8')"),
    ],
)
def test_another_device_or_precision_is_a_located_error(tmp_path, key, value, col, rule):
    path = write_spec(tmp_path, train={key: value})
    with pytest.raises(SpecError) as info:
        specdsl.check(path)
    assert str(info.value) == f"{path}:28:{col}: train: `{key}`: {rule}."


def test_auto_picks_cuda_then_mps_then_the_cpu():
    assert device_name("auto", gpus=2, mps=True) == "cuda:0"
    assert device_name("auto", gpus=0, mps=True) == "mps"
    assert device_name("auto", gpus=0, mps=False) == "cpu"
    assert [device_name(d, gpus=2, mps=False) for d in ("cpu", "cuda", "cuda:1")] == [
        "cpu",
        "cuda:0",
        "cuda:1",
    ]
    assert available_devices(gpus=2, mps=True) == ["cpu", "cuda:0", "cuda:1", "mps"]


def test_a_device_the_machine_lacks_names_those_it_has():
    with pytest.raises(TrainError) as info:
        device_name("cuda:2", gpus=2, mps=False)
    assert info.value.exit_code == 5
    assert str(info.value) == (
        "train.device cuda:2 cannot be used: this machine has 2 CUDA devices (cuda:0 .. cuda:1); available: cpu, "
        "cuda:0, cuda:1. Use --device auto (or cpu), or install a CUDA build of torch on a machine with a GPU."
    )
    with pytest.raises(TrainError) as info:
        device_name("mps", gpus=0, mps=False)
    assert str(info.value) == (
        "train.device mps cannot be used: this machine has no MPS (Apple GPU) device; available: cpu. "
        "Use --device auto (or cpu)."
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_fit_on_cuda_without_one_fails_before_loading_anything(tmp_path, digits):
    with pytest.raises(TrainError) as info:
        fit(digits_plan(tmp_path), dataset=digits, train=train(device="cuda"))
    build = f"torch {torch.__version__} is a CPU build" if torch.version.cuda is None else "torch sees no"
    assert build in str(info.value)
    assert str(info.value).startswith("train.device cuda cannot be used: this machine has no CUDA device")


def test_an_explicit_cpu_run_says_where_and_keeps_fp32(tmp_path, digits):
    plan = digits_plan(tmp_path)
    seen = {}

    class Info(specdsl.train.Callback):
        def on_train_begin(self, info):
            seen.update(device=info["device"], precision=info["precision"])

    auto = fit(plan, dataset=digits, train=train(), callbacks=[Info()])
    cpu = fit(plan, dataset=digits, train=train(), device="cpu")
    assert (auto.device, auto.precision, seen) == ("cpu", "fp32", {"device": "cpu", "precision": "fp32"})
    assert (cpu.device, cpu.precision) == ("cpu", "fp32")
    assert [h["loss"] for h in cpu.history] == [h["loss"] for h in auto.history]
    assert next(cpu.model.parameters()).device == torch.device("cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu(tmp_path, digits, precision):
    result = fit(digits_plan(tmp_path), dataset=digits, train=train(epochs=4, precision=precision))
    assert (result.device, result.precision, result.epochs_run, result.backend) == (
        "cpu",
        precision,
        4,
        "torch",
    )
    assert [list(h) for h in result.history] == [RESULT_KEYS] * 4
    assert sorted(result.test) == ["accuracy", "loss"]
    losses = [h["loss"] for h in result.history]
    accuracy = [h["val_accuracy"] for h in result.history]
    assert losses[-1] < losses[0] * 0.5 and accuracy[-1] > accuracy[0] and accuracy[-1] > 0.85
    # the model comes back in float32, on the CPU
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}


def test_the_command_line_device_overrides_the_spec(tmp_path):
    from specdsl.cli._train import run_train

    spec = write_spec(tmp_path, train={"device": "cuda:3"})
    out = Console(file=io.StringIO(), width=120, color_system=None)
    base = dict(data=None, epochs=1, batch_size=None, backend=None, limit=200, seed=None, output=tmp_path)
    assert (
        run_train(spec, **base, tracking_uri=None, experiment=None, track=False, console=out, device="cpu")
        == 0
    )
    assert "digits_cnn: 8,714 parameters, 0.0 MFLOPs per image; torch on cpu, 1 epochs" in out.file.getvalue()
    with pytest.raises(SpecError) as info:
        run_train(spec, **base, tracking_uri=None, experiment=None, track=False, console=out, device="gpu")
    assert (info.value.path, info.value.message) == (
        "train.device",
        "--device: must be auto, cpu, cuda, cuda:N or mps, but got 'gpu'.",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_specdsl_train_device_cuda_without_one_is_one_message_and_exit_5(tmp_path):
    spec = write_spec(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "specdsl", "train", str(spec), "--device", "cuda", "--no-track"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 5
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr == (
        f"error: train.device cuda cannot be used: this machine has no CUDA device (torch {torch.__version__} is a "
        "CPU build); available: cpu. Use --device auto (or cpu), or install a CUDA build of torch on a machine "
        "with a GPU.\n"
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda(tmp_path, digits, precision):
    result = fit(
        digits_plan(tmp_path), dataset=digits, train=train(epochs=4, device="cuda", precision=precision)
    )
    assert (result.device, result.precision) == ("cuda:0", precision)
    assert result.history[-1]["loss"] < result.history[0]["loss"] * 0.5
    assert next(result.model.parameters()).device == torch.device("cpu")


def test_keras_honours_device_and_precision(tmp_path, digits):
    result = fit(
        digits_plan(tmp_path),
        dataset=digits,
        train=train(epochs=3, device="cpu", precision="bf16"),
        backend="keras",
    )
    assert (result.device, result.precision, result.backend) == ("cpu", "bf16", "keras")
    assert {layer.dtype_policy.name for layer in result.model.layers[1:]} == {"mixed_bfloat16"}
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.5 and result.history[-1]["val_accuracy"] > 0.85


def test_the_accelerators_look_at_the_losses_finds_the_first_bad_batch(tmp_path, digits, monkeypatch):
    from specdsl.train import _torch

    assert _torch.first_non_finite(torch.tensor([1.0, 2.0, float("inf"), float("nan")]), 1, 4) == (
        2,
        float("inf"),
    )
    assert _torch.first_non_finite(torch.tensor([1.0, float("nan")]), 0, 1) is None
    monkeypatch.setattr(_torch, "CPU_CHECK_EVERY", _torch.CHECK_EVERY)  # the CPU run as an accelerator's
    with pytest.raises(specdsl.train.NonFiniteLoss) as info:
        fit(digits_plan(tmp_path), dataset=digits, train=train(optimizer={"name": "sgd", "lr": 1e20}))
    assert (info.value.epoch, info.value.batch, math.isnan(info.value.value)) == (0, 1, True)

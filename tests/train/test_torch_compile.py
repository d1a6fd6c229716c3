"""train.compile (torch.compile of the model in the torch loop) and train.channels_last (the loop's memory format):
the fields' checks, the auto rule, fp32 agreement of channels_last with NCHW on the CPU, a compiled run on the
CPU, and torch.compile's failures as one TrainError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_fixtures import digits_plan, write_spec

import specdsl
from specdsl.errors import SpecError, TrainError
from specdsl.spec import TrainSpec
from specdsl.train import fit
from specdsl.train._speed import COMPILE_HINT, use_channels_last

pytestmark = pytest.mark.usefixtures("single_thread")
ROOT = Path(specdsl.__file__).resolve().parents[1]


def train(**changes) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "optimizer": {"name": "adam", "lr": 0.003},
            "epochs": 1,
            "batch_size": 32,
            "device": "cpu",
            **changes,
        }
    )


def test_the_fields_defaults_and_forms():
    assert (TrainSpec().channels_last, TrainSpec().compile) == ("auto", False)
    assert [TrainSpec(channels_last=v).channels_last for v in ("auto", True, False)] == ["auto", True, False]
    assert TrainSpec(compile=True).compile is True


@pytest.mark.parametrize(
    "key, value, col, rule",
    [
        ("channels_last", "yes", 18, "input should be 'auto', True or False (got 'yes')"),
        ("compile", "fast", 12, "input should be a valid boolean (got 'fast')"),
    ],
)
def test_another_value_is_a_located_error(tmp_path, key, value, col, rule):
    path = write_spec(tmp_path, train={key: value})
    with pytest.raises(SpecError) as info:
        specdsl.check(path)
    assert str(info.value) == f"{path}:28:{col}: train: `{key}`: {rule}."


def test_auto_channels_last_is_on_where_it_was_measured_faster():
    assert [use_channels_last("auto", "cpu", p) for p in ("fp32", "bf16", "fp16")] == [True, True, True]
    assert [use_channels_last("auto", "cuda", p) for p in ("fp32", "bf16", "fp16")] == [False, True, True]
    assert use_channels_last("auto", "mps", "fp16") is False
    assert [use_channels_last(v, "cuda", "fp32") for v in (True, False)] == [True, False]


def test_channels_last_and_nchw_train_alike_in_fp32(tmp_path, digits):
    plan = digits_plan(tmp_path)
    runs = {v: fit(plan, dataset=digits, train=train(epochs=2, channels_last=v)) for v in (True, False)}
    assert [runs[v].info["channels_last"] for v in (True, False)] == [True, False]
    for a, b in zip(runs[True].history, runs[False].history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    weights = [dict(runs[v].model.state_dict()) for v in (True, False)]
    for name, w in weights[0].items():
        assert w.is_contiguous(), name  # handed back in the default format
        torch.testing.assert_close(w, weights[1][name], rtol=1e-3, atol=1e-5)
    x = torch.from_numpy(digits.x_test[:64]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        torch.testing.assert_close(
            runs[True].model(x.contiguous(memory_format=torch.channels_last)),
            runs[False].model(x),
            rtol=1e-3,
            atol=1e-5,
        )


def test_a_machine_without_a_cxx_compiler_is_one_error_before_training(tmp_path, digits, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(TrainError) as info:
        fit(digits_plan(tmp_path), dataset=digits, train=train(compile=True))
    assert info.value.exit_code == 5
    assert str(info.value) == (
        "train.compile: torch.compile cannot work on this machine: no C++ compiler found (looked for "
        f"no-such-compiler). {COMPILE_HINT}"
    )


@pytest.mark.slow
def test_a_compiler_that_fails_is_one_error_at_the_step_that_compiles(tmp_path):
    # /bin/false is there (the early check passes) but compiles nothing: inductor fails in the first step
    script = (
        "import specdsl, torch; torch.set_num_threads(1)\n"
        "from specdsl.data import load_dataset\n"
        f"plan = specdsl.check({str(write_spec(tmp_path))!r})\n"
        "from specdsl.train import fit\n"
        "from specdsl.spec import TrainSpec\n"
        "from specdsl.errors import TrainError\n"
        "try:\n"
        "    fit(plan, dataset=load_dataset('digits'), train=TrainSpec(epochs=1, device='cpu', compile=True))\n"
        "except TrainError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "CXX": "/bin/false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("train.compile: torch.compile failed on this machine: ")
    assert done.stdout.endswith(f" {COMPILE_HINT}\n") and done.stdout.count("\n") == 1


@pytest.mark.slow
def test_a_compiled_run_trains_as_the_model_itself(tmp_path, digits):
    plan = digits_plan(tmp_path)
    plain = fit(plan, dataset=digits, train=train())
    done = fit(plan, dataset=digits, train=train(compile=True))
    assert (done.info["compile"], plain.info["compile"]) == (True, False)
    assert done.history[0]["loss"] == pytest.approx(plain.history[0]["loss"], rel=1e-3)
    assert done.history[0]["val_accuracy"] == pytest.approx(plain.history[0]["val_accuracy"], abs=0.02)
    assert type(done.model) is type(plain.model)  # the model itself, not the compiled wrapper

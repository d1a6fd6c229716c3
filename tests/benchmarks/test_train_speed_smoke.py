"""Smoke test of benchmarks/train_speed.py: its --quick configuration on the CPU (every contender, one window), so
the benchmark cannot rot. The measurement is run by hand: ``python benchmarks/train_speed.py`` (MNIST CNN) and
``--model resnet50 --device cuda --precision bf16`` on a GPU (scripts/gpu_check.sh)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from support import ROOT

pytest.importorskip("torch")


@pytest.mark.slow
def test_train_speed_quick_on_the_cpu(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("train_speed", ROOT / "benchmarks" / "train_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out_file = tmp_path / "speed.json"
    summary = bench.main(["--quick", "--device", "cpu", "--threads", "1", "--json", str(out_file)])
    assert json.loads(out_file.read_text()) == summary
    (mnist,) = summary["models"]
    assert (mnist["model"], mnist["input"], mnist["batch"], mnist["images"]) == (
        "mnist_lab_cnn",
        [28, 28, 1],
        16,
        64,
    )
    assert set(mnist["best"]) == {"fit", "plain_cl", "plain", "keras"}
    assert set(mnist["ratios"]) == {"fit/plain_cl", "fit/plain", "fit/keras"}
    assert all(v > 0 for v in mnist["best"].values()) and 0 < mnist["fraction_of_matmul"]
    out = capsys.readouterr().out
    assert "fit / plain_cl = " in out and "(target >= 0.95)" in out and "fit / keras = " in out
    assert "matmul 512x512 fp32" in out and "of the matmul's" in out


def test_the_resnet50_plan_takes_the_asked_size():
    spec = importlib.util.spec_from_file_location("train_speed", ROOT / "benchmarks" / "train_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    plan = bench.resnet_plan(64)
    assert (plan.input_shape, plan.output_shape, plan.params) == ((64, 64, 3), (1000,), 25_636_712)

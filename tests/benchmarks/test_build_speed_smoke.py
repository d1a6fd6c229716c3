"""Smoke test of benchmarks/build_speed.py: its functions run once on small inputs, so the benchmark cannot rot.

The hand-written torch models are built on the meta device (no memory, no arithmetic) to check their parameter
counts and output shapes against the specs; the timing loop and the table run on the benchmark's tiny warm-up
model. The full benchmark (large models, both backends, several repeats) is run by hand:
``python benchmarks/build_speed.py``.
"""

from __future__ import annotations

import importlib.util
import socket
import sys

import pytest
from support import ROOT

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench():
    path = ROOT / "benchmarks" / "build_speed.py"
    spec = importlib.util.spec_from_file_location("build_speed", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_speed"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("build_speed", None)


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "inceptionv3"])
def test_hand_written_torch_models_are_the_specs(bench, name):
    import specdsl

    case = bench.CASES[name]
    plan = specdsl.check(case.spec)
    with torch.device("meta"):
        model = case.hand["torch"]()
    counts = bench.check_hand(case, "torch", model, plan)  # asserts equality with the plan
    assert counts["trainable"] == plan.trainable
    assert bench.check_torch_shape(case) == (1, *plan.output_shape)


def test_frozen_gammas_are_inceptions_unscaled_batch_norms(bench):
    import specdsl

    assert bench.frozen_gammas(specdsl.check(bench.CASES["inceptionv3"].spec)) == 34_432 // 2
    assert bench.frozen_gammas(specdsl.check(bench.CASES["resnet50"].spec)) == 0


def test_no_network_refuses_connections_and_restores_sockets(bench):
    saved = (socket.socket.connect, socket.create_connection, socket.getaddrinfo)
    with pytest.raises(bench.NetworkTouched), bench.no_network():
        socket.getaddrinfo("localhost", 9)
    assert (socket.socket.connect, socket.create_connection, socket.getaddrinfo) == saved


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_main_times_the_warmup_model(bench, backend, capsys):
    if backend == "keras":
        keras = pytest.importorskip("keras")
        for (
            case
        ) in bench.CASES.values():  # the hand-written Keras baselines exist (built only by the benchmark)
            assert hasattr(keras.applications, case.hand["keras"].__name__.rsplit(".", 1)[1])
    rows = bench.main(
        ["--models", "warmup", "--backends", backend, "--repeats", "1"], cases={"warmup": bench.WARMUP}
    )
    (row,) = rows
    assert (row.model, row.backend) == ("warmup", backend)
    assert row.specdsl_s > 0 and row.hand_s > 0 and row.plan_ms > 0 and row.ratio > 0
    assert row.counts["trainable"] == 4_302 and len(row.run_ratios) == 1
    out = capsys.readouterr().out
    assert "specdsl build s" in out and "ratio per run" in out and f"warmup       {backend}" in out

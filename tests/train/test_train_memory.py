"""Memory: the static estimate of training a plan, the guard on the process's resident memory, and allocations that
fail turned into OutOfMemory; real fits on sklearn's digits, real allocations."""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest
from support import address_space_limit
from train_fixtures import digits_plan

from specdsl.errors import TrainError
from specdsl.spec import TrainSpec
from specdsl.train import (
    Callback,
    MemoryGuard,
    OutOfMemory,
    allocation_failure,
    fit,
    iec_bytes,
    is_allocation_failure,
    resident_bytes,
    training_memory,
)

pytestmark = pytest.mark.usefixtures("single_thread")

MiB = 1024**2


@pytest.mark.parametrize(
    "optimizer, bytes_per_param",
    [
        ({"name": "adam"}, 24),  # weights, best-epoch copy, gradients, 2 moments, the step's update
        ({"name": "adamw"}, 24),
        ({"name": "sgd"}, 12),  # weights, best-epoch copy, gradients
        ({"name": "sgd", "momentum": 0.9}, 16),  # + the momentum buffer
        ({"name": "sgd", "momentum": 0.9, "nesterov": True}, 20),  # + the look-ahead
        ({"name": "rmsprop"}, 20),  # + the squared average and the step's denominator
        ({"name": "rmsprop", "momentum": 0.9}, 24),
    ],
)
def test_the_estimate_counts_weights_gradients_optimizer_state_and_three_times_the_activations(
    tmp_path, optimizer, bytes_per_param
):
    plan = digits_plan(tmp_path)
    assert (plan.params, plan.trainable, plan.activation_bytes) == (8_714, 8_714, 6_568)
    e = training_memory(plan, TrainSpec(optimizer=optimizer, batch_size=32))
    assert (e.parameters, e.activations) == (bytes_per_param * 8_714, 3 * 6_568 * 32)
    assert e.total == e.parameters + e.activations


def test_non_trainable_parameters_are_counted_without_gradients_or_optimizer_state(tmp_path):
    plan = digits_plan(
        tmp_path,
        layers=[
            {"conv2d": {"filters": 16, "kernel": 3, "padding": "same", "use_bias": False}},
            "batchnorm",  # 32 trainable (gamma, beta), 32 not (the moving mean and variance)
            {"maxpool2d": 2},
            "flatten",
            {"dense": {"units": 10, "activation": "softmax"}},
        ],
    )
    assert (plan.trainable, plan.non_trainable) == (144 + 32 + 2_570, 32)
    e = training_memory(plan)  # the spec's train: adam, batches of 32
    assert e.parameters == 4 * (2 * 2_778 + 4 * 2_746)
    assert e.describe() == (
        f"{iec_bytes(e.parameters)} for 2,778 parameters with their gradients and adam state, "
        f"{iec_bytes(3 * plan.activation_bytes * 32)} of activations for batches of 32"
    )


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1536, "1.5 KiB"),
        (64 * MiB, "64.0 MiB"),
        (2 * 10**9, "1.9 GiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_sizes_are_shown_in_powers_of_1024_named_so(n, text):
    assert iec_bytes(n) == text


def test_the_guard_stops_a_run_whose_process_is_over_its_bound_when_training_begins(tmp_path, digits):
    guard = MemoryGuard(16 * MiB, setting="the test's bound")
    with pytest.raises(OutOfMemory) as info:
        fit(digits_plan(tmp_path), dataset=digits, callbacks=[guard])
    assert re.fullmatch(
        r"out of memory: the process's resident memory reached [\d,]+\.\d [MG]iB when training began "
        r"\(the model built, the data in memory\), beyond the 16\.0 MiB of the test's bound\. "
        r"Lower `train\.batch_size`, make the model smaller, or raise the test's bound\.",
        info.value.format(),
    )
    assert isinstance(info.value, TrainError) and info.value.exit_code == 5
    assert guard.peak > 16 * MiB


class Spike(Callback):
    """Takes ``size`` bytes for a moment after batch ``at`` of the first epoch, and gives them back at once."""

    def __init__(self, at: int, size: int):
        self.at, self.size = at, size

    def on_batch_end(self, batch, logs):
        if batch == self.at:
            block = np.ones(self.size // 8)  # written, so resident
            del block


def test_the_guard_sees_a_peak_between_its_checks(tmp_path, digits):
    plan = digits_plan(tmp_path)
    fit(
        plan, dataset=digits, epochs=1
    )  # torch's one-time costs (kernels, thread pools) before the bound is set
    gc.collect()  # earlier tests' garbage, freed during the run below, would hide the spike under the bound
    # The spike is far above the bound: memory the process gives back during the run (earlier tests' freed arenas,
    # reclaimed file pages) lowers what the kernel counts, and a spike just above the bound could then pass under it.
    limit = resident_bytes() + 128 * MiB
    guard = MemoryGuard(limit, setting="the test's bound", every=0)
    with pytest.raises(OutOfMemory) as info:
        fit(plan, dataset=digits, epochs=1, callbacks=[Spike(at=1, size=1024 * MiB), guard])
    message = info.value.format()
    assert re.fullmatch(
        r"out of memory: the process's resident memory reached [\d,]+\.\d [MG]iB in epoch 1, batch 2, "
        r"beyond the [\d,]+\.\d [MG]iB of the test's bound\. .*",
        message,
    ), message
    assert f"beyond the {iec_bytes(limit)} of" in message
    assert guard.peak > limit


def test_a_guard_with_room_lets_the_run_finish_and_keeps_its_peak(tmp_path, digits):
    before = resident_bytes()
    guard = MemoryGuard(before + 1024 * MiB)
    result = fit(digits_plan(tmp_path), dataset=digits, epochs=1, callbacks=[guard])
    assert result.epochs_run == 1
    assert before <= guard.peak < before + 1024 * MiB


def test_fit_turns_a_failed_allocation_into_out_of_memory(tmp_path, digits):
    # an 8000x8000x16 output per example: 524,288,000,000 bytes for a batch of 128
    plan = digits_plan(
        tmp_path,
        layers=[
            {"conv2d_transpose": {"filters": 16, "kernel": 1, "strides": 1000}},
            "global_avgpool2d",
            {"dense": {"units": 10, "activation": "softmax"}},
        ],
        train={"batch_size": 128},
    )
    with address_space_limit(4 * 1024**3), pytest.raises(OutOfMemory) as info:
        fit(plan, dataset=digits, epochs=1)
    assert info.value.format() == (
        "out of memory: an allocation failed while training (RuntimeError: DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 524288000000 bytes. Error code 12 (Cannot allocate memory)). Lower "
        "`train.batch_size`, or make the model smaller."
    )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_which_errors_are_failed_allocations():
    torch_message = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 4000000000 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert is_allocation_failure(MemoryError())
    assert is_allocation_failure(RuntimeError(torch_message))
    assert not is_allocation_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 4x2)"))
    assert not is_allocation_failure(ValueError("out of memory"))
    assert not is_allocation_failure(OutOfMemory("out of memory: already said."))
    assert allocation_failure(MemoryError("Unable to allocate 74.5 GiB for an array")).format() == (
        "out of memory: an allocation failed while training (MemoryError: Unable to allocate 74.5 GiB for an array). "
        "Lower `train.batch_size`, or make the model smaller."
    )

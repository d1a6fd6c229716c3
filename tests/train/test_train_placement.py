"""Where search worker i of n trains: GPU i mod G on a machine with G GPUs, its share of the cores on a CPU
(`placement` with faked device counts; `device_for_worker` on this machine)."""

from __future__ import annotations

import pytest

from specdsl.train import Placement, device_for_worker, placement, usable_cores


def test_workers_go_round_the_gpus():
    got = [placement(i, 5, "auto", gpus=2, cores=16) for i in range(5)]
    assert got == [
        Placement("cuda:0", 4),
        Placement("cuda:1", 3),
        Placement("cuda:0", 3),
        Placement("cuda:1", 3),
        Placement("cuda:0", 3),
    ]
    assert [placement(i, 3, "cuda", gpus=4, cores=8).device for i in range(3)] == [
        "cuda:0",
        "cuda:1",
        "cuda:2",
    ]


def test_a_named_device_is_every_workers():
    assert {placement(i, 4, "cuda:1", gpus=2, cores=8) for i in range(4)} == {Placement("cuda:1", 2)}
    assert placement(0, 2, "mps", gpus=0, cores=8, mps=True) == Placement("mps", 4)
    assert placement(1, 2, "auto", gpus=0, cores=8, mps=True) == Placement("mps", 4)
    assert placement(1, 2, "cpu", gpus=8, cores=8) == Placement("cpu", 4)


def test_cpu_workers_split_the_cores_one_thread_at_least():
    assert [placement(i, 3, "auto", gpus=0, cores=8).threads for i in range(3)] == [3, 3, 2]
    assert [placement(i, 2, "cpu", gpus=0, cores=2) for i in range(2)] == [Placement("cpu", 1)] * 2
    assert [placement(i, 4, "cpu", gpus=0, cores=2).threads for i in range(4)] == [1, 1, 1, 1]
    assert placement(0, 1, "auto", gpus=0, cores=2) == Placement("cpu", 2)


def test_a_worker_outside_the_count_is_refused():
    with pytest.raises(ValueError) as info:
        placement(2, 2, "auto", gpus=1, cores=2)
    assert str(info.value) == "0 <= i < n_workers must hold, but got i=2, n_workers=2."


def test_on_this_machine():
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cores = usable_cores()
    got = device_for_worker(1, 2)
    assert got == placement(1, 2, "auto", gpus=gpus, cores=cores, mps=torch.backends.mps.is_available())
    if not gpus:
        assert got == Placement("cpu", max(1, cores // 2))

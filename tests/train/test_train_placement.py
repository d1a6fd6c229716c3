"""Where search worker i of n trains: GPU i mod G on a machine with G GPUs, its share of the cores on a CPU
(`placement` with faked device counts; `device_for_worker` on this machine)."""

from __future__ import annotations

import pytest

from specdsl.train import Placement, auto_workers, device_for_worker, placement, usable_cores, workers_here


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


@pytest.mark.parametrize(
    ("device", "gpus", "cores", "mps", "expected"),
    [
        ("auto", 2, 16, False, (2, "one a GPU")),
        ("cuda", 8, 4, False, (8, "one a GPU")),
        ("auto", 1, 2, False, (1, "one a GPU")),
        ("cuda:1", 2, 16, False, (1, "one on cuda:1")),
        ("auto", 0, 8, True, (1, "one on MPS")),
        ("mps", 0, 8, True, (1, "one on MPS")),
        ("auto", 0, 1, False, (1, "one a core")),
        ("auto", 0, 2, False, (2, "one a core")),  # measured: 4-6x the training of one two-thread worker
        ("cpu", 4, 3, True, (3, "one a core")),  # the CPU asked for: its cores, whatever else is there
        ("auto", 0, 4, False, (4, "one a core")),
        ("auto", 0, 8, False, (4, "at most 4 on the CPU, each 2 of its 8 cores")),
        ("cpu", 0, 18, False, (4, "at most 4 on the CPU, each 4-5 of its 18 cores")),
        ("auto", 0, 0, False, (1, "one a core")),  # no count of cores: one worker still
    ],
)
def test_auto_workers_table(device, gpus, cores, mps, expected):
    assert auto_workers(device, gpus=gpus, cores=cores, mps=mps) == expected


def test_auto_workers_on_this_machine_place_each_on_a_device():
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    n, _ = workers_here()
    if not gpus and not torch.backends.mps.is_available():
        assert n == min(usable_cores(), 4)
        # every CPU worker gets one thread at least, all of the cores among them
        assert sum(device_for_worker(i, n).threads for i in range(n)) == max(usable_cores(), n)

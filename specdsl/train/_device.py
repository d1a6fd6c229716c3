"""Where training runs: ``train.device`` resolved to a torch device, and a search worker's device and threads.

``auto`` picks CUDA, then MPS, then the CPU. A device that is asked for by name and is not there is one
:class:`TrainError` naming the devices this machine has. ``placement`` is pure (the device count and cores are
its arguments), so the search's worker placement is tested without a GPU; ``device_for_worker`` counts them.
:func:`auto_workers` is the rule of ``--workers auto`` (pure too; ``workers_here`` counts for it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import TrainError

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def _counts() -> tuple[int, bool]:
    """(CUDA devices, whether MPS is there) as torch sees them."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.device_count() if torch.cuda.is_available() else 0, bool(mps and mps.is_available())


def available_devices(gpus: int | None = None, mps: bool | None = None) -> list[str]:
    """The devices this machine can train on: ``cpu``, then ``cuda:0`` ... and ``mps`` when there."""
    if gpus is None or mps is None:
        counted = _counts()
        gpus = counted[0] if gpus is None else gpus
        mps = counted[1] if mps is None else mps
    return ["cpu", *(f"cuda:{i}" for i in range(gpus)), *(["mps"] if mps else [])]


def device_name(asked: str, *, gpus: int | None = None, mps: bool | None = None) -> str:
    """The device ``asked`` (a ``train.device`` value) means on this machine: ``cpu``, ``cuda:N`` or ``mps``.

    Raises a :class:`TrainError` (exit code 5) when it names a device this machine lacks, listing those it has.

        >>> device_name("auto", gpus=0, mps=False)
        'cpu'
        >>> device_name("cuda", gpus=2, mps=False)
        'cuda:0'
    """
    if gpus is None or mps is None:
        counted = _counts()
        gpus = counted[0] if gpus is None else gpus
        mps = counted[1] if mps is None else mps
    if asked == "auto":
        return "cuda:0" if gpus else "mps" if mps else "cpu"
    if asked == "cpu":
        return "cpu"
    found = _CUDA.fullmatch(asked)
    have = ", ".join(available_devices(gpus, mps))
    if found:
        index = int(found.group(1) or 0)
        if index < gpus:
            return f"cuda:{index}"
        import torch

        if not gpus:
            why = (
                f"this machine has no CUDA device (torch {torch.__version__} is a CPU build)"
                if torch.version.cuda is None
                else "torch sees no CUDA device on this machine"
            )
        else:
            why = f"this machine has {gpus} CUDA device{'s' if gpus > 1 else ''} (cuda:0 .. cuda:{gpus - 1})"
        raise TrainError(
            f"train.device {asked} cannot be used: {why}; available: {have}.",
            hint="Use --device auto (or cpu), or install a CUDA build of torch on a machine with a GPU.",
        )
    if asked == "mps":
        if mps:
            return "mps"
        raise TrainError(
            f"train.device mps cannot be used: this machine has no MPS (Apple GPU) device; available: {have}.",
            hint="Use --device auto (or cpu).",
        )
    raise TrainError(f"train.device must be one of {DEVICE_FORMS}, but got {asked!r}.")


def resolve_device(asked: str) -> Any:
    """The ``torch.device`` that :func:`device_name` names."""
    import torch

    return torch.device(device_name(asked))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Placement:
    """Where one search worker trains: ``device`` (a ``train.device`` value) and ``threads`` for
    ``torch.set_num_threads``."""

    device: str
    threads: int


def placement(i: int, n_workers: int, device: str, *, gpus: int, cores: int, mps: bool = False) -> Placement:
    """Worker ``i`` of ``n_workers``: with ``device`` auto or cuda on a machine with ``gpus`` GPUs it trains on
    ``cuda:(i mod gpus)``; a named ``cuda:N`` or ``mps`` is every worker's; on the CPU the ``cores`` are split
    between the workers (the first ``cores mod n_workers`` get one more), at least one thread each. Workers on
    a GPU get the same share of cores for their host work.

        >>> placement(3, 4, "auto", gpus=2, cores=16)
        Placement(device='cuda:1', threads=4)
        >>> placement(0, 3, "cpu", gpus=0, cores=8)
        Placement(device='cpu', threads=3)
    """
    if not 0 <= i < n_workers:
        raise ValueError(f"0 <= i < n_workers must hold, but got i={i}, n_workers={n_workers}.")
    threads = max(1, cores // n_workers + (1 if i < cores % n_workers else 0))
    if device in ("auto", "cuda") and gpus:
        return Placement(f"cuda:{i % gpus}", threads)
    if device == "auto":
        return Placement("mps" if mps else "cpu", threads)
    return Placement(device, threads)


MAX_AUTO_CPU_WORKERS = 4  # ``--workers auto`` on a CPU: one worker a core, at most this many


def auto_workers(device: str, *, gpus: int, cores: int, mps: bool = False) -> tuple[int, str]:
    """How many search workers ``--workers auto`` runs, and why in words: one a GPU where ``device`` (a
    ``train.device`` value) lets the workers go round the ``gpus``; one on a named ``cuda:N`` or on MPS (one
    device, shared); on the CPU one a core, at most :data:`MAX_AUTO_CPU_WORKERS` (then each its share of the
    cores as threads). Small CNNs scale badly across threads: on 2 cores, two one-thread workers trained
    4-6x the trials of one two-thread worker.

        >>> auto_workers("auto", gpus=2, cores=16)
        (2, 'one a GPU')
        >>> auto_workers("auto", gpus=0, cores=2)
        (2, 'one a core')
        >>> auto_workers("cpu", gpus=1, cores=16)
        (4, 'at most 4 on the CPU, each 4 of its 16 cores')
        >>> auto_workers("auto", gpus=0, cores=8, mps=True)
        (1, 'one on MPS')
    """
    if device in ("auto", "cuda") and gpus:
        return gpus, "one a GPU"
    if _CUDA.fullmatch(device):
        return 1, f"one on {device}"
    if device == "mps" or (device == "auto" and mps):
        return 1, "one on MPS"
    cores = max(1, cores)
    if cores <= MAX_AUTO_CPU_WORKERS:
        return cores, "one a core"
    n = MAX_AUTO_CPU_WORKERS
    share = f"{cores // n}" if cores % n == 0 else f"{cores // n}-{cores // n + 1}"
    return n, f"at most {n} on the CPU, each {share} of its {cores} cores"


def workers_here(device: str = "auto") -> tuple[int, str]:
    """:func:`auto_workers` on this machine (its CUDA devices, MPS and usable cores)."""
    gpus, mps = _counts()
    return auto_workers(device, gpus=gpus, cores=usable_cores(), mps=mps)


def device_for_worker(i: int, n_workers: int, device: str = "auto") -> Placement:
    """:func:`placement` on this machine (its CUDA devices and usable cores)."""
    gpus, mps = _counts()
    return placement(i, n_workers, device, gpus=gpus, cores=usable_cores(), mps=mps)

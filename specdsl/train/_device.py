"""Where training runs: ``train.device`` resolved to a torch device, and a search worker's device and threads.

``auto`` picks CUDA, then MPS, then the CPU. A device that is asked for by name and is not there is one
:class:`TrainError` naming the devices this machine has. ``placement`` is pure (the device count and cores are
its arguments), so the search's worker placement is tested without a GPU; ``device_for_worker`` counts them.
"""

from __future__ import annotations

import re
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

"""Memory of a training run: a static estimate from the plan, a guard on the process's resident memory, and
allocation failures turned into one clear error.

Nothing here imports a framework: the search estimates every sampled model before anything is built.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ..errors import TrainError
from ..plan import iec_bytes
from ._callbacks import Callback

# Activation memory of a training step, as a multiple of the plan's forward activations (every node's output for
# one example, times the batch): the outputs autograd keeps for the backward pass, what some layers keep besides
# (max pooling's int64 indices, dropout's masks, the pre-activation of a fused activation), and the gradients
# flowing back. Measured with the torch loop (channels_last, after a warm-up step) on the examples: lenet5 2.3,
# mnist_cnn 2.6, catsdogs_winning 2.1, catsdogs_simple 1.9, cifar10_cnn 1.6, alphago_policy 1.2, resnet50 0.8.
ACTIVATION_FACTOR = 3
BYTES_PER_VALUE = 4  # float32


def optimizer_slots(train: Any) -> tuple[int, int]:
    """(state tensors the optimizer keeps per trainable parameter, temporaries of one step the size of the
    parameters). adam/adamw: both moments, and the update torch's multi-tensor step computes before applying it;
    sgd: the momentum buffer (nesterov: and the look-ahead); rmsprop: the squared average (and the momentum
    buffer), and the step's denominator."""
    o = getattr(train, "optimizer", None)
    name = getattr(o, "name", "adam")
    momentum = getattr(o, "momentum", 0.0) > 0
    if name in ("adam", "adamw"):
        return 2, 1
    if name == "sgd":
        return int(momentum), int(momentum and getattr(o, "nesterov", False))
    return 1 + int(momentum), 1


@dataclass(frozen=True)
class MemoryEstimate:
    """The estimated peak memory of training a plan with the torch loop (bytes).

    ``parameters``: every parameter twice (the model, and the best epoch's copy the loop keeps), and each trainable
    one's gradient, optimizer state and step temporaries; ``activations``: ``ACTIVATION_FACTOR`` times the forward
    activations of one batch. What the process holds besides (the interpreter, the frameworks, the data) is not in it.
    """

    parameters: int
    activations: int
    params: int
    batch_size: int
    optimizer: str

    @property
    def total(self) -> int:
        return self.parameters + self.activations

    def describe(self) -> str:
        return (
            f"{iec_bytes(self.parameters)} for {self.params:,} parameters with their gradients and {self.optimizer} "
            f"state, {iec_bytes(self.activations)} of activations for batches of {self.batch_size}"
        )


def training_memory(plan: Any, train: Any = None) -> MemoryEstimate:
    """Estimate the memory training ``plan`` takes (``train``: the TrainSpec; default the spec's ``train:``).

    >>> training_memory(specdsl.check("examples/mnist_cnn.yaml")).total  # 4 x 6 x 203,434 + 3 x 323,688 x 128
    129178608
    """
    if train is None:
        train = plan.spec.train
    batch = getattr(train, "batch_size", 32)
    slots, temporaries = optimizer_slots(train)
    parameters = BYTES_PER_VALUE * (2 * plan.params + plan.trainable * (1 + slots + temporaries))
    activations = ACTIVATION_FACTOR * plan.activation_bytes * batch
    name = getattr(getattr(train, "optimizer", None), "name", "adam")
    return MemoryEstimate(parameters, activations, plan.params, batch, name)


# ---------------------------------------------------------------------------------------------------------------
# the process's resident memory


def resident_bytes() -> int | None:
    """The process's resident memory now (Linux ``/proc/self/statm``; else psutil when installed; else None)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def reset_peak() -> bool:
    """Start measuring the peak resident memory afresh (Linux: the kernel's high-water mark, reset through
    ``/proc/self/clear_refs``); False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_bytes() -> int | None:
    """The peak resident memory since :func:`reset_peak` (``VmHWM``), or None where the kernel does not say."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class OutOfMemory(TrainError):
    """Training needed more memory than it may have: a memory bound was passed, or an allocation failed."""


_ALLOCATION_FAILURES = (
    "DefaultCPUAllocator: can't allocate memory",
    "DefaultCPUAllocator: not enough memory",
    "CUDA out of memory",
    "MPS backend out of memory",
    "out of memory",
)


def is_allocation_failure(e: BaseException) -> bool:
    """A MemoryError, or a framework's error for an allocation it could not make (torch's CPU allocator, CUDA)."""
    if isinstance(e, OutOfMemory):
        return False  # ours, already said
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(s in text for s in _ALLOCATION_FAILURES)


def allocation_failure(e: BaseException, hint: str | None = None) -> OutOfMemory:
    """An :class:`OutOfMemory` saying which allocation failed (the framework's first line, without its C++
    source location)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    # torch: "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: ..."
    detail = re.sub(r"^\[enforce fail at [^\]]*\]\s*(?:[^.:]*==[^.:]*\.\s*)?", "", lines[0] if lines else "")
    what = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
    return OutOfMemory(
        f"out of memory: an allocation failed while training ({what}).",
        hint=hint or "Lower `train.batch_size`, or make the model smaller.",
    )


class MemoryGuard(Callback):
    """Fails training with :class:`OutOfMemory` when the process's resident memory passes ``limit`` bytes.

    The peak since the guard was made is checked when training begins (the model built, the data in memory), after
    every batch (at most every ``every`` seconds: the kernel keeps the peak in between, so nothing is missed on
    Linux) and after every epoch. Create it just before :func:`specdsl.train.fit`. ``setting`` names the bound in
    the message. Where the process's memory cannot be read (no ``/proc`` and no psutil) it checks nothing.

        >>> fit(plan, callbacks=[MemoryGuard(2 * 1024**3, setting="search.trial_memory")])
    """

    def __init__(
        self, limit: int, *, setting: str = "the memory bound", every: float = 0.05, hint: str | None = None
    ):
        self.limit = int(limit)
        self.setting = setting
        self.every = every
        self.hint = hint or f"Lower `train.batch_size`, make the model smaller, or raise {setting}."
        self.exact = reset_peak()  # else: the resident memory at each check
        self.peak = 0
        self.epoch = 0
        self.last = 0.0

    def reading(self) -> int | None:
        return peak_bytes() if self.exact else resident_bytes()

    def check(self, where: str) -> None:
        now = self.reading()
        self.last = time.monotonic()
        if now is None:
            return
        self.peak = max(self.peak, now)
        if now > self.limit:
            raise OutOfMemory(
                f"out of memory: the process's resident memory reached {iec_bytes(now)} {where}, beyond the "
                f"{iec_bytes(self.limit)} of {self.setting}.",
                hint=self.hint,
            )

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self.check("when training began (the model built, the data in memory)")

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if time.monotonic() - self.last >= self.every:
            self.check(f"in epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.check(f"in epoch {epoch + 1}")

"""Training a plan's model: the torch loop (the search's hot path) or Keras' fit, with callbacks.

    >>> import specdsl
    >>> from specdsl.train import fit
    >>> plan = specdsl.check("examples/mnist_cnn.yaml")
    >>> result = fit(plan, epochs=1, checkpoint_dir="ckpt")  # data, optimizer, loss from its data: and train:
    >>> result.history[0]  # loss, accuracy, val_loss, val_accuracy, lr, epoch_seconds, images_per_s
    >>> result.test["accuracy"], result.checkpoint  # the best epoch's weights, on the test split

``check_compatible`` runs the static checks of the ``train:`` and ``data:`` sections against the model
(loss vs output activation and units, classes, input channels, the early-stopping monitor) without building
anything, and ``load_for`` loads the data a plan takes (``data_override``: with a command line's ``--data``
and ``--limit``). ``training_memory`` estimates what training a plan
takes, and a ``MemoryGuard`` callback stops a run whose process passes a memory bound (``OutOfMemory``, as
for an allocation that fails: ``allocation_failure``). ``device_name`` says what ``train.device`` means on
this machine, and ``device_for_worker`` where search worker i of n trains (GPU i mod G, or its share of the
CPU cores; ``placement`` is the same rule with the counts given); ``workers_here`` how many workers
``--workers auto`` runs (``auto_workers``: the rule with the counts given). The ``specdsl train`` command is in
``specdsl.cli._train``.

The modules: ``_fit`` (the entry point: checks, data, then a backend's loop); ``_torch`` (the torch loop
and its optimizers) with ``_batches`` (in-memory tensors, each epoch's shuffled and augmented batches),
``_metrics`` (loss, metrics, evaluating a split), ``_augment`` (augmentation as tensor ops) and ``_device``
(the device a run or a search worker trains on); ``_keras`` (Keras' own fit on the same arrays); and,
importing no framework, ``_compat`` (the static checks, loading the data), ``_memory`` (the memory estimate
and guard), ``_schedule`` (learning rates, the best-epoch monitor), ``_overrides`` (a command line's values
over the sections), ``_callbacks``, ``_progress`` (a rich
progress bar), ``_checkpoint`` and ``_result``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use: `specdsl validate` needs only the static checks of _compat, and importing
# the training loop's modules for them would be a tenth of its run.
_WHERE = {
    "normalization": "_batches",
    "to_tensor": "_batches",
    "Callback": "_callbacks",
    "check_compatible": "_compat",
    "load_for": "_compat",
    "log_keys": "_compat",
    "output_activation": "_compat",
    "Placement": "_device",
    "auto_workers": "_device",
    "available_devices": "_device",
    "device_for_worker": "_device",
    "device_name": "_device",
    "placement": "_device",
    "usable_cores": "_device",
    "resolve_device": "_device",
    "workers_here": "_device",
    "fit": "_fit",
    "logits_mode": "_metrics",
    "MemoryEstimate": "_memory",
    "MemoryGuard": "_memory",
    "OutOfMemory": "_memory",
    "allocation_failure": "_memory",
    "iec_bytes": "_memory",
    "is_allocation_failure": "_memory",
    "peak_bytes": "_memory",
    "reset_peak": "_memory",
    "resident_bytes": "_memory",
    "training_memory": "_memory",
    "data_override": "_overrides",
    "section_override": "_overrides",
    "ProgressCallback": "_progress",
    "NonFiniteLoss": "_result",
    "TrainResult": "_result",
    "LrSchedule": "_schedule",
    "Monitor": "_schedule",
}

if TYPE_CHECKING:
    from ._batches import normalization, to_tensor
    from ._callbacks import Callback
    from ._compat import check_compatible, load_for, log_keys, output_activation
    from ._device import (
        Placement,
        auto_workers,
        available_devices,
        device_for_worker,
        device_name,
        placement,
        resolve_device,
        usable_cores,
        workers_here,
    )
    from ._fit import fit
    from ._memory import (
        MemoryEstimate,
        MemoryGuard,
        OutOfMemory,
        allocation_failure,
        iec_bytes,
        is_allocation_failure,
        peak_bytes,
        reset_peak,
        resident_bytes,
        training_memory,
    )
    from ._metrics import logits_mode
    from ._overrides import data_override, section_override
    from ._progress import ProgressCallback
    from ._result import NonFiniteLoss, TrainResult
    from ._schedule import LrSchedule, Monitor


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Callback",
    "LrSchedule",
    "MemoryEstimate",
    "MemoryGuard",
    "Monitor",
    "NonFiniteLoss",
    "OutOfMemory",
    "Placement",
    "ProgressCallback",
    "TrainResult",
    "allocation_failure",
    "auto_workers",
    "available_devices",
    "check_compatible",
    "data_override",
    "device_for_worker",
    "device_name",
    "fit",
    "iec_bytes",
    "is_allocation_failure",
    "load_for",
    "log_keys",
    "logits_mode",
    "normalization",
    "output_activation",
    "peak_bytes",
    "placement",
    "reset_peak",
    "resident_bytes",
    "resolve_device",
    "section_override",
    "to_tensor",
    "training_memory",
    "usable_cores",
    "workers_here",
]

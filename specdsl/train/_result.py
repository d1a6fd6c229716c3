"""What a training run returns, and the error it raises when the loss stops being a number."""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import TrainError


@dataclass
class TrainResult:
    """The outcome of :func:`specdsl.train.fit`.

        ``history`` holds one ``logs`` dict per epoch run (see :class:`Callback`); ``best_epoch`` indexes it (from 0)
        and ``best`` is that epoch's logs, the best by the monitor (``val_loss`` unless early stopping names another;
        ``loss`` without a validation split). ``model`` carries the best epoch's weights (unless
        ``early_stopping.restore_best`` is false: then the last epoch's), and ``test`` holds that model's metrics on
        the test split (``loss``, ``accuracy``, ...), or None without a test split. ``checkpoint`` is the best
        epoch's weights on disk (``best.pt``, a state_dict, or Keras' ``best.weights.h5``) when ``fit`` was given a
        ``checkpoint_dir``. ``seconds`` is the wall time of the whole run, ``images_per_s`` the training throughput
        over all epochs. ``stop_reason`` is None (all epochs ran), ``"early_stopping"`` or ``"max_seconds"``;
        ``stopped_early`` is true for either. ``device`` is where it trained (``cpu``, ``cuda:0``, ``mps``: what
    ``train.device`` resolved to) and ``precision`` the ``train.precision`` it trained in.
    """

    history: list[dict[str, float]]
    best_epoch: int
    best: dict[str, float]
    test: dict[str, float] | None
    model: Any
    seconds: float
    images_per_s: float
    checkpoint: pathlib.Path | None
    stopped_early: bool
    stop_reason: str | None = None
    monitor: str = "val_loss"
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


class NonFiniteLoss(TrainError):
    """The training loss became NaN or infinite. ``epoch`` and ``batch`` count from 0; the message counts from 1."""

    def __init__(
        self, value: float, *, epoch: int, batch: int, epochs: int, steps: int, lr: float | None = None
    ):
        self.value = value
        self.epoch = epoch
        self.batch = batch
        what = "NaN" if math.isnan(value) else f"{value}"
        at_lr = f" at learning rate {lr:g}" if lr is not None else ""
        super().__init__(
            f"the training loss became {what} in epoch {epoch + 1}/{epochs}, batch {batch + 1}/{steps}{at_lr}.",
            hint="Lower `train.optimizer.lr` (or add warmup: `train.schedule.warmup_epochs`), add batchnorm, or "
            "check the data for NaN or unscaled values (`data.normalize`).",
        )

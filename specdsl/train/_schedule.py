"""Learning-rate schedules and the best-epoch / early-stopping monitor: pure Python, shared by both backends,
so that torch and Keras training follow the same learning rates and stop at the same epoch."""

from __future__ import annotations

import math

from ..spec import EarlyStopping, Schedule, TrainSpec


class LrSchedule:
    """The learning rate of every step.

    Decay is per epoch, as Keras' ``LearningRateScheduler`` applies it: ``step`` multiplies by ``gamma`` every
    ``step_size`` epochs, ``exponential`` by ``gamma`` every epoch, ``cosine`` follows half a cosine from ``lr`` at the
    first epoch after warmup towards 0 at the end (``lr * (1 + cos(pi * k / K)) / 2``, ``k`` epochs after warmup of
    ``K``), ``plateau`` multiplies by ``gamma`` when the monitor has not improved for ``patience`` epochs
    (Keras' ``ReduceLROnPlateau``). Warmup is per step: the rate rises linearly from ``lr / steps`` to ``lr`` over
    the first ``warmup_epochs`` epochs, then the schedule runs as if it started there.

        >>> s = LrSchedule(Schedule(name="step", step_size=2, gamma=0.5), lr=0.1, epochs=6)
        >>> [s.epoch_lr(e) for e in range(6)]
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    """

    def __init__(self, schedule: Schedule, lr: float, epochs: int):
        self.schedule = schedule
        self.base = lr
        self.epochs = epochs
        self.plateau_scale = 1.0
        self._best: float | None = None
        self._wait = 0

    @property
    def warmup(self) -> int:
        return self.schedule.warmup_epochs

    def epoch_lr(self, epoch: int) -> float:
        """The rate of an epoch after warmup (the decayed rate; warmup steps scale it down)."""
        s = self.schedule
        k = max(epoch - self.warmup, 0)
        if s.name == "step":
            return self.base * s.gamma ** (k // s.step_size)
        if s.name == "exponential":
            return self.base * s.gamma**k
        if s.name == "cosine":
            span = max(self.epochs - self.warmup, 1)
            return self.base * 0.5 * (1.0 + math.cos(math.pi * min(k, span) / span))
        if s.name == "plateau":
            return self.base * self.plateau_scale
        return self.base

    def in_warmup(self, epoch: int) -> bool:
        return epoch < self.warmup

    def step_lr(self, epoch: int, step: int, steps: int) -> float:
        """The rate of one step; only differs from ``epoch_lr`` during warmup."""
        lr = self.epoch_lr(epoch)
        if epoch >= self.warmup:
            return lr
        done = epoch * steps + step + 1
        return lr * done / (self.warmup * steps)

    def end_epoch(self, value: float | None, mode: str) -> None:
        """Tell the schedule the monitor's value after an epoch (only ``plateau`` uses it)."""
        if self.schedule.name != "plateau" or value is None or math.isnan(value):
            return
        better = self._best is None or (value < self._best if mode == "min" else value > self._best)
        if better:
            self._best = value
            self._wait = 0
            return
        self._wait += 1
        if self._wait >= self.schedule.patience:
            self.plateau_scale *= self.schedule.gamma
            self._wait = 0


def out_of_time(elapsed: float, epoch_s: float, max_seconds: float | None) -> bool:
    """Whether a run with a time limit stops after this epoch: the limit has passed, or the next epoch, as long
    as this one, would end past it (so a run ends within its limit whenever its epochs take about the same time).

        >>> out_of_time(50.0, 30.0, 100.0), out_of_time(80.0, 30.0, 100.0), out_of_time(1.0, 2.0, None)
        (False, True, False)
    """
    return max_seconds is not None and elapsed + epoch_s > max_seconds


def monitor_mode(monitor: str) -> str:
    """'max' for accuracies, 'min' for everything else (Keras' ``mode="auto"``)."""
    return "max" if monitor.endswith(("accuracy", "acc", "auc")) else "min"


def default_monitor(train: TrainSpec, has_val: bool) -> str:
    """The value that picks a run's best epoch (and that early stopping and the plateau schedule watch):
    ``train.monitor``, else the one early stopping names, else ``val_loss`` (``loss`` without a validation split).

        >>> default_monitor(TrainSpec(monitor="val_accuracy"), True), default_monitor(TrainSpec(), False)
        ('val_accuracy', 'loss')
    """
    named = train.early_stopping.monitor if train.early_stopping is not None else None
    return train.monitor or named or ("val_loss" if has_val else "loss")


class Monitor:
    """The best epoch by a monitored value, and early stopping, with Keras' ``EarlyStopping`` semantics.

    An epoch improves when its value beats the best by more than ``min_delta``; without early stopping,
    ``min_delta`` is 0 and the run never stops. With it, the run stops once ``patience`` epochs in a row have not
    improved (Keras: ``wait >= patience``, counted from the last improvement).

        >>> m = Monitor("val_loss", EarlyStopping(patience=2))
        >>> [m.update(e, v) for e, v in enumerate([1.0, 0.9, 0.95, 0.91])]
        [(True, False), (True, False), (False, False), (False, True)]
        >>> m.best_epoch, m.best
        (1, 0.9)
    """

    def __init__(self, monitor: str, early_stopping: EarlyStopping | None):
        self.monitor = monitor
        self.mode = monitor_mode(monitor)
        self.early_stopping = early_stopping
        self.min_delta = early_stopping.min_delta if early_stopping else 0.0
        self.best: float = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value + self.min_delta < self.best
        return value - self.min_delta > self.best

    def update(self, epoch: int, value: float) -> tuple[bool, bool]:
        """(improved, stop) after an epoch whose monitored value is ``value``."""
        self.wait += 1
        if self.improves(value) or self.best_epoch < 0 or math.isnan(self.best):
            self.best = value
            self.best_epoch = epoch
            self.wait = 0
            return True, False
        stop = self.early_stopping is not None and self.wait >= self.early_stopping.patience
        return False, stop

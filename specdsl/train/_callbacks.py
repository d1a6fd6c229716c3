"""Callbacks: how the search, the CLI and MLflow follow a training run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._result import TrainResult


class Callback:
    """Base class of the hooks :func:`specdsl.train.fit` calls; every method does nothing unless overridden.

    Epochs and batches are counted from 0, as Keras counts them. ``logs`` hold plain floats:
    ``loss``, ``accuracy`` (when the metric is on), ``top5_accuracy`` (likewise), the same with ``val_`` before
    them when there is a validation split, ``lr`` (the learning rate at the epoch's last step),
    ``epoch_seconds`` (training and validation) and ``images_per_s`` (training images per second of training).

    A callback may add keys to ``logs`` in ``on_epoch_end``; the callbacks after it, the history and the
    early-stopping monitor see them. A callback that sets ``self.stop_training = True`` in ``on_epoch_end`` ends
    training after that epoch as early stopping does (the best epoch's weights restored, the test split
    evaluated; ``stop_reason`` ``"callback"``). An exception raised by a callback (e.g. ``optuna.TrialPruned``)
    ends training and propagates out of ``fit`` unchanged.

        >>> class Print(Callback):
        ...     def on_epoch_end(self, epoch, logs):
        ...         print(epoch, round(logs["val_accuracy"], 3))
    """

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Before the first epoch. ``info``: ``backend``, ``epochs``, ``batch_size``, ``steps_per_epoch``,
        ``n_train``, ``n_val``, ``n_test``, ``params``, ``trainable``, ``flops``, ``monitor``, ``mode``,
        ``dataset``, ``image_shape``, ``num_classes``, ``class_names``, ``seed``, ``train`` (the TrainSpec),
        ``data`` (the DataSpec or None), ``checkpoint_dir`` and ``model`` (the model being trained)."""

    stop_training = False  # set in on_epoch_end: training ends after this epoch

    def on_epoch_begin(self, epoch: int) -> None:
        """Before each epoch."""

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        """After each training step; ``logs`` holds the running ``loss`` (and ``accuracy``) of the epoch so far.
        Only called when a callback overrides it, so that the step loop stays free of it otherwise."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """After each epoch's training and validation."""

    def on_train_end(self, result: TrainResult) -> None:
        """After training and the test evaluation, when training ended normally (early stopping included)."""


class CallbackList:
    """Calls each callback in order; an exception from one propagates at once."""

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be specdsl.train.Callback instances, but got {type(cb).__name__}"
                )
        self.batches = [cb for cb in self.callbacks if type(cb).on_batch_end is not Callback.on_batch_end]

    def train_begin(self, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(info)

    def epoch_begin(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)

    def batch_end(self, batch: int, logs: dict[str, float]) -> None:
        for cb in self.batches:
            cb.on_batch_end(batch, logs)

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        """Call every callback's ``on_epoch_end``; whether one of them asks training to stop after this epoch."""
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)
        return any(getattr(cb, "stop_training", False) for cb in self.callbacks)

    def train_end(self, result: TrainResult) -> None:
        for cb in self.callbacks:
            cb.on_train_end(result)

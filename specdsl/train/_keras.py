"""Training with Keras 3's own ``model.fit``, on the same arrays, optimizer, loss, metrics, schedule and stopping
rule as the torch loop (the schedule and the monitor are the same pure objects, driven from a Keras callback).

``train.device`` is Keras' device scope around building and fitting (on Keras' torch backend its variables and
batches go there); ``train.precision`` is the layers' dtype policy (``mixed_bfloat16``, ``mixed_float16`` with
Keras' loss-scale optimizer) when the model is built here."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data import MappedImages
from ..spec import Augment, DataSpec, TrainSpec
from ._batches import eval_batch_size, normalization
from ._callbacks import CallbackList
from ._checkpoint import checkpoint_failure
from ._keras_data import batches_class
from ._metrics import EPSILON
from ._result import NonFiniteLoss, TrainResult
from ._schedule import LrSchedule, Monitor, out_of_time
from ._stages import StageRunner, stage_plans
from ._stream import stream_eval_batch_size

CHECKPOINT = "best.weights.h5"
POLICIES = {"fp32": None, "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def keras_device(keras: Any, name: str) -> str:
    """The name ``keras.device`` takes for a torch device name (cpu, cuda:N, mps): as it is on Keras' torch
    backend, ``cpu:0`` / ``gpu:N`` on the others."""
    if keras.backend.backend() == "torch":
        return name
    return "cpu:0" if name == "cpu" else name.replace("cuda", "gpu")


def _optimizer(keras: Any, train: TrainSpec) -> Any:
    o = train.optimizer
    wd = o.weight_decay or None
    if o.name in (
        "adam",
        "adamw",
    ):  # Keras 3's weight_decay is decoupled in every optimizer: Adam(wd) == AdamW(wd)
        return keras.optimizers.Adam(
            learning_rate=o.lr, beta_1=0.9, beta_2=0.999, epsilon=EPSILON, weight_decay=wd
        )
    if o.name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=wd
        )
    return keras.optimizers.RMSprop(
        learning_rate=o.lr, rho=0.9, momentum=o.momentum, epsilon=EPSILON, weight_decay=wd
    )


def _loss_and_labels(keras: Any, train: TrainSpec, num_classes: int):
    """The Keras loss and metrics, and a function giving the labels in the form that loss takes."""
    ls = train.label_smoothing
    if train.loss == "binary_crossentropy":
        labels = lambda y: y.astype(np.float32).reshape(-1, 1)
        metrics = ["accuracy"] if "accuracy" in train.metrics else []
        return keras.losses.BinaryCrossentropy(label_smoothing=ls), metrics, labels
    # Keras' sparse loss takes no label smoothing: smoothing goes through one-hot labels, as with categorical
    one_hot = train.loss == "categorical_crossentropy" or ls > 0
    metrics: list[Any] = ["accuracy"] if "accuracy" in train.metrics else []
    if one_hot:
        if "top5_accuracy" in train.metrics:
            metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy"))
        eye = np.eye(num_classes, dtype=np.float32)
        return keras.losses.CategoricalCrossentropy(label_smoothing=ls), metrics, lambda y: eye[y]
    if "top5_accuracy" in train.metrics:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
    return keras.losses.SparseCategoricalCrossentropy(), metrics, lambda y: y.astype(np.int64)


def run(
    plan: Any,
    model: Any,
    dataset: Any,
    train: TrainSpec,
    data: DataSpec | None,
    callbacks: CallbackList,
    *,
    epochs: int,
    monitor: Monitor,
    checkpoint_dir: Path | None,
    max_seconds: float | None,
    info: dict[str, Any],
) -> TrainResult:
    import keras

    start = time.perf_counter()
    normalize = data.normalize if data is not None else "unit"
    scale, offset = normalization(dataset.x_train, normalize)
    s, o = scale.astype(np.float32), offset.astype(np.float32)

    # memory-mapped images (storage: disk) are read a batch at a time, by a keras.utils.PyDataset
    mapped = isinstance(dataset.x_train, MappedImages)
    ImageBatches = batches_class(keras)

    def prep(x: np.ndarray) -> np.ndarray:
        return np.asarray(x).astype(np.float32) * s + o

    loss, metrics, labels = _loss_and_labels(keras, train, dataset.num_classes)
    y_train = labels(dataset.y_train)
    has_val = len(dataset.y_val) > 0
    n = len(y_train)
    steps = math.ceil(n / train.batch_size)
    eval_bs = eval_batch_size(plan, train.batch_size)
    if mapped:  # each evaluation batch is read into memory: bound its images too
        eval_bs = stream_eval_batch_size(eval_bs, train.batch_size, dataset.image_shape)

    def split(x: Any, y: np.ndarray) -> Any:
        """An evaluation split as fit and evaluate take it: arrays, or batches read from the map in order."""
        return ImageBatches(x, labels(y), eval_bs, scale, offset) if mapped else (prep(x), labels(y))

    validation = split(dataset.x_val, dataset.y_val) if has_val else None
    spec_augment = data.augment if data is not None else Augment()

    stages = StageRunner(stage_plans(plan, train), epochs)
    staged = bool(train.stages)
    cur: dict[str, Any] = {}  # the stage being fitted: its schedule, first and last epoch
    restore = train.early_stopping.restore_best if train.early_stopping is not None else True
    state: dict[str, Any] = {"best": None, "checkpoint": None, "stop_reason": None, "train_seconds": 0.0}
    history: list[dict[str, float]] = []
    keys = ["loss", *(m for m in ("accuracy", "top5_accuracy") if m in train.metrics)]
    batch_logs = bool(callbacks.batches)

    class Adapter(keras.callbacks.Callback):
        """Drives our callbacks, schedule, monitor and checkpoint from Keras' fit."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.t0 = time.perf_counter()
            self.t_train = None
            self.lr = cur["schedule"].epoch_lr(epoch - cur["started"])
            self.model.optimizer.learning_rate = self.lr
            callbacks.epoch_begin(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            if cur["schedule"].in_warmup(self.epoch - cur["started"]):
                self.lr = cur["schedule"].step_lr(self.epoch - cur["started"], batch, steps)
                self.model.optimizer.learning_rate = self.lr

        def on_train_batch_end(self, batch, logs=None):
            value = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    value, epoch=self.epoch, batch=batch, epochs=epochs, steps=steps, lr=self.lr
                )
            if batch_logs:
                callbacks.batch_end(batch, {k: float(logs[k]) for k in keys if k in logs})

        def on_test_begin(self, logs=None):
            if self.t_train is None:
                self.t_train = time.perf_counter() - self.t0

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            t_train = self.t_train if self.t_train is not None else time.perf_counter() - self.t0
            state["train_seconds"] += t_train
            ours = {k: float(logs[k]) for k in keys if k in logs}
            if has_val:
                ours.update({f"val_{k}": float(logs[f"val_{k}"]) for k in keys if f"val_{k}" in logs})
            ours["lr"] = float(self.lr)
            ours["epoch_seconds"] = time.perf_counter() - self.t0
            ours["images_per_s"] = n / t_train if t_train > 0 else 0.0
            if staged:
                ours["stage"] = float(stages.stage.number)
            asked_to_stop = callbacks.epoch_end(epoch, ours)
            history.append(ours)
            value = ours.get(monitor.monitor, math.nan)
            improved, stop = monitor.update(epoch, value)
            cur["schedule"].end_epoch(value, monitor.mode)
            if improved:
                state["best"] = [np.array(w) for w in self.model.get_weights()]
                if checkpoint_dir is not None:
                    checkpoint_dir.mkdir(parents=True, exist_ok=True)
                    path = checkpoint_dir / CHECKPOINT
                    try:
                        self.model.save_weights(path, overwrite=True)
                    except (OSError, RuntimeError) as e:  # a full disk, mostly
                        raise checkpoint_failure(e, path, sum(w.nbytes for w in state["best"])) from None
                    state["checkpoint"] = path
            if stop:
                state["stop_reason"] = "early_stopping"
                self.model.stop_training = True
            elif asked_to_stop and epoch < cur["final"]:
                state["stop_reason"] = "callback"
                self.model.stop_training = True
            elif (
                out_of_time(time.perf_counter() - start, time.perf_counter() - self.t0, max_seconds)
                and epoch < cur["final"]
            ):
                state["stop_reason"] = "max_seconds"
                self.model.stop_training = True

    device = info["device"]
    info.update(
        steps_per_epoch=steps,
        model=model,
        precision=train.precision,
        normalization={"scale": scale.tolist(), "offset": offset.tolist()},
    )
    callbacks.train_begin(info)
    adapter = Adapter()
    augmenter = None
    if spec_augment != Augment():  # any augmentation asked for
        import torch

        from ._augment import Augmenter

        gen = torch.Generator().manual_seed(train.seed + 1)
        augmenter = Augmenter(
            spec_augment,
            gen,
            torch.tensor(offset, dtype=torch.float32),
            torch.tensor(255 * scale + offset, dtype=torch.float32),
        )
    fit_kwargs: dict[str, Any]
    if augmenter is not None or mapped:
        batches = ImageBatches(
            dataset.x_train, y_train, train.batch_size, scale, offset, seed=train.seed, augment=augmenter
        )
        fit_kwargs = {"x": batches, "validation_batch_size": None if mapped else eval_bs}
    else:
        fit_kwargs = {
            "x": prep(dataset.x_train),
            "y": y_train,
            "batch_size": train.batch_size,
            "shuffle": True,
            "validation_batch_size": eval_bs,
        }
    epoch = 0
    while epoch < epochs and not stages.finished:
        stage = stages.advance(epoch)
        assert stage is not None
        for name in stage.unfreeze:  # Keras takes a change of trainable at the next compile
            model.get_layer(name).trainable = True
        optimizer = _optimizer(keras, stage.train)
        if train.precision == "fp16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        span = stages.span()
        last = stages.index == len(stages.stages) - 1
        cur.update(
            schedule=LrSchedule(train.schedule, stage.optimizer.lr, span),
            started=epoch,
            final=epoch + span - 1 if last else epochs,
        )
        monitor.wait = 0
        state["stop_reason"] = None
        model.fit(
            **fit_kwargs,
            initial_epoch=epoch,
            epochs=epoch + span,
            validation_data=validation,
            verbose=0,
            callbacks=[adapter],
        )
        epoch = len(history)
        stages.left = 0  # the stage's epochs are done, or it stopped
        if state["stop_reason"] is not None and (state["stop_reason"] != "early_stopping" or last):
            break

    if restore and state["best"] is not None:
        model.set_weights(state["best"])
    test = None
    if len(dataset.y_test):
        test_split = split(dataset.x_test, dataset.y_test)
        if mapped:
            got = model.evaluate(test_split, verbose=0, return_dict=True)
        else:
            got = model.evaluate(*test_split, batch_size=eval_bs, verbose=0, return_dict=True)
        test = {k: float(got[k]) for k in keys if k in got}
    best_epoch = monitor.best_epoch if monitor.best_epoch >= 0 else len(history) - 1
    result = TrainResult(
        history=history,
        best_epoch=best_epoch,
        best=dict(history[best_epoch]),
        test=test,
        model=model,
        seconds=time.perf_counter() - start,
        images_per_s=n * len(history) / state["train_seconds"] if state["train_seconds"] > 0 else 0.0,
        checkpoint=state["checkpoint"],
        stopped_early=state["stop_reason"] is not None,
        stop_reason=state["stop_reason"],
        monitor=monitor.monitor,
        backend="keras",
        device=device,
        precision=train.precision,
        info=info,
    )
    callbacks.train_end(result)
    return result

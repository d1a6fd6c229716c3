"""fit(): one training run of a plan, on the torch loop or Keras' fit."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrainError
from ..spec import DataSpec, TrainSpec
from ._callbacks import Callback, CallbackList
from ._checkpoint import check_writable
from ._compat import check_compatible, load_for
from ._device import device_name
from ._memory import allocation_failure, is_allocation_failure
from ._result import TrainResult
from ._schedule import Monitor, default_monitor

if TYPE_CHECKING:
    from ..data import Dataset
    from ..plan import Plan

BACKENDS = ("torch", "keras")


def fit(
    plan: Plan,
    *,
    dataset: Dataset | None = None,
    train: TrainSpec | None = None,
    data: DataSpec | None = None,
    backend: str | None = None,
    callbacks: Iterable[Callback] = (),
    epochs: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = False,
    max_seconds: float | None = None,
    model: Any = None,
    device: str | None = None,
) -> TrainResult:
    """Train the model of a plan and return its history, best epoch, test metrics and trained model.

    Args:
        plan: a checked plan (``specdsl.check(path)``).
        dataset: the data, already loaded (:func:`specdsl.data.load_dataset`), matching the input's shape. By
            default it is loaded from ``data`` (or the spec's ``data:`` section) at the input's size and channels.
        train: how to train (default: the spec's ``train:`` section, or ``TrainSpec()``).
        data: the data section (augmentation and normalization are read from it even when ``dataset`` is given;
            default: the spec's ``data:``).
        backend: ``"torch"`` (the fast loop of this package) or ``"keras"`` (Keras' own ``fit``); default
            ``train.backend``.
        callbacks: :class:`Callback` instances, called in order.
        epochs: overrides ``train.epochs`` (e.g. a search's budget).
        checkpoint_dir: where the best epoch's weights are kept (``best.pt``, a state_dict, plus ``best.json``;
            Keras: ``best.weights.h5``), written whenever the monitor improves, so an interrupted run keeps them.
        progress: show a progress bar (rich) in the terminal.
        max_seconds: a time limit: stop after the epoch that passes it, or after which the next, as long, would.
        model: an already built model of this plan to train (default: built here, seeded by ``train.seed``).
        device: overrides ``train.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``; e.g. a search
            worker's, :func:`device_for_worker`). The result's ``device`` says where it trained.

    Raises:
        SpecError, DataError: the train/data sections do not fit the model (:func:`check_compatible`).
        TrainError: ``device`` names a device this machine lacks (the message lists those it has).
        NonFiniteLoss: the training loss became NaN or infinite (``epoch``, ``batch`` say where).
        OutOfMemory: an allocation failed (a MemoryError, or torch's "can't allocate memory"), or a
            :class:`MemoryGuard` among the callbacks saw the process pass its bound.
        Whatever a callback raises propagates unchanged. On KeyboardInterrupt the best checkpoint so far is on disk.

        >>> result = fit(specdsl.check("examples/mnist_cnn.yaml"), epochs=1)
        >>> result.best["val_accuracy"] > 0.9
        True
    """
    train = train if train is not None else (plan.spec.train or TrainSpec())
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise TrainError(f"epochs must be a positive integer, but got epochs={epochs!r}.")
    epochs = epochs if epochs is not None else train.epochs
    backend = backend or train.backend
    if backend not in BACKENDS:
        raise TrainError(f"backend must be one of {', '.join(BACKENDS)}, but got backend={backend!r}.")
    if device is not None:
        train = TrainSpec.model_validate({**train.model_dump(), "device": device})
    device_name(train.device)  # a device this machine lacks fails before any data is loaded
    data = data if data is not None else plan.spec.data
    if dataset is None:
        check_compatible(plan, train, data)
        dataset = load_for(plan, data)
    check_compatible(plan, train, dataset)
    if len(dataset.y_train) == 0:
        raise TrainError(f"the dataset `{dataset.name}` has no training examples.")

    callbacks = list(callbacks)
    bar = None
    if progress:
        from ._progress import ProgressCallback

        bar = ProgressCallback()
        callbacks.append(bar)
    cbs = CallbackList(callbacks)
    has_val = len(dataset.y_val) > 0
    monitor = Monitor(default_monitor(train, has_val), train.early_stopping)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        check_writable(folder)
    info: dict[str, Any] = {
        "backend": backend,
        "epochs": epochs,
        "batch_size": train.batch_size,
        "n_train": len(dataset.y_train),
        "n_val": len(dataset.y_val),
        "n_test": len(dataset.y_test),
        "params": plan.params,
        "trainable": plan.trainable,
        "flops": plan.flops,
        "monitor": monitor.monitor,
        "mode": monitor.mode,
        "dataset": dataset.name,
        "image_shape": tuple(dataset.image_shape),
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "seed": train.seed,
        "train": train,
        "data": data,
        "checkpoint_dir": folder,
    }
    kwargs = {
        "epochs": epochs,
        "monitor": monitor,
        "checkpoint_dir": folder,
        "max_seconds": max_seconds,
        "info": info,
    }
    try:
        return _run(plan, model, dataset, train, data, cbs, backend, kwargs)
    except Exception as e:
        if is_allocation_failure(e):
            raise allocation_failure(e) from e
        raise
    finally:
        if bar is not None:
            bar.close()


def _run(plan, model, dataset, train, data, cbs, backend, kwargs) -> TrainResult:
    from ..backends import get_backend
    from ..weights import load_backbones  # the weights of its backbones, where it asks for them

    if backend == "torch":
        import torch

        from . import _torch

        if model is None:
            torch.manual_seed(train.seed)
            model = load_backbones(get_backend("torch").build(plan), plan)
        return _torch.run(plan, model, dataset, train, data, cbs, **kwargs)

    keras_backend = get_backend("keras")  # sets KERAS_BACKEND=torch unless the environment names a backend
    import keras

    from . import _keras

    keras.utils.set_random_seed(train.seed)
    # Keras on torch places the variables it creates and the batches it feeds on the scope's device
    name = device_name(train.device)
    kwargs["info"]["device"] = name
    policy = _keras.POLICIES[train.precision]
    with keras.device(_keras.keras_device(keras, name)):
        if model is None:
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(policy or previous)  # the layers built now compute in it
            try:
                model = load_backbones(keras_backend.build(plan), plan)
            finally:
                keras.config.set_dtype_policy(previous)
        return _keras.run(plan, model, dataset, train, data, cbs, **kwargs)

"""The torch training loop: the search's hot path.

Each epoch runs over the batches of ``_batches`` (in-memory tensors, a seeded order, augmentation as tensor
ops; ``_stream`` for images memory-mapped from disk, read by a background thread) and counts the loss and
metrics of ``_metrics`` (on the logits where the model's last activation can be set aside), validates, and
keeps the best epoch's weights; the optimizers follow Keras 3's defaults.

Model, data, augmentation and metrics live on ``train.device``. The losses and counts of an epoch stay there
and are read once, at its end; a non-finite loss is caught before its step on the CPU (where reading it costs
nothing), and on an accelerator every ``CHECK_EVERY`` steps, so the device never waits for the host between
steps (the run stops there, its weights spoilt by the few steps since). The model is handed back on the CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import MappedImages
from ..errors import TrainError
from ..spec import Augment, DataSpec, TrainSpec
from ._augment import Augmenter
from ._batches import Batches, eval_batch_size, normalization, to_labels, to_tensor
from ._callbacks import CallbackList
from ._checkpoint import checkpoint_failure
from ._device import resolve_device
from ._metrics import EPSILON, evaluate, logits_mode, make_correct, make_loss, sum_dtype
from ._result import NonFiniteLoss, TrainResult
from ._schedule import LrSchedule, Monitor, out_of_time
from ._speed import compile_errors, compile_failure, compiled, use_channels_last
from ._stages import StageRunner, stage_plans
from ._stream import StreamBatches, normalizer, stream_eval_batch_size

CHECKPOINT = "best.pt"

CHECK_EVERY = 50  # steps between looks at the losses on an accelerator (each one a wait for the device)
CPU_CHECK_EVERY = 1  # every step: reading a loss on the CPU costs nothing


def first_non_finite(losses: torch.Tensor, lo: int, hi: int) -> tuple[int, float] | None:
    """(step, value) of the first non-finite loss among ``losses[lo:hi]``, or None: one read of the device."""
    bad = ~torch.isfinite(losses[lo:hi])
    if not bool(bad.any()):
        return None
    step = lo + int(bad.nonzero()[0, 0])
    return step, float(losses[step])


def make_optimizer(params: list[nn.Parameter], train: TrainSpec) -> tuple[torch.optim.Optimizer, float]:
    """The optimizer with Keras 3's defaults where torch's differ, and Keras' decoupled weight decay.

    adam/adamw: betas (0.9, 0.999), epsilon 1e-7; weight decay ``p -= lr * wd * p`` before the update, as
    Keras applies ``weight_decay`` in every optimizer (torch's AdamW does exactly that). sgd: momentum and
    nesterov as given. rmsprop: rho 0.9, epsilon 1e-7 (torch: alpha 0.99, eps 1e-8). For sgd and rmsprop the
    decoupled decay is applied by the loop (the returned float; 0 when the optimizer does it itself).
    """
    o = train.optimizer
    if o.name in ("adam", "adamw"):
        wd = o.weight_decay
        return torch.optim.AdamW(params, lr=o.lr, betas=(0.9, 0.999), eps=EPSILON, weight_decay=wd), 0.0
    if o.name == "sgd":
        sgd = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0)
        return sgd, o.weight_decay
    return torch.optim.RMSprop(params, lr=o.lr, alpha=0.9, eps=EPSILON, momentum=o.momentum), o.weight_decay


def _save(state: dict[str, torch.Tensor], folder: Path, meta: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(state, tmp)
        tmp.replace(path)  # never a half-written best.pt
        (folder / "best.json").write_text(json.dumps(meta, indent=2) + "\n")
    except (OSError, RuntimeError) as e:  # a full disk, mostly
        tmp.unlink(missing_ok=True)
        raise checkpoint_failure(e, path, sum(t.numel() * t.element_size() for t in state.values())) from None
    return path


def unfreeze(model: nn.Module, names: tuple[str, ...]) -> None:
    """Unfreeze the layers a stage names (specdsl's model: :meth:`SpecModel.freeze`)."""
    if not names:
        return
    freeze = getattr(model, "freeze", None)
    if freeze is None:
        raise TrainError(
            f"train.stages unfreezes layers, which needs the model specdsl builds, but got a "
            f"{type(model).__name__}; leave `model=` out of fit()."
        )
    freeze(list(names), frozen=False)


def _autocast(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """The context a forward pass runs in: nothing for fp32, autocast to bf16 or fp16 otherwise."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def _compiling(on: bool):
    """torch.compile's failures inside the block as one TrainError (when ``train.compile`` is on)."""
    if not on:
        yield
        return
    try:
        yield
    except compile_errors() as e:
        raise compile_failure(e) from None


def run(
    plan: Any,
    model: nn.Module,
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
    """Train ``model`` on ``dataset`` as :func:`specdsl.train.fit` describes (which checked the arguments)."""
    start = time.perf_counter()
    device = resolve_device(train.device)
    torch.manual_seed(train.seed)
    shuffle = torch.Generator().manual_seed(train.seed)
    augment_gen = torch.Generator().manual_seed(train.seed + 1)

    normalize = data.normalize if data is not None else "unit"
    scale, offset = normalization(dataset.x_train, normalize)
    augment = Augmenter(
        data.augment if data is not None else Augment(),
        augment_gen,
        torch.tensor(offset, dtype=torch.float32, device=device),
        torch.tensor(255 * scale + offset, dtype=torch.float32, device=device),
    )
    # the model is handed back in the default format
    channels_last = use_channels_last(train.channels_last, device.type, train.precision)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # memory-mapped images (data.storage: disk) are read a batch at a time, normalized on the device
    prepare = normalizer(scale, offset, device) if isinstance(dataset.x_train, MappedImages) else None

    def split_images(x: Any) -> Any:
        return x if prepare is not None else to_tensor(x, scale, offset).to(device)

    x_val = split_images(dataset.x_val)
    y_val = to_labels(dataset.y_val).to(device)
    batches: Batches | StreamBatches
    if prepare is not None:
        batches = StreamBatches(
            dataset.x_train, dataset.y_train, train.batch_size, shuffle, augment, fmt, prepare, device
        )
    else:
        batches = Batches(
            to_tensor(dataset.x_train, scale, offset).to(device),
            to_labels(dataset.y_train).to(device),
            train.batch_size,
            shuffle,
            augment,
            fmt,
        )
    n = len(batches.y)
    steps = len(batches)
    eval_bs = eval_batch_size(plan, train.batch_size)
    if prepare is not None:  # each evaluation batch is read into memory: bound its images too
        eval_bs = stream_eval_batch_size(eval_bs, train.batch_size, dataset.image_shape)
    has_val = len(y_val) > 0

    model.to(device=device, memory_format=fmt)
    stages = StageRunner(stage_plans(plan, train), epochs)
    staged = bool(train.stages)
    restore = train.early_stopping.restore_best if train.early_stopping is not None else True
    batch_logs = bool(callbacks.batches)
    autocast = _autocast(device, train.precision)
    # fp16's narrow range needs the loss scaled up before backward (and the step skipped on an overflow)
    scaler = torch.amp.GradScaler(device.type) if train.precision == "fp16" else None
    every = CPU_CHECK_EVERY if device.type == "cpu" else CHECK_EVERY
    sizes = torch.tensor([hi - lo for lo, hi in batches.bounds], dtype=sum_dtype(device), device=device)
    losses = torch.empty(steps, dtype=torch.float32, device=device)

    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint: Path | None = None
    train_seconds = 0.0
    stop_reason = None
    info.update(
        steps_per_epoch=steps,
        model=model,
        device=str(device),
        precision=train.precision,
        channels_last=channels_last,
        compile=train.compile,
        normalization={"scale": scale.tolist(), "offset": offset.tolist()},
    )
    model.train()
    callbacks.train_begin(info)

    with logits_mode(model, plan) as logits, _compiling(train.compile):
        loss_fn = make_loss(train, logits)
        correct_fn = make_correct(train, logits)
        # compiled once its last activation is set aside; evaluation runs the model itself (same parameters)
        forward = compiled(model) if train.compile else model
        for epoch in range(epochs):
            if stages.finished:  # the last stage ended early
                break
            stage = stages.advance(epoch)
            if stage is not None:  # a fresh optimizer over what trains now, the schedule from its start
                unfreeze(model, stage.unfreeze)
                params = [p for p in model.parameters() if p.requires_grad]
                optimizer, decay = make_optimizer(params, stage.train)
                schedule = LrSchedule(train.schedule, stage.optimizer.lr, stages.span())
                monitor.wait = 0
            callbacks.epoch_begin(epoch)
            t0 = time.perf_counter()
            e = stages.local
            lr = schedule.epoch_lr(e)
            warm = schedule.in_warmup(e)
            for group in optimizer.param_groups:
                group["lr"] = lr
            counts: dict[str, torch.Tensor] = {}
            seen = 0
            checked = 0
            for step, (xb, yb) in enumerate(batches.epoch()):
                if warm:
                    lr = schedule.step_lr(e, step, steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                with autocast():
                    out = forward(xb)
                out = out.float()
                loss = loss_fn(out, yb)
                losses[step] = loss.detach()
                if every == 1:  # on the CPU a loss is read where it lies, before the step: the weights stay
                    if not math.isfinite(value := loss.item()):
                        raise NonFiniteLoss(value, epoch=epoch, batch=step, epochs=epochs, steps=steps, lr=lr)
                elif step + 1 - checked >= every or step == steps - 1:
                    bad = first_non_finite(losses, checked, step + 1)
                    if bad is not None:
                        raise NonFiniteLoss(
                            bad[1], epoch=epoch, batch=bad[0], epochs=epochs, steps=steps, lr=lr
                        )
                    checked = step + 1
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
                if decay:
                    with torch.no_grad():
                        torch._foreach_mul_(params, 1.0 - lr * decay)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                seen += len(yb)
                with torch.no_grad():
                    for k, v in correct_fn(out.detach(), yb).items():
                        counts[k] = counts[k] + v if k in counts else v
                if batch_logs:
                    done = losses[: step + 1].to(sizes.dtype) @ sizes[: step + 1]
                    running = {"loss": float(done) / seen, **{k: int(v) / seen for k, v in counts.items()}}
                    callbacks.batch_end(step, running)
            sums = torch.stack(
                [losses.to(sizes.dtype) @ sizes, *(v.to(sizes.dtype) for v in counts.values())]
            )
            read = sums.tolist()  # the epoch's one read of the device
            t_train = time.perf_counter() - t0
            train_seconds += t_train
            logs: dict[str, float] = {"loss": read[0] / n}
            logs.update({k: int(v) / n for k, v in zip(counts, read[1:], strict=True)})
            if has_val:
                val = evaluate(model, x_val, y_val, loss_fn, correct_fn, eval_bs, autocast, prepare)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = float(lr)
            logs["epoch_seconds"] = time.perf_counter() - t0
            logs["images_per_s"] = n / t_train if t_train > 0 else 0.0
            if staged:
                logs["stage"] = float(stages.stage.number)
            asked_to_stop = callbacks.epoch_end(epoch, logs)
            history.append(logs)
            value = logs.get(monitor.monitor, math.nan)
            improved, stop = monitor.update(epoch, value)
            schedule.end_epoch(value, monitor.mode)
            if improved:
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if checkpoint_dir is not None:
                    checkpoint = _save(
                        best_state,
                        checkpoint_dir,
                        {
                            "epoch": epoch,
                            "monitor": monitor.monitor,
                            "value": value,
                            "spec": plan.spec.file,
                        },
                    )
            if stop and not stages.end_stage():
                stop_reason = "early_stopping"
                break
            if asked_to_stop and epoch < epochs - 1 and not stages.finished:
                stop_reason = "callback"
                break
            now = time.perf_counter()
            if out_of_time(now - start, now - t0, max_seconds) and epoch < epochs - 1 and not stages.finished:
                stop_reason = "max_seconds"
                break

        if restore and best_state is not None:
            model.load_state_dict(best_state)
        test = None
        if len(dataset.y_test):
            y_test = to_labels(dataset.y_test).to(device)
            test = evaluate(
                model, split_images(dataset.x_test), y_test, loss_fn, correct_fn, eval_bs, autocast, prepare
            )
    model.to(device="cpu", memory_format=torch.contiguous_format)
    model.eval()
    best_epoch = monitor.best_epoch if monitor.best_epoch >= 0 else len(history) - 1
    seen_total = n * len(history)
    result = TrainResult(
        history=history,
        best_epoch=best_epoch,
        best=dict(history[best_epoch]),
        test=test,
        model=model,
        seconds=time.perf_counter() - start,
        images_per_s=seen_total / train_seconds if train_seconds > 0 else 0.0,
        checkpoint=checkpoint,
        stopped_early=stop_reason is not None,
        stop_reason=stop_reason,
        monitor=monitor.monitor,
        backend="torch",
        device=str(device),
        precision=train.precision,
        info=info,
    )
    callbacks.train_end(result)
    return result

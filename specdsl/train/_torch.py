"""The torch training loop: the search's hot path.

Each epoch runs over the batches of ``_batches`` (in-memory tensors, a seeded order, augmentation as tensor
ops) and counts the loss and metrics of ``_metrics`` (on the logits where the model's last activation can be
set aside), validates, and keeps the best epoch's weights; the optimizers follow Keras 3's defaults.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..spec import Augment, DataSpec, TrainSpec
from ._augment import Augmenter
from ._batches import Batches, eval_batch_size, normalization, to_labels, to_tensor
from ._callbacks import CallbackList
from ._checkpoint import checkpoint_failure
from ._metrics import EPSILON, evaluate, logits_mode, make_correct, make_loss
from ._result import NonFiniteLoss, TrainResult
from ._schedule import LrSchedule, Monitor

CHECKPOINT = "best.pt"

# channels_last (NHWC strides for the model's 4-D weights and the batches) was measured on this 2-core CPU
# with torch 2.13 on the MNIST lab CNN at batch 128, NCHW and channels_last steps interleaved 40 times on a
# shared machine: best step 77 ms instead of 106 ms with 2 threads (median 151 vs 171), 120 vs 152 ms with
# 1 thread (median 138 vs 171). So training runs in it; the model is handed back in the default format.
CHANNELS_LAST = True


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
    torch.manual_seed(train.seed)
    shuffle = torch.Generator().manual_seed(train.seed)
    augment_gen = torch.Generator().manual_seed(train.seed + 1)

    normalize = data.normalize if data is not None else "unit"
    scale, offset = normalization(dataset.x_train, normalize)
    x_val = to_tensor(dataset.x_val, scale, offset)
    y_val = to_labels(dataset.y_val)
    augment = Augmenter(
        data.augment if data is not None else Augment(),
        augment_gen,
        torch.tensor(offset, dtype=torch.float32),
        torch.tensor(255 * scale + offset, dtype=torch.float32),
    )
    fmt = torch.channels_last if CHANNELS_LAST else torch.contiguous_format
    batches = Batches(
        to_tensor(dataset.x_train, scale, offset),
        to_labels(dataset.y_train),
        train.batch_size,
        shuffle,
        augment,
        fmt,
    )
    n = len(batches.y)
    steps = len(batches)
    eval_bs = eval_batch_size(plan, train.batch_size)
    has_val = len(y_val) > 0

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, decay = make_optimizer(params, train)
    schedule = LrSchedule(train.schedule, train.optimizer.lr, epochs)
    restore = train.early_stopping.restore_best if train.early_stopping is not None else True
    batch_logs = bool(callbacks.batches)

    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    checkpoint: Path | None = None
    train_seconds = 0.0
    stop_reason = None
    model.to(memory_format=fmt)
    info.update(
        steps_per_epoch=steps, model=model, normalization={"scale": scale.tolist(), "offset": offset.tolist()}
    )
    model.train()
    callbacks.train_begin(info)

    with logits_mode(model, plan) as logits:
        loss_fn = make_loss(train, logits)
        correct_fn = make_correct(train, logits)
        for epoch in range(epochs):
            callbacks.epoch_begin(epoch)
            t0 = time.perf_counter()
            lr = schedule.epoch_lr(epoch)
            warm = schedule.in_warmup(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = 0.0
            counts: dict[str, Any] = {}
            seen = 0
            for step, (xb, yb) in enumerate(batches.epoch()):
                if warm:
                    lr = schedule.step_lr(epoch, step, steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                out = model(xb)
                loss = loss_fn(out, yb)
                value = loss.item()
                if not math.isfinite(value):  # before the step: the weights stay as they were
                    raise NonFiniteLoss(value, epoch=epoch, batch=step, epochs=epochs, steps=steps, lr=lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if decay:
                    with torch.no_grad():
                        torch._foreach_mul_(params, 1.0 - lr * decay)
                optimizer.step()
                b = len(yb)
                loss_sum += value * b
                seen += b
                with torch.no_grad():
                    for k, v in correct_fn(out.detach(), yb).items():
                        counts[k] = counts[k] + v if k in counts else v
                if batch_logs:
                    running = {"loss": loss_sum / seen, **{k: int(v) / seen for k, v in counts.items()}}
                    callbacks.batch_end(step, running)
            t_train = time.perf_counter() - t0
            train_seconds += t_train
            logs: dict[str, float] = {"loss": loss_sum / n}
            logs.update({k: int(v) / n for k, v in counts.items()})
            if has_val:
                val = evaluate(model, x_val, y_val, loss_fn, correct_fn, eval_bs)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = float(lr)
            logs["epoch_seconds"] = time.perf_counter() - t0
            logs["images_per_s"] = n / t_train if t_train > 0 else 0.0
            callbacks.epoch_end(epoch, logs)
            history.append(logs)
            value = logs.get(monitor.monitor, math.nan)
            improved, stop = monitor.update(epoch, value)
            schedule.end_epoch(value, monitor.mode)
            if improved:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
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
            if stop:
                stop_reason = "early_stopping"
                break
            if max_seconds is not None and time.perf_counter() - start >= max_seconds and epoch < epochs - 1:
                stop_reason = "max_seconds"
                break

        if restore and best_state is not None:
            model.load_state_dict(best_state)
        test = None
        if len(dataset.y_test):
            x_test, y_test = to_tensor(dataset.x_test, scale, offset), to_labels(dataset.y_test)
            test = evaluate(model, x_test, y_test, loss_fn, correct_fn, eval_bs)
    model.to(memory_format=torch.contiguous_format)
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
        info=info,
    )
    callbacks.train_end(result)
    return result

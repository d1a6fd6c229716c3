"""The torch training loop: the search's hot path.

Whole epochs are batched from in-memory tensors: the uint8 NHWC arrays become one float32 NCHW tensor (normalized)
once, each epoch is a seeded ``randperm`` and each batch an index gather from it; no DataLoader, no per-example
Python. Augmentation is a few tensor ops per batch (``_augment``).

Loss: the model's last layer applies softmax (or sigmoid) as in Keras. When the plan ends in one and the built
model holds it as a module (specdsl's torch backend does), training runs the model with that module swapped for
identity and computes the loss on the logits (``F.cross_entropy`` / ``binary_cross_entropy_with_logits``: stable,
no clamping); the module is put back before the model is returned. Otherwise the loss is computed from the
probabilities, clipped to [1e-7, 1 - 1e-7] as Keras does. Both give Keras' values wherever no probability of a
true class falls below 1e-7.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..spec import Augment, DataSpec, TrainSpec
from ._augment import Augmenter
from ._callbacks import CallbackList
from ._result import NonFiniteLoss, TrainResult
from ._schedule import LrSchedule, Monitor

EPSILON = 1e-7  # keras.config.epsilon()
EVAL_BYTES = 256 * 1024**2  # activation memory one evaluation batch may take
CHECKPOINT = "best.pt"

# channels_last (NHWC strides for the model's 4-D weights and the batches) was measured on this 2-core CPU with
# torch 2.13 on the MNIST lab CNN at batch 128, NCHW and channels_last steps interleaved 40 times on a shared
# machine: best step 77 ms instead of 106 ms with 2 threads (median 151 vs 171), 120 vs 152 ms with 1 thread
# (median 138 vs 171). So training runs in it; the model is handed back in the default format.
CHANNELS_LAST = True


# ---------------------------------------------------------------------------------------------------------------
# data


def normalization(x_train: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per channel with ``normalized = pixel * scale + offset``: unit -> [0, 1], none -> [0, 255],
    standard -> mean 0 and std 1 per channel over the training images."""
    c = x_train.shape[-1]
    if mode == "none":
        return np.ones(c), np.zeros(c)
    if mode == "unit":
        return np.full(c, 1 / 255), np.zeros(c)
    flat = x_train.reshape(-1, c).astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    std = np.where(std > 0, std, 1.0)
    return 1 / std, -mean / std


def to_tensor(x: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> normalized float32 NCHW, contiguous (in chunks, so no float64 copy of the whole set)."""
    n, h, w, c = x.shape
    out = torch.empty((n, c, h, w), dtype=torch.float32)
    s = torch.tensor(scale, dtype=torch.float32).view(1, c, 1, 1)
    o = torch.tensor(offset, dtype=torch.float32).view(1, c, 1, 1)
    for lo in range(0, n, 8192):
        chunk = torch.from_numpy(np.ascontiguousarray(x[lo : lo + 8192])).permute(0, 3, 1, 2)
        torch.addcmul(o, chunk.float(), s, out=out[lo : lo + 8192])
    return out


# ---------------------------------------------------------------------------------------------------------------
# loss, metrics


def _final_activation_slot(model: nn.Module, plan: Any) -> tuple[nn.Module, str, nn.Module] | None:
    """(parent module, attribute, the softmax/sigmoid module) holding the output's activation, or None."""
    names = getattr(model, "names", None)
    if not isinstance(names, dict) or plan is None:
        return None
    out = plan[plan.outputs[0]]
    module = getattr(model, names.get(out.name, ""), None)
    kinds = (nn.Softmax, nn.Sigmoid)
    if out.kind == "activation" and isinstance(module, kinds):
        return model, names[out.name], module
    act = getattr(module, "act", None)
    if isinstance(act, kinds):
        return module, "act", act
    return None


@contextlib.contextmanager
def logits_mode(model: nn.Module, plan: Any) -> Iterator[str | None]:
    """Within the block the model outputs logits (yields "softmax"/"sigmoid"), or, when its last activation is not
    a module we can find, probabilities as usual (yields None)."""
    slot = _final_activation_slot(model, plan)
    if slot is None:
        yield None
        return
    parent, attr, act = slot
    setattr(parent, attr, nn.Identity())
    try:
        yield "softmax" if isinstance(act, nn.Softmax) else "sigmoid"
    finally:
        setattr(parent, attr, act)


def make_loss(train: TrainSpec, logits: str | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss(output, labels) with labels as int64 class indices; the mean over the batch as Keras reports it."""
    ls = train.label_smoothing
    if train.loss == "binary_crossentropy":

        def binary(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            t = y.to(out.dtype).view(-1, 1)
            if ls:
                t = t * (1 - ls) + 0.5 * ls
            if logits:
                return F.binary_cross_entropy_with_logits(out, t)
            p = out.clamp(EPSILON, 1 - EPSILON)
            return -(t * torch.log(p) + (1 - t) * torch.log1p(-p)).mean()

        return binary

    if logits:
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=ls)

    def categorical(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logp = torch.log(out.clamp(EPSILON, 1 - EPSILON))
        loss = F.nll_loss(logp, y)
        if ls:
            loss = (1 - ls) * loss - ls * logp.mean(1).mean()
        return loss

    return categorical


def make_correct(train: TrainSpec, logits: str | None) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """Counts of correct predictions in a batch, per metric (tensors, so no sync per batch)."""
    metrics = train.metrics
    if train.loss == "binary_crossentropy":
        threshold = 0.0 if logits else 0.5  # sigmoid(z) > 0.5 <=> z > 0

        def binary(out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"accuracy": ((out[:, 0] > threshold) == y.bool()).sum()} if "accuracy" in metrics else {}

        return binary

    def categorical(out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        counts = {}
        if "accuracy" in metrics:
            counts["accuracy"] = (out.argmax(1) == y).sum()
        if "top5_accuracy" in metrics:
            counts["top5_accuracy"] = (out.topk(5, 1).indices == y.view(-1, 1)).any(1).sum()
        return counts

    return categorical


# ---------------------------------------------------------------------------------------------------------------
# optimizers


def make_optimizer(params: list[nn.Parameter], train: TrainSpec) -> tuple[torch.optim.Optimizer, float]:
    """The optimizer with Keras 3's defaults where torch's differ, and Keras' decoupled weight decay.

    adam/adamw: betas (0.9, 0.999), epsilon 1e-7; weight decay ``p -= lr * wd * p`` before the update, as Keras
    applies ``weight_decay`` in every optimizer (torch's AdamW does exactly that). sgd: momentum and nesterov as
    given. rmsprop: rho 0.9, epsilon 1e-7 (torch: alpha 0.99, eps 1e-8). For sgd and rmsprop the decoupled decay is
    applied by the loop (the returned float; 0 when the optimizer does it itself).
    """
    o = train.optimizer
    if o.name in ("adam", "adamw"):
        return torch.optim.AdamW(params, lr=o.lr, betas=(0.9, 0.999), eps=EPSILON, weight_decay=o.weight_decay), 0.0
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov and o.momentum > 0), o.weight_decay
    return torch.optim.RMSprop(params, lr=o.lr, alpha=0.9, eps=EPSILON, momentum=o.momentum), o.weight_decay


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def eval_batch_size(plan: Any, batch_size: int) -> int:
    """Large evaluation batches, bounded by the activation memory the plan says one example takes."""
    per = max(getattr(plan, "activation_bytes", 0) or 1, 1)
    return int(max(batch_size, min(2048, EVAL_BYTES // per)))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, correct_fn, batch: int) -> dict[str, float]:
    """Loss and metrics over a whole split, in inference mode (dropout off, batchnorm statistics used)."""
    was_training = model.training
    model.eval()
    n = len(y)
    total = 0.0
    counts: dict[str, Any] = {}
    with torch.inference_mode():
        for lo in range(0, n, batch):
            xb, yb = x[lo : lo + batch], y[lo : lo + batch]
            out = model(xb)
            total += float(loss_fn(out, yb)) * len(yb)
            for k, v in correct_fn(out, yb).items():
                counts[k] = counts.get(k, 0) + int(v)
    model.train(was_training)
    logs = {"loss": total / max(n, 1)}
    logs.update({k: v / max(n, 1) for k, v in counts.items()})
    return logs


# ---------------------------------------------------------------------------------------------------------------
# the loop


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[lo, hi) of each batch; a last batch of one example joins the one before (batchnorm cannot train on one)."""
    bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _save(state: dict[str, torch.Tensor], folder: Path, meta: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(state, tmp)
        tmp.replace(path)  # never a half-written best.pt
        (folder / "best.json").write_text(json.dumps(meta, indent=2) + "\n")
    except (OSError, RuntimeError) as e:  # a full disk, mostly
        from ._fit import checkpoint_failure

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
    start = time.perf_counter()
    torch.manual_seed(train.seed)
    shuffle = torch.Generator().manual_seed(train.seed)
    augment_gen = torch.Generator().manual_seed(train.seed + 1)

    normalize = data.normalize if data is not None else "unit"
    scale, offset = normalization(dataset.x_train, normalize)
    x_train = to_tensor(dataset.x_train, scale, offset)
    y_train = torch.from_numpy(np.ascontiguousarray(dataset.y_train, dtype=np.int64))
    x_val = to_tensor(dataset.x_val, scale, offset)
    y_val = torch.from_numpy(np.ascontiguousarray(dataset.y_val, dtype=np.int64))
    augment = Augmenter(
        data.augment if data is not None else Augment(), augment_gen,
        torch.tensor(offset, dtype=torch.float32), torch.tensor(255 * scale + offset, dtype=torch.float32),
    )
    n = len(y_train)
    bounds = _batches(n, train.batch_size)
    steps = len(bounds)
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
    fmt = torch.channels_last if CHANNELS_LAST else torch.contiguous_format
    model.to(memory_format=fmt)
    info.update(steps_per_epoch=steps, model=model,
                normalization={"scale": scale.tolist(), "offset": offset.tolist()})
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
            perm = torch.randperm(n, generator=shuffle)
            loss_sum = 0.0
            counts: dict[str, Any] = {}
            seen = 0
            for step, (lo, hi) in enumerate(bounds):
                if warm:
                    lr = schedule.step_lr(epoch, step, steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                idx = perm[lo:hi]
                xb = x_train[idx]
                yb = y_train[idx]
                if augment.active:
                    xb = augment(xb)
                xb = xb.contiguous(memory_format=fmt)  # free for one channel: NCHW and NHWC strides agree
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
                b = hi - lo
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
                logs.update({f"val_{k}": v for k, v in evaluate(model, x_val, y_val, loss_fn, correct_fn, eval_bs).items()})
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
                    checkpoint = _save(best_state, checkpoint_dir, {
                        "epoch": epoch, "monitor": monitor.monitor, "value": value, "spec": plan.spec.file,
                    })
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
            x_test = to_tensor(dataset.x_test, scale, offset)
            y_test = torch.from_numpy(np.ascontiguousarray(dataset.y_test, dtype=np.int64))
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


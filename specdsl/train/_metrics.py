"""The torch loop's loss and metrics, and the evaluation of a whole split.

Loss: the model's last layer applies softmax (or sigmoid) as in Keras. When the plan ends in one and the built
model holds it as a module (specdsl's torch backend does), training runs the model with that module swapped
for identity and computes the loss on the logits (``F.cross_entropy`` / ``binary_cross_entropy_with_logits``:
stable, no clamping); the module is put back before the model is returned. Otherwise the loss is computed from
the probabilities, clipped to [1e-7, 1 - 1e-7] as Keras does. Both give Keras' values wherever no probability
of a true class falls below 1e-7.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import TrainSpec

EPSILON = 1e-7  # keras.config.epsilon()


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
    """Within the block the model outputs logits (yields "softmax"/"sigmoid"), or, when its last activation is
    not a module we can find, probabilities as usual (yields None)."""
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
    """loss(output, labels) with labels as int64 class indices; the mean over the batch, as Keras reports
    it."""
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


def make_correct(
    train: TrainSpec, logits: str | None
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
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


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype sums of losses are kept in on ``device``: float64, but float32 on MPS (which has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable,
    correct_fn: Callable,
    batch: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    prepare: Callable[[Any], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Loss and metrics over a whole split, in inference mode (dropout off, batchnorm statistics used); the sums
    stay on the labels' device and are read once. ``autocast`` gives the precision's context for the forward;
    ``prepare`` turns each slice of ``x`` into the model's input (memory-mapped images: read and normalized)."""
    was_training = model.training
    model.eval()
    n = len(y)
    total = torch.zeros((), dtype=sum_dtype(y.device), device=y.device)
    counts: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for lo in range(0, n, batch):
            xb, yb = x[lo : lo + batch], y[lo : lo + batch]
            if prepare is not None:
                xb = prepare(xb)
            with autocast():
                out = model(xb)
            out = out.float()
            total += loss_fn(out, yb).to(total.dtype) * len(yb)
            for k, v in correct_fn(out, yb).items():
                counts[k] = counts[k] + v if k in counts else v
    model.train(was_training)
    logs = {"loss": float(total) / max(n, 1)}
    logs.update({k: int(v) / max(n, 1) for k, v in counts.items()})
    return logs

"""The torch loop's data: in-memory tensors and the batches of every epoch.

The uint8 NHWC arrays become one float32 NCHW tensor (normalized) once; each epoch is a seeded ``randperm``
and each batch an index gather from it, augmented with a few tensor ops (``_augment``); no DataLoader, no
per-example Python. ``normalization`` and ``eval_batch_size`` serve the Keras loop too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ._augment import Augmenter

EVAL_BYTES = 256 * 1024**2  # activation memory one evaluation batch may take


def normalization(x_train: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per channel with ``normalized = pixel * scale + offset``: unit -> [0, 1],
    none -> [0, 255], standard -> mean 0 and std 1 per channel over the training images (memory-mapped ones,
    :class:`~specdsl.data.MappedImages`, read a chunk at a time)."""
    c = x_train.shape[-1]
    if mode == "none":
        return np.ones(c), np.zeros(c)
    if mode == "unit":
        return np.full(c, 1 / 255), np.zeros(c)
    if isinstance(x_train, np.ndarray):
        flat = x_train.reshape(-1, c).astype(np.float64)
        mean, std = flat.mean(0), flat.std(0)
    else:  # two passes, as numpy's std takes them
        n = math.prod(x_train.shape[:-1])
        mean = sum(chunk.reshape(-1, c).sum(0, dtype=np.float64) for chunk in x_train.chunks()) / n
        squares = sum(((chunk.reshape(-1, c) - mean) ** 2).sum(0) for chunk in x_train.chunks())
        std = np.sqrt(squares / n)
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


def to_labels(y: np.ndarray) -> torch.Tensor:
    """Class indices as an int64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[lo, hi) of each batch; a last batch of one example joins the one before (batchnorm cannot train on
    one)."""
    bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def eval_batch_size(plan: Any, batch_size: int) -> int:
    """Large evaluation batches, bounded by the activation memory the plan says one example takes."""
    per = max(getattr(plan, "activation_bytes", 0) or 1, 1)
    return int(max(batch_size, min(2048, EVAL_BYTES // per)))


class Batches:
    """The shuffled, augmented training batches of one epoch after another.

    ``x``: the normalized NCHW training tensor, ``y``: its int64 labels; ``generator`` draws each epoch's
    order, ``augment`` is applied when it is active, and every batch comes in ``memory_format``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
        augment: Augmenter,
        memory_format: torch.memory_format,
    ):
        self.x, self.y = x, y
        self.bounds = batch_bounds(len(y), batch_size)
        self.generator = generator
        self.augment = augment
        self.memory_format = memory_format

    def __len__(self) -> int:
        return len(self.bounds)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of each batch of the next epoch, in a new random order."""
        perm = torch.randperm(len(self.y), generator=self.generator).to(self.y.device)
        for lo, hi in self.bounds:
            idx = perm[lo:hi]
            xb = self.x[idx]
            yb = self.y[idx]
            if self.augment.active:
                xb = self.augment(xb)
            # free for one channel: NCHW and NHWC strides agree
            yield xb.contiguous(memory_format=self.memory_format), yb

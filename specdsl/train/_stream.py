"""The torch loop's data when the images are memory-mapped from disk (``data.storage: disk``).

A background thread gathers each batch's uint8 rows from the map (read in file order, then put back in the
epoch's order) into a bounded queue while the model computes the batch before; on the device, each batch
becomes normalized float NCHW (channels_last strides for free: the rows are NHWC) and is augmented there. The
epoch's order and the augmentation draw from the same generators as the in-memory :class:`Batches`, so both
give the same batches. Nothing but a few batches of uint8 images is in memory at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ._augment import Augmenter
from ._batches import batch_bounds

PREFETCH = 3  # batches the loader may read ahead
EVAL_INPUT_BYTES = 64 * 1024**2  # the float32 images of one evaluation batch read from the map


def stream_eval_batch_size(eval_bs: int, batch_size: int, image_shape: tuple[int, ...]) -> int:
    """``eval_bs`` bounded so that one evaluation batch's float32 images take at most ``EVAL_INPUT_BYTES`` (never
    below the training batch): 248 images at 150x150x3, 2,048 at 32x32x3."""
    return max(batch_size, min(eval_bs, EVAL_INPUT_BYTES // (4 * int(np.prod(image_shape)))))


def normalizer(scale: np.ndarray, offset: np.ndarray, device: torch.device):
    """A function from uint8 NHWC images (an array, or a tensor on any device) to normalized float32 NCHW on
    ``device``."""
    c = len(scale)
    s = torch.tensor(scale, dtype=torch.float32, device=device).view(1, c, 1, 1)
    o = torch.tensor(offset, dtype=torch.float32, device=device).view(1, c, 1, 1)

    def normalize(x: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        x = x.to(device, non_blocking=True).permute(0, 3, 1, 2)
        return torch.addcmul(o, x.float(), s)

    return normalize


class StreamBatches:
    """The shuffled, augmented training batches of memory-mapped ``images`` (a :class:`~specdsl.data.MappedImages`)
    with int64 ``labels``, read by a background thread ``PREFETCH`` batches ahead; ``normalize`` is a
    :func:`normalizer`. ``y`` (the labels as a tensor) and ``bounds`` are :class:`Batches`'."""

    def __init__(
        self,
        images: Any,
        labels: np.ndarray,
        batch_size: int,
        generator: torch.Generator,
        augment: Augmenter,
        memory_format: torch.memory_format,
        normalize: Any,
        device: torch.device,
    ):
        self.images = images
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)
        self.y = torch.from_numpy(self.labels)
        self.bounds = batch_bounds(len(self.labels), batch_size)
        self.generator = generator
        self.augment = augment
        self.memory_format = memory_format
        self.normalize = normalize
        self.device = device
        self.pin = device.type == "cuda"

    def __len__(self) -> int:
        return len(self.bounds)

    def _read(self, perm: np.ndarray, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for lo, hi in self.bounds:
                rows = perm[lo:hi]
                x = torch.from_numpy(self.images.gather(rows))
                y = torch.from_numpy(self.labels[rows])
                if self.pin:
                    x, y = x.pin_memory(), y.pin_memory()
                while not stop.is_set():
                    try:
                        out.put((x, y), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the training thread, which raises it
            out.put(e)

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of each batch of the next epoch, in a new random order, on the device."""
        perm = torch.randperm(len(self.labels), generator=self.generator).numpy()
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        reader = threading.Thread(target=self._read, args=(perm, ready, stop), daemon=True)
        reader.start()
        try:
            for _ in self.bounds:
                item = ready.get()
                if isinstance(item, BaseException):
                    raise item
                x, y = item
                xb = self.normalize(x)
                if self.augment.active:
                    xb = self.augment(xb)
                yield xb.contiguous(memory_format=self.memory_format), y.to(self.device, non_blocking=True)
        finally:
            stop.set()
            reader.join()

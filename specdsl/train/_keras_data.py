"""The Keras loop's batches when they cannot be arrays handed to ``fit``: augmented training batches, and images
memory-mapped from disk (``data.storage: disk``), read a batch at a time.

:func:`batches_class` makes a ``keras.utils.PyDataset`` (the class is built when Keras is imported) over uint8
NHWC images (an array in memory or a :class:`~specdsl.data.MappedImages`, whose rows are read when indexed):
each batch is normalized as the in-memory arrays are (``x * scale + offset`` in float32), augmented with the torch
loop's augmentation when there is one, in an order drawn from a seeded numpy generator (a new one each epoch).
The same images in memory and on disk give the same batches. Validation and test images from disk go through
the same class, in order, so no split is read into memory whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def batches_class(keras: Any) -> type:
    class ImageBatches(keras.utils.PyDataset):
        """Batches of ``images`` (uint8 NHWC) normalized by ``scale``/``offset``, with ``labels`` as Keras' loss
        takes them; shuffled by ``seed`` (None: in order) and augmented by ``augment`` (None: not)."""

        def __init__(
            self,
            images: Any,
            labels: np.ndarray,
            batch_size: int,
            scale: np.ndarray,
            offset: np.ndarray,
            *,
            seed: int | None = None,
            augment: Any = None,
        ):
            super().__init__()
            self.images, self.labels, self.batch_size, self.augment = images, labels, batch_size, augment
            self.scale, self.offset = scale.astype(np.float32), offset.astype(np.float32)
            self.rng = np.random.default_rng(seed) if seed is not None else None
            self.order = self._order()

        def _order(self) -> np.ndarray:
            n = len(self.labels)
            return self.rng.permutation(n) if self.rng is not None else np.arange(n)

        def __len__(self) -> int:
            return math.ceil(len(self.labels) / self.batch_size)

        def __getitem__(self, i: int):
            idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
            if self.rng is None:  # in order: one slice, read forwards
                idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            xb = np.asarray(self.images[idx]).astype(np.float32) * self.scale + self.offset
            if self.augment is not None:
                import torch

                x = self.augment(torch.from_numpy(xb).permute(0, 3, 1, 2))
                xb = x.permute(0, 2, 3, 1).contiguous().numpy()
            return xb, self.labels[idx]

        def on_epoch_end(self) -> None:
            if self.rng is not None:
                self.order = self._order()

    return ImageBatches

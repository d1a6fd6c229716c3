"""Resizing (PIL, bilinear) and grayscale <-> RGB, on uint8 NHWC arrays."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor


def to_channels(x, channels: int):
    """Convert NHWC uint8 images to 1 or 3 channels; luma as PIL computes it (ITU-R 601-2)."""
    import numpy as np

    c = x.shape[-1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if c == 3 and channels == 1:
        rgb = x.astype(np.uint32)
        luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
        return luma.astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {c} channels to {channels}")


def resize(x, size: tuple[int, int]):
    """Resize NHWC uint8 images to ``size`` = (height, width) with PIL's bilinear filter."""
    import numpy as np
    from PIL import Image

    h, w = size
    n, _, _, c = x.shape
    if x.shape[1:3] == (h, w):
        return x
    out = np.empty((n, h, w, c), dtype=np.uint8)

    def work(lo: int) -> None:
        for i in range(lo, min(lo + 1024, n)):
            img = Image.fromarray(x[i, ..., 0] if c == 1 else x[i])
            out[i] = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR)).reshape(h, w, c)

    # PIL releases the GIL while resizing, so threads share the work across cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(work, range(0, n, 1024)))
    return out

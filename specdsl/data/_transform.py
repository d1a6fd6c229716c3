"""Resizing (PIL, bilinear) and grayscale <-> RGB, on uint8 NHWC arrays."""

from __future__ import annotations

import os

_BATCH = 2048


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
    """Resize NHWC uint8 images (1 or 3 channels) to ``size`` = (height, width) as PIL's bilinear filter does.

    PIL resamples separably, rows then columns, through an 8-bit intermediate. So a batch can be resized
    as one tall image (width pass: filters never cross rows) and then as one wide image (height pass:
    filters never cross columns), giving exactly what ``Image.resize`` gives image by image, far faster.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    h, w = size
    n, h0, w0, c = x.shape
    if (h0, w0) == (h, w):
        return x
    out = np.empty((n, h, w, c), dtype=np.uint8)

    def work(lo: int) -> None:
        b = x[lo : lo + _BATCH]
        k = len(b)
        t = _pil_resize(b.reshape(k * h0, w0, c), (k * h0, w))  # width pass on the images stacked vertically
        t = t.reshape(k, h0, w, c).transpose(1, 0, 2, 3).reshape(h0, k * w, c)
        t = _pil_resize(t, (h, k * w))  # height pass on the images side by side
        out[lo : lo + k] = t.reshape(h, k, w, c).transpose(1, 0, 2, 3)

    # PIL releases the GIL while resampling, so threads share the work across cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(work, range(0, n, _BATCH)))
    return out


def _pil_resize(a, size: tuple[int, int]):
    """One HWC uint8 array resized to ``size`` = (rows, cols) with PIL's bilinear filter."""
    import numpy as np
    from PIL import Image

    rows, cols = size
    if a.shape[:2] == (rows, cols):
        return a
    c = a.shape[2]
    img = Image.fromarray(np.ascontiguousarray(a[..., 0] if c == 1 else a))
    return np.asarray(img.resize((cols, rows), Image.Resampling.BILINEAR)).reshape(rows, cols, c)

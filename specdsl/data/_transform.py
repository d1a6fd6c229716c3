"""Resizing (PIL, bilinear; squashed, cropped or padded to the new aspect ratio) and grayscale <-> RGB, on uint8
NHWC arrays."""

from __future__ import annotations

import os

_BATCH = 2048
RESIZE_MODES = ("squash", "crop", "pad")


def fit_aspect(h0: int, w0: int, h: int, w: int, mode: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the rows and columns an ``h0`` x ``w0`` image loses (``crop``: the centre
    kept) or gains (``pad``: black around it) to take the aspect ratio of ``h`` x ``w``; all zero for ``squash``
    (the image is stretched). An odd difference puts the extra row or column at the bottom or right.

    >>> fit_aspect(4, 8, 2, 2, "crop"), fit_aspect(4, 8, 2, 2, "pad")
    ((0, 0, 2, 2), (2, 2, 0, 0))
    """
    if mode == "squash" or h0 * w == w0 * h:
        return 0, 0, 0, 0
    wider = w0 * h > h0 * w  # the image is wider than the target
    if mode == "crop":
        if wider:
            keep = max(1, round(h0 * w / h))
            return 0, 0, (w0 - keep) // 2, w0 - keep - (w0 - keep) // 2
        keep = max(1, round(w0 * h / w))
        return (h0 - keep) // 2, h0 - keep - (h0 - keep) // 2, 0, 0
    if wider:
        extra = round(w0 * h / w) - h0
        return extra // 2, extra - extra // 2, 0, 0
    extra = round(h0 * w / h) - w0
    return 0, 0, extra // 2, extra - extra // 2


def resize_to(x, size: tuple[int, int], mode: str):
    """NHWC images cropped or padded (black) to the aspect ratio of ``size`` (see :func:`fit_aspect`), then
    :func:`resize`-d to it; ``squash`` resizes only."""
    import numpy as np

    top, bottom, left, right = fit_aspect(x.shape[1], x.shape[2], *size, mode)
    if mode == "crop":
        x = x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]
    elif mode == "pad" and top + bottom + left + right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    return resize(np.ascontiguousarray(x), size)


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

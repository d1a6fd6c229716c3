"""Random augmentation of training batches as a few tensor ops per batch (torch, NCHW float).

Flips are a ``torch.where`` on a random per-image mask; rotation, shift and zoom are one affine warp
(``F.affine_grid`` + ``F.grid_sample``, bilinear, edges repeated as ImageDataGenerator's ``fill_mode="nearest"``);
brightness scales each image's pixel values by a factor in ``[1 - b, 1 + b]`` and clips to the pixel range.
Random crop pads with black and gathers each image's window with one index op; contrast scales about each
image's per-channel mean (as Keras' RandomContrast); saturation and hue are one 3x3 colour matrix per image (a
blend with the luma, a rotation about the grey axis in YIQ space), applied with one einsum; cutout blacks out one
rectangle per image (centred anywhere, clipped at the edges, as DeVries and Taylor's). Every draw comes from the
generator passed in (on the CPU, so a seed gives the same augmented batches on any device); the few numbers
drawn per batch go to the batch's device, where the images are transformed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..spec import Augment


def flip(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` with the images where ``mask`` is true mirrored along ``dim`` (3: left-right, 2: up-down)."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(dim), x)


def affine(x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
    """Rotate by ``angle`` (radians, counter-clockwise; one per image), shift by ``shift`` ((B, 2): fractions of
    width and height, positive moves the content right and down) and zoom by ``zoom`` (> 1 magnifies), about the
    image centre, as one bilinear resampling. Zero angle and shift with zoom 1 give the input back exactly."""
    b, _, h, w = x.shape
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.empty(b, 2, 3, dtype=x.dtype, device=x.device)
    # affine_grid maps output to input coordinates in [-1, 1] on each axis: rotate in pixel units (aspect kept)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = -2.0 * shift[:, 0]
    theta[:, 1, 2] = -2.0 * shift[:, 1]
    grid = F.affine_grid(theta, [b, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ITU-R 601 luma, and RGB -> YIQ (its inverse maps back): a hue rotation turns the I and Q axes
LUMA = (0.299, 0.587, 0.114)
YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def crop(x: torch.Tensor, offsets: torch.Tensor, pad: int, fill: torch.Tensor) -> torch.Tensor:
    """Each image padded by ``pad`` pixels of ``fill`` ((1, C, 1, 1)) on every side and cut back to its size at
    ``offsets`` ((B, 2) ints in [0, 2 * pad]: rows, columns; ``pad, pad`` gives the image back)."""
    b, _, h, w = x.shape
    padded = F.pad(x - fill, (pad, pad, pad, pad)) + fill
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (B, C, 2 pad + 1, 2 pad + 1, H, W), a view
    return windows[torch.arange(b, device=x.device), :, offsets[:, 0], offsets[:, 1]]


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each image's distance from its per-channel mean scaled by ``factor`` ((B,)); not clipped."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor.view(-1, 1, 1, 1) + mean


def colour_matrix(saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3): RGB -> RGB with saturation scaled by ``saturation`` (1 keeps it) and hue turned by ``hue``
    (radians): a blend with the luma, then a rotation of YIQ's chroma plane. Grey stays grey."""
    yiq = torch.tensor(YIQ, dtype=saturation.dtype, device=saturation.device)
    cos, sin = torch.cos(hue), torch.sin(hue)
    turn = torch.zeros(len(hue), 3, 3, dtype=hue.dtype, device=hue.device)
    turn[:, 0, 0] = 1.0
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    rotate = torch.linalg.inv(yiq) @ turn @ yiq
    luma = torch.tensor(LUMA, dtype=saturation.dtype, device=saturation.device).expand(3, 3)
    s = saturation.view(-1, 1, 1)
    blend = (1 - s) * luma + s * torch.eye(3, dtype=s.dtype, device=s.device)
    return rotate @ blend


def cutout(x: torch.Tensor, centres: torch.Tensor, size: tuple[int, int], fill: torch.Tensor) -> torch.Tensor:
    """``x`` with a ``size`` (rows, columns) rectangle set to ``fill`` in each image, its top left corner at
    ``centres - size // 2`` ((B, 2) ints: row, column), clipped at the image's edges."""
    _, _, h, w = x.shape
    top = centres[:, 0, None] - size[0] // 2
    left = centres[:, 1, None] - size[1] // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= top) & (rows < top + size[0])
    in_cols = (cols >= left) & (cols < left + size[1])
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return torch.where(mask, fill, x)


class Augmenter:
    """Applies a spec's ``augment:`` to batches. ``low``/``high`` are the pixel range after normalization, one
    value per channel ((C,) tensors), used by brightness to scale around black and clip."""

    def __init__(self, spec: Augment, generator: torch.Generator, low: torch.Tensor, high: torch.Tensor):
        self.spec = spec
        self.g = generator
        self.low = low.view(1, -1, 1, 1)
        self.high = high.view(1, -1, 1, 1)
        self.warps = spec.rotation > 0 or spec.shift > 0 or spec.zoom > 0

    @property
    def active(self) -> bool:
        s = self.spec
        return (
            s.flip != "none" or self.warps or s.brightness > 0 or s.crop > 0 or self.colours or s.cutout > 0
        )

    @property
    def colours(self) -> bool:
        s = self.spec
        return s.contrast > 0 or s.saturation > 0 or s.hue > 0

    def _ints(self, x: torch.Tensor, high: int, *shape: int) -> torch.Tensor:
        return torch.randint(high, (x.shape[0], *shape), generator=self.g).to(x.device, non_blocking=True)

    def _rand(self, x: torch.Tensor, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.g).to(x.device, non_blocking=True)

    def _uniform(self, x: torch.Tensor, bound: float, *shape: int) -> torch.Tensor:
        return (self._rand(x, x.shape[0], *shape) * 2.0 - 1.0) * bound

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        n = x.shape[0]
        if s.flip in ("horizontal", "both"):
            x = flip(x, self._rand(x, n) < 0.5, 3)
        if s.flip in ("vertical", "both"):
            x = flip(x, self._rand(x, n) < 0.5, 2)
        if self.warps:
            angle = self._uniform(x, math.radians(s.rotation))
            shift = self._uniform(x, s.shift, 2)
            zoom = 1.0 + self._uniform(x, s.zoom)
            x = affine(x, angle, shift, zoom)
        if s.crop > 0:
            x = crop(x, self._ints(x, 2 * s.crop + 1, 2), s.crop, self.low)
        if s.brightness > 0:
            factor = 1.0 + self._uniform(x, s.brightness).view(-1, 1, 1, 1)
            x = self._clip((x - self.low) * factor + self.low)
        if self.colours:
            x = self._colours(x)
        if s.cutout > 0:
            _, _, h, w = x.shape
            size = (max(1, round(s.cutout * h)), max(1, round(s.cutout * w)))
            centres = torch.stack([self._ints(x, h), self._ints(x, w)], dim=1)
            x = cutout(x, centres, size, self.low)
        return x

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(x, self.low), self.high)

    def _colours(self, x: torch.Tensor) -> torch.Tensor:
        """Contrast, then saturation and hue (RGB only), in pixel units scaled to [0, 1] per channel."""
        s = self.spec
        span = self.high - self.low
        u = (x - self.low) / span
        if s.contrast > 0:
            u = contrast(u, 1.0 + self._uniform(x, s.contrast)).clamp(0.0, 1.0)
        if (s.saturation > 0 or s.hue > 0) and x.shape[1] == 3:
            m = colour_matrix(1.0 + self._uniform(x, s.saturation), self._uniform(x, 2 * math.pi * s.hue))
            u = torch.einsum("bij,bjhw->bihw", m.to(u.dtype), u).clamp(0.0, 1.0)
        return u * span + self.low

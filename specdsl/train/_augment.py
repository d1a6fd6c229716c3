"""Random augmentation of training batches as a few tensor ops per batch (torch, NCHW float).

Flips are a ``torch.where`` on a random per-image mask; rotation, shift and zoom are one affine warp
(``F.affine_grid`` + ``F.grid_sample``, bilinear, edges repeated as ImageDataGenerator's ``fill_mode="nearest"``);
brightness scales each image's pixel values by a factor in ``[1 - b, 1 + b]`` and clips to the pixel range.
Every draw comes from the generator passed in (on the CPU, so a seed gives the same augmented batches on any
device); the few numbers drawn per batch go to the batch's device, where the images are transformed.
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
        return s.flip != "none" or self.warps or s.brightness > 0

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
        if s.brightness > 0:
            factor = 1.0 + self._uniform(x, s.brightness).view(-1, 1, 1, 1)
            x = torch.minimum(torch.maximum((x - self.low) * factor + self.low, self.low), self.high)
        return x

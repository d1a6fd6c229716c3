"""Batch augmentation as tensor ops: exact flips, identity warps, exact 90-degree rotation and 1-pixel shift."""

from __future__ import annotations

import math

import torch

from specdsl.spec import Augment
from specdsl.train._augment import Augmenter, affine, flip


def batch(n: int = 4, c: int = 1, h: int = 6, w: int = 6) -> torch.Tensor:
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w) / (n * c * h * w)


def test_flip_mirrors_exactly_where_the_mask_is_set():
    x = batch()
    mask = torch.tensor([True, False, True, False])
    out = flip(x, mask, 3)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[2], x[2].flip(-1))
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    assert torch.equal(flip(x, torch.ones(4, dtype=torch.bool), 2), x.flip(2))


def test_zero_rotation_and_shift_with_zoom_one_is_the_identity():
    x = batch(3, 3, 5, 7)
    zeros = torch.zeros(3)
    out = affine(x, zeros, torch.zeros(3, 2), torch.ones(3))
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


def test_ninety_degrees_is_rot90():
    x = batch(2, 2, 5, 5)
    out = affine(x, torch.full((2,), math.pi / 2), torch.zeros(2, 2), torch.ones(2))
    torch.testing.assert_close(out, torch.rot90(x, 1, (2, 3)), rtol=0, atol=1e-5)


def test_a_shift_of_one_pixel_moves_the_content_right_and_repeats_the_edge():
    x = batch(1, 1, 4, 8)
    out = affine(x, torch.zeros(1), torch.tensor([[1 / 8, 0.0]]), torch.ones(1))
    torch.testing.assert_close(out[..., 1:], x[..., :-1], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[..., 0], x[..., 0], rtol=0, atol=1e-6)  # fill_mode "nearest"


def test_zoom_in_magnifies_about_the_centre():
    # bilinear sampling reproduces a linear ramp exactly: zoom 2 halves its slope about the centre column
    w = 8
    x = torch.arange(w, dtype=torch.float32).expand(1, 1, 4, w).contiguous()
    out = affine(x, torch.zeros(1), torch.zeros(1, 2), torch.full((1,), 2.0))
    centre = (w - 1) / 2
    want = centre + (torch.arange(w, dtype=torch.float32) - centre) / 2
    torch.testing.assert_close(out[0, 0], want.expand(4, w), rtol=0, atol=1e-5)


def augmenter(seed: int = 0, **spec) -> Augmenter:
    return Augmenter(Augment(**spec), torch.Generator().manual_seed(seed), torch.zeros(1), torch.ones(1))


def test_augmenter_keeps_shapes_is_seeded_and_clips_brightness():
    x = batch(8, 1, 8, 8)
    spec = {"flip": "both", "rotation": 20, "shift": 0.1, "zoom": 0.1, "brightness": 0.5}
    a, b = augmenter(**spec)(x), augmenter(**spec)(x)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, augmenter(seed=1, **spec)(x))
    bright = augmenter(brightness=0.9)(torch.full((16, 1, 4, 4), 0.9))
    assert bright.max().item() <= 1.0 and bright.min().item() >= 0.0 and bright.std().item() > 0


def test_no_augmentation_is_inactive():
    assert not augmenter().active
    assert augmenter(flip="horizontal").active and augmenter(zoom=0.1).warps

"""Batch augmentation as tensor ops: exact flips, identity warps, exact 90-degree rotation and 1-pixel shift."""

from __future__ import annotations

import math

import torch

from specdsl.spec import Augment
from specdsl.train._augment import LUMA, Augmenter, affine, colour_matrix, contrast, crop, cutout, flip


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


def test_crop_pads_with_the_fill_and_cuts_each_window():
    x = batch(2, 1, 4, 4)
    fill = torch.full((1, 1, 1, 1), -1.0)
    out = crop(x, torch.tensor([[2, 2], [0, 3]]), 2, fill)
    assert torch.equal(out[0], x[0])  # offsets (pad, pad): the image itself
    # image 1 moved down 2 rows and left 1 column: two rows of fill above, the last column of fill
    assert torch.equal(out[1, 0, :2], torch.full((2, 4), -1.0))
    assert torch.equal(out[1, 0, 2:, :3], x[1, 0, :2, 1:])
    assert torch.equal(out[1, 0, :, 3], torch.full((4,), -1.0))


def test_cutout_blacks_out_exactly_the_rectangle_asked():
    x = torch.ones(3, 2, 8, 10)
    fill = torch.tensor([0.0, -2.0]).view(1, 2, 1, 1)
    out = cutout(x, torch.tensor([[4, 5], [0, 0], [7, 9]]), (4, 6), fill)
    want = torch.ones(3, 2, 8, 10)
    want[0, :, 2:6, 2:8] = fill[0]  # centred: rows 4 - 2 .. 5, columns 5 - 3 .. 7
    want[1, :, 0:2, 0:3] = fill[0]  # clipped at the top left
    want[2, :, 5:8, 6:10] = fill[0]  # and at the bottom right
    assert torch.equal(out, want)
    assert (out[0] != 1).sum().item() == 2 * 4 * 6


def test_the_augmenters_cutout_covers_its_fraction_of_each_side():
    x = torch.full((64, 1, 20, 20), 0.5)
    out = augmenter(cutout=0.25)(x)
    blacked = (out == 0).sum(dim=(1, 2, 3))
    assert blacked.max().item() == 25 and blacked.min().item() >= 3 * 3  # 5x5, at a corner 3x3
    assert (blacked == 25).sum().item() > 32  # most squares lie wholly inside


def test_contrast_scales_about_each_images_mean():
    x = batch(2, 3, 4, 4)
    out = contrast(x, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=1e-7)
    mean = x[1].mean(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(out[1], (x[1] - mean) * 0.5 + mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(out[1].mean(dim=(1, 2)), mean.flatten(), rtol=0, atol=1e-6)


def test_the_colour_matrix_keeps_grey_and_turns_hue():
    m = colour_matrix(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 2 * math.pi / 3]))
    torch.testing.assert_close(m[0], torch.eye(3), rtol=0, atol=1e-6)  # no change
    grey = torch.tensor([0.3, 0.3, 0.3])
    for k in range(3):
        torch.testing.assert_close(m[k] @ grey, grey, rtol=0, atol=1e-6)
    # saturation 0: every colour becomes its luma
    red = torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(m[1] @ red, torch.full((3,), 0.299), rtol=0, atol=1e-6)
    # a third of a turn: the luma kept, the colour moved off red
    turned = m[2] @ red
    assert abs((torch.tensor(LUMA) @ turned).item() - 0.299) < 1e-5 and turned[0] < 0.5


def test_colour_jitter_is_seeded_clipped_and_spreads_the_colours():
    x = torch.rand(256, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    spec = {"brightness": 0.3, "contrast": 0.5, "saturation": 0.5, "hue": 0.1}
    a, b = augmenter(**spec)(x), augmenter(**spec)(x)
    assert torch.equal(a, b) and not torch.equal(a, augmenter(seed=1, **spec)(x))
    assert a.min().item() >= 0.0 and a.max().item() <= 1.0
    # contrast spreads the per-image standard deviations: factors uniform in [0.5, 1.5] about 1 (the pixels
    # kept in [0.25, 0.75], so that nothing is clipped)
    x = 0.25 + x / 2
    ratio = augmenter(contrast=0.5)(x).std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert 0.49 < ratio.min().item() < 0.6 and 1.4 < ratio.max().item() < 1.51
    assert abs(ratio.mean().item() - 1.0) < 0.06
    # grayscale images: saturation and hue leave them be
    grey = torch.rand(4, 1, 5, 5)
    assert torch.equal(augmenter(saturation=0.5, hue=0.2)(grey), grey)


def test_random_crop_offsets_are_uniform_and_keep_the_size():
    x = torch.ones(2000, 1, 6, 6)
    out = augmenter(crop=2)(x)
    assert out.shape == x.shape
    black_rows = (out[:, 0, :, 3] == 0).sum(dim=1)  # rows of fill in the middle column: |offset - pad|
    counts = torch.bincount(black_rows, minlength=3).tolist()
    assert sum(counts) == 2000 and all(c > 0 for c in counts)
    assert 300 < counts[0] < 500  # offset 2 of 0..4: a fifth of the images

"""Aspect-preserving resize (resize: crop | pad) beside squash: which pixels survive, exactly, on made-up images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)
from PIL import Image
from train_fixtures import digits_plan

from specdsl.data import load_dataset
from specdsl.data._transform import fit_aspect, resize_to
from specdsl.train import load_for


@pytest.mark.parametrize(
    ("source", "target", "mode", "expected"),
    [
        ((4, 8), (2, 2), "crop", (0, 0, 2, 2)),  # wide: the middle 4 columns kept
        ((4, 8), (2, 2), "pad", (2, 2, 0, 0)),  # wide: 2 black rows above and below
        ((9, 4), (4, 4), "crop", (2, 3, 0, 0)),  # tall, odd: the extra row goes at the bottom
        ((3, 8), (4, 4), "pad", (2, 3, 0, 0)),
        ((4, 3), (4, 4), "pad", (0, 0, 0, 1)),
        ((5, 10), (10, 20), "crop", (0, 0, 0, 0)),  # the same aspect: nothing to do
        ((4, 8), (2, 2), "squash", (0, 0, 0, 0)),
    ],
)
def test_fit_aspect(source, target, mode, expected):
    assert fit_aspect(*source, *target, mode) == expected


def _columns(h: int, w: int) -> np.ndarray:
    """One image whose pixel value is 10 + its column."""
    return np.broadcast_to(10 + np.arange(w, dtype=np.uint8)[None, :, None], (1, h, w, 1)).copy()


def test_crop_keeps_the_centre_and_pad_adds_black():
    x = _columns(4, 8)
    assert resize_to(x, (4, 4), "crop")[0, :, :, 0].tolist() == [[12, 13, 14, 15]] * 4
    assert resize_to(x[:, :2, :4], (4, 4), "pad")[0, :, :, 0].tolist() == [
        [0, 0, 0, 0],
        [10, 11, 12, 13],
        [10, 11, 12, 13],
        [0, 0, 0, 0],
    ]
    # squash stretches: every column survives, blended
    assert resize_to(x, (4, 4), "squash").shape == (1, 4, 4, 1)


def _png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)  # PNG: lossless, so the pixels read back are the pixels written


def _striped(h: int, w: int) -> np.ndarray:
    """RGB: red = 10 + column, green = 10 + row, blue 255."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = 10 + np.arange(w)[None, :]
    a[..., 1] = 10 + np.arange(h)[:, None]
    a[..., 2] = 255
    return a


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_a_folder_cropped_and_padded(tmp_path, cache, storage):
    root = tmp_path / "photos"
    for name in ("a", "b"):
        for i in range(3):
            _png(root / name / f"{i}.png", _striped(10, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"path": root, "image_size": (10, 10), "cache_dir": cache, "storage": storage}
        crop = load_dataset("folder", resize="crop", **kw)
        pad = load_dataset("folder", resize="pad", **kw | {"image_size": (20, 20)})
        squash = load_dataset("folder", **kw)
    c = np.asarray(crop.x_train)[0]
    assert c[..., 0].tolist() == [list(range(15, 25))] * 10  # columns 5..14 of 20
    assert c[:, 0, 1].tolist() == list(range(10, 20)) and (c[..., 2] == 255).all()
    p = np.asarray(pad.x_train)[0]
    assert (p[:5] == 0).all() and (p[15:] == 0).all()  # 5 black rows above and below
    assert np.array_equal(p[5:15], _striped(10, 20))
    s = np.asarray(squash.x_train)[0]
    assert s[0, 0, 0] < 15 and s[0, -1, 0] > 24  # stretched: the first and last columns are in it
    assert len({f.stem for f in (cache / "folders").iterdir()}) == 3  # one cache per resize mode and size


def test_other_sources_are_cropped_and_padded_from_their_native_arrays(cache):
    native = load_dataset("digits", cache_dir=cache)
    crop = load_dataset("digits", image_size=(8, 4), resize="crop", cache_dir=cache)
    pad = load_dataset("digits", image_size=(8, 16), resize="pad", cache_dir=cache)
    assert np.array_equal(crop.x_train, native.x_train[:, :, 2:6])
    assert np.array_equal(pad.x_train[:, :, 4:12], native.x_train)
    assert not pad.x_train[:, :, :4].any() and not pad.x_train[:, :, 12:].any()
    assert len(list((cache / "digits").glob("*-crop-*.npz"))) == 1


def test_the_data_section_names_the_resize_mode(tmp_path):
    plan = digits_plan(
        tmp_path, input=[8, 4, 1], data={"dataset": "digits", "resize": "crop", "storage": "disk"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_for(plan, plan.spec.data)
    native = load_dataset("digits")
    assert ds.image_shape == (8, 4, 1)
    assert np.array_equal(np.asarray(ds.x_test), native.x_test[:, :, 2:6])

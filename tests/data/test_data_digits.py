"""digits (scikit-learn, 1,797 images): exact split sizes, determinism, caps, resizing."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)
from PIL import Image

from specdsl.data import load_dataset

# Images per class in scikit-learn's digits.
PER_CLASS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def _rows(ds):
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test]).reshape(-1, 64)
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    return x, y


def test_default_split_counts(cache):
    ds = load_dataset("digits", cache_dir=cache)
    # (0.7, 0.15, 0.15) per class: round_half_up(n * 0.15) to test and to val.
    # n * 0.15 = 26.7 27.3 26.55 27.45 27.15 27.3 27.15 26.85 26.1 27.0 -> 27 everywhere but 26 for class 8.
    per_class_held = [27, 27, 27, 27, 27, 27, 27, 27, 26, 27]
    assert np.bincount(ds.y_test).tolist() == per_class_held
    assert np.bincount(ds.y_val).tolist() == per_class_held
    assert np.bincount(ds.y_train).tolist() == [n - 2 * h for n, h in zip(PER_CLASS, per_class_held)]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1259, 269, 269)
    assert ds.summary() == "digits: train 1,259 / val 269 / test 269, 8x8x1 uint8, 10 classes (0 .. 9)"


def test_explicit_split_counts(cache):
    ds = load_dataset("digits", split=(0.8, 0.1, 0.1), seed=1, cache_dir=cache)
    # n * 0.1 rounds to 18 for every class but class 8 (17.4 -> 17).
    held = [18] * 8 + [17, 18]
    assert np.bincount(ds.y_test).tolist() == held
    assert np.bincount(ds.y_val).tolist() == held
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (1439, 179, 179)


def test_arrays_dtype_shape_and_values(cache):
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", cache_dir=cache)
    assert ds.x_train.shape == (1259, 8, 8, 1) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64
    assert ds.image_shape == (8, 8, 1) and ds.num_classes == 10
    assert ds.class_names == [str(i) for i in range(10)]
    # 0..16 scaled to 0..255 with rounding half up
    assert sorted(np.unique(ds.x_train).tolist()) == [(k * 255 + 8) // 16 for k in range(17)]
    # the three splits together are exactly scikit-learn's images, each once
    x, y = _rows(ds)
    d = load_digits()
    ref = (d.images.astype(np.int64).reshape(-1, 64) * 255 + 8) // 16
    order = np.lexsort(np.column_stack([x, y]).T)
    ref_order = np.lexsort(np.column_stack([ref, d.target]).T)
    assert np.array_equal(x[order], ref[ref_order]) and np.array_equal(y[order], d.target[ref_order])


def test_same_seed_same_arrays_other_seed_other_order(cache):
    a = load_dataset("digits", seed=3, cache_dir=cache)
    b = load_dataset("digits", seed=3, cache_dir=cache)
    c = load_dataset("digits", seed=4, cache_dir=cache)
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, part), getattr(b, part)), part
    assert not np.array_equal(a.y_train, c.y_train)
    assert np.bincount(a.y_test).tolist() == np.bincount(c.y_test).tolist()  # stratified either way


def test_limit_keeps_class_proportions(cache):
    ds = load_dataset("digits", limit=100, cache_dir=cache)
    # 1,259 training images shared out by largest remainder: 10 per class.
    assert np.bincount(ds.y_train).tolist() == [10] * 10
    assert (len(ds.y_val), len(ds.y_test)) == (269, 269)  # a cap leaves validation and test alone
    ds = load_dataset("digits", limit=15, cache_dir=cache)
    # quotas 124/1259*15 = 1.477, 1.525, 1.465, 1.537, 1.513, 1.525, 1.513, 1.489, 1.454, 1.501:
    # one each, and the five largest remainders (classes 3, 1, 5, 4, 6) get a second
    assert np.bincount(ds.y_train).tolist() == [1, 2, 1, 2, 2, 2, 2, 1, 1, 1]


def test_resize_and_channels(cache):
    base = load_dataset("digits", cache_dir=cache)
    ds = load_dataset("digits", image_size=(16, 12), channels=3, cache_dir=cache)
    assert ds.x_train.shape == (1259, 16, 12, 3)
    assert np.array_equal(ds.y_train, base.y_train)  # the split does not depend on the size
    expected = np.asarray(
        Image.fromarray(base.x_train[0, ..., 0]).resize((12, 16), Image.Resampling.BILINEAR)
    )
    for c in range(3):
        assert np.array_equal(ds.x_train[0, ..., c], expected)


@pytest.mark.parametrize("channels", [1, 3])
def test_native_size_is_left_alone(cache, channels):
    ds = load_dataset("digits", image_size=(8, 8), channels=channels, cache_dir=cache)
    assert ds.image_shape == (8, 8, channels)


def test_an_unwritable_cache_warns_and_loads(tmp_path):
    from specdsl.data import DataWarning

    (tmp_path / "file").write_text("")
    with pytest.warns(
        DataWarning,
        match=r"cannot write the cache \(\[Errno 20\] Not a directory: .*\); "
        "set SPECDSL_CACHE to a writable folder to make the next load fast.",
    ):
        ds = load_dataset("digits", cache_dir=tmp_path / "file" / "cache")
    assert len(ds.y_train) == 1259

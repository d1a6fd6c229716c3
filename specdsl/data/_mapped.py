"""Decoded images on disk, memory-mapped: a uint8 ``.npy`` of every image and a ``.json`` of everything else.

A dataset loaded with ``storage="disk"`` holds :class:`MappedImages` instead of in-memory arrays: rows of one
memory-mapped file, read (``os.preadv``, through the page cache) when a batch asks for them, so 25,000 photos
at 150x150 take 1.7 GB of disk and only the batches being read of memory. The pair of files is written
atomically: the ``.npy`` first, the ``.json`` last, as the mark that the ``.npy`` beside it is whole. A reader
checks the ``.npy``'s header and length against the ``.json``; anything else (a file missing, truncated, of an
older format) is rebuilt.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cache import atomic_write
from ._dataset import Arrays

if TYPE_CHECKING:
    import numpy as np

MAPPED_FORMAT = 1
STORAGES = ("auto", "memory", "disk")
# storage: auto keeps a dataset in memory while its images as float32 (what the in-memory training loop holds)
# take at most this much, and maps it from disk beyond.
AUTO_DISK_BYTES = 1024**3


def resolve_storage(storage: str, n: int, shape: tuple[int, ...]) -> str:
    """``memory`` or ``disk`` for ``n`` images of ``shape``: ``auto`` is ``disk`` past ``AUTO_DISK_BYTES``."""
    if storage != "auto":
        return storage
    return "disk" if 4 * n * math.prod(shape) > AUTO_DISK_BYTES else "memory"


class Mapping:
    """A ``.npy`` file's uint8 array: ``array`` memory-maps it (read-only); :meth:`read_rows` reads rows with
    ``os.preadv`` instead, where the platform has it. Pages of a memory map that a process touches count in its
    resident memory (with the kernel's large folios, a few thousand random rows map nearly the whole file), while
    a read goes through the page cache alone: as fast, and the process holds only what it asked for."""

    def __init__(self, path: Path):
        import mmap

        import numpy as np

        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if math.prod(shape) else None
        if fortran or dtype != np.uint8:
            raise ValueError(f"{path}: not a C-ordered uint8 array")
        if self.map is None:
            self.array = np.zeros(shape, np.uint8)
        else:
            self.array = np.frombuffer(self.map, np.uint8, math.prod(shape), self.offset).reshape(shape)
        self.path = path
        self.row_bytes = math.prod(shape[1:])
        self.fd = os.open(path, os.O_RDONLY) if hasattr(os, "preadv") and self.map is not None else None

    def __del__(self) -> None:
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The rows ``rows`` (ascending) of the array, read into memory; a run of consecutive rows is one read."""
        import numpy as np

        out = np.empty((len(rows), *self.array.shape[1:]), np.uint8)
        if self.fd is None:
            out[:] = self.array[rows]
            return out
        flat = out.reshape(len(rows), -1)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
            want = (hi - lo) * self.row_bytes
            got = os.preadv(self.fd, [flat[lo:hi]], self.offset + int(rows[lo]) * self.row_bytes)
            if got != want:
                raise OSError(f"{self.path}: read {got} of {want} bytes at row {int(rows[lo])}")
        return out


class MappedImages:
    """uint8 NHWC images: rows ``index`` of the memory-mapped array ``base``, read only when asked for.

    ``len``, ``shape``, ``dtype`` and ``ndim`` are an array's; indexing with an int, a slice or an index array
    returns an in-memory ``np.ndarray`` (rows read in file order, then put in the order asked);
    ``np.asarray(images)`` reads them all. :meth:`subset` is a view of some rows, :meth:`gather` reads them.
    """

    def __init__(self, base: np.ndarray, index: np.ndarray, mapping: Mapping | None = None):
        import numpy as np

        self.base = base
        self.mapping = mapping
        self.index = np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.base.itemsize

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"MappedImages(shape={self.shape}, file={self.mapping.path if self.mapping else None})"

    def subset(self, rows: Any) -> MappedImages:
        """The images at positions ``rows`` of this view, as a view (nothing read)."""
        return MappedImages(self.base, self.index[rows], self.mapping)

    def gather(self, rows: Any, out: np.ndarray | None = None) -> np.ndarray:
        """The images at positions ``rows`` read into memory (into ``out`` when given), in the order of ``rows``."""
        import numpy as np

        where = self.index[rows]
        if np.ndim(where) == 0:
            return np.array(self.base[int(where)])
        order = np.argsort(where, kind="stable")
        ascending = where[order]  # the file read forwards
        rows_read = self.base[ascending] if self.mapping is None else self.mapping.read_rows(ascending)
        if out is None:
            out = np.empty_like(rows_read)
        out[order] = rows_read
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, tuple):
            rows = self.gather(key[0])
            return rows[key[1:]] if self.index[key[0]].ndim == 0 else rows[(slice(None), *key[1:])]
        return self.gather(key)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        x = self.gather(slice(None))
        return x if dtype is None else x.astype(dtype)

    def chunks(self, size: int = 4096) -> Iterator[np.ndarray]:
        """The images in memory, ``size`` at a time, in order."""
        for lo in range(0, len(self), size):
            yield self.gather(slice(lo, lo + size))


def mapped_files(stem: Path) -> tuple[Path, Path]:
    """(images, metadata) of the mapped cache named ``stem``."""
    return stem.with_name(stem.name + ".npy"), stem.with_name(stem.name + ".json")


def read_mapped(stem: Path) -> Arrays | None:
    """The arrays of the mapped cache at ``stem`` (images memory-mapped), or None when it is missing or not whole."""
    import numpy as np

    images, meta_file = mapped_files(stem)
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != MAPPED_FORMAT:
            return None
        mapping = Mapping(images)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    base = mapping.array
    shape = tuple(meta["shape"])
    if base.shape != shape or base.dtype != np.uint8 or images.stat().st_size != meta["bytes"]:
        return None
    kw: dict[str, Any] = {}
    for part, (rows, labels) in meta["parts"].items():
        kw[f"x_{part}"] = MappedImages(base, np.array(rows, dtype=np.int64), mapping)
        kw[f"y_{part}"] = np.array(labels, dtype=np.int64)
    return Arrays(
        class_names=list(meta["class_names"]),
        source=meta["source"],
        skipped=int(meta["skipped"]),
        cache_file=images,
        **kw,
    )


def write_mapped(
    stem: Path,
    shape: tuple[int, ...],
    fill: Callable[[np.ndarray], dict[str, tuple[list[int], list[int]]]],
    *,
    class_names: list[str] | Callable[[], list[str]],
    source: str,
    skipped: Callable[[], int] | int = 0,
) -> None:
    """Write a mapped cache at ``stem``: ``fill(images)`` writes the rows of the memory-mapped ``images`` (of
    ``shape``, uint8) and returns ``{part: (rows, labels)}``; then the metadata is written, making the pair whole."""
    import numpy as np

    images, meta_file = mapped_files(stem)
    parts: dict[str, tuple[list[int], list[int]]] = {}

    def write_images(tmp: Path) -> None:
        x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        parts.update(fill(x))
        x.flush()
        del x

    atomic_write(images, write_images)
    meta = {
        "format": MAPPED_FORMAT,
        "shape": list(shape),
        "bytes": images.stat().st_size,
        "class_names": class_names() if callable(class_names) else list(class_names),
        "source": source,
        "skipped": skipped() if callable(skipped) else int(skipped),
        "parts": {
            part: [list(map(int, rows)), list(map(int, labels))] for part, (rows, labels) in parts.items()
        },
    }
    atomic_write(meta_file, lambda tmp: tmp.write_text(json.dumps(meta)))


def map_arrays(stem: Path, arrays: Arrays) -> Arrays:
    """``arrays`` (in memory) as a mapped cache at ``stem``, read back memory-mapped; an existing one is reused."""
    import numpy as np

    mapped = read_mapped(stem)
    if mapped is not None:
        return mapped
    present = list(arrays.parts())
    n = sum(len(x) for _, x, _ in present)

    def fill(out: np.ndarray) -> dict[str, tuple[list[int], list[int]]]:
        parts, lo = {}, 0
        for part, x, y in present:
            out[lo : lo + len(x)] = np.asarray(x)
            parts[part] = (list(range(lo, lo + len(x))), [int(v) for v in y])
            lo += len(x)
        return parts

    write_mapped(
        stem,
        (n, *present[0][1].shape[1:]),
        fill,
        class_names=list(arrays.class_names),
        source=arrays.source,
        skipped=arrays.skipped,
    )
    mapped = read_mapped(stem)
    assert mapped is not None
    mapped.notes = list(arrays.notes)
    return mapped

"""The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, bottom of the page)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

# type byte -> numpy dtype (big-endian, as the format stores numbers)
_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class IdxFile:
    """One file of an IDX release: its name and the checksums of its .gz and of its uncompressed bytes."""

    name: str  # e.g. "train-images-idx3-ubyte"
    gz_md5: str
    raw_md5: str


def gunzip(data: bytes, what: str) -> bytes:
    """``data`` uncompressed if it is gzipped, else as it is."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise DataError(f"{what} is not a readable gzip file ({e}).") from None


def parse_idx(data: bytes, what: str = "IDX data"):
    """The array stored in IDX bytes (gzipped or not), in native byte order."""
    import numpy as np

    data = gunzip(data, what)
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _DTYPES:
        raise DataError(f"{what} is not an IDX file (its magic number is {data[:4].hex() or 'missing'}).")
    dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + dtype.itemsize * int(np.prod(shape))
    if len(shape) != ndim or len(data) != expected:
        raise DataError(
            f"{what} is damaged: its header promises shape {shape} ({expected} bytes), "
            f"but it holds {len(data)} bytes."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx_candidates(name: str) -> list[str]:
    """File names under which an IDX file is commonly found (Kaggle writes ``train-images.idx3-ubyte``)."""
    dotted = name.replace("-idx", ".idx")
    return [name, f"{name}.gz", dotted, f"{dotted}.gz"]


def find_idx_files(folder: Path, files: dict[str, IdxFile]) -> dict[str, Path] | None:
    """role -> path of each IDX file in ``folder``, or None if any is missing."""
    found = {}
    for role, f in files.items():
        hits = [folder / c for c in idx_candidates(f.name) if (folder / c).is_file()]
        if not hits:
            return None
        found[role] = hits[0]
    return found


def read_idx_set(raw: dict[str, bytes], what: str, check: dict[str, IdxFile] | None = None):
    """(x_train, y_train, x_test, y_test) from the bytes of the four files (gzipped or not).

    With ``check``, the uncompressed bytes must have the published md5 of each file.
    """
    arrays = {}
    for role, data in raw.items():
        label = f"{what}: {check[role].name if check else role}"
        data = gunzip(data, label)
        if check is not None:
            got = hashlib.md5(data).hexdigest()
            if got != check[role].raw_md5:
                raise DataError(f"{label} has md5 {got}, expected {check[role].raw_md5}.")
        arrays[role] = parse_idx(data, label)
    return _as_images(arrays, what)


def _as_images(arrays: dict, what: str):
    import numpy as np

    out = []
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{what}: {split} images have shape {x.shape} and labels {y.shape}; "
                f"expected (N, H, W) and (N,)."
            )
        out += [np.ascontiguousarray(x.astype(np.uint8)[..., None]), y.astype(np.int64)]
    return tuple(out)

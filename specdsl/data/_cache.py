"""The cache folder: decoded arrays as uncompressed .npz (a CRC-32 per array), written atomically; a damaged
file is rebuilt."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .._download import atomic_write
from ..errors import DataError
from ._dataset import Arrays

CACHE_ENV = "SPECDSL_CACHE"
# Bump when the layout of cached arrays changes, so stale files are not read back.
FORMAT = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: the argument, else ``$SPECDSL_CACHE``, else ``~/.cache/specdsl``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "specdsl"


def save_arrays(dest: Path, arrays: Arrays) -> None:
    import numpy as np

    payload = {
        "format": np.array(FORMAT),
        "class_names": np.array(arrays.class_names, dtype=str),
        "source": np.array(arrays.source),
        "skipped": np.array(arrays.skipped),
    }
    for part, x, y in arrays.parts():
        payload[f"x_{part}"] = x
        payload[f"y_{part}"] = y

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz" to the name
            np.savez(f, **payload)

    atomic_write(dest, write)


def load_arrays(path: Path) -> Arrays | None:
    """The arrays stored at ``path``, or None when there is no usable file there (missing, stale or damaged)."""
    return _read(path)[0]


def _read(path: Path) -> tuple[Arrays | None, str | None]:
    """(the arrays at ``path`` or None, why a file there could not be read). A damaged file (truncated, a bit
    flipped) fails to load: every array in the .npz is checked against the CRC-32 stored beside it as it is read."""
    import zipfile

    import numpy as np

    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as f:
            if int(f["format"]) != FORMAT:
                return None, None  # an older layout: rebuilt silently
            kw = {k: f[k] for k in f.files if k[:2] in ("x_", "y_")}
            return Arrays(
                class_names=[str(n) for n in f["class_names"]],
                source=str(f["source"]),
                skipped=int(f["skipped"]),
                cache_file=path,
                **kw,
            ), None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        return None, f"{type(e).__name__}: {e}".splitlines()[0]


def memo(path: Path, build: Callable[[], Arrays]) -> Arrays:
    """The arrays cached at ``path``; on a miss, ``build()`` them and store them there.

    A damaged cache file is rebuilt from the source data once, with a note naming it; when that fails, a
    DataError names the file."""
    arrays, damage = _read(path)
    if arrays is None:
        try:
            arrays = build()
        except (DataError, OSError) as e:
            if damage is None:
                raise
            cause = e.format() if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
            raise DataError(
                f"the cache file {path} is damaged ({damage}), and rebuilding it from the source data "
                f"failed: {cause}",
                hint=None
                if isinstance(e, DataError) and e.hint
                else f"Delete {path}, and load the dataset where its source can be read.",
            ) from None
        try:
            save_arrays(path, arrays)
            arrays.cache_file = path
        except OSError as e:
            arrays.notes.append(
                f"cannot write the cache ({e}); set {CACHE_ENV} to a writable folder "
                "to make the next load fast."
            )
        if damage is not None:
            arrays.notes.insert(
                0, f"the cache file {path} was damaged ({damage}); rebuilt it from the source data."
            )
    return arrays

"""The cache folder: decoded arrays as uncompressed .npz, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

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


def atomic_write(dest: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``dest``, then rename it into place.

    A reader never sees a half-written file, and nothing is left behind if ``write`` fails.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is fine to share
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    """The arrays stored at ``path``, or None when there is no usable file there."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if int(f["format"]) != FORMAT:
                return None
            kw = {k: f[k] for k in f.files if k[:2] in ("x_", "y_")}
            return Arrays(
                class_names=[str(n) for n in f["class_names"]],
                source=str(f["source"]),
                skipped=int(f["skipped"]),
                cache_file=path,
                **kw,
            )
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache file is rebuilt, never an error


def memo(path: Path, build: Callable[[], Arrays]) -> Arrays:
    """The arrays cached at ``path``; on a miss, ``build()`` them and store them there."""
    arrays = load_arrays(path)
    if arrays is None:
        arrays = build()
        try:
            save_arrays(path, arrays)
            arrays.cache_file = path
        except OSError as e:
            arrays.notes.append(
                f"cannot write the cache ({e}); set {CACHE_ENV} to a writable folder "
                "to make the next load fast."
            )
    return arrays

"""Pydantic's validators for the spec models, kept on disk between processes.

Building a model's validator means generating its core schema in Python: 2-4 ms per model, and ~40 ms for the
first one in a process while pydantic warms up. ``specdsl validate`` in a pre-commit hook or a CI job uses
about 20 models, so such a process spent more time building validators than checking specs. A core schema is
plain data (dicts, lists, and functions and classes referenced by name), so it is pickled into the user's
cache folder (``validators/`` in :func:`~specdsl._user_cache.user_cache_root`), in a file named by the
versions of specdsl, pydantic, pydantic-core and Python and by a digest of the source of the modules that
define the models. A later process unpickles it and hands it to pydantic-core: 0.05-0.2 ms per model.

The folder is made private (0700) and the file written atomically, private too (0600); a file that is not a
regular file of this user's, or that others may write, is not read. Anything unexpected (another pydantic, an
unreadable, damaged, stale or unwritable file, a model defined outside ``specdsl.spec``) falls back to
pydantic's own build: the cache changes how soon a validator exists, never what it accepts.
``SPECDSL_NO_VALIDATOR_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from .._compat import _pydantic
from .._user_cache import user_cache_root
from .._version import __version__

_HERE = Path(__file__).resolve().parent
_MODULE_PREFIX = __package__ + "."
_OFF_ENV = "SPECDSL_NO_VALIDATOR_CACHE"

_entries: dict[str, Any] | None = None  # qualified name -> (core schema, core config), read once per process
_path: Path | None = None  # the cache file, found once per process


def _cache_path() -> Path:
    global _path
    if _path is None:
        pydantic_version, core_version = _pydantic.versions()
        digest = hashlib.sha256(f"{sys.version}|{pydantic_version}|{core_version}".encode())
        for source in sorted(_HERE.glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        name = f"specdsl{__version__}-pydantic{pydantic_version}-core{core_version}-py{python}"
        _path = user_cache_root() / "validators" / f"{name}-{digest.hexdigest()[:16]}.pickle"
    return _path


def _trusted(st: os.stat_result) -> bool:
    """Whether a file is one to unpickle: a regular file of this user's that no one else may write."""
    if not stat.S_ISREG(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def _read(path: Path) -> dict[str, Any] | None:
    """The entries stored at ``path``; None when there is no trusted, readable file of entries there."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not _trusted(os.fstat(f.fileno())):
                return None
            loaded = pickle.load(f)
    except Exception:  # damaged, or written by code that no longer exists: rebuilt
        return None
    return loaded if isinstance(loaded, dict) else None


def _write(path: Path, entries: dict[str, Any]) -> None:
    """Store ``entries`` at ``path``: written beside it in a private file, then renamed over it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(entries, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _load() -> dict[str, Any]:
    global _entries
    if _entries is None:
        _entries = _read(_cache_path()) or {}
    return _entries


def _cacheable(cls: Any) -> bool:
    return cls.__module__.startswith(_MODULE_PREFIX) and not os.environ.get(_OFF_ENV)


def install(cls: Any) -> bool:
    """Give ``cls`` its validator and serializer from the cache; False if the cache has none for it."""
    if not _cacheable(cls):
        return False
    entry = _load().get(f"{cls.__module__}.{cls.__qualname__}")
    if entry is None:
        return False
    try:
        _pydantic.complete_model(cls, *entry)
    except Exception:
        return False
    return True


def remember(cls: Any) -> None:
    """Store the core schema pydantic just built for ``cls`` (merged with what other processes stored)."""
    if not _cacheable(cls):
        return
    key = f"{cls.__module__}.{cls.__qualname__}"
    entries = _load()
    if key in entries:
        return
    try:
        entry = (cls.__pydantic_core_schema__, _pydantic.core_config(cls))
        pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    except (
        Exception
    ):  # e.g. a lambda as a default factory (it has no name to be found by), or another pydantic
        return
    entries[key] = entry
    path = _cache_path()
    on_disk = _read(path) or {}
    entries.update({k: v for k, v in on_disk.items() if k not in entries})
    try:
        _write(path, entries)
    except Exception:  # e.g. a read-only cache folder: this process built its validators anyway
        pass

"""Pydantic's validators for the spec models, kept on disk between processes.

Building a model's validator means generating its core schema in Python: 2-4 ms per model, and ~40 ms for the
first one in a process while pydantic warms up. ``specdsl validate`` in a pre-commit hook or a CI job uses about
20 models, so such a process spent more time building validators than checking specs. A core schema is plain
data (dicts, lists, and functions and classes referenced by name), so it is pickled into the package's
``__pycache__`` beside the bytecode, under a key made of the versions of Python, pydantic and pydantic-core and of
the source of the modules that define the models. A later process unpickles it and hands it to pydantic-core:
0.05-0.2 ms per model.

Anything unexpected (another pydantic, an unreadable, stale or unwritable file, a model defined outside
``specdsl.spec``) falls back to pydantic's own build: the cache changes how soon a validator exists, never what
it accepts. ``SPECDSL_NO_VALIDATOR_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from functools import partial
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_MODULE_PREFIX = __package__ + "."
_OFF_ENV = "SPECDSL_NO_VALIDATOR_CACHE"

_entries: dict[str, Any] | None = None  # qualified name -> (core schema, core config), read once per process
_path: Path | None = None


def _cache_path() -> Path:
    global _path
    if _path is None:
        import pydantic
        import pydantic_core

        digest = hashlib.sha256()
        digest.update(f"{sys.version}|{pydantic.VERSION}|{pydantic_core.__version__}".encode())
        for source in sorted(_HERE.glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        _path = _HERE / "__pycache__" / f"validators-{digest.hexdigest()[:20]}.pickle"
    return _path


def _load() -> dict[str, Any]:
    global _entries
    if _entries is None:
        _entries = {}
        try:
            with open(_cache_path(), "rb") as f:
                loaded = pickle.load(f)
            if isinstance(loaded, dict):
                _entries = loaded
        except Exception:  # absent, unreadable, or written by code that no longer exists: rebuild
            pass
    return _entries


def _cacheable(cls: type) -> bool:
    return cls.__module__.startswith(_MODULE_PREFIX) and not os.environ.get(_OFF_ENV)


def install(cls: type) -> bool:
    """Give ``cls`` its validator and serializer from the cache; False if the cache has none for it."""
    if not _cacheable(cls):
        return False
    entry = _load().get(f"{cls.__module__}.{cls.__qualname__}")
    if entry is None:
        return False
    try:
        _complete(cls, *entry)
    except Exception:
        return False
    return True


def remember(cls: type) -> None:
    """Store the core schema pydantic just built for ``cls`` (merged with what other processes stored)."""
    if not _cacheable(cls):
        return
    key = f"{cls.__module__}.{cls.__qualname__}"
    entries = _load()
    if key in entries:
        return
    from pydantic._internal._config import ConfigWrapper

    core_config = ConfigWrapper(cls.model_config, check=False).core_config(title=cls.__name__)
    entry = (cls.__pydantic_core_schema__, core_config)
    try:
        pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # e.g. a lambda as a default factory: it has no name to be found by
        return
    entries[key] = entry
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        try:
            with open(path, "rb") as f:
                on_disk = pickle.load(f)
            if isinstance(on_disk, dict):
                entries.update({k: v for k, v in on_disk.items() if k not in entries})
        except Exception:
            pass
        path.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as f:
            pickle.dump(entries, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:  # a read-only installation: this process built its validators anyway
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _complete(cls: Any, schema: Any, core_config: Any) -> None:
    """What pydantic's ``complete_model_class`` does once it has generated a schema (pydantic 2.11+)."""
    from pydantic._internal._config import ConfigWrapper
    from pydantic._internal._model_construction import set_deprecated_descriptors
    from pydantic._internal._signature import generate_pydantic_signature
    from pydantic._internal._utils import LazyClassAttribute
    from pydantic.plugin._schema_validator import create_schema_validator
    from pydantic_core import SchemaSerializer, SchemaValidator

    config = ConfigWrapper(cls.model_config, check=False)
    cls.__pydantic_computed_fields__ = {k: v.info for k, v in cls.__pydantic_decorators__.computed_fields.items()}
    set_deprecated_descriptors(cls)
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
        # what create_schema_validator does then, without importing the plugin loader (importlib.metadata: ~20 ms)
        validator = SchemaValidator(schema, core_config)
    else:
        validator = create_schema_validator(
            schema, cls, cls.__module__, cls.__qualname__, "BaseModel", core_config, config.plugin_settings
        )
    serializer = SchemaSerializer(schema, core_config)
    cls.__pydantic_core_schema__ = schema
    cls.__pydantic_validator__ = validator
    cls.__pydantic_serializer__ = serializer
    cls.__signature__ = LazyClassAttribute(
        "__signature__",
        partial(
            generate_pydantic_signature,
            init=cls.__init__,
            fields=cls.__pydantic_fields__,
            validate_by_name=config.validate_by_name,
            extra=config.extra,
        ),
    )
    cls.__pydantic_complete__ = True
    cls.__pydantic_on_complete__()

"""Backends turn a plan into a framework model, standalone source code, or an exported file.

A backend is a module with ``build(plan, **options)``, ``source(plan) -> str`` and
``export(plan, path, format, model=None) -> pathlib.Path``, plus ``FORMATS`` (export formats it writes) and
``BUILDERS`` (its per-kind builders: one per layer kind it can express). Backends are imported only when asked for,
so that the spec, plan and CLI paths never import torch or keras.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from .._registry import Registry
from .._text import literal
from ..errors import BackendError, BackendMissingError

# name -> (module implementing it, the package it needs, the pip extra that installs it)
BACKENDS: Registry[tuple[str, str, str]] = Registry("backend", duplicate="backend `{name}` is already registered")


def register_backend(name: str, module: str, package: str, extra: str) -> None:
    """Register a backend: the module implementing it (imported only when asked for), the package it needs and
    the pip extra that installs that package. Registering a name twice is an error."""
    BACKENDS.add(name, (module, package, extra))


register_backend("torch", "specdsl.backends._torch", "torch", "torch")
register_backend("keras", "specdsl.backends._keras", "keras", "keras")


def spec_constants(plan: Any) -> list[str]:
    """The lines of generated source that hold the user's text about a plan, as literals: ``MODEL_NAME``,
    ``DESCRIPTION`` (None when the spec has none) and ``SPEC_FILE`` (its base name). Docstrings and comments of
    generated source name these constants and never quote the text itself."""
    description = plan.spec.description
    return [
        f"MODEL_NAME = {literal(plan.name)}",
        f"DESCRIPTION = {'None' if description is None else literal(description)}",
        f"SPEC_FILE = {literal(os.path.basename(plan.spec.file))}",
    ]


def get_backend(name: str) -> ModuleType:
    """The backend module for ``name``; a missing framework is one BackendMissingError naming what to install."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend `{name}`; backends: {', '.join(BACKENDS)}.")
    module, package, extra = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise BackendMissingError(package, f"The {name} backend", extra=extra)
    return importlib.import_module(module)


__all__ = ["BACKENDS", "get_backend", "register_backend", "spec_constants"]

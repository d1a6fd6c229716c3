"""Backends turn a plan into a framework model, standalone source code, or an exported file.

Two backends are registered in ``BACKENDS``: ``torch`` (``specdsl.backends._torch``: an ``nn.Module``, PyTorch
source, ONNX / TorchScript / torch.export files) and ``keras`` (``specdsl.backends._keras``: a functional
``keras.Model``, Keras source, ``.keras`` / ``.weights.h5`` files). Each is a module meeting the :class:`Backend`
contract, with one builder per layer kind that turns a plan node into its module or layer; builders read the
plan's shapes and what it resolved (``PlanNode.resolved``: padding amounts, strides, fans), never the rules.
``_transfer.py`` carries weights between the two models of one plan. A backend is imported only when
:func:`get_backend` asks for it, so that the spec, plan and CLI paths never import torch or keras.

The torch backend's modules: ``_builders`` (one builder per kind, ``@register_builder``) returning a ``_built``
description, ``_model`` (the ``nn.Module`` that follows the plan's graph), ``_modules`` (the modules torch lacks,
copied into generated source as written), ``_source`` and ``_export``. The Keras backend's: ``_builders``,
``_build`` (the functional model), ``_custom`` (the layers Keras lacks), ``_portable`` (the model with
built-in layers in their place, for ``.keras`` files that load without specdsl), ``_source`` and ``_export``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._registry import Registry
from .._text import literal
from ..errors import BackendError, BackendMissingError
from ..plan import Plan
from ._limits import LIMITS, Limit, backend_limits, check_backend_limits
from ._transfer import keras_to_torch


@runtime_checkable
class Backend(Protocol):
    """What a backend module offers; :func:`get_backend` returns one. ``tests/backends/test_contract.py`` checks
    every registered backend against it.

    Attributes:
        FORMATS: the formats :meth:`export` writes, "source" first.
        BUILDERS: its builder of each layer kind, a :class:`~specdsl._registry.Registry` within the layer kinds
            (filled with its ``register_builder``); a kind it cannot build is a located ``BackendError``.
    """

    FORMATS: tuple[str, ...]
    BUILDERS: Registry[Any]

    def build(self, plan: Plan, **options: Any) -> Any:
        """The framework's model of the plan, its every node's output shape and parameter counts the plan's.
        Unknown options are a ``BackendError``."""
        ...

    def source(self, plan: Plan) -> str:
        """Standalone, deterministic source code building the same model, importing only the framework."""
        ...

    def export(
        self,
        plan: Plan,
        path: str | os.PathLike,
        format: str,
        model: Any = None,
        *,
        layout: str | None = None,
    ) -> Path:
        """Write ``model`` (default: a fresh :meth:`build`) to ``path`` (a file, or a folder to hold
        ``<model name><suffix>``) in one of :attr:`FORMATS`; return the file written. ``layout`` is the file's
        input layout, ``"nchw"`` or ``"nhwc"`` (None: the backend's own); one it cannot write is a
        ``BackendError``."""
        ...


# name -> (module implementing it, the package it needs, the pip extra that installs it)
BACKENDS: Registry[tuple[str, str, str]] = Registry(
    "backend", duplicate="backend `{name}` is already registered"
)


def register_backend(name: str, module: str, package: str, extra: str) -> None:
    """Register a backend: the module implementing it (imported only when asked for), the package it needs and
    the pip extra that installs that package. Registering a name twice is an error."""
    BACKENDS.add(name, (module, package, extra))


register_backend("torch", "specdsl.backends._torch", "torch", "torch")
register_backend("keras", "specdsl.backends._keras", "keras", "keras")


def spec_constants(plan: Plan) -> list[str]:
    """The lines of generated source that hold the user's text about a plan, as literals: ``MODEL_NAME``,
    ``DESCRIPTION`` (None when the spec has none) and ``SPEC_FILE`` (its base name). Docstrings and comments of
    generated source name these constants and never quote the text itself."""
    description = plan.spec.description
    return [
        f"MODEL_NAME = {literal(plan.name)}",
        f"DESCRIPTION = {'None' if description is None else literal(description)}",
        f"SPEC_FILE = {literal(os.path.basename(plan.spec.file))}",
    ]


def get_backend(name: str) -> Backend:
    """The backend module for ``name``; a missing framework is one BackendMissingError naming what to install."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend `{name}`; backends: {', '.join(BACKENDS)}.")
    module, package, extra = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise BackendMissingError(package, f"The {name} backend", extra=extra)
    backend: Backend = importlib.import_module(module)  # type: ignore[assignment]  # checked by the contract test
    return backend


__all__ = [
    "BACKENDS",
    "LIMITS",
    "Backend",
    "Limit",
    "backend_limits",
    "check_backend_limits",
    "get_backend",
    "keras_to_torch",
    "register_backend",
    "spec_constants",
]

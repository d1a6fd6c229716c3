"""Plug-ins: a package's own layer kinds, declared through package entry points and loaded when first needed.

A distribution declares its kinds in three entry-point groups (``pyproject.toml``)::

    [project.entry-points."specdsl.layers"]
    channel_scale = "my_package.kind"          # registers the kind: its spec model and its shape rule
    [project.entry-points."specdsl.torch"]
    channel_scale = "my_package.kind_torch"    # registers its torch builder
    [project.entry-points."specdsl.keras"]
    channel_scale = "my_package.kind_keras"    # registers its Keras builder

Each entry point names a module (or an object) whose import registers what it declares, with the same decorators
the built-in kinds use: ``specdsl.spec.register_layer``, ``specdsl.plan.register_rule`` and each backend's
``register_builder``. The ``specdsl.layers`` modules are imported the first time a spec names a kind that is not
registered (and by ``specdsl schema``), so a spec of built-in kinds never looks for plug-ins; they must not import
torch or keras. A backend imports its group's modules the first time it meets a kind it has no builder for.

A plug-in that fails to import or to register is one :class:`~specdsl.errors.PluginError` naming the plug-in,
its module and its distribution, with what went wrong, and never a traceback; it is raised again at each later
use. Standard library only.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ._text import shown
from .errors import PluginError

GROUPS = ("specdsl.layers", "specdsl.torch", "specdsl.keras")

_loaded: dict[str, PluginError | None] = {}  # group -> None once loaded, or the error it failed with


def load_plugins(group: str) -> None:
    """Import every entry point of ``group`` (one of :data:`GROUPS`), once per process; a PluginError for the
    first that fails (and again at every later call)."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, but got {group!r}")
    if group in _loaded:
        error = _loaded[group]
        if error is not None:
            raise error
        return
    _loaded[group] = None
    for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
        try:
            ep.load()
        except (
            Exception
        ) as e:  # a plug-in's own code: whatever it raises is its failure, reported as one line
            dist = ep.dist.name if ep.dist is not None else "an unnamed distribution"
            error = PluginError(
                f"plug-in `{shown(ep.name)}` ({shown(ep.value)}, {group}, from {shown(dist)}) failed to load: "
                f"{type(e).__name__}: {shown(str(e), 300).rstrip('.')}.",
                hint="Fix the plug-in, or uninstall its distribution.",
            )
            _loaded[group] = error
            raise error from None

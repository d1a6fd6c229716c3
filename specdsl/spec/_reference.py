"""The reference of every registered layer kind, as Markdown, made from the registry (``specdsl schema --kinds``)."""

from __future__ import annotations

import inspect

from .._plugins import load_plugins
from ._kinds import LAYERS


def kinds_reference() -> str:
    """The reference of every registered layer kind, as Markdown, from the registry alone: each kind's docstring
    (what it computes, its output shape and parameters), its Keras class, aliases and main argument, and a table
    of its arguments with their defaults and descriptions (``specdsl schema --kinds`` prints it)."""
    load_plugins("specdsl.layers")
    lines = ["# Layer kinds", "", "Generated from the registry (`specdsl schema --kinds`).", ""]
    for name, info in LAYERS.items():
        facts = [f"Keras `{info.keras_class}`"]
        if info.aliases:
            facts.append("aliases " + ", ".join(f"`{a}`" for a in info.aliases))
        if info.primary:
            facts.append(f"main argument `{info.primary}`")
        if info.max_inputs != 1:
            most = "or more" if info.max_inputs is None else f"to {info.max_inputs}"
            facts.append(f"{info.min_inputs} {most} inputs")
        lines += [
            f"## `{name}`",
            "",
            "; ".join(facts) + ".",
            "",
            inspect.cleandoc(info.model.__doc__ or ""),
            "",
        ]
        lines += ["| argument | default | meaning |", "|---|---|---|"]
        for field, spec in info.model.model_fields.items():
            if field == "kind":
                continue
            default = "required" if spec.is_required() else f"`{spec.default!r}`"
            meaning = (spec.description or "").replace("|", "\\|")
            lines.append(f"| `{field}` | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)

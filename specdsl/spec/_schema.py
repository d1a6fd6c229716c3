"""JSON Schema of the spec language, for editors (YAML language server, VS Code).

It describes the language as users write it: a layer is a one-key mapping ``{conv2d: {...}}`` (or the tagged
``{kind: conv2d, ...}`` form, or a bare kind name), and any value may be a ``$param`` reference.
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel

from .._plugins import load_plugins
from ._kinds import ALIASES, LAYERS
from ._sections import SECTIONS, InputSpec


def _args_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/$defs/{model}", by_alias=False)
    defs.update(schema.pop("$defs", {}))
    schema["properties"].pop("kind", None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r != "kind"]
    return schema


def json_schema() -> dict[str, Any]:
    load_plugins("specdsl.layers")
    defs: dict[str, Any] = {}
    layer_forms = []
    for name, info in LAYERS.items():
        args = _args_schema(info.model, defs)
        defs[f"{name}_args"] = args
        value: dict[str, Any] = {"anyOf": [{"$ref": f"#/$defs/{name}_args"}, {"type": "null"}]}
        if info.primary:
            value["anyOf"].append(args["properties"][info.primary])
        for key in (name, *info.aliases):
            layer_forms.append(
                {
                    "type": "object",
                    "description": (info.model.__doc__ or "").strip().split("\n")[0],
                    "properties": {key: value},
                    "required": [key],
                    "additionalProperties": False,
                }
            )
    kinds = sorted([*LAYERS, *ALIASES])
    defs["layer"] = {
        "anyOf": [
            {
                "type": "string",
                "description": "A layer kind with no arguments (e.g. flatten) or a block name.",
            },
            *layer_forms,
            {
                "type": "object",
                "description": "Tagged form: {kind: conv2d, filters: 32, ...}",
                "properties": {"kind": {"enum": kinds}},
                "required": ["kind"],
            },
            {
                "type": "object",
                "description": "repeat: N, layers: [...] (N may be a distribution in a search space)",
                "properties": {
                    "repeat": {},
                    "layers": {"$ref": "#/$defs/layers"},
                    "name": {"type": "string"},
                },
                "required": ["repeat", "layers"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "description": "A block use: {block_name: {param: value, ...}}",
                "minProperties": 1,
                "maxProperties": 1,
            },
        ]
    }
    defs["layers"] = {"type": "array", "items": {"$ref": "#/$defs/layer"}, "minItems": 1}
    defs["block"] = {
        "type": "object",
        "properties": {
            "params": {"type": "object", "description": "Parameters and their defaults (null: required)."},
            "layers": {"$ref": "#/$defs/layers"},
            "output": {"type": "string"},
            "description": {"type": "string"},
        },
        "required": ["layers"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "input": {
            "description": "Input shape, channels-last: [H, W, C], [L, C] or [N]; or {shape, name}.",
            "anyOf": [
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3},
                _args_schema(InputSpec, defs),
            ],
        },
        "params": {"type": "object", "description": "Named values, referred to as $name or ${expression}."},
        "blocks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"}},
        "layers": {"$ref": "#/$defs/layers"},
        "outputs": {"type": "array", "items": {"type": "string"}},
    }
    for key, model in SECTIONS.items():
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        properties[key] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "specdsl model spec",
        "type": "object",
        "properties": properties,
        "required": ["input", "layers"],
        "additionalProperties": False,
        "$defs": defs,
    }


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

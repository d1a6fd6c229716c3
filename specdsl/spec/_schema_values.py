"""The places of the JSON Schema where a value stands, and what may stand there besides the value itself.

A value place (a layer's argument, an item of a pair, a section's field) takes, besides what its model accepts:

- a search distribution (``{choice: [...]}``, ``{int: [lo, hi]}``, ``{float: [lo, hi]}``), anywhere, since a
  search space is drawn before anything else is read; a choice's options are values of the same place, an
  ``int`` stands where an integer may, a ``float`` where a number may;
- in layers and blocks only (the text the expansion substitutes), a ``$param`` reference or a ``${...}``
  expression: a string that is one (any value once substituted) where the place takes no string, a string that
  holds one where it does (``conv_${index}``).

Each place is one definition (``$defs``), shared by every place of the same schema, so that a choice's options
refer back to it.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import BaseModel

from ._draw import DIST_KINDS
from ._expr import _PART, _WHOLE

_META = ("description", "default", "examples", "deprecated")

REFERENCE = {
    "type": "string",
    "pattern": _WHOLE.pattern,
    "description": "A parameter (`$filters`) or an expression (`${filters * 2}`, `${input.channels // 4}`, "
    "`${'same' if strides == 1 else 'valid'}`), substituted when the layers are expanded.",
    "examples": ["$filters", "${filters * 2}", "${input.channels // 4}"],
}
REFERENCE_IN_TEXT = {
    **REFERENCE,
    "pattern": _PART.pattern,
    "description": "A text holding parameters or expressions (`conv_${index}`), substituted when the layers "
    "are expanded.",
    "examples": ["$name", "conv_${index}"],
}
_NAME = {"type": "string", "description": "The parameter's name in Optuna and MLflow (default: its path)."}


def distributions(place: dict[str, Any], *, integers: bool, numbers: bool) -> list[dict[str, Any]]:
    """The search distributions that may stand at ``place`` (a ``$ref``): a choice among its values, and an
    ``int`` or ``float`` range where the place takes integers or numbers."""
    found: list[dict[str, Any]] = [
        {
            "type": "object",
            "description": "Search: one of the options, chosen by the sampler (options may hold distributions).",
            "examples": [{"choice": [32, 64, 128]}, {"choice": ["same", "valid"], "name": "padding"}],
            "properties": {"choice": {"type": "array", "items": place, "minItems": 1}, "name": _NAME},
            "required": ["choice"],
            "additionalProperties": False,
        }
    ]
    ranges = {"int": (integers, "integer"), "float": (numbers, "number")}
    for kind in DIST_KINDS[1:]:
        wanted, number = ranges[kind]
        if wanted:
            found.append(
                {
                    "type": "object",
                    "description": f"Search: {'an integer' if kind == 'int' else 'a number'} in [low, high], "
                    "uniform, or log-uniform with `log: true`, on a grid of `step` when given.",
                    "examples": [{kind: [16, 128], "log": True} if kind == "int" else {kind: [0.0, 0.5]}],
                    "properties": {
                        kind: {
                            "type": "array",
                            "prefixItems": [{"type": number}, {"type": number}],
                            "minItems": 2,
                            "maxItems": 2,
                            "description": "[low, high], low <= high",
                        },
                        "log": {"type": "boolean", "default": False},
                        "step": {"type": number, "exclusiveMinimum": 0},
                        "name": _NAME,
                    },
                    "required": [kind],
                    "additionalProperties": False,
                }
            )
    return found


class Places:
    """The definitions of a schema's value places, made once per kind of value (see the module's docstring)."""

    def __init__(self, defs: dict[str, Any]):
        self.defs = defs
        self.made: dict[str, str] = {}  # (references allowed, value schema) as JSON -> definition name

    def place(
        self, core: dict[str, Any], *, refs: bool, hint: str, name: str | None = None
    ) -> dict[str, Any]:
        """A ``$ref`` to the place for values of schema ``core`` (``refs``: whether references may stand there)."""
        key = json.dumps([refs, core], sort_keys=True)
        if name is None and key in self.made:
            return {"$ref": f"#/$defs/{self.made[key]}"}
        if name is None:
            name = f"value.{hint}" if f"value.{hint}" not in self.defs else f"value.{hint}.{len(self.defs)}"
            self.made[key] = name
        ref = {"$ref": f"#/$defs/{name}"}
        self.defs[name] = {
            "anyOf": []
        }  # claimed before the parts are made: a choice's options refer back here
        forms = [core]
        if refs:
            forms.append(REFERENCE_IN_TEXT if self._admits(core, {"string"}) else REFERENCE)
        forms += distributions(
            ref,
            integers=self._admits(core, {"integer", "number"}),
            numbers=self._admits(core, {"number"}),
        )
        self.defs[name] = {"anyOf": forms}
        return ref

    def value(self, schema: dict[str, Any], defs: dict[str, Any], *, refs: bool, hint: str) -> dict[str, Any]:
        """A field's schema (as pydantic writes it, with its local ``defs``): its description and default kept
        beside a ``$ref`` to its place."""
        meta = {k: schema[k] for k in _META if k in schema}
        core = self.walk({k: v for k, v in schema.items() if k not in _META}, defs, refs=refs, hint=hint)
        return {**meta, **self.place(core, refs=refs, hint=hint)}

    def walk(self, schema: dict[str, Any], defs: dict[str, Any], *, refs: bool, hint: str) -> dict[str, Any]:
        """``schema`` with pydantic's local references inlined and every value inside it (items of an array,
        fields of a nested model) made a place; titles dropped."""
        if "$ref" in schema:
            target = defs[schema["$ref"].rsplit("/", 1)[-1]]
            return self.walk(
                {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs, refs=refs, hint=hint
            )
        out = {k: v for k, v in schema.items() if k != "title"}
        for key in ("anyOf", "oneOf", "allOf"):
            if key in out:
                out[key] = [self.walk(s, defs, refs=refs, hint=hint) for s in out[key]]
        if "prefixItems" in out:
            out["prefixItems"] = [
                self.value(s, defs, refs=refs, hint=f"{hint}.{i}") for i, s in enumerate(out["prefixItems"])
            ]
        if isinstance(out.get("items"), dict):
            out["items"] = self.value(out["items"], defs, refs=refs, hint=f"{hint}.item")
        if "properties" in out:
            out["properties"] = {
                k: self.value(v, defs, refs=refs, hint=f"{hint}.{k}") for k, v in out["properties"].items()
            }
        return out

    def model(
        self, model: type[BaseModel], *, refs: bool, hint: str, skip: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The object a pydantic model takes, every field a place; a field with several spellings
        (``kernel`` / ``kernel_size``) is a property under each, at most one of them given."""
        js = model.model_json_schema(mode="validation")
        defs = js.get("$defs", {})
        properties: dict[str, Any] = {}
        required: list[Any] = []
        others: dict[str, Any] = {}
        for field, info in model.model_fields.items():
            if field in skip:
                continue
            choices = getattr(info.validation_alias, "choices", None)
            names = [c for c in choices if isinstance(c, str)] if choices else [field]
            prop = self.value(js["properties"][names[0]], defs, refs=refs, hint=f"{hint}.{field}")
            properties[names[0]] = prop
            for alias in names[1:]:
                described = prop.get("description", "")
                properties[alias] = {
                    **prop,
                    "description": f"Keras' spelling of `{names[0]}`. {described}".strip(),
                }
                others[alias] = {"not": {"required": [names[0]]}}
            if info.is_required():
                required.append(names[0] if len(names) == 1 else names)
        out: dict[str, Any] = {"type": "object"}
        if model.__doc__ and model.__doc__.strip():
            out["description"] = _dedent(model.__doc__)
        out["properties"] = properties
        plain = [r for r in required if isinstance(r, str)]
        if plain:
            out["required"] = plain
        either = [{"anyOf": [{"required": [n]} for n in r]} for r in required if isinstance(r, list)]
        if either:
            out["allOf"] = either
        if others:
            out["dependentSchemas"] = others
        out["additionalProperties"] = False
        return out

    def _admits(self, schema: Any, types: set[str]) -> bool:
        """Whether a value of one of ``types`` may satisfy ``schema`` (looked through unions and places)."""
        if not isinstance(schema, dict):
            return False
        if "$ref" in schema:
            target = self.defs.get(schema["$ref"].rsplit("/", 1)[-1], {"anyOf": []})
            return self._admits({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, types)
        union = schema["anyOf"] if "anyOf" in schema else schema.get("oneOf")
        if union is not None:
            return any(self._admits(s, types) for s in union)
        kind = schema.get("type")
        if "enum" in schema or "const" in schema:
            values: list[Any] = schema["enum"] if "enum" in schema else [schema["const"]]
            return any(_json_type(v) in types for v in values)
        if kind is None:
            return True
        return bool(types & ({kind} if isinstance(kind, str) else set(kind)))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _dedent(doc: str) -> str:
    return inspect.cleandoc(doc)

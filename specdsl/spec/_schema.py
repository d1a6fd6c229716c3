"""JSON Schema of the spec language, for editors (YAML language server, VS Code) and for checks in CI.

It is made from the layer kinds' registry and the sections' models, so a kind, an alias or a field added there is
in it, described by its docstring. It is strict where ``specdsl validate`` is for the structure of a file: an
unknown key, kind or argument, a value of the wrong type, out of range or not among the choices is refused. A
layer is a one-key mapping ``{conv2d: {...}}`` (or its main argument alone, ``{maxpool2d: 2}``), the tagged
``{kind: conv2d, ...}``, a bare kind without required arguments (``flatten``), a ``repeat``, or, where the spec
has ``blocks:``, a block's use. One schema takes model specs and search spaces alike (as ``validate`` does):
distributions stand wherever values may, ``$param`` references and ``${...}`` expressions wherever the layers'
text is substituted (``_schema_values``). Keras' spellings are in it as the language takes them, from the tables
of ``_aliases``: a kind under its Keras class's names, each Keras constructor argument of ``KERAS_ARGUMENTS`` at
the values the spec takes (described by why), Keras' activation layers (``ReLU: {max_value: 6}``) with their own
arguments.

What it cannot see, ``validate`` checks: shapes, names and what they refer to (a layer's ``inputs``, a block's
parameters, whether a block of that name exists), expressions' values, the bounds on size, and rules between two
values (``low <= high``, ``filters`` divisible by ``groups``).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from .._plugins import load_plugins
from ._aliases import ACTIVATION_ARGUMENTS, ACTIVATION_LAYERS, KERAS_ARGUMENTS, Only
from ._backbone import backbone_schema
from ._blocks import PREV
from ._draw import DIST_KINDS
from ._kinds import ALIASES, LAYERS, LayerKind
from ._schema_values import Places
from ._sections import SECTIONS, InputSpec
from ._types import ACTIVATIONS, NAME_PATTERN
from ._warnings import CODE_SCHEMA

_RESERVED_KEYS = (
    "repeat",
    "backbone",
    "kind",
    *DIST_KINDS,
)  # keys a layer item may have that are not kinds nor blocks
_TEXT = {"type": ["string", "number", "boolean", "null"]}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the spec language: model specs and search spaces; deterministic."""
    load_plugins("specdsl.layers")
    defs: dict[str, Any] = {}
    places = Places(defs)
    kinds = _Kinds(places)
    for blocks in (False, True):
        _layer_defs(places, kinds, blocks=blocks)
    defs["block"] = {
        "type": "object",
        "description": "A named list of layers with parameters, used as a layer: `- stage: {filters: 64}`. "
        "Its layers see `input` (the block's input) and `$param` / `${...}` of its parameters.",
        "examples": [
            {
                "params": {"filters": None},
                "layers": [{"conv2d": {"filters": "$filters", "kernel": 3, "padding": "same"}}, "batchnorm"],
            }
        ],
        "properties": {
            "params": {
                "type": ["object", "null"],
                "description": "The block's parameters and their defaults (null: a use must give it).",
                "examples": [{"filters": None, "strides": 1}],
            },
            "layers": {"$ref": "#/$defs/layers.with_blocks", "description": "The block's layers."},
            "output": {
                "type": "string",
                "description": "The layer whose output is the block's (default: its last layer).",
            },
            "description": {**_TEXT, "description": "What the block is, for readers."},
        },
        "required": ["layers"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "name": {
            "description": "The model's name (default: the file's name).",
            **places.place(_TEXT, refs=False, hint="text"),
        },
        "description": {
            "description": "What the model is, for readers.",
            **places.place(_TEXT, refs=False, hint="text"),
        },
        "input": {
            "description": "The model's input shape, channels-last and without the batch axis: [H, W, C] for "
            "images, [L, C] for sequences, [N] for vectors; or {shape: [...], name: ...}.",
            "examples": [[32, 32, 3], {"shape": [28, 28, 1], "name": "image"}],
            **places.place(_input_core(places), refs=False, hint="input"),
        },
        "params": {
            "type": ["object", "null"],
            "description": "Named values for the layers, read as `$name` or in `${...}` expressions; in a search "
            "space, a distribution here is drawn once and shared by every use.",
            "examples": [{"filters": 32, "kernel": {"choice": [3, 5]}}],
        },
        "blocks": {
            "description": "Named blocks of layers with parameters, used in `layers` by their name.",
            "examples": [{"stage": defs["block"]["examples"][0]}],
            **places.place(
                {
                    "type": ["object", "null"],
                    "propertyNames": {"pattern": NAME_PATTERN, "not": {"enum": [*kinds.keys, "repeat"]}},
                    "additionalProperties": {"$ref": "#/$defs/block"},
                },
                refs=False,
                hint="blocks",
            ),
        },
        "layers": {
            "description": "The model's layers, in order; each reads the one before it unless it names `inputs`.",
            "examples": [
                [{"conv2d": {"filters": 32, "kernel": 3, "activation": "relu"}}, {"maxpool2d": 2}, "flatten"]
            ],
            "$ref": "#/$defs/layers.with_blocks",
        },
        "top": {
            "description": "Where the model's top starts, which a backbone with `include_top: false` drops: the "
            "`name` of a top-level layer (default: the first flatten or global pooling layer).",
            **places.place(_TEXT, refs=False, hint="text"),
        },
        "outputs": {
            "description": "The layers whose outputs are the model's (default: the last layer).",
            "examples": [["logits"]],
            **places.place(
                {
                    "anyOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ]
                },
                refs=False,
                hint="outputs",
            ),
        },
    }
    for key, model in SECTIONS.items():
        obj = places.model(model, refs=False, hint=key)
        properties[key] = {
            "description": obj.pop("description", key),
            "examples": [_example(model, obj, defs)],
            **places.place(obj, refs=False, hint=key, name=f"section.{key}"),
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "specdsl model spec or search space",
        "type": "object",
        "properties": properties,
        "required": ["input", "layers"],
        "additionalProperties": False,
        # without blocks, no layer item may be a block's use: an unknown kind is an error
        "if": {"properties": {"blocks": {"type": "object"}}, "required": ["blocks"]},
        "else": {"properties": {"layers": {"$ref": "#/$defs/layers"}}},
        "$defs": dict(sorted(defs.items())),
    }


class _Kinds:
    """Every registered kind's arguments as a place (``kind.NAME``), and the forms of a layer item they make;
    Keras' activation layers as the activation kind under their names, with their own arguments."""

    def __init__(self, places: Places):
        self.keys = sorted([*LAYERS, *ALIASES])  # what may stand as a layer's kind
        self.one_key: dict[str, Any] = {}  # one-key form: {conv2d: {...}}
        self.tagged: list[dict[str, Any]] = []  # {kind: conv2d, ...}
        self.bare: list[str] = []  # kinds that may stand alone
        self.args: dict[str, dict[str, Any]] = {}  # kind -> the object of its arguments
        for name, info in LAYERS.items():
            self._add(places, name, info)
        if "activation" in LAYERS:
            self._activation_layers(places)
        self.one_key = dict(sorted(self.one_key.items()))
        self.bare.sort()

    def _add(self, places: Places, name: str, info: LayerKind) -> None:
        args = places.model(info.model, refs=True, hint=name, skip=("kind",))
        doc = args.pop("description", name)
        args["properties"]["name"] = _name(args["properties"]["name"])
        args["properties"]["inputs"] = _inputs(places, info)
        args["properties"].update(_keras_arguments(places, KERAS_ARGUMENTS.get(name, {})))
        if name == "activation":
            _relu_arguments(places, args)
        aliases = [a for a in info.aliases if not (name == "activation" and a in ACTIVATION_LAYERS)]
        self.args[name] = args
        if info.min_inputs > 1:
            args["required"] = ["inputs", *args.get("required", [])]
        alone = "required" not in args and "allOf" not in args
        forms: list[dict[str, Any]] = [args, *([{"type": "null"}] if alone else [])]
        if info.primary:
            forms.append({"$ref": args["properties"][info.primary]["$ref"]})
        ref = places.place({"anyOf": forms}, refs=True, hint=name, name=f"kind.{name}")
        target = places.defs[f"kind.{name}"]
        target["description"] = doc
        target["examples"] = _doc_examples(doc, (name, *info.aliases)) or [_sample(args, places.defs)]
        self.one_key[name] = ref
        for alias in aliases:
            self.one_key[alias] = {**ref, "description": f"Another name of `{name}`."}
        self._tagged(args, doc, [name, *aliases])
        if alone:
            self.bare += [name, *aliases]

    def _tagged(self, args: dict[str, Any], doc: str, names: list[str]) -> None:
        tagged = copy.deepcopy(args)
        tagged["description"] = f"{doc.splitlines()[0]} (tagged form: `kind: {names[0]}`)"
        tagged["properties"] = {"kind": {"enum": names}, **tagged["properties"]}
        tagged["required"] = ["kind", *tagged.get("required", [])]
        self.tagged.append(tagged)

    def _activation_layers(self, places: Places) -> None:
        """``ReLU: {max_value: 6}``, ``LeakyReLU``, ``ELU``, ``Softmax`` (and their other spellings): the
        activation kind's ``name``, ``inputs``, ``silence`` and Keras arguments, and the Keras class's own
        arguments instead of ``function``."""
        kind = self.args["activation"]["properties"]
        classes: dict[str, list[str]] = {}
        for written in LAYERS["activation"].aliases:
            if written in ACTIVATION_LAYERS:
                classes.setdefault(ACTIVATION_LAYERS[written][0], []).append(written)
        for cls, names in classes.items():
            _, function, defaults = ACTIVATION_LAYERS[names[0]]
            own = _keras_arguments(places, ACTIVATION_ARGUMENTS.get(cls, {}))
            keep = ("name", "inputs", "silence", "trainable", *KERAS_ARGUMENTS.get("activation", {}))
            args: dict[str, Any] = {
                "type": "object",
                "properties": {
                    **{k: kind[k] for k in keep},
                    **{k: kind[k] if k in kind else own[k] for k in defaults},
                },
                "additionalProperties": False,
            }
            if cls == "ReLU":
                args["dependentSchemas"] = {"max_value": _RELU6}
            doc = (
                f"Keras' {cls} layer: the activation {function}"
                + (" (relu6 with max_value 6, leaky_relu with negative_slope)" if cls == "ReLU" else "")
                + f"; it takes {', '.join(f'`{k}`' for k in defaults)} at Keras' defaults or as here."
            )
            ref = places.place(
                {"anyOf": [args, {"type": "null"}]}, refs=True, hint=cls, name=f"kind.activation.{cls}"
            )
            places.defs[f"kind.activation.{cls}"].update(description=doc, examples=[dict(defaults)])
            for written in names:
                self.one_key[written] = ref
            self._tagged(args, doc, names)
            self.bare += names


# Keras' ReLU(max_value=6) is relu6 only without a negative slope
_RELU6 = {
    "not": {
        "properties": {
            "max_value": {"type": "number"},
            "negative_slope": {"type": "number", "not": {"const": 0}},
        },
        "required": ["max_value", "negative_slope"],
    }
}


def _keras_arguments(places: Places, table: dict[str, Only]) -> dict[str, Any]:
    """Keras' constructor arguments that the spec takes at these values only (and drops), as properties."""
    return {
        key: {
            "description": f"{only.rule(key)}; dropped.",
            **places.place({"enum": list(only.values)}, refs=True, hint=f"keras.{key}"),
        }
        for key, only in table.items()
    }


def _relu_arguments(places: Places, args: dict[str, Any]) -> None:
    """ReLU's arguments on the activation kind: taken with function relu (and as ReLU takes them)."""
    relu = _keras_arguments(places, ACTIVATION_ARGUMENTS["ReLU"])
    args["properties"].update(relu)
    others = {"not": {"enum": [a for a in ACTIVATIONS if a != "relu"]}}
    only_relu = {"properties": {"function": others, "activation": others}}
    args["dependentSchemas"] = {
        **args.get("dependentSchemas", {}),
        **{key: only_relu for key in relu},
        "max_value": {"allOf": [only_relu, _RELU6]},
    }


def _layer_defs(places: Places, kinds: _Kinds, *, blocks: bool) -> None:
    """``layer``, ``layers`` and ``repeat`` (and the ``.with_blocks`` ones, where an item may use a block)."""
    tail = ".with_blocks" if blocks else ""
    bare: list[dict[str, Any]] = [
        {
            "type": "string",
            "enum": kinds.bare,
            "description": "A layer kind without required arguments, alone.",
        }
    ]
    one_key: dict[str, Any] = {
        "type": "object",
        "description": "A layer: its kind as the one key, its arguments under it (`conv2d: {filters: 32, "
        "kernel: 3}`), or its main argument alone (`maxpool2d: 2`).",
        "properties": kinds.one_key,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }
    places.defs["layer.tagged"] = {
        "description": "A layer in the tagged form: `{kind: conv2d, filters: 32, kernel: 3}`.",
        "anyOf": kinds.tagged,
    }
    tagged: list[dict[str, Any]] = [{"$ref": "#/$defs/layer.tagged"}]
    if blocks:
        use = _block_use(places)
        block_name = {
            "type": "string",
            "pattern": NAME_PATTERN,
            "not": {"enum": [*kinds.keys, *_RESERVED_KEYS]},
        }
        bare.append({**block_name, "description": "A block used with its parameters' defaults."})
        one_key["description"] += " Or a block's use: `stage: {filters: 64}`."
        one_key["additionalProperties"] = use
        one_key["propertyNames"] = {"anyOf": [{"enum": kinds.keys}, block_name]}
        tagged.append(
            {
                "type": "object",
                "description": "A block's use in the tagged form: `kind: stage`.",
                "properties": {"kind": block_name},
                "required": ["kind"],
            }
        )
    places.defs[f"repeat{tail}"] = {
        "type": "object",
        "description": "The layers repeated `repeat` times (0: none), each pass reading the one before; in them "
        "`$index` is the pass (from 0) and `prev` the pass's input. With `name`, the last pass's output is "
        "known by it.",
        "examples": [{"repeat": 3, "layers": [{"conv2d": {"filters": "${32 * 2 ** index}", "kernel": 3}}]}],
        "properties": {
            "repeat": {
                "description": "How many times (a distribution in a search space).",
                **places.place({"type": "integer", "minimum": 0}, refs=True, hint="repeat"),
            },
            "layers": {"$ref": f"#/$defs/layers{tail}", "description": "The layers of one pass."},
            "name": _name({"$ref": _name_place(places)["$ref"]}),
            **_passed_on(places),
        },
        "required": ["repeat", "layers"],
        "additionalProperties": False,
    }
    places.defs["backbone"] = backbone_schema(places.place(_TEXT, refs=False, hint="text"))
    item = {
        "anyOf": [*bare, one_key, *tagged, {"$ref": f"#/$defs/repeat{tail}"}, {"$ref": "#/$defs/backbone"}]
    }
    places.place(item, refs=True, hint="layer", name=f"layer{tail}")
    places.defs[f"layer{tail}"]["description"] = "One layer, a repeat" + (
        ", or a block's use." if blocks else "."
    )
    places.place(
        {"type": "array", "items": {"$ref": f"#/$defs/layer{tail}"}, "minItems": 1},
        refs=False,
        hint="layers",
        name=f"layers{tail}",
    )


def _name_place(places: Places) -> dict[str, Any]:
    return places.place({"type": "string", "pattern": NAME_PATTERN, "maxLength": 128}, refs=True, hint="name")


def _name(prop: dict[str, Any]) -> dict[str, Any]:
    """A layer's, repeat's or block use's ``name``: an identifier, not ``input`` (nor ``prev`` in a repeat)."""
    return {
        **prop,
        "description": "Its name, unique in the model, to read it by (`inputs`, `outputs`); `input` is "
        f"reserved, and `{PREV}` inside a repeat.",
        "not": {"const": "input"},
    }


def _inputs(places: Places, info: LayerKind) -> dict[str, Any]:
    """``inputs`` as the kind's number of inputs allows: one name or a list of them."""
    low, high = info.min_inputs, info.max_inputs
    names: dict[str, Any] = {
        "type": "array",
        "items": places.place({"type": "string"}, refs=True, hint="layer_name"),
        "minItems": max(low, 1),
    }
    if high is not None:
        names["maxItems"] = high
    core = names if low > 1 else {"anyOf": [{"type": "string"}, names, {"type": "null"}]}
    many = (
        f"{low} or more layers"
        if high is None
        else f"{low} layer"
        if high == 1
        else f"{low} to {high} layers"
    )
    return {
        "description": f"The names of the {many} it reads (default: the layer before it).",
        **places.place(core, refs=True, hint=f"inputs.{low}.{high}"),
    }


def _passed_on(places: Places) -> dict[str, Any]:
    """A repeat's or block use's ``trainable`` (false freezes every layer inside it) and ``silence`` (codes
    silenced on every layer inside it)."""
    codes = {"type": "array", "items": dict(CODE_SCHEMA)}
    return {
        "trainable": {
            **places.place({"type": "boolean"}, refs=True, hint="trainable"),
            "description": "false: every layer inside it is frozen (true: each layer as it says).",
        },
        "silence": {
            **places.place(codes, refs=False, hint="silence"),
            "description": "Codes of the warnings silenced on every layer inside it (e.g. [drops-rows]).",
        },
    }


def _block_use(places: Places) -> dict[str, Any]:
    return places.place(
        {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "description": "The block's parameters (and its `name`, its `inputs`).",
                    "properties": {
                        "name": _name(_name_place(places)),
                        "inputs": {
                            "description": "The one layer the block reads (default: the layer before it)."
                        },
                        **_passed_on(places),
                    },
                    "propertyNames": {"pattern": NAME_PATTERN},
                },
            ]
        },
        refs=False,
        hint="block_use",
    )


def _input_core(places: Places) -> dict[str, Any]:
    spec = places.model(InputSpec, refs=False, hint="input")
    return {"anyOf": [spec["properties"]["shape"], {k: v for k, v in spec.items() if k != "description"}]}


def _doc_examples(doc: str, keys: tuple[str, ...]) -> list[Any]:
    """The arguments of this kind in the docstring's YAML lines (``- conv2d: {filters: 64, kernel: 3}``)."""
    found = []
    for line in doc.splitlines():
        if not line.strip().startswith("- "):
            continue
        try:
            item = yaml.safe_load(line.strip())
        except yaml.YAMLError:
            continue
        if isinstance(item, list) and len(item) == 1 and isinstance(item[0], dict) and len(item[0]) == 1:
            ((key, value),) = item[0].items()
            if key in keys:
                found.append(value)
    return found


def _example(model: type[BaseModel], obj: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A section as its defaults fill it (required fields from their examples)."""
    filled = model.model_validate(_sample(obj, defs))
    return filled.model_dump(mode="json", exclude_none=True)


def _sample(schema: Any, defs: dict[str, Any]) -> Any:
    """A small value ``schema`` accepts (an object: its required fields only), for examples."""
    if "$ref" in schema:
        here = {k: v for k, v in schema.items() if k != "$ref"}
        return _sample({**defs[schema["$ref"].rsplit("/", 1)[-1]]["anyOf"][0], **here}, defs)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "default" in schema:
        return schema["default"]
    if "anyOf" in schema:
        return _sample(schema["anyOf"][0], defs)
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", []) + [
            group["anyOf"][0]["required"][0] for group in schema.get("allOf", [])
        ]
        return {k: _sample(schema["properties"][k], defs) for k in required}
    if kind == "array":
        if "prefixItems" in schema:
            return [_sample(s, defs) for s in schema["prefixItems"]]
        items = [_sample(schema["items"], defs) for _ in range(max(schema.get("minItems", 1), 1))]
        return [f"{v}{i}" for i, v in enumerate(items)] if all(isinstance(v, str) for v in items) else items
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return low if kind == "integer" else float(low)
    return {"boolean": True, "string": "a"}.get(kind)  # type: ignore[arg-type]

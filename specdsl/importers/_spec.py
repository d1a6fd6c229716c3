"""A :class:`Graph` as spec text: every layer validated by its kind's model, written in the language's short forms.

The flat form writes one line per layer. A layer reading the one above it needs no ``inputs:``; a name is written
only where the language would not give the layer that name by itself (so a model built by specdsl reads back as
it was written). Names that are not identifiers, or that would be taken twice, are made identifiers.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import PydanticUndefined

from .._text import identifier
from ..errors import SourceError
from ..spec import LAYERS, NAME_PATTERN
from ._graph import Graph, Layer

_NAME = re.compile(NAME_PATTERN)
GENERATED_INPUT = re.compile(r"^(input(_layer)?(_\d+)?|inputs?|x|x_\d+|input\.\d+)$")


# ---------------------------------------------------------------------------------------------------------------
# Arguments


def normalize(layer: Layer, defaults: bool = False) -> dict[str, Any]:
    """The layer's arguments as its kind's model validates them, in the model's field order and in the shortest
    form the language reads (``kernel: 3`` for 3x3, ``padding: 1``); those at their default left out unless
    ``defaults``."""
    model = LAYERS[layer.kind].model
    try:
        spec = model.model_validate({**layer.args, "kind": layer.kind})
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SourceError(
            f"{layer.origin or layer.name}: becomes a `{layer.kind}` whose `{where}` the language refuses: "
            f"{first['msg']}."
        ) from None
    out: dict[str, Any] = {}
    for field in field_order(model):
        value = short(getattr(spec, field))
        if defaults or not is_default(layer.kind, field, value):
            out[field] = value
    return out


def is_default(kind: str, field: str, value: Any) -> bool:
    """Whether ``value`` (in its short form) is the field's default, which a spec need not write."""
    info = LAYERS[kind].model.model_fields[field]
    if info.default is not PydanticUndefined:
        return value == short(info.default)
    return info.default_factory is not None and value == short(info.default_factory())


def field_order(model: Any) -> list[str]:
    """A kind's fields as the examples write them: the kind's own (its main argument first), then its bases'."""
    order: list[str] = []
    for cls in model.__mro__:
        for f in getattr(cls, "__annotations__", {}):
            if f in model.model_fields and f not in order and f not in ("kind", "name", "inputs"):
                order.append(f)
    return order


def short(value: Any) -> Any:
    """(3, 3) -> 3; ((1, 1), (1, 1)) -> 1; ((1, 1), (2, 2)) -> [1, 2]; other tuples -> lists."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            if all(a == b for a, b in value):
                return short(tuple(a for a, _ in value))
            return [list(v) for v in value]
        if len(value) == 2 and value[0] == value[1] and all(isinstance(v, int) for v in value):
            return value[0]
        return [short(v) for v in value]
    if isinstance(value, list):
        return [short(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------------
# Names


class Namer:
    """Decides which names a spec writes, predicting the names the language gives unnamed layers (as
    ``specdsl.spec._document._Expander.auto_name`` does: ``conv2d``, ``conv2d_1``, ... skipping names in use)."""

    def __init__(self, taken: set[str]):
        self.used = set(taken)
        self.counters: dict[str, int] = {}

    def peek(self, base: str) -> tuple[str, int]:
        n = self.counters.get(base, 0)
        while True:
            name = base if n == 0 else f"{base}_{n}"
            if name not in self.used:
                return name, n
            n += 1

    def auto(self, base: str) -> str:
        name, n = self.peek(base)
        self.counters[base] = n + 1
        self.used.add(name)
        return name

    def decide(self, kind: str, wanted: str, referenced: bool = False) -> tuple[str, bool]:
        """(the node's name, whether the spec must write it): a layer that others name in ``inputs:`` must have
        its name written (the language resolves only written names)."""
        base = LAYERS[kind].auto_name
        name, n = self.peek(base)
        if name == wanted and not referenced:
            self.counters[base] = n + 1
            self.used.add(name)
            return name, False
        self.used.add(wanted)
        return wanted, True


def spec_names(graph: Graph) -> tuple[str, dict[str, str]]:
    """The spec's input name and, for each layer of the graph, a unique identifier made from its source name
    (``input`` itself is left to the model's input)."""
    src_input = graph.input_name
    input_name = "input" if GENERATED_INPUT.match(src_input) or not _NAME.match(src_input) else src_input
    taken = {input_name, "input"}
    names: dict[str, str] = {src_input: input_name}
    for layer in graph.layers:
        name = identifier(layer.name.replace("/", "_")[:100], taken)
        taken.add(name)
        names[layer.name] = name
    return input_name, names


# ---------------------------------------------------------------------------------------------------------------
# The flat spec


def flat_layers(graph: Graph) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    """The ``layers:`` list of the flat spec, each graph layer's node name in it (the input's too), and the
    input's name."""
    input_name, names = spec_names(graph)
    referenced = references(graph)
    namer = Namer({input_name})
    nodes: dict[str, str] = {graph.input_name: input_name}
    items: list[dict[str, Any]] = []
    prev = input_name
    for layer in graph.layers:
        args = normalize(layer)
        inputs = [nodes[i] for i in layer.inputs]
        node, write = namer.decide(layer.kind, names[layer.name], layer.name in referenced)
        nodes[layer.name] = node
        if inputs != [prev]:
            args["inputs"] = inputs[0] if len(inputs) == 1 else inputs
        if write:
            args["name"] = node
        items.append({layer.kind: args})
        prev = node
    return items, nodes, input_name


def references(graph: Graph) -> set[str]:
    """The layers that another layer reads other than as the layer just above it, or that are outputs other than
    the last layer: the spec names them."""
    out: set[str] = set()
    prev = graph.input_name
    for layer in graph.layers:
        if layer.inputs != [prev]:
            out.update(layer.inputs)
        prev = layer.name
    if graph.outputs != [prev]:
        out.update(graph.outputs)
    return out


def document(
    graph: Graph,
    layers: list[Any],
    input_name: str,
    outputs: list[str],
    last: str,
    blocks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole spec as a mapping: name, description, input, blocks, layers, outputs."""
    doc: dict[str, Any] = {"name": graph.name, "description": f"Imported from {graph.source}."}
    shape = list(graph.input_shape)
    doc["input"] = shape if input_name == "input" else {"shape": shape, "name": input_name}
    if blocks:
        doc["blocks"] = blocks
    doc["layers"] = layers
    if outputs != [last]:
        doc["outputs"] = outputs
    return doc


# ---------------------------------------------------------------------------------------------------------------
# YAML


def scalar(value: Any) -> str:
    """One value in YAML's flow style, quoted where a flow mapping needs it (``'${filters * 4}'``)."""
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        raise ValueError(f"cannot write {value} in a spec")
    # dumped inside a list, so that YAML quotes what a flow context needs quoted
    text = yaml.safe_dump(
        [value], default_flow_style=True, width=math.inf, allow_unicode=False, sort_keys=False
    )
    text = text.strip()
    return text[1:-1]


def layer_line(item: dict[str, Any]) -> str:
    """``conv2d: {filters: 64, kernel: 3}``; a kind without arguments stands alone (``flatten``), one with only its
    main argument takes it as a scalar (``maxpool2d: 2``)."""
    ((key, args),) = item.items()
    if isinstance(args, dict):
        if not args:
            return key
        primary = LAYERS[key].primary if key in LAYERS else None
        if primary is not None and list(args) == [primary] and not isinstance(args[primary], dict):
            return f"{key}: {scalar(args[primary])}"
        return f"{key}: {{{', '.join(f'{k}: {scalar(v)}' for k, v in args.items())}}}"
    return f"{key}: {scalar(args)}"


def write_layers(items: list[Any], indent: str) -> list[str]:
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and "repeat" in item:
            lines.append(f"{indent}- repeat: {scalar(item['repeat'])}")
            if "name" in item:
                lines.append(f"{indent}  name: {scalar(item['name'])}")
            lines.append(f"{indent}  layers:")
            lines += write_layers(item["layers"], indent + "    ")
        else:
            lines.append(f"{indent}- {layer_line(item)}")
    return lines


def to_yaml(doc: dict[str, Any]) -> str:
    """The spec as YAML text: top-level keys in order, one layer per line."""
    lines = [f"name: {scalar(doc['name'])}", f"description: {scalar(doc['description'])}"]
    lines.append(f"input: {scalar(doc['input'])}")
    if doc.get("blocks"):
        lines.append("blocks:")
        for name, block in doc["blocks"].items():
            lines.append(f"  {name}:")
            if block.get("params"):
                lines.append(f"    params: {scalar(block['params'])}")
            lines.append("    layers:")
            lines += write_layers(block["layers"], "      ")
            if block.get("output") is not None:
                lines.append(f"    output: {scalar(block['output'])}")
    lines.append("layers:")
    lines += write_layers(doc["layers"], "  ")
    if "outputs" in doc:
        lines.append(f"outputs: {scalar(doc['outputs'])}")
    return "\n".join(lines) + "\n"

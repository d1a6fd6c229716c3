"""The compact form of an imported spec: ``blocks:`` with ``params:``, and ``repeat:``, where the structure repeats.

Four passes over the flat layers, each keeping their order (so the compact spec expands to the flat one node by
node, which the importer checks):

1. motifs: short chains with a normalization (conv -> batchnorm -> activation, batchnorm -> activation -> conv)
   that occur at least :data:`~._compact_passes.MOTIF_MIN` times become a block (``conv_bn_act``), their
   differing values its params;
2. modules: the graph is cut where a single tensor passes from one part to the next; a part with more than one
   layer (a residual block, an inception module) is a block, parts of the same structure share it;
3. runs: consecutive equal items become ``repeat: N``;
4. phrases: consecutive runs of items of the same structure whose values differ (VGG's stages: 2 or 3 convs and a
   pool, of 64 to 512 filters; ResNet's stages: a projection block and N identity blocks) become a block whose
   differing values, repeat counts included, are its params.

A value that differs between the uses of a block becomes a param, named by the argument it sets (``filters``,
``strides``, ``n`` for a repeat count); one equal to another param, or an integer multiple of it, reads it
(``${filters * 4}``).

The modules: this one (the compact spec written out); ``_compact_passes`` (the four passes); ``_compact_items``
(the items they rewrite: layers, uses of blocks, repeats); ``_compact_params`` (a block's params and defaults).
"""

from __future__ import annotations

from typing import Any

from ..spec import LAYERS
from ._compact_items import Block, Call, Rep, lines, thaw, unroll
from ._compact_passes import Compactor
from ._graph import Graph


def _written(item: Any, blocks: dict[str, Block]) -> Any:
    from ._spec import is_default

    if isinstance(item, Rep):
        return {"repeat": item.count, "layers": [_written(x, blocks) for x in item.body]}
    if item.key in LAYERS:
        args = {k: thaw(v) for k, v in item.args if not is_default(item.key, k, thaw(v))}
    else:
        omitted = blocks[item.key].defaults
        args = {k: thaw(v) for k, v in item.args if k not in omitted or omitted[k] != v}
    if item.inputs:
        args["inputs"] = item.inputs[0] if len(item.inputs) == 1 else list(item.inputs)
    if item.local:
        args["name"] = item.local
    elif item.name:
        args["name"] = item.name
    return {item.key: args}


def compact_document(
    graph: Graph,
    items: list[dict[str, Any]],
    nodes: dict[str, str],
    input_name: str,
    outputs: list[str],
    last: str,
) -> dict[str, Any] | None:
    """The compact spec as a mapping, or None where it would be no shorter than the flat one (or the model has
    several outputs, which the compact form does not place)."""
    from ._spec import document

    if len(graph.outputs) != 1 or graph.outputs[0] != graph.layers[-1].name:
        return None
    index = {graph.input_name: -1, **{layer.name: i for i, layer in enumerate(graph.layers)}}
    c = Compactor(graph, items, index)
    c.motifs()
    top = c.sequence(c.modules())
    for block in list(c.blocks.values()):
        plain = all(isinstance(x, Call) and not x.inputs and not x.local for x in block.body)
        block.body = unroll(c.sequence(block.body) if plain else block.body)
    top = unroll(top)
    # a block used once is written in place
    used = _uses(top, c.blocks)
    blocks = {
        name: {
            "params": {p: thaw(b.defaults.get(p)) for p in b.params},
            "layers": [_written(x, c.blocks) for x in b.body],
        }
        for name, b in c.blocks.items()
        if used.get(name)
    }
    written = [_written(x, c.blocks) for x in top]
    if sum(lines(x) for x in top) + sum(3 + len(b["layers"]) for b in blocks.values()) >= len(items):
        return None
    return document(graph, written, input_name, ["last"], "last", blocks=blocks)


def _uses(items: list[Any], blocks: dict[str, Block]) -> dict[str, int]:
    count: dict[str, int] = {}

    def walk(xs: list[Any]) -> None:
        for x in xs:
            if isinstance(x, Rep):
                walk(list(x.body))
            elif x.key in blocks:
                count[x.key] = count.get(x.key, 0) + 1
                if count[x.key] == 1:
                    walk(blocks[x.key].body)

    walk(items)
    return count

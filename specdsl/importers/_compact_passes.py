"""The passes of the compact form over the flat layers (see ``_compact``): motifs, modules, runs and phrases, each
keeping the layers' order, the blocks they make kept by a :class:`Compactor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..spec import LAYERS, canonical_kind
from ._compact_items import (
    Block,
    Call,
    demote,
    freeze,
    labels,
    lines,
    plain,
    promote,
    replace,
    runs,
    shape,
    strip,
    values,
)
from ._compact_params import defaults, parametrize
from ._graph import Graph

MOTIF_MIN = 3  # uses before a chain becomes a block
MOTIF_KINDS = {
    "conv2d",
    "conv1d",
    "depthwise_conv2d",
    "separable_conv2d",
    "conv2d_transpose",
    "dense",
    "batchnorm",
    "layernorm",
    "activation",
    "bias",
}
NORMS = {"batchnorm", "layernorm"}
SHORT = {
    "conv2d": "conv",
    "conv1d": "conv1d",
    "depthwise_conv2d": "dwconv",
    "separable_conv2d": "sepconv",
    "conv2d_transpose": "deconv",
    "dense": "dense",
    "batchnorm": "bn",
    "layernorm": "ln",
    "activation": "act",
    "bias": "bias",
}
MAX_PHRASE = 8

# the names Keras and specdsl give layers by themselves: a compact spec leaves them to the language
_BASES = sorted(
    {info.auto_name for info in LAYERS.values()}
    | {re.sub(r"(?<!^)(?=[A-Z])", "_", info.keras_class).lower() for info in LAYERS.values()}
    | {"re_lu", "leaky_re_lu", "elu", "softmax", "identity", "input_layer"},
    key=len,
    reverse=True,
)
GENERATED = re.compile(rf"^(?:{'|'.join(_BASES)})(?:_\d+)?$")


def _telling(name: Any) -> bool:
    """A top-level layer's name worth keeping: one the source gave it (not ``conv2d_3``)."""
    return isinstance(name, str) and not GENERATED.match(name)


@dataclass
class _Node:
    call: Call
    inputs: list[int]  # indices of nodes read (-1: the model's input)


class Compactor:
    """The flat layers as nodes, rewritten pass by pass, and the blocks the passes make."""

    def __init__(self, graph: Graph, items: list[dict[str, Any]], index: dict[str, int]):
        from ._spec import normalize

        self.blocks: dict[str, Block] = {}
        self.nodes: list[_Node] = []
        for layer, item in zip(graph.layers, items):
            ((kind, written),) = item.items()
            # every field, defaults too: `padding: valid` and `padding: same` are then values of one structure
            args = normalize(layer, defaults=True)
            name = written.get("name")
            call = Call(
                kind, tuple((k, freeze(v)) for k, v in args.items()), name=name if _telling(name) else None
            )
            self.nodes.append(_Node(call, [index[i] for i in layer.inputs]))
        self.outputs = [index[o] for o in graph.outputs]

    def block_name(self, base: str) -> str:
        name, n = base, 1
        while name in self.blocks or canonical_kind(name) is not None or name in ("repeat", "input"):
            n += 1
            name = f"{base}{n}" if not base[-1].isdigit() else f"{base}_{n}"
        return name

    # -- 1. motifs

    def motifs(self) -> None:
        readers: dict[int, list[int]] = {}
        for j, node in enumerate(self.nodes):
            for i in node.inputs:
                readers.setdefault(i, []).append(j)
        for i in self.outputs:
            readers.setdefault(i, []).append(len(self.nodes))
        taken = [False] * len(self.nodes)
        while True:
            found: dict[Any, list[int]] = {}
            for p in (3, 2):
                for a in range(len(self.nodes) - p + 1):
                    span = range(a, a + p)
                    if any(taken[k] for k in span) or not self._chain(a, p, readers):
                        continue
                    key = (p, tuple(shape(self.nodes[k].call) for k in span))
                    starts = found.setdefault(key, [])
                    if not starts or starts[-1] + p <= a:
                        starts.append(a)
            best = max(
                ((key, starts) for key, starts in found.items() if len(starts) >= MOTIF_MIN),
                key=lambda ks: len(ks[1]) * (ks[0][0] - 1) - ks[0][0],
                default=None,
            )
            if best is None or len(best[1]) * (best[0][0] - 1) - best[0][0] - 2 <= 0:
                break
            (p, _), starts = best
            name = self.block_name("_".join(SHORT[self.nodes[starts[0] + k].call.key] for k in range(p)))
            uses = [[v for k in range(a, a + p) for v in values(self.nodes[k].call)] for a in starts]
            names = [label for k in range(starts[0], starts[0] + p) for label in labels(self.nodes[k].call)]
            params, forms, per_use = parametrize(uses, names)
            it = iter(forms)
            body = [plain(replace(self.nodes[k].call, it)) for k in range(starts[0], starts[0] + p)]
            self.blocks[name] = Block(name, params, body, defaults(body, params, self.blocks))
            for a, vals in zip(starts, per_use):
                for k in range(a, a + p):
                    taken[k] = True
                self.nodes[a + p - 1] = _Node(Call(name, tuple(zip(params, vals))), self.nodes[a].inputs)
                for k in range(a, a + p - 1):
                    self.nodes[k] = None  # type: ignore[assignment]
            self._drop_removed()
            readers = {}
            for j, node in enumerate(self.nodes):
                for i in node.inputs:
                    readers.setdefault(i, []).append(j)
            for i in self.outputs:
                readers.setdefault(i, []).append(len(self.nodes))
            taken = [node.call.key in self.blocks for node in self.nodes]

    def _chain(self, a: int, p: int, readers: dict[int, list[int]]) -> bool:
        span = [self.nodes[k] for k in range(a, a + p)]
        kinds = [n.call.key for n in span]
        if any(k not in MOTIF_KINDS for k in kinds) or not NORMS & set(kinds) or len(span[0].inputs) != 1:
            return False
        for t in range(p - 1):
            if self.nodes[a + t + 1].inputs != [a + t] or readers.get(a + t) != [a + t + 1]:
                return False
        return True

    def _drop_removed(self) -> None:
        kept = [i for i, n in enumerate(self.nodes) if n is not None]
        new_index = {old: new for new, old in enumerate(kept)}
        new_index[-1] = -1
        # a removed node was read only inside its chain, by the node that replaced the chain's last
        self.nodes = [_Node(self.nodes[i].call, [new_index[j] for j in self.nodes[i].inputs]) for i in kept]
        self.outputs = [new_index[o] for o in self.outputs]

    # -- 2. modules

    def modules(self) -> list[Any]:
        """The top-level items: single nodes as they are, each multi-node part a use of its module block."""
        n = len(self.nodes)
        last_reader = {-1: 0}
        for j, node in enumerate(self.nodes):
            for i in node.inputs:
                last_reader[i] = max(last_reader.get(i, 0), j)
        for o in self.outputs:
            last_reader[o] = n
        parts: list[tuple[int, int]] = []
        start, reach = 0, last_reader.get(-1, 0)
        for p in range(n):
            # a cut after p: nothing before p is read after p
            if reach <= p:
                parts.append((start, p))
                start = p + 1
            reach = max(reach, last_reader.get(p, 0))
        if start < n:
            parts.append((start, n - 1))
        # an activation after a residual add or a concat belongs to its block, as ResNet's blocks end
        merged: list[tuple[int, int]] = []
        for a, b in parts:
            if merged and a == b and self.nodes[a].call.key == "activation" and merged[-1][0] < merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        parts = merged
        groups: dict[Any, list[tuple[int, int]]] = {}
        bodies: dict[tuple[int, int], list[Call]] = {}
        for a, b in parts:
            if a == b:
                continue
            body = self._body(a, b)
            bodies[(a, b)] = body
            groups.setdefault(tuple(shape(c) for c in body), []).append((a, b))
        uses: dict[tuple[int, int], Call] = {}
        for spans in groups.values():
            merges = [c.key for c in bodies[spans[0]] if c.key in ("add", "concat", "multiply")]
            name = self.block_name(
                {"add": "residual", "concat": "branches", "multiply": "gate"}.get(
                    merges[-1] if merges else "", "block"
                )
            )
            rows = [[v for c in bodies[s] for v in values(c)] for s in spans]
            names = [label for c in bodies[spans[0]] for label in labels(c)]
            params, forms, per_use = parametrize(rows, names)
            it = iter(forms)
            body = [replace(c, it) for c in bodies[spans[0]]]
            self.blocks[name] = Block(name, params, body, defaults(body, params, self.blocks))
            for s, vals in zip(spans, per_use):
                uses[s] = Call(name, tuple(zip(params, vals)))
        items: list[Any] = []
        for a, b in parts:
            items.append(self.nodes[a].call if a == b else uses[(a, b)])
        return items

    def _body(self, a: int, b: int) -> list[Call]:
        """A part's nodes as a block body: local inputs, and local names for the nodes read out of order."""
        read: list[int] = []
        prev = a - 1
        entries = []
        for j in range(a, b + 1):
            node = self.nodes[j]
            ins = tuple(node.inputs)
            if ins != (prev,):
                read += [i for i in ins if i >= a and i not in read]
            entries.append(ins)
            prev = j
        local = {i: f"b{k + 1}" for k, i in enumerate(sorted(read))}
        body = []
        prev = a - 1
        for j, ins in zip(range(a, b + 1), entries):
            call = self.nodes[j].call
            written = () if ins == (prev,) else tuple("input" if i < a else local[i] for i in ins)
            body.append(Call(call.key, call.args, written, local.get(j)))
            prev = j
        return body

    # -- 3. and 4. runs and phrases

    def sequence(self, items: list[Any]) -> list[Any]:
        items = runs(items)
        while True:
            best = self._best_phrase(items)
            if best is None:
                break
            start, p, k = best
            items = self._phrase(items, start, p, k)
            items = runs(items)
        return items

    def _best_phrase(self, items: list[Any]) -> tuple[int, int, int] | None:
        best, best_saving = None, 0
        promoted = [shape(promote(x)) for x in items]
        for p in range(2, MAX_PHRASE + 1):
            for s in range(len(items) - 2 * p + 1):
                key = promoted[s : s + p]
                k = 1
                while s + (k + 1) * p <= len(items) and promoted[s + k * p : s + (k + 1) * p] == key:
                    k += 1
                if k < 2:
                    continue
                size = sum(lines(promote(x)) for x in items[s : s + p])
                saving = k * size - (size + 3 + k)
                if saving > best_saving:
                    best, best_saving = (s, p, k), saving
        return best

    def _phrase(self, items: list[Any], start: int, p: int, k: int) -> list[Any]:
        uses = [[promote(x) for x in items[start + u * p : start + (u + 1) * p]] for u in range(k)]
        rows = [[v for x in use for v in values(x)] for use in uses]
        names = [label for x in uses[0] for label in labels(x)]
        params, forms, per_use = parametrize(rows, names)
        it = iter(forms)
        body = [strip(replace(x, it)) for x in uses[0]]
        name = self.block_name("stage")
        body = demote(body)
        self.blocks[name] = Block(name, params, body, defaults(body, params, self.blocks))
        calls = [Call(name, tuple(zip(params, vals))) for vals in per_use]
        return items[:start] + calls + items[start + p * k :]

"""The compact form of an imported spec: ``blocks:`` with ``params:``, and ``repeat:``, where the structure repeats.

Four passes over the flat layers, each keeping their order (so the compact spec expands to the flat one node by
node, which the importer checks):

1. motifs: short chains with a normalization (conv -> batchnorm -> activation, batchnorm -> activation -> conv)
   that occur at least :data:`MOTIF_MIN` times become a block (``conv_bn_act``), their differing values its params;
2. modules: the graph is cut where a single tensor passes from one part to the next; a part with more than one
   layer (a residual block, an inception module) is a block, parts of the same structure share it;
3. runs: consecutive equal items become ``repeat: N``;
4. phrases: consecutive runs of items of the same structure whose values differ (VGG's stages: 2 or 3 convs and a
   pool, of 64 to 512 filters; ResNet's stages: a projection block and N identity blocks) become a block whose
   differing values, repeat counts included, are its params.

A value that differs between the uses of a block becomes a param, named by the argument it sets (``filters``,
``strides``, ``n`` for a repeat count); one equal to another param, or an integer multiple of it, reads it
(``${filters * 4}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticUndefined

from ..spec import LAYERS, canonical_kind
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


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Call:
    """A layer, or a use of a block: ``key`` is the kind or the block's name, ``args`` its (field, value) pairs.
    Inside a module's body, ``inputs`` are the local layers it reads (``"input"`` or an index), ``()`` the one
    above it, and ``local`` the name others read it by."""

    key: str
    args: tuple[tuple[str, Any], ...]
    inputs: tuple[Any, ...] = ()
    local: str | None = None
    name: str | None = None  # a top-level layer's own name, where it says something


@dataclass(frozen=True)
class Rep:
    count: Any
    body: tuple[Any, ...]
    # the items it stands for, names and all, for writing them out again (see _unroll)
    originals: tuple[Any, ...] | None = field(default=None, compare=False)


@dataclass
class Block:
    name: str
    params: list[str]
    body: list[Any]
    defaults: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Values, structure, params


def values(item: Any) -> list[Any]:
    """The item's values in a fixed order: its arguments' values, a repeat's count, then its body's."""
    if isinstance(item, Rep):
        return [item.count, *(v for x in item.body for v in values(x))]
    return [v for _, v in item.args]


def labels(item: Any) -> list[str]:
    if isinstance(item, Rep):
        return ["n", *(label for x in item.body for label in labels(x))]
    return [k for k, _ in item.args]


def shape(item: Any) -> Any:
    """The item without its values: items of the same shape differ only in values."""
    if isinstance(item, Rep):
        return ("repeat", tuple(shape(x) for x in item.body))
    return (item.key, tuple(k for k, _ in item.args), item.inputs, item.local)


def replace(item: Any, it: Iterator[Any]) -> Any:
    """The item with its values taken, in :func:`values` order, from ``it``."""
    if isinstance(item, Rep):
        count = next(it)
        return Rep(count, tuple(replace(x, it) for x in item.body))
    return Call(item.key, tuple((k, next(it)) for k, _ in item.args), item.inputs, item.local, item.name)


def parametrize(instances: list[list[Any]], names: list[str]) -> tuple[list[str], list[Any], list[list[Any]]]:
    """Params for the values of several uses of one structure.

    Args:
        instances: each use's values (one list per use, of equal length).
        names: each value's label (the argument it sets).

    Returns:
        The params' names, each value's form in the body (the value itself where it never differs, ``$p`` or
        ``${p * c}`` where it does), and each use's param values.
    """
    columns = list(zip(*instances)) if instances else []
    forms: list[Any] = [None] * len(columns)
    bases: list[tuple[str, tuple]] = []  # (label, column) of each param, in the order they are made
    refs: dict[int, tuple[int, int]] = {}  # value index -> (param, factor)
    varying = [i for i, col in enumerate(columns) if any(v != col[0] for v in col)]
    for i, col in enumerate(columns):
        if i not in varying:
            forms[i] = col[0]
    # smallest values first, so that a multiple reads its base (filters, then ${filters * 4})
    for i in sorted(varying, key=lambda i: (names[i], _magnitude(columns[i]))):
        col, label = columns[i], names[i]
        for p, (base_label, base) in enumerate(bases):
            if base_label != label:
                continue
            factor = 1 if col == base else _factor(col, base)
            if factor is not None:
                refs[i] = (p, factor)
                break
        else:
            bases.append((label, col))
            refs[i] = (len(bases) - 1, 1)
    # params named, and listed, in the order the body first uses them: filters, then filters_2
    order = sorted(range(len(bases)), key=lambda p: min(i for i, (q, _) in refs.items() if q == p))
    taken: list[str] = []
    name_of: dict[int, str] = {}
    for p in order:
        name_of[p] = _fresh(bases[p][0], taken)
        taken.append(name_of[p])
    for i, (p, factor) in refs.items():
        forms[i] = f"${name_of[p]}" if factor == 1 else f"${{{name_of[p]} * {factor}}}"
    names_out = [name_of[p] for p in order]
    per_use = [[bases[p][1][u] for p in order] for u in range(len(instances))]
    return names_out, forms, per_use


def defaults(body: list[Any], params: list[str], blocks: dict[str, Block]) -> dict[str, Any]:
    """A default for each param that only sets layer arguments (or other blocks' params) having one same default:
    ``strides: 1`` then goes unwritten where it is 1, as a layer's own default would."""
    from ._spec import short

    seen: dict[str, set] = {p: set() for p in params}
    blocked: set[str] = set()

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, Rep):
                if isinstance(item.count, str):
                    blocked.update(p for p in params if p in item.count)
                walk(list(item.body))
                continue
            for key, form in item.args:
                if not isinstance(form, str) or "$" not in form:
                    continue
                ref = form[1:] if form[1:] in seen else None
                if ref is None:
                    blocked.update(p for p in params if p in form)
                    continue
                if item.key in LAYERS:
                    info = LAYERS[item.key].model.model_fields[key]
                    if info.default is PydanticUndefined:
                        blocked.add(ref)
                    else:
                        seen[ref].add(_freeze(short(info.default)))
                elif item.key in blocks and key in blocks[item.key].defaults:
                    seen[ref].add(blocks[item.key].defaults[key])
                else:
                    blocked.add(ref)

    walk(body)
    return {p: next(iter(v)) for p, v in seen.items() if p not in blocked and len(v) == 1}


def _fresh(label: str, taken: list[str]) -> str:
    if label not in taken:
        return label
    n = 2
    while f"{label}_{n}" in taken:
        n += 1
    return f"{label}_{n}"


def _magnitude(col: tuple) -> tuple:
    return tuple(abs(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0 for v in col)


def _factor(col: tuple, base: tuple) -> int | None:
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (*col, *base))
    if not ints or any(b == 0 for b in base) or any(v % b for v, b in zip(col, base)):
        return None
    factors = {v // b for v, b in zip(col, base)}
    return factors.pop() if len(factors) == 1 and next(iter(factors)) > 1 else None


# ---------------------------------------------------------------------------------------------------------------
# The passes


@dataclass
class _Node:
    call: Call
    inputs: list[int]  # indices of nodes read (-1: the model's input)


class _Compactor:
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
                kind, tuple((k, _freeze(v)) for k, v in args.items()), name=name if _telling(name) else None
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
            body = [_plain(replace(self.nodes[k].call, it)) for k in range(starts[0], starts[0] + p)]
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
        for key, spans in groups.items():
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
        promoted = [shape(_promote(x)) for x in items]
        for p in range(2, MAX_PHRASE + 1):
            for s in range(len(items) - 2 * p + 1):
                key = promoted[s : s + p]
                k = 1
                while s + (k + 1) * p <= len(items) and promoted[s + k * p : s + (k + 1) * p] == key:
                    k += 1
                if k < 2:
                    continue
                size = sum(lines(_promote(x)) for x in items[s : s + p])
                saving = k * size - (size + 3 + k)
                if saving > best_saving:
                    best, best_saving = (s, p, k), saving
        return best

    def _phrase(self, items: list[Any], start: int, p: int, k: int) -> list[Any]:
        uses = [[_promote(x) for x in items[start + u * p : start + (u + 1) * p]] for u in range(k)]
        rows = [[v for x in use for v in values(x)] for use in uses]
        names = [label for x in uses[0] for label in labels(x)]
        params, forms, per_use = parametrize(rows, names)
        it = iter(forms)
        body = [_strip(replace(x, it)) for x in uses[0]]
        name = self.block_name("stage")
        body = _demote(body)
        self.blocks[name] = Block(name, params, body, defaults(body, params, self.blocks))
        calls = [Call(name, tuple(zip(params, vals))) for vals in per_use]
        return items[:start] + calls + items[start + p * k :]


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


def _strip(item: Any) -> Any:
    if isinstance(item, Rep):
        return Rep(item.count, tuple(_strip(x) for x in item.body))
    return Call(item.key, item.args, item.inputs, item.local)


def _plain(call: Call) -> Call:
    return Call(call.key, call.args)


def _promote(item: Any) -> Rep:
    return item if isinstance(item, Rep) else Rep(1, (item,))


def _demote(body: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in body:
        if isinstance(item, Rep) and item.count == 1:
            out += _demote(list(item.body))
        elif isinstance(item, Rep):
            out.append(Rep(item.count, tuple(_demote(list(item.body)))))
        else:
            out.append(item)
    return out


def lines(item: Any) -> int:
    if isinstance(item, Rep):
        return 2 + sum(lines(x) for x in item.body) if item.count != 1 else sum(lines(x) for x in item.body)
    return 1


def runs(items: list[Any]) -> list[Any]:
    """Consecutive equal items (names aside) as one ``repeat``."""
    out: list[Any] = []
    for item in items:
        prev = out[-1] if out else None
        if (
            isinstance(prev, Rep)
            and len(prev.body) == 1
            and _same(prev.body[0], item)
            and isinstance(prev.count, int)
        ):
            out[-1] = Rep(prev.count + 1, prev.body, (*(prev.originals or prev.body * prev.count), item))
        elif prev is not None and not isinstance(prev, Rep) and _same(prev, item):
            out[-1] = Rep(2, (_unnamed(prev),), (prev, item))
        else:
            out.append(item)
    return out


def _same(a: Any, b: Any) -> bool:
    return _unnamed(a) == _unnamed(b)


def _unnamed(item: Any) -> Any:
    if isinstance(item, Call):
        return Call(item.key, item.args, item.inputs, item.local)
    return item


def _unroll(items: list[Any]) -> list[Any]:
    """Repeats that save no lines, written out again: two single lines read better than a repeat of one."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, Rep):
            body = _unroll(list(item.body))
            size = sum(lines(x) for x in body)
            if isinstance(item.count, int) and (item.count - 1) * size - 2 <= 0:
                out += list(item.originals) if item.originals else body * item.count
            else:
                out.append(Rep(item.count, tuple(body)))
        else:
            out.append(item)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _written(item: Any, blocks: dict[str, Block]) -> Any:
    from ._spec import is_default

    if isinstance(item, Rep):
        return {"repeat": item.count, "layers": [_written(x, blocks) for x in item.body]}
    if item.key in LAYERS:
        args = {k: _thaw(v) for k, v in item.args if not is_default(item.key, k, _thaw(v))}
    else:
        omitted = blocks[item.key].defaults
        args = {k: _thaw(v) for k, v in item.args if k not in omitted or omitted[k] != v}
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
    c = _Compactor(graph, items, index)
    c.motifs()
    top = c.sequence(c.modules())
    for block in list(c.blocks.values()):
        plain = all(isinstance(x, Call) and not x.inputs and not x.local for x in block.body)
        block.body = _unroll(c.sequence(block.body) if plain else block.body)
    top = _unroll(top)
    # a block used once is written in place
    used = _uses(top, c.blocks)
    blocks = {
        name: {
            "params": {p: _thaw(b.defaults.get(p)) for p in b.params},
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

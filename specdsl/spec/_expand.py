"""Expansion: a spec's layers, blocks and ``repeat`` turned into one flat list of validated layers.

Every ``$param`` reference is substituted (a block's parameters, a repeat's ``$index``, the spec's
``params``), every layer named (the name it is given, prefixed by the blocks and repeats around it, or one
made from its kind) and its inputs resolved to layers above it, and every layer validated by its kind's
pydantic model, within the :class:`Bounds` (``_bounds``).
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from .._text import shown
from ..errors import Loc, PluginError, SpecError
from . import _expr
from ._aliases import keras_arguments
from ._blocks import PREV, Block, Scope, not_reserved, valid_name
from ._bounds import Bounds
from ._inherited import PASSED_ON, Inherited
from ._kinds import ALIASES, LAYERS, LayerSpec, canonical_kind
from ._located import check_keys, file_loc, loc_of, located, suggest, type_name
from ._shapes import Shapes
from ._yaml import LocDict, LocList


class LayerEntry(NamedTuple):
    """One layer of the expanded graph. (Immutable; a named tuple because it is the cheapest immutable object
    to make, and a spec may expand to many thousands of layers.)"""

    name: str
    layer: LayerSpec
    inputs: tuple[str, ...]
    path: str
    loc: Loc | None

    @property
    def kind(self) -> str:
        return self.layer.kind

    @property
    def where(self) -> str:
        return f"{self.path} ({self.kind})"


class Expander(Bounds):
    """Expands the layers of one spec into :attr:`entries`, in order, within the :class:`Bounds`."""

    def __init__(
        self, file: str, blocks: dict[str, Block], globals_: dict[str, Any], model_input: tuple[str, Any, Any]
    ):
        """``model_input``: the model's input layer as (name, shape, where the spec writes it)."""
        super().__init__(file, blocks)
        self.entries: list[LayerEntry] = []
        self.shapes = Shapes(*model_input, self.entries)  # inferred only when an expression reads one
        # At the top, `input` in an expression is the model's input (a parameter of that name hides it).
        self.globals = globals_
        globals_.setdefault("input", _expr.LayerRef("input", model_input[0], self.shapes))
        self.used: set[str] = set()
        self.counters: dict[str, int] = {}
        # Layers written alike are one validated (immutable) model: long specs repeat their layers.
        self.specs: dict[tuple, LayerSpec] = {}
        # id -> mapping or list that holds no reference, kept so that its id stays its own: a repeat's body or
        # a block's is read once, not for every pass or use.
        self.unchanged: dict[int, Any] = {}
        self.inherited = Inherited()  # what the block uses and repeats around a layer pass on to it

    # -- names

    def auto_name(self, base: str) -> str:
        while True:
            n = self.counters.get(base, 0)
            self.counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in self.used:
                return name

    def claim(self, name: str, loc: Loc, path: str) -> str:
        if name in self.used:
            raise SpecError(
                f"name `{name}` is used twice; names must be unique in the model.", loc=loc, path=path
            )
        self.used.add(name)
        return name

    # -- substitution of $params

    def subst(self, value: Any, variables: Mapping[str, Any], loc: Any, path: str) -> Any:
        """``value`` with its ``$param`` references substituted; parts without references are the same
        objects. ``loc``: where ``value`` stands, or the (container, key) it stands at, looked up only for an
        error."""
        if isinstance(value, str):
            if not _expr.has_reference(value):
                return value
            try:
                result = _expr.substitute(value, variables)
            except _expr.ExprError as e:
                raise SpecError(str(e), loc=self.where(loc), path=path) from None
            self.evaluated(value, loc, path)
            return result
        if id(value) in self.unchanged:
            return value
        if isinstance(value, dict):
            out = None
            # A repeat's body is substituted at each of its passes, where `index` (and a shape it reads) is
            # known, and not before (a repeat of 0 never reads its body, which may be large).
            unread = "layers" if _is_repeat(value) else None
            for key, child in value.items():
                if (
                    isinstance(child, str)
                    and "$" not in child
                    or not isinstance(child, (str, dict, list))
                    or key == unread
                ):
                    continue
                new = self.subst(child, variables, (value, key), path)
                if new is not child:
                    if out is None:
                        out = value.copy() if isinstance(value, LocDict) else dict(value)
                    out[key] = new
            if out is None:
                self.unchanged[id(value)] = value
            return value if out is None else out
        if isinstance(value, list):
            out_list = None
            for i, child in enumerate(value):
                if isinstance(child, str) and "$" not in child or not isinstance(child, (str, dict, list)):
                    continue
                new = self.subst(child, variables, (value, i), path)
                if new is not child:
                    if out_list is None:
                        out_list = LocList(value, loc=getattr(value, "loc", None))
                        out_list.item_locs = list(getattr(value, "item_locs", []))
                    out_list[i] = new
            if out_list is None:
                self.unchanged[id(value)] = value
            return value if out_list is None else out_list
        return value

    # -- structure

    def sequence(self, items: list, path: str, scope: Scope, prev: str) -> str:
        locs = getattr(items, "item_locs", None) or ()
        fallback = getattr(items, "loc", None) or file_loc(self.file)
        for i, item in enumerate(items):
            loc = (locs[i] if i < len(locs) else None) or fallback
            prev = self.item(item, loc, f"{path}[{i}]", scope, prev)
        return prev

    def item(self, item: Any, loc: Loc, path: str, scope: Scope, prev: str) -> str:
        key, args, key_loc = self.form(item, loc, path)
        if key == "repeat":
            return self.repeat(item, loc, path, scope, prev)
        try:
            kind = None if key in self.blocks else canonical_kind(key)
        except (
            PluginError
        ) as e:  # a kind not built in had the plug-ins loaded: located at the layer naming it
            raise PluginError(e.message, loc=key_loc, path=path, hint=e.hint) from None
        if kind is None and key in self.blocks:
            return self.block(self.blocks[key], args, key_loc, path, scope, prev)
        if kind is None:
            choices = sorted([*LAYERS, *ALIASES, *self.blocks, "repeat"])
            hint = suggest(key, choices)
            raise SpecError(
                f"unknown layer kind `{shown(key)}`; {hint + ' ' if hint else ''}"
                f"Layer kinds: {', '.join(sorted(LAYERS))}"
                + (f"; blocks: {', '.join(self.blocks)}" if self.blocks else "")
                + ".",
                loc=key_loc,
                path=path,
            )
        return self.layer(kind, args, key_loc, path, scope, prev, key)

    def form(self, item: Any, loc: Loc, path: str) -> tuple[str, Any, Loc]:
        """(kind or block name, its arguments, location) of a list item, in either written form."""
        if isinstance(item, str):
            return item, None, loc
        if isinstance(item, dict) and item:
            if "kind" in item:
                args = item.copy()
                kind = args.pop("kind")
                if not isinstance(kind, str):
                    raise SpecError(
                        f"`kind` must be a layer kind name, but got {shown(repr(kind))}.",
                        loc=loc_of(item, "kind", self.file),
                        path=path,
                    )
                return kind, args, loc_of(item, "kind", self.file)
            if "repeat" in item:
                return "repeat", None, loc
            if len(item) == 1:
                (key,) = item
                if isinstance(key, str):
                    return key, item[key], loc_of(item, key, self.file, value=False)
            keys = [str(k) for k in item]
            layerish = [k for k in keys if canonical_kind(k) or k in self.blocks]
            hint = (
                f" Indent the arguments under `{layerish[0]}:`, e.g. `- {layerish[0]}: {{...}}`."
                if layerish
                else " Write `- kind: {arguments}`, e.g. `- conv2d: {filters: 32, kernel: 3}`."
            )
            raise SpecError(
                f"a layer is one key (its kind) with its arguments under it, but this item has keys "
                f"{', '.join(f'`{k}`' for k in keys)}.{hint}",
                loc=loc,
                path=path,
            )
        raise SpecError(
            f"a layer is written `- kind: {{arguments}}` (or a bare kind such as `- flatten`), "
            f"but got {type_name(item)}.",
            loc=loc,
            path=path,
        )

    def repeat(self, item: dict, loc: Loc, path: str, scope: Scope, prev: str) -> str:
        check_keys(
            item, ("repeat", "layers", "name", *PASSED_ON), "a repeat", self.file, required=("layers",)
        )
        kept, self.inherited = self.inherited, self.inherited.within(item, "a repeat", self.file, path)
        times = self.subst(item["repeat"], scope.variables, loc_of(item, "repeat", self.file), path)
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise SpecError(
                f"`repeat` takes a count >= 0, but got {_value_text(times)}.",
                loc=loc_of(item, "repeat", self.file),
                path=path,
            )
        body = item["layers"]
        if not isinstance(body, list) or not body:
            raise SpecError(
                "`layers` of a repeat must be a non-empty list.",
                loc=loc_of(item, "layers", self.file),
                path=path,
            )
        name = item.get("name")
        if times:
            self.foresee_repeat(times, body, loc, path)
        self.enter(loc, path)
        outer = self.weight
        prefix = f"{scope.prefix}{name + '_' if name else ''}"
        body_loc = loc_of(item, "layers", self.file)
        for i in range(times):
            self.weight = outer * times if i == 0 else outer
            before = self.nodes
            inner = Scope(
                scope,
                prefix,
                ChainMap({"index": i, PREV: _expr.LayerRef(PREV, prev, self.shapes)}, scope.variables),
                scope.input_name,
                isolated=False,
                suffix=f"{scope.suffix}_{i}",
                prev=prev,
            )
            body_i = self.subst(body, inner.variables, body_loc, path)
            prev = self.sequence(body_i, f"{path}.repeat[{i}].layers", inner, prev)
            if self.nodes == before:  # a pass without layers costs as much as a layer
                self.count(loc, path)
        self.weight, self.inherited = outer, kept
        self.depth -= 1
        if name is not None:
            name_loc = loc_of(item, "name", self.file)
            local = self._local(name, name_loc, path)
            not_reserved(local, name_loc, path, scope)
            scope.names[local] = prev
        return prev

    def _local(self, name: Any, loc: Loc, path: str) -> str:
        if not isinstance(name, str) or not valid_name(name):
            raise SpecError(
                f"name `{shown(name)}` must be an identifier (letters, digits, _).", loc=loc, path=path
            )
        return name

    def block(self, block: Block, args: Any, loc: Loc, path: str, scope: Scope, prev: str) -> str:
        if block.name in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(block.name) :], block.name])
            raise SpecError(f"block `{block.name}` uses itself ({chain}).", loc=loc, path=path)
        self.foresee_block(block.name, loc, path)
        before = self.nodes
        self.count(loc, path, len(block.params) // 20)  # a use reads every parameter: 20 cost about a layer
        if args is None:
            args = LocDict()
        if not isinstance(args, dict):
            raise SpecError(
                f"block `{block.name}` takes its parameters as a mapping, "
                f"e.g. `- {block.name}: {{{', '.join(f'{p}: ...' for p in block.params) or ''}}}`.",
                loc=loc,
                path=path,
            )
        args = self.subst(args, scope.variables, loc, path)
        values = dict(block.params)
        name = args.get("name")
        inputs = args.get("inputs")
        for key, value in args.items():
            if key in ("name", "inputs", *PASSED_ON):
                continue
            if key not in block.params:
                hint = suggest(key, list(block.params))
                raise SpecError(
                    f"block `{block.name}` has no parameter `{shown(key)}`; {hint + ' ' if hint else ''}"
                    f"Its parameters: {', '.join(block.params) or 'none'}.",
                    loc=loc_of(args, key, self.file, value=False),
                    path=path,
                )
            values[key] = value
        for key, value in values.items():
            if value is None:
                raise SpecError(
                    f"block `{block.name}` needs parameter `{key}` (it has no default).", loc=loc, path=path
                )
        if inputs is not None:
            if isinstance(inputs, list) and len(inputs) == 1:
                inputs = inputs[0]
            if not isinstance(inputs, str):
                raise SpecError(
                    "a block reads one input: `inputs: name`.",
                    loc=loc_of(args, "inputs", self.file),
                    path=path,
                )
            prev = self.reference(inputs, scope, loc_of(args, "inputs", self.file), path)
        local = self._local(name, loc_of(args, "name", self.file), path) if name is not None else None
        if local is not None:
            not_reserved(local, loc_of(args, "name", self.file), path, scope)
        instance = self.auto_name(block.name) if local is None else f"{scope.prefix}{local}{scope.suffix}"
        values.setdefault("input", _expr.LayerRef("input", prev, self.shapes))  # in expressions, as in inputs
        variables = ChainMap(values, self.globals)  # not a copy: a spec may have thousands of parameters
        inner = Scope(scope, f"{instance}_", variables, prev, isolated=True)
        self.stack.append(block.name)
        outer, self.inherited = self.inherited, self.inherited.within(args, "a block use", self.file, path)
        try:
            self.enter(loc, path)
            body = self.subst(block.layers, variables, block.loc, f"{path}.{block.name}")
            out = self.sequence(body, f"{path}.{block.name}.layers", inner, prev)
            if block.output is not None:
                resolved = inner.resolve(block.output)
                if resolved is None:
                    raise SpecError(
                        f"`output: {block.output}` of block `{block.name}` names no layer of the block; "
                        f"{suggest(block.output, inner.visible()) or 'names: ' + ', '.join(inner.visible())}",
                        loc=block.loc,
                        path=path,
                    )
                out = resolved
        finally:
            self.stack.pop()
            self.inherited = outer
            self.depth -= 1
        if self.nodes == before:  # a use without layers costs as much as a layer
            self.count(loc, path)
        if local is not None:
            scope.names[local] = out
        return out

    def reference(self, ref: Any, scope: Scope, loc: Loc, path: str) -> str:
        if not isinstance(ref, str):
            raise SpecError(f"inputs are layer names, but got {shown(repr(ref))}.", loc=loc, path=path)
        resolved = scope.resolve(ref)
        if resolved is None and ref == PREV:
            raise SpecError(
                f"input `{PREV}` names a repeat's pass input, and this layer is in no repeat. "
                f"Names here: {', '.join(scope.visible())}.",
                loc=loc,
                path=path,
            )
        if resolved is None:
            hint = suggest(ref, scope.visible())
            raise SpecError(
                f"input `{shown(ref)}` names no layer above this one{'; ' + hint if hint else ''}. "
                f"Layers read only layers defined before them (so graphs have no cycles). "
                f"Names here: {', '.join(scope.visible())}.",
                loc=loc,
                path=path,
            )
        return resolved

    def layer(
        self, kind: str, args: Any, loc: Loc, path: str, scope: Scope, prev: str, written: str = ""
    ) -> str:
        info = LAYERS[kind]
        where = f"{path} ({kind})"
        if args is None:
            data: dict = {}
        elif isinstance(args, dict):
            data = args
        elif info.primary is not None:
            data = _primary(info.primary, args, loc)
        else:
            raise SpecError(
                f"{kind} takes no single value; write its arguments as a mapping (or `- {kind}` alone), "
                f"but got {shown(repr(args))}.",
                loc=loc,
                path=where,
            )
        self.count(loc, where)
        data = self.subst(data, scope.variables, loc, where)
        if "kind" in data:
            data = data.copy()
            data.pop("kind")
        data = keras_arguments(written or kind, kind, data, self.file, loc, where)
        key = _args_key(kind, data)
        spec = self.specs.get(key) if key is not None else None
        if spec is None:
            try:
                spec = info.model.model_validate(data)  # `kind` is the model's default
            except ValidationError as e:  # located in the text the layer's arguments came from
                if not isinstance(data, LocDict) and args is not None and info.primary is not None:
                    data = _primary(info.primary, args, loc, located=True)
                elif not isinstance(data, LocDict):
                    data = LocDict(loc=loc)
                raise located(e, info.model, data, None, None, self.file, where) from None
            if key is not None:
                self.specs[key] = spec
        spec = self.inherited.applied(spec)
        if spec.inputs is not None:
            if not spec.inputs:
                raise SpecError(
                    "`inputs` must name at least one layer.",
                    loc=loc_of(data, "inputs", self.file),
                    path=where,
                )
            self.count(loc, where, len(spec.inputs) - 1)  # each input a layer reads costs as much as a layer
            inputs = tuple(
                self.reference(r, scope, loc_of(data, "inputs", self.file), where) for r in spec.inputs
            )
        else:
            inputs = (prev,)
        n = len(inputs)
        if n < info.min_inputs or (info.max_inputs is not None and n > info.max_inputs):
            want = f"at least {info.min_inputs}" if info.max_inputs is None else f"exactly {info.min_inputs}"
            hint = "Name them: `inputs: [a, b]`." if info.max_inputs is None else "Give it one input."
            raise SpecError(
                f"{kind} takes {want} inputs, but got {n} ({', '.join(inputs)}).",
                loc=loc,
                path=where,
                hint=hint,
            )
        if spec.name is not None:
            not_reserved(spec.name, loc, where, scope)
            name = self.claim(f"{scope.prefix}{spec.name}{scope.suffix}", loc, where)
            scope.names[spec.name] = name
        else:
            name = self.auto_name(info.auto_name)
            self.used.add(name)
        self.count(
            loc, where, (len(name) + len(path)) // 1000
        )  # deep blocks make long names: each 1,000 characters
        self.entries.append(_new_entry(LayerEntry, (name, spec, inputs, path, loc)))
        return name


# a LayerEntry made as its _make() makes it: several times faster than LayerEntry(...)
_new_entry = tuple.__new__


_KEY_TYPES = (int, str, bool, type(None))


def _args_key(kind: str, data: dict) -> tuple | None:
    """A key that two layers' arguments share only when they validate to the same model (None: not worth one).
    Types are part of it (1, 1.0 and True are equal in Python); floats go by repr (0.0 and -0.0)."""
    parts: list[tuple] = [(kind,)]
    for name, value in data.items():
        t = type(value)
        if t in _KEY_TYPES:
            parts.append((name, t, value))
        elif t is float:
            parts.append((name, t, repr(value)))
        elif (t is list or t is LocList) and all(type(v) in _KEY_TYPES for v in value):
            parts.append((name, list, *((type(v), v) for v in value)))
        else:
            return None
    return tuple(parts)


def _is_repeat(value: dict) -> bool:
    return "repeat" in value and "layers" in value and "kind" not in value


def _primary(field: str, value: Any, loc: Loc, located: bool = False) -> dict:
    """A layer's arguments written as its main one alone (``- dense: 10``): located where substitution or an
    error needs the place, a plain dict otherwise (most layers of a long spec are written so)."""
    if located or isinstance(value, str) and "$" in value:
        data = LocDict({field: value}, loc=loc)
        data.key_locs[field] = data.value_locs[field] = loc
        return data
    return {field: value}


def _value_text(value: Any) -> str:
    """A value as a message quotes it: numbers as :func:`_expr.number_text` writes them, and at most 60
    characters of anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _expr.number_text(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

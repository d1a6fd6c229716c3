"""From a loaded YAML/JSON tree to a flat, validated graph of layers (:class:`ModelSpec`).

Stages (each takes the previous one's output and nothing else):

1. distributions (``{choice: [...]}``, ``{int: [lo, hi]}``, ``{float: [lo, hi]}``) are drawn from a sampler,
   top-down, so that parameters inside an unchosen option are never drawn;
2. blocks and ``repeat`` are expanded, ``$param`` references substituted, names and inputs resolved;
3. every layer is validated by its kind's pydantic model.

Every error is a :class:`SpecError` located at the text that caused it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from .._text import shown
from ..errors import Loc, SearchError, SpecError
from . import _expr
from ._layers import ALIASES, LAYERS, LayerSpec, canonical_kind
from ._sections import SECTIONS, InputSpec, Limits
from ._types import NAME_PATTERN
from ._yaml import LocDict, LocList, load_file, load_text

TOP_KEYS = ("name", "description", "input", "params", "blocks", "layers", "outputs", *SECTIONS)
BLOCK_KEYS = ("params", "layers", "output", "description")
DIST_KINDS = ("choice", "int", "float")
DIST_KEYS = (*DIST_KINDS, "log", "step", "name")


@dataclass(frozen=True)
class LayerEntry:
    """One layer of the expanded graph."""

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


@dataclass
class ModelSpec:
    """A spec after expansion and validation: a flat graph in order (every layer reads only layers above it)."""

    name: str
    file: str
    input: InputSpec
    layers: list[LayerEntry]
    outputs: list[str]
    limits: Limits = field(default_factory=Limits)
    data: Any = None
    train: Any = None
    search: Any = None
    description: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # search parameters drawn, by name
    raw: Any = None  # the document after distributions were drawn (a concrete spec)
    input_loc: Loc | None = None

    @property
    def is_search_space(self) -> bool:
        return bool(self.params) or self.search is not None


class Sampler(Protocol):
    """Draws search parameters; ``specdsl.search`` adapts an Optuna trial to this."""

    def choice(self, name: str, options: list[Any]) -> int: ...
    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int: ...
    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float: ...


# ---------------------------------------------------------------------------------------------------------------
# entry points


def load(source: str | os.PathLike | dict, *, sampler: Sampler | None = None, file: str | None = None) -> ModelSpec:
    """Load, expand and validate a spec from a path, YAML/JSON text, or an already-parsed mapping."""
    if isinstance(source, dict):
        raw, name = source, file or "<dict>"
    elif isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")):
        name = os.fspath(source)
        raw = load_file(name)
    else:
        name = file or "<string>"
        raw = load_text(source, name)
    return from_tree(raw, name, sampler=sampler)


def from_tree(raw: Any, file: str, *, sampler: Sampler | None = None) -> ModelSpec:
    if not isinstance(raw, dict):
        raise SpecError(
            # what the file holds, never its text: a file that is not a spec may be a token or a password file
            f"holds {_kind_name(raw)}, not a mapping; a spec is a mapping with `input:` and `layers:`.",
            loc=getattr(raw, "loc", None) or Loc(file, 1, 1),
        )
    drawn: dict[str, Any] = {}
    raw = _Draw(file, sampler, drawn).value(raw, "")
    _check_keys(raw, TOP_KEYS, "the spec", file, required=("input", "layers"))

    name = _text_field(raw, "name", file) or (
        os.path.splitext(os.path.basename(file))[0] if not file.startswith("<") else "model"
    )
    inp = _validate_model(InputSpec, _input_form(raw["input"]), raw, "input", file, "input")
    variables = _top_params(raw.get("params"), file)
    blocks = _parse_blocks(raw.get("blocks"), file)

    ex = _Expander(file, blocks, variables)
    top = _Scope(None, "", variables, inp.name, isolated=True)
    top.names[inp.name] = inp.name
    ex.used.add(inp.name)
    layers = raw["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError("`layers` must be a non-empty list of layers.", loc=_loc(raw, "layers", file))
    last = ex.sequence(layers, "layers", top, inp.name)
    outputs = _outputs(raw, top, last, file)
    _check_all_used(ex.entries, outputs, file)

    sections = {
        key: _validate_model(model, raw[key], raw, key, file, key) for key, model in SECTIONS.items() if key in raw
    }
    return ModelSpec(
        name=str(name),
        file=file,
        input=inp,
        layers=ex.entries,
        outputs=outputs,
        limits=sections.get("limits") or Limits(),
        data=sections.get("data"),
        train=sections.get("train"),
        search=sections.get("search"),
        description=_text_field(raw, "description", file),
        params=drawn,
        raw=raw,
        input_loc=_loc(raw, "input", file),
    )


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _kind_name(value: Any) -> str:
    """``a string``, ``a list``, ... : the kind of a YAML value, without the value."""
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "a null value"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null value"
    return f"{type(value).__name__} ({shown(repr(value))})"


def _text_field(raw: dict, key: str, file: str) -> str | None:
    """``name`` or ``description``: text (a number or true/false is read as its text), or absent."""
    value = raw.get(key)
    if isinstance(value, (dict, list)):
        raise SpecError(f"`{key}` is a text, but got a {_type_name(value)}.", loc=_loc(raw, key, file))
    return None if value is None else str(value)


def _loc(container: Any, key: Any, file: str, *, value: bool = True) -> Loc:
    if isinstance(container, LocDict):
        found = container.loc_of(key, value=value)
    elif isinstance(container, LocList) and isinstance(key, int):
        found = container.loc_of(key)
    else:
        found = getattr(container, "loc", None)
    return found or Loc(file)


def suggest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f"did you mean `{near[0]}`?" if near else ""


def _check_keys(mapping: dict, allowed: tuple[str, ...], what: str, file: str, required: tuple[str, ...] = ()) -> None:
    for key in mapping:
        if key not in allowed:
            hint = suggest(key, list(allowed))
            raise SpecError(
                f"unknown key `{shown(key)}` in {what}; {hint + ' ' if hint else ''}Valid keys: {', '.join(allowed)}.",
                loc=_loc(mapping, key, file, value=False),
            )
    for key in required:
        if key not in mapping:
            raise SpecError(f"{what} needs `{key}:`.", loc=getattr(mapping, "loc", None) or Loc(file, 1, 1))


def _input_form(value: Any) -> Any:
    return {"shape": value} if isinstance(value, list) else value


def _top_params(params: Any, file: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise SpecError("`params` must be a mapping of names to values.", loc=getattr(params, "loc", None) or Loc(file))
    return dict(params)


def _validate_model(model: type[BaseModel], data: Any, parent: Any, key: Any, file: str, path: str) -> Any:
    """Validate with pydantic; turn the first error into one located SpecError in the spec's own terms."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _located(e, model, data, parent, key, file, path) from None


_ERROR_ORDER = {"extra_forbidden": 0, "missing": 2}


def _located(e: ValidationError, model: type[BaseModel], data: Any, parent: Any, key: Any, file: str, path: str) -> SpecError:
    # One error per spec: an unknown key first (a typo also makes its intended key "missing"), then the rest.
    err = min(e.errors(include_url=False), key=lambda x: _ERROR_ORDER.get(x["type"], 1))
    where: Any = data
    loc = getattr(data, "loc", None) or _loc(parent, key, file)
    for part in err["loc"]:
        if _is_union_tag(part):
            continue
        if isinstance(where, dict) and part in where:
            loc = _loc(where, part, file, value=err["type"] != "extra_forbidden")
            where = where[part]
        elif isinstance(where, list) and isinstance(part, int) and part < len(where):
            loc = _loc(where, part, file)
            where = where[part]
        else:
            break
    field_path = ""
    for part in err["loc"]:
        if isinstance(part, int):
            field_path += f"[{part}]"
        elif not _is_union_tag(part):
            field_path += f".{part}" if field_path else str(part)
    fields = _field_names(model, err["loc"])
    etype = err["type"]
    if etype == "extra_forbidden":
        hint = suggest(field_path.rsplit(".", 1)[-1], fields)
        msg = f"unknown argument `{field_path}`; {hint + ' ' if hint else ''}Valid: {', '.join(fields)}."
    elif etype == "missing":
        msg = f"missing required argument `{field_path}`."
    else:
        got = err.get("input")
        text = err["msg"]
        if text.startswith("Value error, "):
            text = text[len("Value error, "):]
        prefix = f"`{field_path}`: " if field_path else ""
        msg = f"{prefix}{text[0].lower() + text[1:]}"
        if etype != "value_error" and not isinstance(got, (dict, list)):
            msg += f" (got {shown(repr(got))})"
        if etype == "literal_error" and isinstance(got, str):
            expected = [x.strip(" '") for x in err.get("ctx", {}).get("expected", "").replace(" or ", ",").split(",")]
            hint = suggest(got, [x for x in expected if x])
            if hint:
                msg += f"; {hint}"
        if not msg.endswith((".", "?")):
            msg += "."
    return SpecError(msg, loc=loc, path=path)


_UNION_TAGS = {"int", "str", "float", "bool", "list", "tuple", "dict", "none"}


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS or part[:1].isupper())


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Names a user may write at the error's place (for suggestions), aliases included."""
    target = model
    for part in loc[:-1]:
        info = target.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(info, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            target = ann
        else:
            break
    # In the order the kind's own class declares them, then its bases' (the common `name`, `inputs` last).
    order: list[str] = []
    for cls in target.__mro__:
        for f in getattr(cls, "__annotations__", {}):
            if f in target.model_fields and f not in order and f != "kind":
                order.append(f)
    return order


# ---------------------------------------------------------------------------------------------------------------
# stage 1: search distributions


class _Draw:
    """Replaces every distribution in the tree by a value drawn from the sampler, top-down."""

    def __init__(self, file: str, sampler: Sampler | None, drawn: dict[str, Any]):
        self.file = file
        self.sampler = sampler
        self.drawn = drawn

    def value(self, node: Any, path: str) -> Any:
        if isinstance(node, dict):
            if is_distribution(node):
                value, option = self.draw(node, path)
                # Inside a chosen option, names carry the option's index: two options may hold different
                # distributions at the same place, and Optuna needs one distribution per name.
                return self.value(value, path if option is None else f"{path}[{option}]")
            out = node.copy() if isinstance(node, LocDict) else dict(node)
            for key, child in node.items():
                out[key] = self.value(child, f"{path}.{key}" if path else str(key))
            return out
        if isinstance(node, list):
            out_list = LocList(loc=getattr(node, "loc", None))
            out_list.item_locs = list(getattr(node, "item_locs", []))
            for i, child in enumerate(node):
                out_list.append(self.value(child, f"{path}[{i}]"))
            return out_list
        return node

    def draw(self, dist: dict, path: str) -> tuple[Any, int | None]:
        """The drawn value, and for a choice the index of the option."""
        kind = next(k for k in DIST_KINDS if k in dist)
        for key in dist:
            if key not in DIST_KEYS:
                hint = suggest(key, list(DIST_KEYS))
                raise SearchError(
                    f"unknown key `{shown(key)}` in a `{kind}` distribution; {hint + ' ' if hint else ''}"
                    f"Valid keys: {', '.join(DIST_KEYS)}.",
                    loc=_loc(dist, key, self.file, value=False),
                )
        name = dist.get("name") or (f"{path}" if path else kind)
        loc = getattr(dist, "loc", None) or Loc(self.file)
        spec = dist[kind]
        if self.sampler is None:
            raise SearchError(
                f"a search distribution (`{kind}`) stands where a value is needed.",
                loc=loc,
                path=path,
                hint="This file is a search space: run it with `specdsl search`, or give a single value.",
            )
        if kind == "choice":
            if not isinstance(spec, list) or not spec:
                raise SearchError("`choice` takes a non-empty list of options.", loc=loc, path=path)
            for extra in ("log", "step"):
                if extra in dist:
                    raise SearchError(f"`{extra}` does not apply to `choice`.", loc=_loc(dist, extra, self.file, value=False))
            index = self.sampler.choice(name, list(spec))
            value = spec[index]
            self.drawn[name] = value if not isinstance(value, (dict, list)) else f"option {index}"
            return value, index
        low, high = _range(kind, spec, dist, loc, path, self.file)
        log = dist.get("log", False)
        step = dist.get("step")
        if not isinstance(log, bool):
            raise SearchError(f"`log` must be true or false, but got {shown(repr(log))}.", loc=_loc(dist, "log", self.file))
        if log and low <= 0:
            raise SearchError(f"`low > 0` must hold for log=true, but got (low={low}, high={high}).", loc=loc, path=path)
        if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0):
            raise SearchError(f"`step` must be a positive number, but got {shown(repr(step))}.", loc=_loc(dist, "step", self.file))
        if step is not None and log:
            raise SearchError("`step` and `log: true` cannot be combined.", loc=loc, path=path)
        if kind == "int":
            step = 1 if step is None else step
            if not isinstance(step, int):
                raise SearchError(f"an `int` distribution needs an integer `step`, but got {shown(repr(step))}.", loc=loc, path=path)
            value = self.sampler.int(name, low, high, step, log)
        else:
            value = self.sampler.float(name, float(low), float(high), step, log)
        self.drawn[name] = value
        return value, None


def is_distribution(node: Any) -> bool:
    return isinstance(node, dict) and sum(k in node for k in DIST_KINDS) == 1 and all(
        isinstance(k, str) for k in node
    ) and not any(k in LAYERS or k in ALIASES for k in node)


def has_distributions(node: Any) -> bool:
    """Whether ``node`` holds a distribution anywhere."""
    if isinstance(node, dict):
        return is_distribution(node) or any(has_distributions(v) for v in node.values())
    if isinstance(node, list):
        return any(has_distributions(v) for v in node)
    return False


def _range(kind: str, spec: Any, dist: dict, loc: Loc, path: str, file: str) -> tuple[Any, Any]:
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(spec, list)
        or len(spec) != 2
        or not all(isinstance(v, number) and not isinstance(v, bool) for v in spec)
    ):
        what = "two integers" if kind == "int" else "two numbers"
        raise SearchError(f"`{kind}` takes [low, high] as {what}, but got {shown(repr(spec))}.", loc=loc, path=path)
    low, high = spec
    if low > high:
        raise SearchError(f"`low <= high` must hold, but got (low={low}, high={high}).", loc=loc, path=path)
    return low, high


class RandomSampler:
    """Draws uniformly at random (log-uniformly where asked); used to check search spaces without Optuna."""

    def __init__(self, seed: int = 0):
        import random

        self.rng = random.Random(seed)

    def choice(self, name: str, options: list[Any]) -> int:
        return self.rng.randrange(len(options))

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if log:
            import math

            return min(high, max(low, round(math.exp(self.rng.uniform(math.log(low), math.log(high))))))
        return low + step * self.rng.randrange((high - low) // step + 1)

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        import math

        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randrange(int((high - low) / step + 1e-9) + 1)
        return self.rng.uniform(low, high)


# ---------------------------------------------------------------------------------------------------------------
# stage 2: blocks, repeat, names


@dataclass
class _Block:
    name: str
    params: dict[str, Any]
    param_locs: LocDict
    layers: list
    output: str | None
    loc: Loc


def _parse_blocks(raw: Any, file: str) -> dict[str, _Block]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError("`blocks` must be a mapping of block names to definitions.", loc=getattr(raw, "loc", None) or Loc(file))
    blocks = {}
    for name, body in raw.items():
        loc = _loc(raw, name, file, value=False)
        if not isinstance(name, str) or not _valid_name(name):
            raise SpecError(f"block name `{shown(name)}` must be an identifier (letters, digits, _).", loc=loc)
        if name in LAYERS or name in ALIASES or name == "repeat":
            raise SpecError(f"block name `{name}` is already a layer kind; choose another name.", loc=loc)
        if not isinstance(body, dict):
            raise SpecError(f"block `{name}` must be a mapping with `layers:` (and optional `params:`).", loc=loc)
        _check_keys(body, BLOCK_KEYS, f"block `{name}`", file, required=("layers",))
        params = body.get("params") or LocDict()
        if not isinstance(params, dict):
            raise SpecError(f"`params` of block `{name}` must be a mapping of names to defaults (null: required).", loc=_loc(body, "params", file))
        if not isinstance(body["layers"], list) or not body["layers"]:
            raise SpecError(f"`layers` of block `{name}` must be a non-empty list.", loc=_loc(body, "layers", file))
        blocks[name] = _Block(name, dict(params), params, body["layers"], body.get("output"), loc)
    return blocks


def _valid_name(name: str) -> bool:
    import re

    return re.match(NAME_PATTERN, name) is not None


class _Scope:
    """Names visible at one place: a block body sees only its own layers and `input`; repeat sees outward."""

    def __init__(
        self, parent: _Scope | None, prefix: str, variables: dict[str, Any], input_name: str, isolated: bool, suffix: str = ""
    ):
        self.parent = parent
        self.suffix = suffix
        self.prefix = prefix
        self.variables = variables
        self.input_name = input_name
        self.isolated = isolated
        self.names: dict[str, str] = {}

    def resolve(self, local: str) -> str | None:
        if local in self.names:
            return self.names[local]
        if local == "input":
            return self.input_name
        if not self.isolated and self.parent is not None:
            return self.parent.resolve(local)
        return None

    def visible(self) -> list[str]:
        names = set(self.names) | {"input"}
        if not self.isolated and self.parent is not None:
            names |= set(self.parent.visible())
        return sorted(names)


class _Expander:
    def __init__(self, file: str, blocks: dict[str, _Block], globals_: dict[str, Any]):
        self.file = file
        self.blocks = blocks
        self.globals = globals_
        self.entries: list[LayerEntry] = []
        self.used: set[str] = set()
        self.counters: dict[str, int] = {}
        self.stack: list[str] = []

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
            raise SpecError(f"name `{name}` is used twice; names must be unique in the model.", loc=loc, path=path)
        self.used.add(name)
        return name

    # -- substitution of $params

    def subst(self, value: Any, variables: dict[str, Any], loc: Loc, path: str) -> Any:
        if isinstance(value, str):
            if not _expr.has_reference(value):
                return value
            try:
                return _expr.substitute(value, variables)
            except _expr.ExprError as e:
                raise SpecError(str(e), loc=loc, path=path) from None
        if isinstance(value, dict):
            out = value.copy() if isinstance(value, LocDict) else dict(value)
            for key, child in value.items():
                out[key] = self.subst(child, variables, _loc(value, key, self.file), path)
            return out
        if isinstance(value, list):
            out_list = LocList(loc=getattr(value, "loc", None))
            out_list.item_locs = list(getattr(value, "item_locs", []))
            for i, child in enumerate(value):
                out_list.append(self.subst(child, variables, _loc(value, i, self.file), path))
            return out_list
        return value

    # -- structure

    def sequence(self, items: list, path: str, scope: _Scope, prev: str) -> str:
        for i, item in enumerate(items):
            prev = self.item(item, _loc(items, i, self.file), f"{path}[{i}]", scope, prev)
        return prev

    def item(self, item: Any, loc: Loc, path: str, scope: _Scope, prev: str) -> str:
        key, args, key_loc = self.form(item, loc, path)
        if key == "repeat":
            return self.repeat(item, loc, path, scope, prev)
        kind = canonical_kind(key)
        if kind is None and key in self.blocks:
            return self.block(self.blocks[key], args, key_loc, path, scope, prev)
        if kind is None:
            choices = sorted([*LAYERS, *ALIASES, *self.blocks, "repeat"])
            hint = suggest(key, choices)
            raise SpecError(
                f"unknown layer kind `{shown(key)}`; {hint + ' ' if hint else ''}"
                f"Layer kinds: {', '.join(sorted(LAYERS))}" + (f"; blocks: {', '.join(self.blocks)}" if self.blocks else "") + ".",
                loc=key_loc,
                path=path,
            )
        return self.layer(kind, args, key_loc, path, scope, prev)

    def form(self, item: Any, loc: Loc, path: str) -> tuple[str, Any, Loc]:
        """(kind or block name, its arguments, location) of a list item, in either written form."""
        if isinstance(item, str):
            return item, None, loc
        if isinstance(item, dict) and item:
            if "kind" in item:
                args = item.copy()
                kind = args.pop("kind")
                if not isinstance(kind, str):
                    raise SpecError(f"`kind` must be a layer kind name, but got {shown(repr(kind))}.", loc=_loc(item, "kind", self.file), path=path)
                return kind, args, _loc(item, "kind", self.file)
            if "repeat" in item:
                return "repeat", None, loc
            if len(item) == 1:
                (key,) = item
                if isinstance(key, str):
                    return key, item[key], _loc(item, key, self.file, value=False)
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
            f"a layer is written `- kind: {{arguments}}` (or a bare kind such as `- flatten`), but got {_type_name(item)}.",
            loc=loc,
            path=path,
        )

    def repeat(self, item: dict, loc: Loc, path: str, scope: _Scope, prev: str) -> str:
        _check_keys(item, ("repeat", "layers", "name"), "a repeat", self.file, required=("layers",))
        times = self.subst(item["repeat"], scope.variables, _loc(item, "repeat", self.file), path)
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise SpecError(
                f"`repeat` takes a count >= 0, but got {times!r}.", loc=_loc(item, "repeat", self.file), path=path
            )
        body = item["layers"]
        if not isinstance(body, list) or not body:
            raise SpecError("`layers` of a repeat must be a non-empty list.", loc=_loc(item, "layers", self.file), path=path)
        name = item.get("name")
        for i in range(times):
            inner = _Scope(
                scope, f"{scope.prefix}{name + '_' if name else ''}", {**scope.variables, "index": i},
                scope.input_name, isolated=False, suffix=f"{scope.suffix}_{i}",
            )
            body_i = self.subst(body, inner.variables, _loc(item, "layers", self.file), path)
            prev = self.sequence(body_i, f"{path}.repeat[{i}].layers", inner, prev)
        if name is not None:
            scope.names[self._local(name, _loc(item, "name", self.file), path)] = prev
        return prev

    def _local(self, name: Any, loc: Loc, path: str) -> str:
        if not isinstance(name, str) or not _valid_name(name):
            raise SpecError(f"name `{shown(name)}` must be an identifier (letters, digits, _).", loc=loc, path=path)
        return name

    def block(self, block: _Block, args: Any, loc: Loc, path: str, scope: _Scope, prev: str) -> str:
        if block.name in self.stack:
            chain = " -> ".join([*self.stack, block.name])
            raise SpecError(f"block `{block.name}` uses itself ({chain}).", loc=loc, path=path)
        if args is None:
            args = LocDict()
        if not isinstance(args, dict):
            raise SpecError(
                f"block `{block.name}` takes its parameters as a mapping, e.g. `- {block.name}: {{{', '.join(f'{p}: ...' for p in block.params) or ''}}}`.",
                loc=loc,
                path=path,
            )
        args = self.subst(args, scope.variables, loc, path)
        values = dict(block.params)
        name = args.get("name")
        inputs = args.get("inputs")
        for key, value in args.items():
            if key in ("name", "inputs"):
                continue
            if key not in block.params:
                hint = suggest(key, list(block.params))
                raise SpecError(
                    f"block `{block.name}` has no parameter `{shown(key)}`; {hint + ' ' if hint else ''}"
                    f"Its parameters: {', '.join(block.params) or 'none'}.",
                    loc=_loc(args, key, self.file, value=False),
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
                raise SpecError("a block reads one input: `inputs: name`.", loc=_loc(args, "inputs", self.file), path=path)
            prev = self.reference(inputs, scope, _loc(args, "inputs", self.file), path)
        local = self._local(name, _loc(args, "name", self.file), path) if name is not None else None
        instance = self.auto_name(block.name) if local is None else f"{scope.prefix}{local}{scope.suffix}"
        values = {**self.globals, **values}
        inner = _Scope(scope, f"{instance}_", values, prev, isolated=True)
        self.stack.append(block.name)
        try:
            body = self.subst(block.layers, values, block.loc, f"{path}.{block.name}")
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
        if local is not None:
            scope.names[local] = out
        return out

    def reference(self, ref: Any, scope: _Scope, loc: Loc, path: str) -> str:
        if not isinstance(ref, str):
            raise SpecError(f"inputs are layer names, but got {shown(repr(ref))}.", loc=loc, path=path)
        resolved = scope.resolve(ref)
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

    def layer(self, kind: str, args: Any, loc: Loc, path: str, scope: _Scope, prev: str) -> str:
        info = LAYERS[kind]
        where = f"{path} ({kind})"
        if args is None:
            data: dict = LocDict(loc=loc)
        elif isinstance(args, dict):
            data = args
        elif info.primary is not None:
            data = LocDict({info.primary: args}, loc=loc)
            data.key_locs[info.primary] = loc
            data.value_locs[info.primary] = loc
        else:
            raise SpecError(
                f"{kind} takes no single value; write its arguments as a mapping (or `- {kind}` alone), but got {shown(repr(args))}.",
                loc=loc,
                path=where,
            )
        data = self.subst(data, scope.variables, loc, where)
        if "kind" in data:
            data = data.copy()
            data.pop("kind")
        payload = LocDict(data, loc=getattr(data, "loc", loc))
        payload.key_locs = dict(getattr(data, "key_locs", {}))
        payload.value_locs = dict(getattr(data, "value_locs", {}))
        payload["kind"] = kind
        spec = _validate_model(info.model, payload, None, None, self.file, where)
        # inputs
        if spec.inputs is not None:
            if not spec.inputs:
                raise SpecError("`inputs` must name at least one layer.", loc=_loc(data, "inputs", self.file), path=where)
            inputs = tuple(self.reference(r, scope, _loc(data, "inputs", self.file), where) for r in spec.inputs)
        else:
            inputs = (prev,)
        n = len(inputs)
        if n < info.min_inputs or (info.max_inputs is not None and n > info.max_inputs):
            want = f"at least {info.min_inputs}" if info.max_inputs is None else f"exactly {info.min_inputs}"
            hint = "Name them: `inputs: [a, b]`." if info.max_inputs is None else "Give it one input."
            raise SpecError(f"{kind} takes {want} inputs, but got {n} ({', '.join(inputs)}).", loc=loc, path=where, hint=hint)
        if spec.name is not None:
            name = self.claim(f"{scope.prefix}{spec.name}{scope.suffix}", loc, where)
            scope.names[spec.name] = name
        else:
            name = self.auto_name(info.auto_name)
            self.used.add(name)
        self.entries.append(LayerEntry(name=name, layer=spec, inputs=inputs, path=path, loc=loc))
        return name


def _outputs(raw: dict, top: _Scope, last: str, file: str) -> list[str]:
    outs = raw.get("outputs")
    if outs is None:
        return [last]
    if isinstance(outs, str):
        outs = [outs]
    if not isinstance(outs, list) or not outs:
        raise SpecError("`outputs` must name one or more layers.", loc=_loc(raw, "outputs", file))
    result = []
    for i, ref in enumerate(outs):
        resolved = top.resolve(ref) if isinstance(ref, str) else None
        if resolved is None:
            hint = suggest(str(ref), top.visible())
            raise SpecError(
                f"output `{shown(ref)}` names no layer; {hint + ' ' if hint else ''}Names: {', '.join(top.visible())}.",
                loc=_loc(outs, i, file),
                path="outputs",
            )
        result.append(resolved)
    return result


def _check_all_used(entries: list[LayerEntry], outputs: list[str], file: str) -> None:
    needed = set(outputs)
    for entry in reversed(entries):
        if entry.name in needed:
            needed.update(entry.inputs)
    for entry in entries:
        if entry.name not in needed:
            raise SpecError(
                f"the output of `{entry.name}` is never used: no layer reads it and it is not in `outputs`.",
                loc=entry.loc,
                path=entry.where,
                hint="Remove it, read it in a later layer's `inputs`, or list it in `outputs:`.",
            )


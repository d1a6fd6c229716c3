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
import functools
import gc
import os
from collections import ChainMap
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, NamedTuple, Protocol

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

MAX_LAYERS = 100_000
"""Most layers a spec may expand to. What costs about as much time or memory as a layer counts as one: a pass of a
repeat or a use of a block that adds no layer, each input a layer reads beyond its first, each 20 parameters of a
block at each of its uses, each 1,000 characters of a layer's name and path. A spec that would pass it is refused
before it is built, from its repeat counts (a repeat's first pass stands for all of them) and from what its text
alone says it holds; ResNet-152 has about 500 layers."""

MAX_EXPR_OPERATIONS = 1_000_000
"""Most operations all of a spec's ``${...}`` expressions may take to evaluate, in all (each ``$name`` is one):
an expression is short, but one inside a repeat is evaluated at every pass."""

MAX_NESTING = 100
"""Deepest nesting of block uses and repeats (a block that uses a block that uses ... is one level each)."""

_FORESEE_VISITS = 256  # items a repeat's body is looked at for, to bound its size before its first pass


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a spec's objects are made: they are many small objects without
    cycles, freed by their reference counts, and the collector's passes over the growing heap would cost as much
    as making them."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class LayerEntry(NamedTuple):
    """One layer of the expanded graph. (Immutable; a named tuple because it is the cheapest immutable object to
    make, and a spec may expand to many thousands of layers.)"""

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
    """Draw, expand and validate a loaded tree (see :func:`load`)."""
    with gc_paused():
        return _from_tree(raw, file, sampler)


def _from_tree(raw: Any, file: str, sampler: Sampler | None) -> ModelSpec:
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
    ex.foresee(layers, "layers")
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
    return found or _file_loc(file)


@functools.lru_cache(maxsize=256)
def _file_loc(file: str) -> Loc:
    """The location of a whole file (for values made in Python, which have no line)."""
    return Loc(file)


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
                value, option = self.quick_draw(node, path)
                # Inside a chosen option, names carry the option's index: two options may hold different
                # distributions at the same place, and Optuna needs one distribution per name.
                return self.value(value, path if option is None else f"{path}[{option}]")
            # Parts without distributions are the same objects, and a loaded tree remembers them: a search space
            # is drawn for every trial.
            out = None
            for key, child in node.items():
                if isinstance(child, (dict, list)) and not getattr(child, "no_draws", False):
                    new = self.value(child, f"{path}.{key}" if path else str(key))
                    if new is not child:
                        if out is None:
                            out = node.copy() if isinstance(node, LocDict) else dict(node)
                        out[key] = new
            if out is None and isinstance(node, LocDict):
                node.no_draws = True
            return node if out is None else out
        if isinstance(node, list):
            out_list = None
            for i, child in enumerate(node):
                if isinstance(child, (dict, list)) and not getattr(child, "no_draws", False):
                    new = self.value(child, f"{path}[{i}]")
                    if new is not child:
                        if out_list is None:
                            out_list = LocList(node, loc=getattr(node, "loc", None))
                            out_list.item_locs = list(getattr(node, "item_locs", []))
                        out_list[i] = new
            if out_list is None and isinstance(node, LocList):
                node.no_draws = True
            return node if out_list is None else out_list
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

    def quick_draw(self, dist: dict, path: str) -> tuple[Any, int | None]:
        """:meth:`draw`, from the form that a first draw checked and the loaded tree kept: a search space is
        drawn again for every trial."""
        form = getattr(dist, "dist_form", None)
        if form is None or self.sampler is None:
            drawn = self.draw(dist, path)
            if isinstance(dist, LocDict):
                dist.dist_form = _form_of(dist)
            return drawn
        kind, given, low, high, step, log = form
        name = given or (f"{path}" if path else kind)
        if kind == "choice":
            index = self.sampler.choice(name, low)
            value = low[index]
            self.drawn[name] = value if not isinstance(value, (dict, list)) else f"option {index}"
            return value, index
        value = (self.sampler.int if kind == "int" else self.sampler.float)(name, low, high, step, log)
        self.drawn[name] = value
        return value, None


def is_distribution(node: Any) -> bool:
    if not isinstance(node, dict) or ("choice" in node) + ("int" in node) + ("float" in node) != 1:
        return False
    return all(isinstance(k, str) for k in node) and not any(k in LAYERS or k in ALIASES for k in node)


def _form_of(dist: dict) -> tuple:
    """A checked distribution's (kind, name given, low, high, step, log); a choice's options stand for low."""
    kind = next(k for k in DIST_KINDS if k in dist)
    if kind == "choice":
        return kind, dist.get("name"), list(dist[kind]), None, None, False
    low, high = dist[kind]
    step, log = dist.get("step"), dist.get("log", False)
    if kind == "int":
        return kind, dist.get("name"), low, high, 1 if step is None else step, log
    return kind, dist.get("name"), float(low), float(high), step, log


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
        self, parent: _Scope | None, prefix: str, variables: Mapping[str, Any], input_name: str, isolated: bool, suffix: str = ""
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
        self.nodes = 0  # layers (and what counts as one) expanded so far, bounded by MAX_LAYERS
        self.operations = 0  # of the expressions evaluated so far, bounded by MAX_EXPR_OPERATIONS
        # How many times the place being expanded will be expanded, as far as is known: the counts of the repeats
        # around it that are in their first pass (a first pass stands for all of a repeat's passes).
        self.weight = 1
        self.depth = 0  # blocks and repeats around the place being expanded, bounded by MAX_NESTING
        self.block_sizes: dict[str, int] = {}  # block name -> fewest nodes one use of it expands to
        # Layers written alike are one validated (immutable) model: long specs repeat their layers.
        self.specs: dict[tuple, LayerSpec] = {}
        # id -> mapping or list that holds no reference, kept so that its id stays its own: a repeat's body or a
        # block's is read once, not for every pass or use.
        self.unchanged: dict[int, Any] = {}

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

    # -- the bounds on size and nesting

    def count(self, loc: Loc, path: str, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > MAX_LAYERS:
            raise SpecError(
                f"the spec expands to more than {MAX_LAYERS:,} layers by here.",
                loc=loc,
                path=_short_path(path),
                hint=_SIZE_HINT,
            )

    def too_big(self, subject: str, verb: str, size: int, loc: Loc, path: str) -> SpecError:
        around = f", and the repeats around it run it {self.weight:,} times" if self.weight > 1 else ""
        after = f", after the {self.nodes:,} before it" if self.nodes else ""
        return SpecError(
            f"{subject} {verb} to at least {_count_text(size)} layers{around}{after}; a spec expands to at most "
            f"{MAX_LAYERS:,}.",
            loc=loc,
            path=_short_path(path),
            hint=_SIZE_HINT,
        )

    def foresee(self, items: list, path: str) -> None:
        """Refuse ``items`` before expanding them when their text alone says they pass :data:`MAX_LAYERS`."""
        total = 0
        for i, item in enumerate(items):
            size = self.fewest(item, 0, None)
            total += size
            if self.nodes + self.weight * total > MAX_LAYERS:
                loc = _loc(items, i, self.file)
                if self.nodes + self.weight * size <= MAX_LAYERS:
                    raise self.too_big(f"the {path} up to here", "expand", total, loc, path)
                what = _item_text(item, self.blocks) or "this layer"
                raise self.too_big(what, "expands", size, loc, f"{path}[{i}]")

    def fewest(self, item: Any, depth: int, visits: list[int] | None) -> int:
        """The fewest layers ``item`` expands to, from its text alone: a layer is one, a block use its block's (one
        at least), a repeat with a written count that many passes of its body's (one at least). A count given by a
        parameter counts zero, as does anything nested deeper than MAX_NESTING or beyond ``visits[0]`` items."""
        if visits is not None:
            visits[0] -= 1
            if visits[0] < 0:
                return 0
        if depth > MAX_NESTING:
            return 0
        key: Any = item
        if isinstance(item, dict):
            if "kind" in item:
                key = item["kind"]
            elif "repeat" in item:
                times, body = item["repeat"], item.get("layers")
                if type(times) is not int or times <= 0 or not isinstance(body, list):
                    return 0
                return times * max(1, sum(self.fewest(x, depth + 1, visits) for x in body))
            elif len(item) == 1:
                (key,) = item
        if isinstance(key, str) and key in self.blocks and canonical_kind(key) is None:
            return max(1, self.block_size(key, depth + 1))
        return 1

    def block_size(self, name: str, depth: int) -> int:
        if name not in self.block_sizes:
            self.block_sizes[name] = 0  # a block that uses itself is reported when it is expanded
            self.block_sizes[name] = sum(self.fewest(x, depth, None) for x in self.blocks[name].layers)
        return self.block_sizes[name]

    def enter(self, loc: Loc, path: str) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            chain = self.stack if len(self.stack) <= 6 else [*self.stack[:3], "...", *self.stack[-2:]]
            blocks = f" (blocks {' -> '.join(chain)})" if chain else ""
            raise SpecError(
                f"blocks and repeats nest more than {MAX_NESTING} levels deep here{blocks}.",
                loc=loc,
                path=_short_path(path),
                hint="Write the inner blocks' layers out, or repeat them instead of nesting.",
            )

    # -- substitution of $params

    def subst(self, value: Any, variables: Mapping[str, Any], loc: Any, path: str) -> Any:
        """``value`` with its ``$param`` references substituted; parts without references are the same objects.
        ``loc``: where ``value`` stands, or the (container, key) it stands at, looked up only for an error."""
        if isinstance(value, str):
            if not _expr.has_reference(value):
                return value
            try:
                result = _expr.substitute(value, variables)
            except _expr.ExprError as e:
                raise SpecError(str(e), loc=self.where(loc), path=path) from None
            ops = _expr.operations(value)
            # a first pass stands for all of its repeat's passes, as for the nodes
            if self.operations + self.weight * ops > MAX_EXPR_OPERATIONS:
                around = f", and the repeats around it run it {self.weight:,} times" if self.weight > 1 else ""
                after = f", after the {self.operations:,} before it" if self.operations else ""
                raise SpecError(
                    f"`{_expr.shown(value)}` takes {ops:,} operations to evaluate{around}{after}; a spec's expressions "
                    f"take at most {MAX_EXPR_OPERATIONS:,}.",
                    loc=self.where(loc),
                    path=path,
                    hint="Compute fewer values, or use fewer repeat passes.",
                )
            self.operations += ops
            return result
        if id(value) in self.unchanged:
            return value
        if isinstance(value, dict):
            out = None
            # The body of a repeat of 0 is never expanded, so it is not read either (it may be large, and inside a
            # repeat or a block it would be read for every pass and use).
            unread = "layers" if _repeats_zero(value, lambda count: self.subst(count, variables, (value, "repeat"), path)) else None
            for key, child in value.items():
                if isinstance(child, str) and "$" not in child or not isinstance(child, (str, dict, list)) or key == unread:
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

    def where(self, loc: Any) -> Loc:
        return loc if isinstance(loc, Loc) else _loc(loc[0], loc[1], self.file)

    # -- structure

    def sequence(self, items: list, path: str, scope: _Scope, prev: str) -> str:
        locs = getattr(items, "item_locs", None) or ()
        fallback = getattr(items, "loc", None) or _file_loc(self.file)
        for i, item in enumerate(items):
            loc = (locs[i] if i < len(locs) else None) or fallback
            prev = self.item(item, loc, f"{path}[{i}]", scope, prev)
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
                f"`repeat` takes a count >= 0, but got {_value_text(times)}.", loc=_loc(item, "repeat", self.file),
                path=path,
            )
        body = item["layers"]
        if not isinstance(body, list) or not body:
            raise SpecError("`layers` of a repeat must be a non-empty list.", loc=_loc(item, "layers", self.file), path=path)
        name = item.get("name")
        if times:
            visits = [_FORESEE_VISITS]
            size = times * max(1, sum(self.fewest(x, 0, visits) for x in body))
            if self.nodes + self.weight * size > MAX_LAYERS:
                raise self.too_big(f"repeat of {_count_text(times)}", "expands", size, loc, path)
        self.enter(loc, path)
        outer = self.weight
        prefix = f"{scope.prefix}{name + '_' if name else ''}"
        body_loc = _loc(item, "layers", self.file)
        for i in range(times):
            self.weight = outer * times if i == 0 else outer
            before = self.nodes
            inner = _Scope(scope, prefix, ChainMap({"index": i}, scope.variables), scope.input_name, isolated=False,
                           suffix=f"{scope.suffix}_{i}")
            body_i = self.subst(body, inner.variables, body_loc, path)
            prev = self.sequence(body_i, f"{path}.repeat[{i}].layers", inner, prev)
            if self.nodes == before:  # a pass without layers costs as much as a layer
                self.count(loc, path)
        self.weight = outer
        self.depth -= 1
        if name is not None:
            name_loc = _loc(item, "name", self.file)
            local = self._local(name, name_loc, path)
            _not_reserved(local, name_loc, path)
            scope.names[local] = prev
        return prev

    def _local(self, name: Any, loc: Loc, path: str) -> str:
        if not isinstance(name, str) or not _valid_name(name):
            raise SpecError(f"name `{shown(name)}` must be an identifier (letters, digits, _).", loc=loc, path=path)
        return name

    def block(self, block: _Block, args: Any, loc: Loc, path: str, scope: _Scope, prev: str) -> str:
        if block.name in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(block.name):], block.name])
            raise SpecError(f"block `{block.name}` uses itself ({chain}).", loc=loc, path=path)
        size = max(1, self.block_size(block.name, 0))
        if self.nodes + self.weight * size > MAX_LAYERS:
            raise self.too_big(f"block `{block.name}`", "expands", size, loc, path)
        before = self.nodes
        self.count(loc, path, len(block.params) // 20)  # a use reads every parameter: 20 cost about a layer
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
        if local is not None:
            _not_reserved(local, _loc(args, "name", self.file), path)
        instance = self.auto_name(block.name) if local is None else f"{scope.prefix}{local}{scope.suffix}"
        values = ChainMap(values, self.globals)  # not a copy: a spec may have thousands of parameters
        inner = _Scope(scope, f"{instance}_", values, prev, isolated=True)
        self.stack.append(block.name)
        try:
            self.enter(loc, path)
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
            self.depth -= 1
        if self.nodes == before:  # a use without layers costs as much as a layer
            self.count(loc, path)
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
            data: dict = {}
        elif isinstance(args, dict):
            data = args
        elif info.primary is not None:
            data = _primary(info.primary, args, loc)
        else:
            raise SpecError(
                f"{kind} takes no single value; write its arguments as a mapping (or `- {kind}` alone), but got {shown(repr(args))}.",
                loc=loc,
                path=where,
            )
        self.count(loc, where)
        data = self.subst(data, scope.variables, loc, where)
        if "kind" in data:
            data = data.copy()
            data.pop("kind")
        key = _args_key(kind, data)
        spec = self.specs.get(key) if key is not None else None
        if spec is None:
            try:
                spec = info.model.model_validate(data)  # `kind` is the model's default
            except ValidationError as e:  # located in the text the layer's arguments came from
                if not isinstance(data, LocDict):
                    data = LocDict(loc=loc) if args is None else _primary(info.primary, args, loc, located=True)
                raise _located(e, info.model, data, None, None, self.file, where) from None
            if key is not None:
                self.specs[key] = spec
        # inputs
        if spec.inputs is not None:
            if not spec.inputs:
                raise SpecError("`inputs` must name at least one layer.", loc=_loc(data, "inputs", self.file), path=where)
            self.count(loc, where, len(spec.inputs) - 1)  # each input a layer reads costs as much as a layer
            inputs = tuple(self.reference(r, scope, _loc(data, "inputs", self.file), where) for r in spec.inputs)
        else:
            inputs = (prev,)
        n = len(inputs)
        if n < info.min_inputs or (info.max_inputs is not None and n > info.max_inputs):
            want = f"at least {info.min_inputs}" if info.max_inputs is None else f"exactly {info.min_inputs}"
            hint = "Name them: `inputs: [a, b]`." if info.max_inputs is None else "Give it one input."
            raise SpecError(f"{kind} takes {want} inputs, but got {n} ({', '.join(inputs)}).", loc=loc, path=where, hint=hint)
        if spec.name is not None:
            _not_reserved(spec.name, loc, where)
            name = self.claim(f"{scope.prefix}{spec.name}{scope.suffix}", loc, where)
            scope.names[spec.name] = name
        else:
            name = self.auto_name(info.auto_name)
            self.used.add(name)
        self.count(loc, where, (len(name) + len(path)) // 1000)  # deep blocks make long names: each 1,000 characters
        self.entries.append(_new_entry(LayerEntry, (name, spec, inputs, path, loc)))
        return name


_SIZE_HINT = "Lower the repeat counts, or use fewer blocks."
_new_entry = tuple.__new__  # a LayerEntry made as its _make() makes it: several times faster than LayerEntry(...)


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


def _repeats_zero(value: dict, count: Any = None) -> bool:
    """Whether ``value`` is a repeat of 0 (its count as written, or as ``count`` substitutes it)."""
    if "repeat" not in value or "layers" not in value or "kind" in value:
        return False
    times = value["repeat"]
    if count is not None and isinstance(times, str) and "$" in times:
        times = count(times)
    return type(times) is int and times == 0


def _primary(field: str, value: Any, loc: Loc, located: bool = False) -> dict:
    """A layer's arguments written as its main one alone (``- dense: 10``): located where substitution or an
    error needs the place, a plain dict otherwise (most layers of a long spec are written so)."""
    if located or isinstance(value, str) and "$" in value:
        data = LocDict({field: value}, loc=loc)
        data.key_locs[field] = data.value_locs[field] = loc
        return data
    return {field: value}


def _short_path(path: str) -> str:
    """A path as a message on the bounds shows it: deep nesting makes paths of thousands of characters."""
    return path if len(path) <= 80 else f"{path[:40]}...{path[-30:]}"


def _count_text(n: int) -> str:
    return f"{n:,}" if n.bit_length() <= 100 else _expr.number_text(n)


def _item_text(item: Any, blocks: dict[str, _Block]) -> str | None:
    """How a message names a repeat (by its count) or a block use; None for anything else."""
    if isinstance(item, dict) and "kind" not in item and "repeat" in item and type(item["repeat"]) is int:
        return f"repeat of {_count_text(item['repeat'])}"
    key = item if isinstance(item, str) else next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None
    if isinstance(key, str) and key in blocks:
        return f"block `{key}`"
    return None


def _not_reserved(name: str, loc: Loc, path: str) -> None:
    if name == "input":
        raise SpecError(
            "name `input` is reserved for the model's input (inside a block, for the block's input); choose "
            "another name.",
            loc=loc,
            path=path,
        )


def _value_text(value: Any) -> str:
    """A value as a message quotes it: numbers as :func:`_expr.number_text` writes them, and at most 60
    characters of anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _expr.number_text(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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


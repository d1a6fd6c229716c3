"""From a loaded YAML/JSON tree to a flat, validated graph of layers (:class:`ModelSpec`): the entry points.

Stages (each takes the previous one's output and nothing else):

1. distributions (``{choice: [...]}``, ``{int: [lo, hi]}``, ``{float: [lo, hi]}``) are drawn from a sampler,
   top-down, so that parameters inside an unchosen option are never drawn (:mod:`._draw`);
2. blocks and ``repeat`` are expanded, ``$param`` references substituted, names and inputs resolved, within
   the bounds on size, nesting and expressions (:mod:`._blocks`, :mod:`._expand`, :mod:`._bounds`);
3. every layer and section is validated by its pydantic model (:mod:`._located` words the errors).

Every error is a :class:`SpecError` located at the text that caused it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .._text import shown
from ..errors import Loc, SpecError
from ._aliases import misplaced
from ._backbone import Backbone, BackboneExpander, top_index
from ._blocks import Scope, parse_blocks
from ._draw import Draw, Sampler
from ._expand import LayerEntry
from ._located import check_keys, loc_of, suggest, type_name, validate_model
from ._sections import SECTIONS, InputSpec, Limits
from ._yaml import load_file, load_text

TOP_KEYS = ("name", "description", "input", "params", "blocks", "layers", "outputs", "top", *SECTIONS)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a spec's objects are made: they are many small objects without
    cycles, freed by their reference counts, and the collector's passes over the growing heap would cost as
    much as making them."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class ModelSpec:
    """A spec expanded and validated: a flat graph in order (each layer reads only layers above it)."""

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
    backbones: list[Backbone] = field(default_factory=list)  # the other specs used as blocks, in order

    @property
    def is_search_space(self) -> bool:
        return bool(self.params) or self.search is not None


def load(
    source: str | os.PathLike | dict, *, sampler: Sampler | None = None, file: str | None = None
) -> ModelSpec:
    """Load, expand and validate a spec from a path, YAML/JSON text, or an already-parsed mapping."""
    if isinstance(source, dict):
        raw, name = source, file or "<dict>"
    elif isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{")
    ):
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
    _a_mapping(raw, file)
    drawn: dict[str, Any] = {}
    raw = Draw(file, sampler, drawn).value(raw, "")
    _a_mapping(raw, file)  # a distribution over the whole document may draw anything
    check_keys(raw, TOP_KEYS, "the spec", file, required=("input", "layers"))

    name = _text_field(raw, "name", file) or (
        os.path.splitext(os.path.basename(file))[0] if not file.startswith("<") else "model"
    )
    inp = validate_model(InputSpec, _input_form(raw["input"]), raw, "input", file, "input")
    variables = _top_params(raw.get("params"), file)
    blocks = parse_blocks(raw.get("blocks"), file)

    ex = BackboneExpander(file, blocks, variables, (inp.name, tuple(inp.shape), loc_of(raw, "input", file)))
    top = Scope(None, "", variables, inp.name, isolated=True)
    top.names[inp.name] = inp.name
    ex.used.add(inp.name)
    layers = raw["layers"]
    if not isinstance(layers, list) or not layers:
        raise SpecError("`layers` must be a non-empty list of layers.", loc=loc_of(raw, "layers", file))
    if "top" in raw:  # where its top starts, when it is a backbone with include_top: false
        top_index(raw, file)
    ex.foresee(layers, "layers")
    last = ex.sequence(layers, "layers", top, inp.name)
    outputs = _outputs(raw, top, last, file)
    _check_all_used(ex.entries, outputs, file)

    for key in SECTIONS:
        misplaced(key, raw.get(key), file)
    sections = {
        key: validate_model(model, raw[key], raw, key, file, key)
        for key, model in SECTIONS.items()
        if key in raw
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
        input_loc=loc_of(raw, "input", file),
        backbones=ex.backbones,
    )


def _a_mapping(raw: Any, file: str) -> None:
    if not isinstance(raw, dict):
        raise SpecError(
            # what the file holds, never its text: a file that is not a spec may be a token or a password file
            f"holds {_kind_name(raw)}, not a mapping; a spec is a mapping with `input:` and `layers:`.",
            loc=getattr(raw, "loc", None) or Loc(file, 1, 1),
        )


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


def _text_field(raw: dict, key: str, file: str) -> str | None:
    """``name`` or ``description``: text (a number or true/false is read as its text), or absent."""
    value = raw.get(key)
    if isinstance(value, (dict, list)):
        raise SpecError(f"`{key}` is a text, but got a {type_name(value)}.", loc=loc_of(raw, key, file))
    return None if value is None else str(value)


def _input_form(value: Any) -> Any:
    return {"shape": value} if isinstance(value, list) else value


def _top_params(params: Any, file: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise SpecError(
            "`params` must be a mapping of names to values.", loc=getattr(params, "loc", None) or Loc(file)
        )
    return dict(params)


def _outputs(raw: dict, top: Scope, last: str, file: str) -> list[str]:
    outs = raw.get("outputs")
    if outs is None:
        return [last]
    if isinstance(outs, str):
        outs = [outs]
    if not isinstance(outs, list) or not outs:
        raise SpecError("`outputs` must name one or more layers.", loc=loc_of(raw, "outputs", file))
    result = []
    for i, ref in enumerate(outs):
        resolved = top.resolve(ref) if isinstance(ref, str) else None
        if resolved is None:
            hint = suggest(str(ref), top.visible())
            raise SpecError(
                f"output `{shown(ref)}` names no layer; {hint + ' ' if hint else ''}"
                f"Names: {', '.join(top.visible())}.",
                loc=loc_of(outs, i, file),
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


# The old private names specdsl.search imports from this module; remove them once it imports specdsl.spec's
# public names (Draw, loc_of, validate_model, ...).
from ._draw import DIST_KINDS, has_distributions  # noqa: E402, F401

_Draw, _loc, _validate_model = Draw, loc_of, validate_model

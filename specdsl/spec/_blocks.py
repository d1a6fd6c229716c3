"""Blocks and names: a spec's ``blocks:`` read into :class:`Block` definitions, and the names each place sees.

A block is a named list of layers with parameters (``$param`` in its layers, a default each, null for one a
use must give). A block's body sees only its own layers and ``input`` (the block's input); a repeat's body
sees outward, so its layers may read any layer above them, and :data:`PREV`, the pass's input (what its first
layer reads by default: the layer before the repeat on the first pass, the last layer of the pass before on
the others).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from .._text import shown
from ..errors import Loc, SpecError
from ._kinds import ALIASES, LAYERS
from ._located import check_keys, loc_of
from ._types import NAME_PATTERN
from ._yaml import LocDict

BLOCK_KEYS = ("params", "layers", "output", "description")
PREV = "prev"
"""Inside a repeat's layers, the name of the pass's input (in ``inputs:`` and in expressions, ``${prev.channels}``)."""


@dataclass
class Block:
    """One definition under ``blocks:``: its parameters' defaults (None: required), its layers, its output."""

    name: str
    params: dict[str, Any]
    layers: list
    output: str | None
    loc: Loc


def parse_blocks(raw: Any, file: str) -> dict[str, Block]:
    """The blocks of a spec's ``blocks:`` mapping (None: no blocks), by name."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(
            "`blocks` must be a mapping of block names to definitions.",
            loc=getattr(raw, "loc", None) or Loc(file),
        )
    blocks = {}
    for name, body in raw.items():
        loc = loc_of(raw, name, file, value=False)
        if not isinstance(name, str) or not valid_name(name):
            raise SpecError(
                f"block name `{shown(name)}` must be an identifier (letters, digits, _).", loc=loc
            )
        if name in LAYERS or name in ALIASES or name in ("repeat", "backbone"):
            raise SpecError(f"block name `{name}` is already a layer kind; choose another name.", loc=loc)
        if not isinstance(body, dict):
            raise SpecError(
                f"block `{name}` must be a mapping with `layers:` (and optional `params:`).", loc=loc
            )
        check_keys(body, BLOCK_KEYS, f"block `{name}`", file, required=("layers",))
        params = body.get("params") or LocDict()
        if not isinstance(params, dict):
            raise SpecError(
                f"`params` of block `{name}` must be a mapping of names to defaults (null: required).",
                loc=loc_of(body, "params", file),
            )
        if not isinstance(body["layers"], list) or not body["layers"]:
            raise SpecError(
                f"`layers` of block `{name}` must be a non-empty list.", loc=loc_of(body, "layers", file)
            )
        blocks[name] = Block(name, dict(params), body["layers"], body.get("output"), loc)
    return blocks


def valid_name(name: str) -> bool:
    """Whether ``name`` is an identifier (letters, digits, _), as layer, block and repeat names are."""
    return re.match(NAME_PATTERN, name) is not None


def not_reserved(name: str, loc: Loc, path: str, scope: Scope) -> None:
    """Refuse ``input`` as the name of a layer, block use or repeat, and ``prev`` inside a repeat."""
    if name == "input":
        raise SpecError(
            "name `input` is reserved for the model's input (inside a block, for the block's input); choose "
            "another name.",
            loc=loc,
            path=path,
        )
    if name == PREV and scope.prev is not None:
        raise SpecError(
            f"name `{PREV}` is reserved inside a repeat for the pass's input (the layer before the repeat on the "
            "first pass, the pass before's last layer on the others); choose another name.",
            loc=loc,
            path=path,
        )


class Scope:
    """Names visible at one place: a block body sees only its own layers and `input`; a repeat's pass sees
    outward, and ``prev`` (``prev``: the model-wide name of the pass's input, None outside a repeat)."""

    def __init__(
        self,
        parent: Scope | None,
        prefix: str,
        variables: MutableMapping[str, Any],
        input_name: str,
        isolated: bool,
        suffix: str = "",
        prev: str | None = None,
    ):
        self.parent = parent
        self.prev = prev
        self.suffix = suffix
        self.prefix = prefix
        self.variables = variables
        self.input_name = input_name
        self.isolated = isolated
        self.names: dict[str, str] = {}

    def resolve(self, local: str) -> str | None:
        """The model-wide name of the layer called ``local`` here; None when no layer is."""
        if local in self.names:
            return self.names[local]
        if local == "input":
            return self.input_name
        if local == PREV and self.prev is not None:
            return self.prev
        if not self.isolated and self.parent is not None:
            return self.parent.resolve(local)
        return None

    def visible(self) -> list[str]:
        """The names a layer may read here, sorted (for messages)."""
        names = set(self.names) | {"input"} | ({PREV} if self.prev is not None else set())
        if not self.isolated and self.parent is not None:
            names |= set(self.parent.visible())
        return sorted(names)

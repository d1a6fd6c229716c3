"""Safe YAML/JSON reading that remembers where every value came from.

PyYAML composes a node tree (every node carries its start mark); we turn it into plain data ourselves:
only the standard tags are accepted (nothing in a spec ever builds a Python object), duplicate keys are
errors, and the number of values and the nesting depth are bounded, so alias bombs and pathological files
fail fast with a located message.

Mappings become :class:`LocDict` and sequences :class:`LocList`: ordinary ``dict``/``list`` subclasses that
also know the location of themselves, of each key and of each value.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from ..errors import Loc, SpecError

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_VALUES = 200_000
MAX_DEPTH = 64

import re


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader, reading 1e-3 as a number as YAML 1.2 and JSON do (YAML 1.1 wants 1.0e-3)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_INT_TAG = "tag:yaml.org,2002:int"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"

MAX_INT_DIGITS = 4_300
"""Integers written in a spec have at most 4,300 digits, the most Python converts between text and int by default;
longer ones are refused before they are converted. (No size, count or bound in a spec needs more than 20: the
fields' own bounds refuse what is past them, and a message shows such an integer by its number of digits.)"""


class LocDict(dict):
    """A dict that knows where it, its keys and its values stand in the source text."""

    # Kept by a search's first draw from a loaded tree, which is drawn again for every trial: no_draws, when no
    # distribution is inside; dist_form, a distribution's checked form.
    __slots__ = ("loc", "key_locs", "value_locs", "no_draws", "dist_form")

    def __init__(self, *args: Any, loc: Loc | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loc = loc
        self.key_locs: dict[Any, Loc] = {}
        self.value_locs: dict[Any, Loc] = {}

    def loc_of(self, key: Any, *, value: bool = False) -> Loc | None:
        """Location of ``key`` (or of its value), falling back to the mapping's own location."""
        table = self.value_locs if value else self.key_locs
        return table.get(key) or self.loc

    def copy(self) -> LocDict:  # keep locations through copies
        new = LocDict(self, loc=self.loc)
        new.key_locs = dict(self.key_locs)
        new.value_locs = dict(self.value_locs)
        return new


class LocList(list):
    """A list that knows where it and each of its items stand in the source text."""

    __slots__ = ("loc", "item_locs", "no_draws")

    def __init__(self, *args: Any, loc: Loc | None = None):
        super().__init__(*args)
        self.loc = loc
        self.item_locs: list[Loc | None] = []

    def loc_of(self, index: int) -> Loc | None:
        if 0 <= index < len(self.item_locs) and self.item_locs[index] is not None:
            return self.item_locs[index]
        return self.loc


def loc_of(container: Any, key: Any, *, value: bool = True) -> Loc | None:
    """Best location for ``container[key]``; None when nothing is known."""
    if isinstance(container, LocDict):
        return container.loc_of(key, value=value)
    if isinstance(container, LocList) and isinstance(key, int):
        return container.loc_of(key)
    return getattr(container, "loc", None)


def read_text(path: str | os.PathLike) -> str:
    """Read a spec file as UTF-8 text with a size bound; every failure is a located SpecError."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        if size > MAX_FILE_BYTES:
            raise SpecError(
                f"file is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,} bytes.",
                loc=Loc(name),
                hint="Is this really a spec? Use blocks and repeat to keep specs short.",
            )
        with open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SpecError("no such file.", loc=Loc(name)) from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a spec file.", loc=Loc(name)) from None
    except PermissionError:
        raise SpecError("cannot be read (permission denied).", loc=Loc(name)) from None
    if b"\x00" in data:
        raise SpecError("is a binary file (it contains NUL bytes), not YAML or JSON text.", loc=Loc(name, 1, 1))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(
            f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}).",
            loc=Loc(name, line, col),
            hint="Save the file as UTF-8.",
        ) from None


def load_text(text: str, file: str = "<string>") -> Any:
    """Parse YAML (or JSON, which is read as YAML) into LocDict/LocList/scalars."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
            problem = e.problem or e.context or "invalid YAML"
            raise SpecError(f"invalid YAML: {problem}.", loc=where) from None
        except yaml.YAMLError as e:
            raise SpecError(f"invalid YAML: {e}.", loc=Loc(file)) from None
        if node is None:
            raise SpecError("is empty; a spec needs at least `input:` and `layers:`.", loc=Loc(file, 1, 1))
        return _Builder(loader, file).build(node, 0)
    finally:
        loader.dispose()


def load_file(path: str | os.PathLike) -> Any:
    name = os.fspath(path)
    return load_text(read_text(name), name)


class _Builder:
    def __init__(self, loader: Any, file: str):
        self.loader = loader
        self.file = file
        self.count = 0
        self.scalars: dict[tuple[str, str], Any] = {}  # (tag, text) -> value: a spec repeats its numbers

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, depth: int, loc: Loc | None = None) -> Any:
        """The plain value of ``node``; ``loc`` is its location when the caller has made it already."""
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(
                f"has more than {MAX_VALUES:,} values once aliases are expanded.",
                loc=self.loc(node),
                hint="Aliases that refer to aliases multiply; write the structure out or use blocks.",
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"nests deeper than {MAX_DEPTH} levels.", loc=self.loc(node))
        tag = node.tag
        if tag == _STR_TAG and type(node) is yaml.ScalarNode:
            return node.value
        if isinstance(node, yaml.MappingNode):
            if tag != _MAP_TAG:
                raise self._bad_tag(node)
            out = LocDict(loc=loc or self.loc(node))
            key_locs, value_locs = out.key_locs, out.value_locs
            merged: list[LocDict] = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:  # `<<: *base`, merged below
                    merged += self.merge_sources(value_node, depth + 1)
                    continue
                key_loc = self.loc(key_node)
                key = self.build(key_node, depth + 1, key_loc)
                if isinstance(key, (dict, list)):
                    raise SpecError("mapping keys must be plain values, not mappings or lists.", loc=key_loc)
                if key in out:
                    raise SpecError(f"duplicate key `{key}` (first at line {key_locs[key].line}).", loc=key_loc)
                value_loc = self.loc(value_node)
                out[key] = self.build(value_node, depth + 1, value_loc)
                key_locs[key] = key_loc
                value_locs[key] = value_loc
            # YAML's merge: keys written in the mapping override merged ones, and an earlier merged mapping
            # overrides a later one.
            for source in merged:
                for key, value in source.items():
                    if key not in out:
                        out[key] = value
                        key_locs[key] = source.key_locs[key]
                        value_locs[key] = source.value_locs[key]
            return out
        if isinstance(node, yaml.SequenceNode):
            if tag != _SEQ_TAG:
                raise self._bad_tag(node)
            out_list = LocList(loc=loc or self.loc(node))
            item_locs = out_list.item_locs
            for item in node.value:
                item_loc = self.loc(item)
                out_list.append(self.build(item, depth + 1, item_loc))
                item_locs.append(item_loc)
            return out_list
        if tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates are plain text in a spec
        if tag not in _SCALAR_TAGS:
            raise self._bad_tag(node)
        key = (tag, node.value)
        if key not in self.scalars:
            if tag == _INT_TAG:
                digits = len(node.value.lstrip("+-").replace("_", ""))
                if digits > MAX_INT_DIGITS:
                    raise SpecError(
                        f"an integer of {digits:,} digits; integers in a spec have at most {MAX_INT_DIGITS:,} digits.",
                        loc=loc or self.loc(node),
                    )
            self.scalars[key] = self.loader.construct_object(node, deep=True)
        return self.scalars[key]

    def merge_sources(self, node: yaml.Node, depth: int) -> list[LocDict]:
        """The mappings a merge key (``<<``) brings in: one mapping, or a list of them."""
        items = node.value if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG else [node]
        sources = []
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                text = str(item.value)
                what = "a list" if isinstance(item, yaml.SequenceNode) else f"`{text[:40]}{'...' if len(text) > 40 else ''}`"
                raise SpecError(
                    f"a merge key `<<` takes a mapping (such as `*base`) or a list of mappings, but got {what}.",
                    loc=self.loc(item),
                )
            sources.append(self.build(item, depth))
        return sources

    def _bad_tag(self, node: yaml.Node) -> SpecError:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return SpecError(
            f"YAML tag `{tag}` is not allowed; specs are plain data (mappings, lists, strings, numbers, booleans).",
            loc=self.loc(node),
            hint="Remove the tag.",
        )

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

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class LocDict(dict):
    """A dict that knows where it, its keys and its values stand in the source text."""

    __slots__ = ("loc", "key_locs", "value_locs")

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

    __slots__ = ("loc", "item_locs")

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

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(
                f"has more than {MAX_VALUES:,} values once aliases are expanded.",
                loc=self.loc(node),
                hint="Aliases that refer to aliases multiply; write the structure out or use blocks.",
            )
        if depth > MAX_DEPTH:
            raise SpecError(f"nests deeper than {MAX_DEPTH} levels.", loc=self.loc(node))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise self._bad_tag(node)
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            out = LocDict(loc=self.loc(node))
            for key_node, value_node in node.value:
                key = self.build(key_node, depth + 1)
                if isinstance(key, (dict, list)):
                    raise SpecError("mapping keys must be plain values, not mappings or lists.", loc=self.loc(key_node))
                if key in out:
                    raise SpecError(
                        f"duplicate key `{key}` (first at line {out.key_locs[key].line}).", loc=self.loc(key_node)
                    )
                out[key] = self.build(value_node, depth + 1)
                out.key_locs[key] = self.loc(key_node)
                out.value_locs[key] = self.loc(value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._bad_tag(node)
            out = LocList(loc=self.loc(node))
            for item in node.value:
                out.append(self.build(item, depth + 1))
                out.item_locs.append(self.loc(item))
            return out
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates are plain text in a spec
        if node.tag not in _SCALAR_TAGS:
            raise self._bad_tag(node)
        return self.loader.construct_object(node, deep=True)

    def _bad_tag(self, node: yaml.Node) -> SpecError:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return SpecError(
            f"YAML tag `{tag}` is not allowed; specs are plain data (mappings, lists, strings, numbers, booleans).",
            loc=self.loc(node),
            hint="Remove the tag.",
        )

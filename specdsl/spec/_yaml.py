"""Safe YAML/JSON reading that remembers where every value came from.

PyYAML composes a node tree (every node carries its start mark); we turn it into plain data ourselves:
only the standard tags are accepted (nothing in a spec ever builds a Python object), duplicate keys are
errors, and the number of values and the nesting depth are bounded, so alias bombs and pathological files
fail fast with a located message.

Mappings become :class:`LocDict` and sequences :class:`LocList`: ordinary ``dict``/``list`` subclasses that
also know the location of themselves, of each key and of each value.
"""

from __future__ import annotations

import codecs
import errno
import gc
import os
import re
import stat
from typing import Any

import yaml

from ..errors import Loc, SpecError

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_VALUES = 200_000
MAX_DEPTH = 64


class _TooManyValues(Exception):
    """Raised while composing, past MAX_VALUES nodes; load_text finds where and says so."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader, reading 1e-3 as a number as YAML 1.2 and JSON do (YAML 1.1 wants 1.0e-3).

    The composer asks :meth:`resolve` for the tag of every node written without one, as it composes it: that is
    where the nodes of the text are counted (a file of more than MAX_VALUES values stops there instead of being
    composed whole) and where the tag of each distinct plain scalar is remembered (PyYAML tries its regular
    expressions on every scalar, the largest cost of composing).
    """

    def __init__(self, stream: Any):
        super().__init__(stream)
        self.nodes = 0
        self._tags: dict[str, str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        self.nodes += 1
        if self.nodes > MAX_VALUES:
            raise _TooManyValues
        if kind is yaml.ScalarNode and implicit[0]:  # no path resolvers: the tag depends on the text alone
            tag = self._tags.get(value)
            if tag is None:
                # a plain decimal integer, as YAML 1.1's int pattern reads it (0123 is octal; 0999 is a string)
                if value.isdigit() and value.isascii() and (value[0] != "0" or value == "0"):
                    tag = _INT_TAG
                else:
                    tag = super().resolve(kind, value, implicit)
                self._tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


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
    no_draws: bool
    dist_form: tuple

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
    no_draws: bool

    def __init__(self, *args: Any, loc: Loc | None = None):
        super().__init__(*args)
        self.loc = loc
        self.item_locs: list[Loc | None] = []

    def loc_of(self, index: int) -> Loc | None:
        if 0 <= index < len(self.item_locs) and self.item_locs[index] is not None:
            return self.item_locs[index]
        return self.loc


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 1 << 20


def _kind(mode: int) -> str | None:
    """What a file that is not a regular file is (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def _not_regular(name: str, kind: str) -> SpecError:
    if kind == "a folder":
        return SpecError("is a folder, not a spec file.", loc=Loc(name))
    return SpecError(f"is not a regular file ({kind}); specs are plain files.", loc=Loc(name))


def _open_error(name: str, e: OSError) -> SpecError:
    if isinstance(e, FileNotFoundError):
        if os.path.islink(name):
            return SpecError("is a symbolic link to a file that does not exist.", loc=Loc(name))
        return SpecError("no such file.", loc=Loc(name))
    if isinstance(e, PermissionError):
        return SpecError("cannot be read (permission denied).", loc=Loc(name))
    if e.errno == errno.ELOOP:
        return SpecError("is a symbolic link that loops (too many levels of symbolic links).", loc=Loc(name))
    if isinstance(e, NotADirectoryError):
        return SpecError("no such file (a part of its path is not a folder).", loc=Loc(name))
    return SpecError(f"cannot be read ({e.strerror or type(e).__name__}).", loc=Loc(name))


def read_bytes(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a spec file, at most ``limit`` of them; every failure is a located SpecError.

    Only regular files are read: a folder, device (``/dev/zero``), named pipe or socket, directly or through a
    symbolic link, is refused before anything is read (and a FIFO is opened without blocking, in case one appears
    between the check and the open). At most ``limit + 1`` bytes are ever read, whatever the file claims its size is.
    """
    name = os.fspath(path)
    try:
        kind = _kind(os.stat(name).st_mode)  # devices are not even opened (opening some has effects)
        if kind is not None:
            raise _not_regular(name, kind)
        fd = os.open(
            name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
        )
    except OSError as e:
        raise _open_error(name, e) from None
    except ValueError:  # a NUL character in the name
        raise SpecError(
            "is not a file name (it holds a NUL character).", loc=Loc(name.replace("\0", "\\0"))
        ) from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:
            raise _not_regular(name, kind)
        if st.st_size > limit:
            raise _too_big(name, st.st_size, limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _too_big(name, None, limit)
        return b"".join(chunks)
    except OSError as e:  # EIO, EISDIR on odd file systems, ...
        raise _open_error(name, e) from None
    finally:
        os.close(fd)


def _too_big(name: str, size: int | None, limit: int) -> SpecError:
    what = f"is {size:,} bytes" if size is not None else f"holds more than {limit:,} bytes"
    return SpecError(
        f"{what}; specs are limited to {limit:,} bytes.",
        loc=Loc(name),
        hint="Is this really a spec? Use blocks and repeat to keep specs short.",
    )


# Byte-order marks, longest first (UTF-32 LE starts with the UTF-16 LE mark).
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _wide_encoding(data: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` when ``data`` is text in one of them (by its byte-order mark, or, without one,
    because it decodes to text with no control characters: ASCII in UTF-16 is every other byte NUL)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    for codec, name in (
        ("utf-32-le", "UTF-32"),
        ("utf-32-be", "UTF-32"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
    ):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if text and not _CONTROL.search(text):
            return name
    return None


def decode(data: bytes, name: str) -> str:
    """Spec text from a file's bytes: UTF-8 (a byte-order mark is allowed); UTF-16/32, binary and invalid UTF-8
    files are located SpecErrors."""
    if b"\x00" in data or data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        wide = _wide_encoding(data)
        if wide is not None:
            raise SpecError(f"is {wide} text, not UTF-8.", loc=Loc(name, 1, 1), hint="Save it as UTF-8.")
        raise SpecError(
            "is a binary file (it contains NUL bytes), not YAML or JSON text.", loc=Loc(name, 1, 1)
        )
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


def read_text(path: str | os.PathLike) -> str:
    """Read a spec file as UTF-8 text with a size bound (:func:`read_bytes`, :func:`decode`); every failure is a
    located SpecError."""
    name = os.fspath(path)
    return decode(read_bytes(name), name)


def load_text(text: str, file: str = "<string>") -> Any:
    """Parse YAML (or JSON, which is read as YAML) into LocDict/LocList/scalars."""
    loader = _Loader(text)
    collect = gc.isenabled()
    # Composing and building create a few objects per value and no reference cycles; with the collector on, it
    # walks the growing tree again and again (a third of the time of a 50,000-layer spec).
    gc.disable()
    try:
        try:
            node = loader.get_single_node()
        except _TooManyValues:
            raise SpecError(
                f"has more than {MAX_VALUES:,} values.",
                loc=_node_loc(text, file, MAX_VALUES + 1),
                hint="Is this really a spec? Use blocks and repeat to keep specs short.",
            ) from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
            if isinstance(e, yaml.composer.ComposerError) and e.problem == "but found another document":
                raise SpecError(
                    f"holds {_documents(text, e.context_mark)} YAML documents; a spec is one document.",
                    loc=where,
                    hint="Put each spec in a file of its own.",
                ) from None
            problem = e.problem or e.context or "invalid YAML"
            raise SpecError(f"invalid YAML: {problem}.", loc=where) from None
        except yaml.YAMLError as e:
            raise SpecError(f"invalid YAML: {e}.", loc=Loc(file)) from None
        if node is None:
            raise SpecError("is empty; a spec needs at least `input:` and `layers:`.", loc=Loc(file, 1, 1))
        return _Builder(loader, file).build(node, 0)
    finally:
        loader.dispose()
        if collect:
            gc.enable()


_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.M)


def _documents(text: str, first: Any) -> int:
    """How many YAML documents ``text`` holds: a line starting with ``---`` always starts one (YAML forbids it
    inside a scalar), and the first document, which starts at ``first``, may have none."""
    markers = [m.start() for m in _DOCUMENT_START.finditer(text)]
    implicit_first = bool(markers) and first is not None and first.index < markers[0]
    return max(2, len(markers) + implicit_first)


def _node_loc(text: str, file: str, n: int) -> Loc:
    """Where the ``n``-th node written without a tag starts (as the composer counts them in :class:`_Loader`)."""
    parser = _Loader(text)
    try:
        count = 0
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)) and (
                event.tag is None or event.tag == "!"
            ):
                count += 1
                mark = event.start_mark
                if count >= n and mark is not None:
                    return Loc(file, mark.line + 1, mark.column + 1)
    finally:
        parser.dispose()
    return Loc(file)


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
                    raise SpecError(
                        f"duplicate key `{key}` (first at line {key_locs[key].line}).", loc=key_loc
                    )
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
                what = (
                    "a list"
                    if isinstance(item, yaml.SequenceNode)
                    else f"`{text[:40]}{'...' if len(text) > 40 else ''}`"
                )
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

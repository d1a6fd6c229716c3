"""The items a compact form is made of: a layer or a use of a block (:class:`Call`), a repeat (:class:`Rep`) and a
block (:class:`Block`); their values, the labels of those values and their structure without them; runs of equal
items as one repeat, and repeats that save no lines written out again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


def freeze(value: Any) -> Any:
    """A value as a hashable one: lists as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A frozen value as written: tuples as lists."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
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
    # the items it stands for, names and all, for writing them out again (see unroll)
    originals: tuple[Any, ...] | None = field(default=None, compare=False)


@dataclass
class Block:
    name: str
    params: list[str]
    body: list[Any]
    defaults: dict[str, Any] = field(default_factory=dict)


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


def lines(item: Any) -> int:
    """The lines an item takes in the written spec."""
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


def unroll(items: list[Any]) -> list[Any]:
    """Repeats that save no lines, written out again: two single lines read better than a repeat of one."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, Rep):
            body = unroll(list(item.body))
            size = sum(lines(x) for x in body)
            if isinstance(item.count, int) and (item.count - 1) * size - 2 <= 0:
                out += list(item.originals) if item.originals else body * item.count
            else:
                out.append(Rep(item.count, tuple(body)))
        else:
            out.append(item)
    return out


def strip(item: Any) -> Any:
    """The item without its top-level names."""
    if isinstance(item, Rep):
        return Rep(item.count, tuple(strip(x) for x in item.body))
    return Call(item.key, item.args, item.inputs, item.local)


def plain(call: Call) -> Call:
    """The call without its inputs and names."""
    return Call(call.key, call.args)


def promote(item: Any) -> Rep:
    """The item as a repeat (of one, for a single item)."""
    return item if isinstance(item, Rep) else Rep(1, (item,))


def demote(body: list[Any]) -> list[Any]:
    """The body with its repeats of one written as their items."""
    out: list[Any] = []
    for item in body:
        if isinstance(item, Rep) and item.count == 1:
            out += demote(list(item.body))
        elif isinstance(item, Rep):
            out.append(Rep(item.count, tuple(demote(list(item.body)))))
        else:
            out.append(item)
    return out

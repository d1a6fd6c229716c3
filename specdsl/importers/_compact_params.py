"""The params of a block: for the values of several uses of one structure, the values that differ become params,
named by the argument they set (``filters``, ``strides``, ``n`` for a repeat count); one equal to another param,
or an integer multiple of it, reads it (``${filters * 4}``); a param gets a default where every layer argument it
sets has that same default.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined

from ..spec import LAYERS
from ._compact_items import Block, Rep, freeze


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
                        seen[ref].add(freeze(short(info.default)))
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

"""Errors located in the text: where a value of a loaded tree stands; pydantic's errors in the spec's terms.

A pydantic :class:`~pydantic.ValidationError` names fields by their path in the model; :func:`validate_model`
turns its first error into one :class:`SpecError` at the line and column the value came from, worded as the
rest of the spec's messages (an unknown key with the nearest valid one, a missing argument, a rule with the
value received).
"""

from __future__ import annotations

import difflib
import functools
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .._text import shown
from ..errors import Loc, SpecError
from ._yaml import LocDict, LocList


def loc_of(container: Any, key: Any, file: str, *, value: bool = True) -> Loc:
    """Where ``container[key]`` stands (its value, or with ``value=False`` its key) in ``file``: the closest
    location the loaded tree knows, the whole file when it knows none (a value made in Python)."""
    if isinstance(container, LocDict):
        found = container.loc_of(key, value=value)
    elif isinstance(container, LocList) and isinstance(key, int):
        found = container.loc_of(key)
    else:
        found = getattr(container, "loc", None)
    return found or file_loc(file)


@functools.lru_cache(maxsize=256)
def file_loc(file: str) -> Loc:
    """The location of a whole file (for values made in Python, which have no line)."""
    return Loc(file)


def suggest(name: str, choices: list[str]) -> str:
    """``did you mean `x`?`` for the choice nearest to ``name``; empty when none is near."""
    near = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f"did you mean `{near[0]}`?" if near else ""


def check_keys(
    mapping: dict,
    allowed: tuple[str, ...],
    what: str,
    file: str,
    required: tuple[str, ...] = (),
    error: type[SpecError] = SpecError,
) -> None:
    """Refuse a key of ``mapping`` not in ``allowed`` (naming the nearest), and a missing ``required`` one."""
    for key in mapping:
        if key not in allowed:
            hint = suggest(key, list(allowed))
            raise error(
                f"unknown key `{shown(key)}` in {what}; {hint + ' ' if hint else ''}"
                f"Valid keys: {', '.join(allowed)}.",
                loc=loc_of(mapping, key, file, value=False),
            )
    for key in required:
        if key not in mapping:
            raise error(f"{what} needs `{key}:`.", loc=getattr(mapping, "loc", None) or Loc(file, 1, 1))


def type_name(value: Any) -> str:
    """``mapping``, ``list``, ``null value`` or the type and (shortened) value of a scalar, for a message."""
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null value"
    return f"{type(value).__name__} ({shown(repr(value))})"


def validate_model(model: type[BaseModel], data: Any, parent: Any, key: Any, file: str, path: str) -> Any:
    """Validate with pydantic; turn the first error into one located SpecError in the spec's own terms.

    ``data`` stands at ``parent[key]`` in ``file`` (where an error without a place of its own points), and at
    ``path`` in the spec's terms (``train.optimizer``)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise located(e, model, data, parent, key, file, path) from None


_ERROR_ORDER = {"extra_forbidden": 0, "missing": 2}


def located(
    e: ValidationError, model: type[BaseModel], data: Any, parent: Any, key: Any, file: str, path: str
) -> SpecError:
    """The SpecError for pydantic's error ``e`` of ``model`` on ``data`` (see :func:`validate_model`)."""
    # One error per spec: an unknown key first (a typo also makes its intended key "missing"), then the rest.
    err = min(e.errors(include_url=False), key=lambda x: _ERROR_ORDER.get(x["type"], 1))
    where: Any = data
    loc = getattr(data, "loc", None) or loc_of(parent, key, file)
    for part in err["loc"]:
        if _is_union_tag(part):
            continue
        if isinstance(where, dict) and part in where:
            loc = loc_of(where, part, file, value=err["type"] != "extra_forbidden")
            where = where[part]
        elif isinstance(where, list) and isinstance(part, int) and part < len(where):
            loc = loc_of(where, part, file)
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
            text = text[len("Value error, ") :]
        prefix = f"`{field_path}`: " if field_path else ""
        msg = f"{prefix}{text[0].lower() + text[1:]}"
        if etype != "value_error" and not isinstance(got, (dict, list)):
            msg += f" (got {shown(repr(got))})"
        if etype == "literal_error" and isinstance(got, str):
            written = err.get("ctx", {}).get("expected", "")
            expected = [x.strip(" '") for x in written.replace(" or ", ",").split(",")]
            hint = suggest(got, [x for x in expected if x])
            if hint:
                msg += f"; {hint}"
        if not msg.endswith((".", "?")):
            msg += "."
    return SpecError(msg, loc=loc, path=path)


_UNION_TAGS = {"int", "str", "float", "bool", "list", "tuple", "dict", "none"}


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS or part[:1].isupper())


def _model_in(ann: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or the one in its union or list (``list[Stage] | None``)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Names a user may write at the error's place (for suggestions), aliases included."""
    target = model
    for part in loc[:-1]:
        if isinstance(part, int) or _is_union_tag(part):  # an item of a list, a member of a union
            continue
        info = target.model_fields.get(part)
        inner = _model_in(getattr(info, "annotation", None))
        if inner is None:
            break
        target = inner
    # In the order the kind's own class declares them, then its bases' (the common `name`, `inputs` last).
    order: list[str] = []
    for cls in target.__mro__:
        for f in getattr(cls, "__annotations__", {}):
            if f in target.model_fields and f not in order and f != "kind":
                order.append(f)
    return order

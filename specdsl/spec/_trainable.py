"""``trainable: false`` on a block use or a repeat: every layer expanded inside it is frozen.

A layer's own ``trainable`` is a field of every kind (``_kinds.LayerSpec``); a block use or a repeat that says
``trainable: false`` freezes every layer inside it, nested blocks and repeats included, and ``trainable: true``
there leaves each layer as it says.
"""

from __future__ import annotations

from typing import Any

from .._text import shown
from ..errors import SpecError
from ._kinds import LayerSpec
from ._located import loc_of


def freezes(args: Any, what: str, file: str, path: str) -> bool:
    """Whether a block use's or repeat's arguments say ``trainable: false``; any value but a boolean is a
    located error."""
    value = args.get("trainable", True) if isinstance(args, dict) else True
    if not isinstance(value, bool):
        raise SpecError(
            f"`trainable` of {what} takes true or false, but got {shown(repr(value))}.",
            loc=loc_of(args, "trainable", file),
            path=path,
            hint="Write `trainable: false` to freeze every layer inside it.",
        )
    return not value


def frozen(spec: LayerSpec) -> LayerSpec:
    """The layer with ``trainable: false`` (the same object when it is already frozen)."""
    return spec if not spec.trainable else spec.model_copy(update={"trainable": False})

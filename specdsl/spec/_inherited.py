"""What a block use or a repeat passes on to every layer expanded inside it: ``trainable: false`` and
``silence:``.

A layer's own ``trainable`` and ``silence`` are fields of every kind (``_kinds.LayerSpec``). A block use (a
backbone's included) or a repeat that says ``trainable: false`` freezes every layer inside it, nested blocks and
repeats included, and ``trainable: true`` there leaves each layer as it says. One that says ``silence: [CODES]``
silences those warnings on every layer inside it, besides the codes each layer silences itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._text import shown
from ..errors import SpecError
from ._kinds import LayerSpec
from ._located import loc_of
from ._warnings import WARNINGS, known_code

PASSED_ON = ("trainable", "silence")
"""The keys of a block use or a repeat that pass on to the layers inside it."""


@dataclass(frozen=True)
class Inherited:
    """What the uses around a layer pass on to it: frozen or not, and the warning codes they silence."""

    frozen: bool = False
    silence: frozenset[str] = frozenset()

    def within(self, args: Any, what: str, file: str, path: str) -> Inherited:
        """What the layers inside a use with ``args`` (a block use's or a repeat's) inherit."""
        frozen = self.frozen or freezes(args, what, file, path)
        silence = self.silence | silenced(args, what, file, path)
        return self if (frozen, silence) == (self.frozen, self.silence) else Inherited(frozen, silence)

    def applied(self, spec: LayerSpec) -> LayerSpec:
        """The layer with what it inherits (the same object when that changes nothing)."""
        update: dict[str, Any] = {}
        if self.frozen and spec.trainable:
            update["trainable"] = False
        own = frozenset(spec.silence or ())
        if not self.silence <= own:
            update["silence"] = sorted(self.silence | own)
        return spec.model_copy(update=update) if update else spec


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


def silenced(args: Any, what: str, file: str, path: str) -> frozenset[str]:
    """The warning codes a block use's or repeat's ``silence:`` names; anything but a list of known codes is a
    located error, as on a layer."""
    codes = args.get("silence") if isinstance(args, dict) else None
    if codes is None:
        return frozenset()
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise SpecError(
            f"`silence` of {what} takes a list of warning codes, but got {shown(repr(codes))}.",
            loc=loc_of(args, "silence", file),
            path=path,
            hint=f"Write e.g. `silence: [drops-rows]`. Codes: {', '.join(WARNINGS)}.",
        )
    for i, code in enumerate(codes):
        try:
            known_code(code)
        except ValueError as e:
            raise SpecError(f"`silence[{i}]` of {what}: {e}", loc=loc_of(codes, i, file), path=path) from None
    return frozenset(codes)

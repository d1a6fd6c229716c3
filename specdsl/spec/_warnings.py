"""The warnings ``validate`` gives, by code: :data:`WARNINGS` (code -> what it means), the codes a layer's
``silence:`` may name. The plan's rules give ``drops-rows``; the backends' limits (``specdsl.backends.LIMITS``)
give one code each, named after the backend. A code is data here so that a spec is checked without the rules or
the backends that give it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ._located import suggest

WARNINGS: dict[str, str] = {
    "drops-rows": "a stride leaves out the input's last rows, columns or values (floor in the output size)",
    "keras-strided-dilation": "Keras' Conv1D, Conv2D and Conv2DTranspose refuse strides > 1 with dilation > 1",
}


def known_code(code: str) -> str:
    """``code`` when it is a warning code; a ValueError that names the nearest one and all of them else."""
    if code not in WARNINGS:
        hint = suggest(code, list(WARNINGS))
        raise ValueError(
            f"unknown warning code `{code[:60]}`; {hint + ' ' if hint else ''}Codes: {', '.join(WARNINGS)}."
        )
    return code


CODE_SCHEMA: dict[str, Any] = {"enum": list(WARNINGS)}
"""The JSON schema of one warning code: a layer's ``silence`` items and a block use's or repeat's."""

WarningCode = Annotated[str, AfterValidator(known_code), Field(json_schema_extra=CODE_SCHEMA)]

"""A command line's values over a spec's sections (``--epochs``, ``--data``, ``--limit``, ...), validated as the
spec's own values are; ``specdsl train`` and ``specdsl explain`` read their data this way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Loc, SpecError


def section_override(model: Any, what: str, file: str, **changes: Any) -> Any:
    """A copy of a section (``what``: its name in the spec ``file``) with the values in ``changes`` that are not
    None; a value the section refuses is a SpecError naming the option (``--batch-size``)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return model
    try:
        return type(model).model_validate({**model.model_dump(), **changes})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        # a validator's own message already says what it got
        rule = err["msg"].removeprefix("Value error, ").rstrip(".")
        got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
        raise SpecError(
            f"--{field.replace('_', '-')}: {rule}{got}.",
            loc=Loc(file),
            path=f"{what}.{field}",
        ) from None


def data_override(plan: Any, data: Path | None, limit: int | None) -> Any:
    """The spec's data section with ``--data`` (a folder or file to read, or the name of a registered dataset)
    and ``--limit`` applied; None when the spec has no ``data:`` section and ``data`` names no dataset."""
    from ..data import DATASETS
    from ..spec import DataSpec

    spec = plan.spec.data
    changes: dict[str, Any] = {}
    if data is not None:
        if not Path(data).exists() and str(data) in DATASETS:
            changes["dataset"] = str(data)
            changes["path"] = None
        else:
            changes["path"] = str(Path(data).expanduser().resolve())
            if spec is None:
                changes["dataset"] = "folder"
    if limit is not None:
        changes["limit"] = limit
    if spec is None:
        if "dataset" not in changes:
            return None
        return section_override(DataSpec(dataset=changes.pop("dataset")), "data", plan.spec.file, **changes)
    return section_override(spec, "data", plan.spec.file, **changes)

"""``specdsl import``: an existing model as a spec, its weights as a checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

from .._text import terminal
from ..errors import SourceError, SpecdslError
from ._output import err


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``3,224,224`` (or ``3x224x224``) -> (3, 224, 224)."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace(" ", "").split(",") if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SourceError(
            f"--input-shape takes sizes without the batch axis, e.g. 3,224,224, but got {terminal(text)!r}."
        )
    return tuple(int(p) for p in parts)


def run_import(
    source: str, output: Path | None, weights: Path | None, flat: bool, input_shape: str | None
) -> int:
    """Import ``source``; write the spec to ``output`` (stdout when None) and the weights to ``weights``."""
    from ..importers import import_model

    shape = parse_shape(input_shape)
    label = str(output) if output is not None else "<import>"
    imported = import_model(source, flat=flat, input_shape=shape, file=label)
    plan = imported.plan
    for note in imported.notes:
        err.print(f"warning: {terminal(note)}", style="yellow", markup=False)
    if output is None:
        sys.stdout.write(imported.text)
    else:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(imported.text, encoding="utf-8")
        except OSError as e:
            raise SpecdslError(f"cannot write the spec to {output}: {e.strerror or e}.") from None
        form = "compact" if imported.compact else "flat"
        err.print(
            f"wrote {terminal(output)} ({terminal(plan.name)}: {plan.params:,} params, {plan.trainable:,} trainable, "
            f"output {', '.join('x'.join(map(str, s)) for s in plan.output_shapes)}; {form}, "
            f"{len(imported.text.splitlines())} lines)",
            markup=False,
        )
    if weights is not None:
        path = imported.write_weights(weights)
        err.print(f"wrote {terminal(path)} (weights of {len(imported.weights())} layers)", markup=False)
    return 0

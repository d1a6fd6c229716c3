"""``specdsl diagram``: the architecture of a spec drawn by Graphviz (no framework is imported)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from .._text import file_stem
from ..errors import SpecdslError
from ._output import err


class Direction(str, Enum):
    TB = "TB"
    LR = "LR"


def diagram(
    spec: Path = typer.Argument(..., help="A spec file."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="model.svg, model.png, model.pdf or model.dot (default: <the spec's name>.svg).",
    ),
    direction: Direction = typer.Option(Direction.TB, "--direction", "-d", help="TB (top to bottom) or LR."),
    clusters: bool = typer.Option(True, "--clusters/--no-clusters", help="Frame the layers of each block."),
) -> None:
    """Draw the architecture as a diagram: one box per layer, its shapes on the arrows (needs Graphviz's dot)."""
    from .. import check
    from ..report import write_diagram
    from ._app import fail

    try:
        plan = check(spec)
        path = write_diagram(
            plan,
            output if output is not None else Path(file_stem(plan.name) + ".svg"),
            direction=direction.value,
            clusters=clusters,
        )
    except SpecdslError as e:
        raise fail(e) from None
    edges = sum(len(n.inputs) for n in plan.nodes)
    err.print(f"wrote {path} ({plan.name}: {len(plan.nodes)} nodes, {edges} connections)")

"""``specdsl predict``: the top classes of a trained classifier for image files, as a table or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from .._text import terminal
from ..errors import SpecdslError
from ._output import err, out
from ._trained import run_option, tracking_uri_option, weights_option

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def predict(
    paths: list[Path] = typer.Argument(
        ...,
        help="The spec the model was trained from, then the image files (with --run the spec may be left out).",
    ),
    weights: Path | None = weights_option(),
    run: str | None = run_option(),
    top: int = typer.Option(5, "--top", "-k", min=1, help="Classes shown per image."),
    data: Path | None = typer.Option(
        None, "--data", help="Dataset folder or name for the class names (overrides data.path)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    tracking_uri: str | None = tracking_uri_option(),
) -> None:
    """Classify image files with a trained model: the top classes of each, with their probabilities."""
    from ..report import run_predict
    from ._app import fail

    spec: Path | None = None
    images = list(paths)
    if images and (run is None or images[0].suffix.lower() in SPEC_SUFFIXES):
        spec, images = images[0], images[1:]
    try:
        done = run_predict(
            spec, images, weights=weights, run=run, top=top, data=data, tracking_uri=tracking_uri
        )
    except SpecdslError as e:
        raise fail(e) from None
    if as_json:
        out.print_json(done.as_dict())
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{terminal(done.model)}, weights from {terminal(done.source)}"))
    table.add_column("image", overflow="fold")  # a long path wraps, whole
    table.add_column("rank", justify="right")
    table.add_column("class", overflow="fold")
    table.add_column("probability", justify="right")
    for p in done.predictions:
        for rank, (_, name, prob) in enumerate(p.top, 1):
            image = Text(terminal(p.image) if rank == 1 else "")
            table.add_row(
                image, str(rank), Text(terminal(name)), f"{prob:.4f}", end_section=rank == len(p.top)
            )
    out.rich.print(table)
    err.print(f"{len(done.predictions)} image{'s' if len(done.predictions) != 1 else ''} classified")

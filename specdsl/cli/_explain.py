"""``specdsl explain``: feature maps, filters and saliency maps of a trained model, as PNG grids (and in MLflow)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import SpecdslError
from ._output import err
from ._trained import experiment_option, run_option, track_option, tracking_uri_option, weights_option


def explain(
    spec: Path | None = typer.Argument(
        None, help="The spec the model was trained from (with --run: optional)."
    ),
    weights: Path | None = weights_option(),
    run: str | None = run_option(),
    images: int = typer.Option(8, "--images", "-n", min=1, max=64, help="Validation images to explain."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Folder for the PNGs (default: explain/<name>)."
    ),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (overrides data.path)."),
    track: bool | None = track_option("the PNGs"),
    tracking_uri: str | None = tracking_uri_option(),
    experiment: str | None = experiment_option(),
) -> None:
    """Show what a trained model sees: feature maps, first-layer filters, Grad-CAM and saliency of a few images."""
    from ..report import run_explain
    from ._app import fail

    try:
        done = run_explain(
            spec,
            weights=weights,
            run=run,
            images=images,
            output=output,
            data=data,
            track=track,
            tracking_uri=tracking_uri,
            experiment=experiment,
        )
    except SpecdslError as e:
        raise fail(e) from None
    folder = done.files[0].parent
    err.print(
        f"wrote {len(done.files)} pictures to {folder}/ ({done.images} validation images, "
        f"{done.correct} predicted right)"
    )
    if done.run_id:
        err.print(
            f"MLflow: run {done.run_id} in experiment `{done.experiment}`, artifacts explain/ "
            f"({done.tracking_uri})"
        )

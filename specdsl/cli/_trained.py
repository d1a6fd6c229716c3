"""The options of the commands that work on a trained model (explain, predict, evaluate): where its weights come
from, and MLflow's store."""

from __future__ import annotations

from typing import Any

import typer


def weights_option() -> Any:
    """``--weights/-w``: a checkpoint file or folder."""
    return typer.Option(
        None,
        "--weights",
        "-w",
        help="A checkpoint of `specdsl train` (best.pt, best.weights.h5, or its folder), or a specdsl .npz or "
        "Keras .keras file.",
    )


def run_option() -> Any:
    """``--run``: an MLflow run of ``specdsl train``."""
    return typer.Option(None, "--run", help="An MLflow run of `specdsl train` that logged the model.")


def tracking_uri_option() -> Any:
    """``--tracking-uri``."""
    return typer.Option(None, "--tracking-uri", help="MLflow tracking URI.")


def track_option(what: str) -> Any:
    """``--track/--no-track``, logging ``what``."""
    return typer.Option(
        None, "--track/--no-track", help=f"Log {what} to MLflow (default: with --run, to that run)."
    )


def experiment_option() -> Any:
    """``--experiment``, for a new run."""
    return typer.Option(None, "--experiment", help="For a new run (default: the spec's name).")

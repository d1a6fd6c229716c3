"""``specdsl explain``: the pictures of a trained model (``_pictures``) for validation images of its data, its
weights from a checkpoint or an MLflow run (``_trained``), written to a folder and logged to MLflow under
``explain/``. torch, matplotlib and mlflow are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .._text import file_stem
from ..errors import BackendMissingError, SpecError
from ._logged import log_to_mlflow
from ._pictures import explain_images
from ._saliency import pick_images, predictions
from ._trained import load_trained

IMAGES = 8  # validation images, by default


@dataclass
class Explained:
    """What ``specdsl explain`` made: the files, the images explained, where the pictures were logged."""

    files: list[Path]
    images: int
    correct: int
    run_id: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None


def run_explain(
    spec: str | os.PathLike | None,
    *,
    weights: str | os.PathLike | None = None,
    run: str | None = None,
    images: int = IMAGES,
    output: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    track: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> Explained:
    """``specdsl explain``: the pictures of a trained model for ``images`` validation images of its data.

    The weights come from ``weights`` (a checkpoint of ``specdsl train``) or from the model logged by the MLflow
    run ``run`` (whose spec is used when ``spec`` is None). ``data`` overrides the spec's ``data.path`` (as
    ``specdsl train --data``). The PNGs go to ``output`` (default ``explain/<the spec's name>``) and, when
    tracking (the default with ``run``; ``track=True`` otherwise), to MLflow under ``explain/``: as artifacts of
    ``run``, or of a new run in ``experiment`` (default: the spec's name).
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise BackendMissingError("matplotlib", "specdsl explain", extra="report")
    if images < 1:
        raise SpecError(f"--images must be at least 1, but got {images}.")
    trained, dataset = load_trained(
        "explain", spec, weights=weights, run=run, data=data, tracking_uri=tracking_uri
    )
    the_plan, source = trained.plan, trained.source
    x, y = dataset.x_val, dataset.y_val
    if len(y) == 0:
        x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_train, dataset.y_train)
    chosen = pick_images(x, y, images)
    folder = Path(output) if output is not None else Path("explain") / file_stem(the_plan.name)
    files = explain_images(trained, x[chosen], y[chosen], folder)
    pred, _ = predictions(trained, x[chosen])
    result = Explained(files, len(chosen), int((pred == y[chosen]).sum()))
    if track if track is not None else run is not None:
        logged = log_to_mlflow(
            folder,
            role="explain",
            model=the_plan.name,
            source=source,
            metrics={}
            if run is not None
            else {"explain.images": result.images, "explain.correct": result.correct},
            run=run,
            tracking_uri=tracking_uri,
            experiment=experiment,
        )
        result.run_id, result.experiment, result.tracking_uri = (
            logged.run_id,
            logged.experiment,
            logged.tracking_uri,
        )
    return result

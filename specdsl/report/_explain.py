"""``specdsl explain``: the pictures of a trained model (``_pictures``) for validation images of its data, its
weights from a checkpoint or an MLflow run (``_trained``), written to a folder and logged to MLflow under
``explain/``. torch, matplotlib and mlflow are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._text import file_stem
from ..errors import BackendMissingError, DataError, SpecError
from ..plan import Plan
from ..plan import plan as make_plan
from ..spec import load
from ._pictures import explain_images
from ._saliency import pick_images, predictions
from ._trained import Trained, load_run, load_weights, model_from_run, preprocessing

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
    from ..train import data_override, load_for

    if importlib.util.find_spec("matplotlib") is None:
        raise BackendMissingError("matplotlib", "specdsl explain", extra="report")
    if (weights is None) == (run is None):
        raise SpecError(
            "explain needs the trained weights: give --weights CHECKPOINT or --run RUN_ID (one of them).",
            hint="e.g. specdsl explain model.yaml --weights checkpoints/<name>/best.pt",
        )
    if images < 1:
        raise SpecError(f"--images must be at least 1, but got {images}.")
    logged = pre = None
    if run is not None:
        text, logged, pre = load_run(run, tracking_uri)
        the_plan = make_plan(load(text, file=f"MLflow run {run}: spec") if spec is None else load(spec))
    else:
        if spec is None:
            raise SpecError(
                "explain --weights needs the spec the weights were trained from.",
                hint="specdsl explain model.yaml --weights CHECKPOINT",
            )
        the_plan = make_plan(load(spec))
    data_spec = data_override(the_plan, Path(data) if data is not None else None, None)
    if data_spec is None:
        raise DataError(
            "there are no images to explain: the spec has no `data:` section and none was given.",
            hint="Pass --data (a folder of images, or a dataset name: see `specdsl data list`).",
        )
    dataset = load_for(the_plan, data_spec)
    x, y = dataset.x_val, dataset.y_val
    if len(y) == 0:
        x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_train, dataset.y_train)
    if logged is not None:
        model = model_from_run(the_plan, logged, run)
        source = f"MLflow run {run}"
    else:
        model = load_weights(the_plan, weights)
        source = str(weights)
    if pre and pre.get("scale") and pre.get("offset"):
        scale, offset = (
            np.asarray(pre["scale"], dtype=np.float64),
            np.asarray(pre["offset"], dtype=np.float64),
        )
    else:
        scale, offset = preprocessing(dataset, data_spec)
    names = (pre or {}).get("class_names") or list(dataset.class_names)
    trained = Trained(the_plan, model, scale, offset, names, source)
    chosen = pick_images(x, y, images)
    folder = Path(output) if output is not None else Path("explain") / file_stem(the_plan.name)
    files = explain_images(trained, x[chosen], y[chosen], folder)
    pred, _ = predictions(trained, x[chosen])
    result = Explained(files, len(chosen), int((pred == y[chosen]).sum()))
    if track if track is not None else run is not None:
        _log(result, folder, the_plan, run, tracking_uri, experiment, source)
    return result


def _log(
    result: Explained,
    folder: Path,
    plan: Plan,
    run: str | None,
    tracking_uri: str | None,
    experiment: str | None,
    source: str,
) -> None:
    """The pictures as MLflow artifacts under ``explain/``: of ``run``, or of a new run."""
    import mlflow

    from ..tracking import configure, store_failure

    try:
        if run is not None:
            client = mlflow.MlflowClient()
            client.log_artifacts(run, str(folder), "explain")
            result.run_id = run
            result.experiment = client.get_experiment(client.get_run(run).info.experiment_id).name
        else:
            configure(tracking_uri, experiment or plan.name)
            tags = {
                "specdsl.role": "explain",
                "specdsl.spec": plan.name[:5000],
                "specdsl.weights": source[:5000],
            }
            with mlflow.start_run(run_name=f"explain {plan.name}"[:250], tags=tags) as active:
                mlflow.log_metrics({"explain.images": result.images, "explain.correct": result.correct})
                mlflow.log_artifacts(str(folder), "explain")
                result.run_id = active.info.run_id
            result.experiment = experiment or plan.name
    except Exception as e:
        failure = store_failure(e, mlflow.get_tracking_uri())
        if failure is not None:
            raise failure from None
        raise
    result.tracking_uri = mlflow.get_tracking_uri()

"""``specdsl evaluate``: a trained classifier's scores on its data's test (or validation) split (``_scores``),
written as metrics.json, the confusion matrix and the grid of its most confident mistakes as PNGs
(``_mistakes``), and logged to MLflow (metrics ``evaluate.<split>.*``, the files under ``evaluate/``).
torch, matplotlib and mlflow are imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._text import file_stem
from ..errors import BackendMissingError, DataError, SpecError
from ._logged import log_to_mlflow
from ._mistakes import MISTAKES, confident_mistakes, confusion_png, mistakes_png
from ._pictures import output_folder
from ._predict import class_names, classes_of, probabilities
from ._scores import Scores, scores
from ._trained import load_trained

SPLITS = ("test", "val")


@dataclass
class Evaluation:
    """What ``specdsl evaluate`` computed and wrote: the split, the class names, the scores, the files
    (metrics.json, confusion_matrix.png, and mistakes.png when the model got any image wrong), the number of
    mistakes shown, and where it was logged."""

    model: str
    source: str
    split: str
    class_names: list[str]
    scores: Scores
    files: list[Path] = field(default_factory=list)
    mistakes: int = 0
    run_id: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None

    def as_dict(self) -> dict:
        """metrics.json: the model, the weights, the split and its scores."""
        return {
            "model": self.model,
            "weights": self.source,
            "split": self.split,
            **self.scores.as_dict(self.class_names),
        }

    def metrics(self) -> dict[str, float]:
        """The MLflow metrics: ``evaluate.<split>.accuracy``, the macro averages, each class's precision,
        recall and F1 (named by the class, or by its index where names would clash)."""
        s, prefix = self.scores, f"evaluate.{self.split}"
        keys = [file_stem(name, str(i)) for i, name in enumerate(self.class_names)]
        if len(set(keys)) < len(keys):
            keys = [str(i) for i in range(len(keys))]
        found = {f"{prefix}.accuracy": s.accuracy, f"{prefix}.images": float(s.images)}
        found.update({f"{prefix}.macro_{k}": v for k, v in s.macro().items()})
        for i, key in enumerate(keys):
            found[f"{prefix}.precision.{key}"] = float(s.precision[i])
            found[f"{prefix}.recall.{key}"] = float(s.recall[i])
            found[f"{prefix}.f1.{key}"] = float(s.f1[i])
        return found


def run_evaluate(
    spec: str | os.PathLike | None,
    *,
    weights: str | os.PathLike | None = None,
    run: str | None = None,
    data: str | os.PathLike | None = None,
    split: str = "test",
    mistakes: int = MISTAKES,
    output: str | os.PathLike | None = None,
    track: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> Evaluation:
    """``specdsl evaluate``: the scores of a trained classifier on the ``split`` (test or val) of its data.

    The weights come from ``weights`` (a checkpoint of ``specdsl train``, or a file ``compile --weights`` takes)
    or from the model logged by the MLflow run ``run`` (whose spec is used when ``spec`` is None); ``data``
    overrides the spec's ``data.path``. metrics.json, confusion_matrix.png and mistakes.png (the ``mistakes``
    most confident wrong predictions) go to ``output`` (default ``evaluate/<the spec's name>``) and, when
    tracking (the default with ``run``; ``track=True`` otherwise), to MLflow: the metrics and the files under
    ``evaluate/``, into ``run``, or into a new run in ``experiment`` (default: the spec's name).
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise BackendMissingError("matplotlib", "specdsl evaluate", extra="report")
    if split not in SPLITS:
        raise SpecError(f"--split must be test or val, but got {split!r}.")
    if mistakes < 0:
        raise SpecError(f"--mistakes must be at least 0, but got {mistakes}.")
    trained, dataset = load_trained(
        "evaluate", spec, weights=weights, run=run, data=data, tracking_uri=tracking_uri
    )
    classes = classes_of(trained.plan, "evaluate")
    names = class_names(trained, classes)
    x, y = (dataset.x_test, dataset.y_test) if split == "test" else (dataset.x_val, dataset.y_val)
    if len(y) == 0:
        other = "val" if split == "test" else "test"
        raise DataError(
            f"the {split} split of {dataset.name} is empty: there is nothing to evaluate.",
            hint=f"Pass --split {other}, or give the spec's data a {split} split (data.split).",
        )
    if int(y.max()) >= classes:
        raise DataError(
            f"the {split} split of {dataset.name} has {int(y.max()) + 1} classes, the model {classes}.",
            hint="Evaluate the model on the data it was trained for.",
        )
    probs = probabilities(trained, x)
    predicted = probs.argmax(-1)
    confidence = probs[np.arange(len(predicted)), predicted]
    result = Evaluation(trained.plan.name, trained.source, split, names, scores(y, predicted, classes))
    folder = output_folder(
        Path(output) if output is not None else Path("evaluate") / file_stem(trained.plan.name)
    )
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    where = f"{trained.plan.name}, {split} split"
    result.files = [
        metrics,
        confusion_png(
            result.scores.confusion,
            names,
            folder / "confusion_matrix.png",
            f"{where}: accuracy {result.scores.accuracy:.4f} ({result.scores.correct}/{result.scores.images})",
        ),
    ]
    picked = confident_mistakes(y, predicted, confidence, mistakes)
    result.mistakes = len(picked)
    if len(picked):
        result.files.append(
            mistakes_png(
                x[picked],
                y[picked],
                predicted[picked],
                confidence[picked],
                names,
                folder / "mistakes.png",
                f"{where}: the {len(picked)} most confident mistakes",
            )
        )
    if track if track is not None else run is not None:
        logged = log_to_mlflow(
            folder,
            role="evaluate",
            model=result.model,
            source=result.source,
            metrics=result.metrics(),
            run=run,
            tracking_uri=tracking_uri,
            experiment=experiment,
            tags={"specdsl.split": split},
        )
        result.run_id, result.experiment, result.tracking_uri = (
            logged.run_id,
            logged.experiment,
            logged.tracking_uri,
        )
    return result

"""``specdsl predict``: the top classes of a trained classifier for image files, decoded as training decoded its
images (the data package's PIL decoding: the spec's input size, bilinear, grayscale or RGB) and preprocessed as
training preprocessed them. The weights come from a checkpoint or an MLflow run (``_trained``). torch and PIL are
imported inside the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, Loc, SpecError
from ..plan import Plan, fmt
from ._trained import Trained, load_trained

TOP = 5  # classes shown per image, by default
BATCH = 256  # images per forward pass


@dataclass
class Prediction:
    """One image's prediction: the classes in order of probability (``top``: (index, name, probability), the
    first ``k``) and the probability of every class, in class order."""

    image: Path
    top: list[tuple[int, str, float]]
    probabilities: np.ndarray


@dataclass
class Predicted:
    """What ``specdsl predict`` computed: one :class:`Prediction` per image, the class names, where the weights
    came from."""

    predictions: list[Prediction]
    class_names: list[str]
    model: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        """The predictions as JSON-ready data (``--json``)."""
        return {
            "model": self.model,
            "weights": self.source,
            "classes": self.class_names,
            "images": [
                {
                    "image": str(p.image),
                    "top": [{"index": i, "class": name, "probability": prob} for i, name, prob in p.top],
                    "probabilities": [float(v) for v in p.probabilities],
                }
                for p in self.predictions
            ],
        }


def classes_of(plan: Plan, command: str) -> int:
    """The number of classes of a classifier's plan (2 for one sigmoid unit); a SpecError located at the output
    layer for a model that is not a classifier (its output not a softmax over 2 or more units, nor one sigmoid
    unit)."""
    from ..train import output_activation

    node = plan[plan.outputs[0]]
    activation = output_activation(plan)
    if len(node.shape) == 1 and activation == "softmax" and node.shape[0] >= 2:
        return int(node.shape[0])
    if len(node.shape) == 1 and activation == "sigmoid" and node.shape[0] == 1:
        return 2
    raise SpecError(
        f"{command} needs a classifier, but the model's output is {fmt(node.shape)} out of "
        f"{activation or 'a linear activation'}: not a softmax over classes, nor one sigmoid unit.",
        loc=node.loc,
        path=node.path or None,
        hint="End the model with dense(N classes, activation: softmax), or dense(1, activation: sigmoid).",
    )


def probabilities(trained: Trained, images: np.ndarray) -> np.ndarray:
    """The probability of every class for each image (N x classes, float64), in batches of :data:`BATCH`; one
    sigmoid unit gives (1 - p, p)."""
    import torch

    from ._saliency import model_inputs

    parts = []
    with torch.no_grad():
        for lo in range(0, len(images), BATCH):
            out = trained.model(model_inputs(trained, images[lo : lo + BATCH]))
            parts.append((out[0] if isinstance(out, tuple) else out).double().numpy())
    probs = np.concatenate(parts) if parts else np.zeros((0, 1))
    if probs.shape[-1] == 1:
        return np.concatenate([1 - probs, probs], axis=-1)
    return probs


def class_names(trained: Trained, classes: int) -> list[str]:
    """The names of the classes: the trained model's (from its run or its data) when there are as many, else their
    indices as text."""
    names = trained.class_names
    return list(names) if len(names) == classes else [str(i) for i in range(classes)]


def decode_images(paths: list[Path], shape: tuple[int, ...], command: str = "predict") -> np.ndarray:
    """The image files as uint8 N x H x W x C at the model's input ``shape`` (H, W, 1 or 3), decoded as the data
    package decodes image folders. A missing or undecodable file is a DataError naming it."""
    from ..data import decode_image

    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise SpecError(
            f"{command} reads image files (1 or 3 channels), but the model's input is {fmt(shape)}.",
            hint=f"{command.capitalize()} with a model whose input is (height, width, 1 or 3).",
        )
    h, w, c = (int(d) for d in shape)
    images = []
    for path in paths:
        if not path.is_file():
            raise DataError(
                "no such image file.",
                loc=Loc(str(path)),
                hint="Pass image files (PNG, JPEG, BMP, GIF, WebP, TIFF).",
            )
        image = decode_image(path, (h, w), "L" if c == 1 else "RGB")
        if image is None:
            raise DataError(
                "not an image PIL can decode (empty, truncated, or another kind of file).",
                loc=Loc(str(path)),
                hint="Pass image files (PNG, JPEG, BMP, GIF, WebP, TIFF).",
            )
        images.append(image)
    return np.stack(images) if images else np.zeros((0, h, w, c), np.uint8)


def run_predict(
    spec: str | os.PathLike | None,
    images: list[str | os.PathLike],
    *,
    weights: str | os.PathLike | None = None,
    run: str | None = None,
    top: int = TOP,
    data: str | os.PathLike | None = None,
    tracking_uri: str | None = None,
) -> Predicted:
    """``specdsl predict``: the ``top`` most probable classes of a trained classifier for each image file.

    The weights come from ``weights`` (a checkpoint of ``specdsl train``, or a file ``compile --weights`` takes)
    or from the model logged by the MLflow run ``run`` (whose spec is used when ``spec`` is None). The class
    names and the preprocessing come from the run's preprocessing.json, else from the spec's data (``data``
    overrides its ``data.path``); a spec without data scales pixels to 0..1 and names classes by index.
    """
    if top < 1:
        raise SpecError(f"--top must be at least 1, but got {top}.")
    if not images:
        raise SpecError(
            "predict needs image files to predict.", hint="specdsl predict model.yaml -w CKPT a.png"
        )
    paths = [Path(p) for p in images]
    trained, _ = load_trained(
        "predict", spec, weights=weights, run=run, data=data, tracking_uri=tracking_uri, need_data=False
    )
    classes = classes_of(trained.plan, "predict")
    names = class_names(trained, classes)
    x = decode_images(paths, tuple(trained.plan.input_shape))
    probs = probabilities(trained, x)
    found = []
    for path, p in zip(paths, probs, strict=True):
        order = np.argsort(-p, kind="stable")[:top]
        found.append(Prediction(path, [(int(i), names[i], float(p[i])) for i in order], p))
    return Predicted(found, names, trained.plan.name, trained.source)

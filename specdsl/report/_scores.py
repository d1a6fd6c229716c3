"""A classifier's scores on labelled images, from its predictions: accuracy, the confusion matrix, and per class
precision, recall, F1 and support (as scikit-learn's ``classification_report`` defines them, 0 where a ratio
has nothing to divide). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Scores:
    """The scores of predictions ``predicted`` against labels ``true`` over ``classes`` classes.

    ``confusion[i, j]`` counts the images of class i predicted as class j (rows true, columns predicted);
    ``precision[j]`` = confusion[j, j] / predicted as j, ``recall[i]`` = confusion[i, i] / images of i, ``f1``
    their harmonic mean, ``support[i]`` the images of class i.
    """

    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def images(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0

    def macro(self) -> dict[str, float]:
        """The unweighted means over the classes (scikit-learn's "macro avg")."""
        return {
            "precision": float(self.precision.mean()),
            "recall": float(self.recall.mean()),
            "f1": float(self.f1.mean()),
        }

    def as_dict(self, names: list[str]) -> dict[str, Any]:
        """The scores as JSON-ready data, the classes named by ``names``."""
        return {
            "images": self.images,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "macro": self.macro(),
            "classes": [
                {
                    "class": name,
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, name in enumerate(names)
            ],
            "confusion": self.confusion.tolist(),
        }


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def scores(true: np.ndarray, predicted: np.ndarray, classes: int) -> Scores:
    """The :class:`Scores` of ``predicted`` class indices against the ``true`` ones."""
    true = np.asarray(true, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    confusion = np.bincount(true * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    hits = np.diag(confusion).astype(np.float64)
    precision = _ratio(hits, confusion.sum(0).astype(np.float64))
    recall = _ratio(hits, confusion.sum(1).astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    return Scores(confusion, precision, recall, f1, confusion.sum(1))

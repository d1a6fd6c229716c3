"""Weights for a plan's models: one checkpoint format, read and written for torch and Keras alike.

A checkpoint is a ``.npz`` file (numpy's zip of arrays; read with ``allow_pickle=False``, so loading one runs no
code) holding, for each node with weights, one array per weight named ``<node>/<weight>`` in Keras' layout
(``conv1/kernel`` (kh, kw, in, out), ``conv1/bias``, ``bn/gamma``, ``bn/beta``, ``bn/moving_mean``,
``bn/moving_variance``, ...; see :func:`keras_weights`), and a ``__specdsl__`` entry: JSON text with the format
name (``specdsl-weights``), its version (1), the model's name and each layer's kind and weight names in order.

    >>> import specdsl, specdsl.weights as W
    >>> plan = specdsl.check("examples/lenet5.yaml")
    >>> W.save(specdsl.build(plan, "torch"), plan, "lenet5.npz")      # from a torch or a Keras model
    >>> keras_model = W.load_into(specdsl.build(plan, "keras"), plan, "lenet5.npz")

:func:`load_into` also reads Keras' own files (``.keras``, whole-model ``.h5``, and Keras 2 weight files such as
keras.applications publishes) and matches their layers to the plan by structure: by name where the file names
every node, else in order. A file that does not fit is one :class:`~specdsl.WeightsError` located at the first
node that differs, with both shapes. torch and keras are imported only for a model of theirs.

:func:`load_backbones` loads the weights a spec's backbones ask for (``- backbone: {spec: vgg16, weights:
imagenet}``: Keras' published file, downloaded and checked, or a Keras, specdsl or torch state dict file) into the
model built from its plan (``_backbones``); :func:`specdsl.build` calls it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..plan import Plan
from ._backbones import MIRROR_ENV, PRETRAINED, backbone_arrays, load_backbones, pretrained_file
from ._files import FORMAT, VERSION, LayerWeights, Weights, read, write_npz
from ._fit import check_arrays, fit, weighted_nodes
from ._layout import keras_weights
from ._models import get_arrays, set_arrays

__all__ = [
    "FORMAT",
    "MIRROR_ENV",
    "PRETRAINED",
    "VERSION",
    "LayerWeights",
    "Weights",
    "backbone_arrays",
    "fit",
    "get_arrays",
    "keras_weights",
    "load_backbones",
    "load_into",
    "read",
    "pretrained_file",
    "save",
    "set_arrays",
    "weighted_nodes",
    "write",
]


def write(path: str | os.PathLike, plan: Plan, arrays: Mapping[str, Sequence[np.ndarray]]) -> Path:
    """Write a checkpoint of ``plan`` from each weighted node's arrays (Keras' layout, ``get_weights()`` order).

    Returns the path written (``.npz`` appended when missing). Raises a located WeightsError for a node whose
    arrays are missing or of the wrong shape.
    """
    check_arrays(plan, arrays, "the arrays to write")
    layers = [
        LayerWeights(
            node.name,
            tuple(np.asarray(a) for a in arrays[node.name]),
            node.kind,
            tuple(n for n, _ in keras_weights(node)),
        )
        for node in weighted_nodes(plan)
    ]
    return write_npz(path, layers, model=plan.name)


def save(model: Any, plan: Plan, path: str | os.PathLike) -> Path:
    """Write the weights of ``model`` (the torch or Keras model of ``plan``, e.g. trained) as a checkpoint.

    BatchNorm's moving statistics are included; the file loads into either backend's model of the plan.
    """
    return write(path, plan, get_arrays(model, plan))


def load_into(model: Any, plan: Plan, source: str | os.PathLike | Weights) -> Any:
    """Load weights into ``model`` (the torch or Keras model of ``plan``) and return it.

    Args:
        model: ``specdsl.build(plan, "torch")`` or ``specdsl.build(plan, "keras")`` (or a module with the torch
            backend's state_dict keys).
        plan: the plan the model was built from.
        source: a checkpoint (:func:`save`), a Keras ``.keras`` / ``.h5`` file (see :func:`read`), or
            :class:`Weights` already read.

    Raises:
        WeightsError: the file cannot be read, or does not fit: located at the first node that differs.
    """
    weights = source if isinstance(source, Weights) else read(source)
    return set_arrays(model, plan, fit(plan, weights))

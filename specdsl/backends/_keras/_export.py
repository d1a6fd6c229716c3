"""Plan (and optionally a trained model) -> a file: Keras source, a ``.keras`` model or ``.weights.h5``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import keras

from ..._text import file_stem
from ...errors import BackendError, BackendMissingError
from ...plan import Plan
from ._build import build
from ._portable import portable, uses_custom_layers
from ._source import source

FORMATS = ("source", "keras", "weights")
SUFFIXES = {"source": ".py", "keras": ".keras", "weights": ".weights.h5"}


def export(
    plan: Plan,
    path: str | os.PathLike,
    format: str,
    model: keras.Model | None = None,
    *,
    layout: str | None = None,
) -> Path:
    """Write a plan's model to ``path`` and return the path written.

    Args:
        plan: a checked plan.
        path: the file to write. A directory gets ``<model name><suffix>`` inside it; a name not ending in
            the format's suffix (``.py``, ``.keras``, ``.weights.h5``) gets it appended, as Keras requires.
        format: ``"source"`` (standalone Keras code, see ``source``), ``"keras"`` (``model.save``: the
            architecture and weights; plain ``keras.saving.load_model`` reads it without specdsl: a model with
            one of specdsl's own layers (``bias``, uneven 'same' average pooling) is written with Keras'
            built-in layers computing the same, see ``_portable``) or ``"weights"`` (``model.save_weights``).
        model: the model whose weights to save (e.g. a trained one); default: a fresh ``build(plan)``.
        layout: the input layout; Keras models take ``"nhwc"`` (channels last, the default) only.

    Raises:
        BackendError: an unknown format.
        BackendMissingError: h5py, which Keras needs for ``.keras`` and ``.weights.h5`` files, is missing.
    """
    if format not in FORMATS:
        raise BackendError(f"the Keras backend exports {', '.join(FORMATS)}, but got format={format!r}.")
    if layout not in (None, "nhwc"):
        raise BackendError(
            f"the Keras backend's models take channels-last (nhwc) input, but got layout={layout!r}.",
            hint="For an NCHW model file, export the torch backend's: --backend torch --format onnx.",
        )
    suffix = SUFFIXES[format]
    path = Path(path)
    if path.is_dir():
        path = path / f"{file_stem(plan.name)}{suffix}"
    elif not path.name.endswith(suffix):
        path = path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)

    if format == "source":
        path.write_text(source(plan), encoding="utf-8")
        return path
    if importlib.util.find_spec("h5py") is None:
        raise BackendMissingError("h5py", f"Saving a Keras model as {suffix}")
    model = model if model is not None else build(plan)
    if format == "keras":
        if uses_custom_layers(model):
            model = portable(plan, model)
        model.save(path)
    else:
        model.save_weights(path)
    return path

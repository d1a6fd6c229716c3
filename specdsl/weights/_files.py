"""Reading and writing weight files: specdsl's own ``.npz`` checkpoints, and Keras' ``.keras`` and ``.h5`` files.

Nothing here runs code from a file or imports a framework: ``.npz`` is read with ``allow_pickle=False``, Keras'
files with ``zipfile``, ``json`` and ``h5py`` (whose arrays are plain data).
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendMissingError, WeightsError

FORMAT = "specdsl-weights"
VERSION = 1
META_KEY = "__specdsl__"


@dataclass(frozen=True)
class LayerWeights:
    """One layer's arrays as a file holds them, in Keras' layout and in the order of Keras' ``get_weights()``.

    ``name`` is the layer's name in the file (a node name in specdsl's files; a Keras layer's name, or its path
    ``outer/inner`` inside a nested model, in Keras' files), ``kind`` its spec kind or Keras class where the file
    says, ``names`` the weights' names where the file says (``kernel``, ``bias``, ...).
    """

    name: str
    arrays: tuple[np.ndarray, ...]
    kind: str | None = None
    names: tuple[str, ...] = ()

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(int(d) for d in a.shape) for a in self.arrays)

    def describe(self) -> str:
        return f"`{self.name}`" + (f" ({self.kind})" if self.kind else "")


@dataclass(frozen=True)
class Weights:
    """The layers of a weights file that hold weights, in the file's order (``ordered=False`` for a file that keeps
    no order, such as Keras' ``.weights.h5``: it can be matched to a model by layer names only)."""

    layers: tuple[LayerWeights, ...]
    source: str
    ordered: bool = True
    model: str | None = None

    def by_name(self) -> dict[str, LayerWeights]:
        return {layer.name: layer for layer in self.layers}


# ---------------------------------------------------------------------------------------------------------------
# specdsl's own checkpoints


def write_npz(path: str | os.PathLike, layers: Sequence[LayerWeights], model: str | None = None) -> Path:
    """Write a checkpoint: one ``<node>/<weight>`` array per weight, and a ``__specdsl__`` entry (JSON text) naming
    the format, its version, the model and every layer's kind and weight names in order."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")  # numpy.savez appends it otherwise
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model,
        "layers": [{"name": lw.name, "kind": lw.kind, "weights": list(lw.names)} for lw in layers],
    }
    arrays: dict[str, np.ndarray] = {META_KEY: np.array(json.dumps(meta))}
    for lw in layers:
        for name, array in zip(lw.names, lw.arrays, strict=True):
            arrays[f"{lw.name}/{name}"] = np.asarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        np.savez(path, **arrays)
    except OSError as e:
        raise WeightsError(f"cannot write the weights file {path}: {e.strerror or e}.") from None
    return path


def _read_npz(path: Path) -> Weights:
    try:
        with np.load(path, allow_pickle=False) as data:
            if META_KEY not in data.files:
                raise WeightsError(
                    f"{path} is a .npz file but not a specdsl weights file (it has no `{META_KEY}` entry).",
                    hint="Write one with specdsl.weights.save(model, plan, path) or `specdsl import --weights`.",
                )
            meta = json.loads(str(data[META_KEY]))
            if meta.get("format") != FORMAT or not isinstance(meta.get("layers"), list):
                raise WeightsError(f"{path}: `{META_KEY}` does not describe a {FORMAT} file.")
            if meta.get("version") != VERSION:
                raise WeightsError(
                    f"{path} is a {FORMAT} file of version {meta.get('version')!r}; this specdsl reads version "
                    f"{VERSION}."
                )
            layers = []
            for entry in meta["layers"]:
                names = tuple(entry["weights"])
                missing = [n for n in names if f"{entry['name']}/{n}" not in data.files]
                if missing:
                    raise WeightsError(f"{path}: layer `{entry['name']}` lacks its `{missing[0]}` array.")
                arrays = tuple(data[f"{entry['name']}/{n}"] for n in names)
                layers.append(LayerWeights(entry["name"], arrays, entry.get("kind"), names))
    except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path} is not a readable specdsl weights file: {e}.") from None
    return Weights(tuple(layers), str(path), model=meta.get("model"))


# ---------------------------------------------------------------------------------------------------------------
# Keras' files, read by structure


def _h5py():
    try:
        import h5py
    except ImportError:
        raise BackendMissingError("h5py", "Reading Keras weight files", extra="keras") from None
    return h5py


def _read_keras_zip(path: Path) -> Weights:
    """A ``.keras`` file: ``config.json`` gives the layers' order, ``model.weights.h5`` their arrays."""
    h5py = _h5py()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "config.json" not in names or "model.weights.h5" not in names:
            raise WeightsError(
                f"{path} is a zip file but not a Keras .keras model (no config.json and model.weights.h5)."
            )
        config = json.loads(archive.read("config.json"))
        blob = archive.read("model.weights.h5")
    order = [(layer_path, cls) for layer_path, cls in _config_layers(config)]
    with h5py.File(io.BytesIO(blob), "r") as f:
        found = _keras3_vars(f)
    layers = []
    for layer_path, cls in order:
        arrays = found.get(layer_path)
        if arrays:
            layers.append(LayerWeights("/".join(layer_path), tuple(arrays), cls))
    return Weights(tuple(layers), str(path), model=config.get("config", {}).get("name"))


def _config_layers(
    config: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str]]:
    """(name path, class) of every layer of a serialized model, nested models' layers in their place."""
    out: list[tuple[tuple[str, ...], str]] = []
    for layer in config.get("config", {}).get("layers", []):
        name = layer.get("config", {}).get("name") or layer.get("name")
        inner = layer.get("config", {}).get("layers")
        if isinstance(inner, list):
            out += _config_layers(layer, (*prefix, name))
        else:
            out.append(((*prefix, name), layer.get("class_name", "")))
    return out


def _keras3_vars(f: Any) -> dict[tuple[str, ...], list[np.ndarray]]:
    """Keras 3's weights h5: a ``vars`` group under every layer (its ``name`` attribute is the layer's name) holding
    ``0``, ``1``, ... in ``get_weights()`` order; nested models' layers under their ``layers`` group."""
    found: dict[tuple[str, ...], list[np.ndarray]] = {}

    def walk(group: Any, prefix: tuple[str, ...], root: bool) -> None:
        here = prefix
        if "vars" in group:
            v = group["vars"]
            if not root:
                here = (*prefix, str(v.attrs.get("name", group.name.rsplit("/", 1)[-1])))
                keys = sorted(v.keys(), key=int)
                if keys:
                    found[here] = [np.asarray(v[k]) for k in keys]
        if "layers" in group:
            for key in group["layers"]:
                walk(group["layers"][key], here, False)

    walk(f, (), True)
    return found


def _read_h5(path: Path) -> Weights:
    h5py = _h5py()
    with h5py.File(path, "r") as f:
        if "layer_names" in f.attrs or "model_weights" in f:
            group = f["model_weights"] if "model_weights" in f else f
            return Weights(tuple(_legacy_layers(group)), str(path))
        if "layers" in f or "vars" in f:
            found = _keras3_vars(f)
            layers = tuple(LayerWeights("/".join(p), tuple(a)) for p, a in found.items())
            return Weights(layers, str(path), ordered=False)
    raise WeightsError(
        f"{path} is an HDF5 file but holds no Keras weights (no layer_names, model_weights or layers)."
    )


def _legacy_layers(group: Any) -> list[LayerWeights]:
    """Keras 2's h5 layout (what keras.applications publishes): ``layer_names`` in order, each layer's
    ``weight_names`` (``block1_conv1/kernel:0``; a nested model's ``outer/inner/kernel``)."""
    out: list[LayerWeights] = []
    for raw in group.attrs["layer_names"]:
        layer_name = raw.decode() if isinstance(raw, bytes) else str(raw)
        g = group[layer_name]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
        by_layer: dict[str, list[tuple[str, np.ndarray]]] = {}
        for wname in names:
            parts = re.sub(r":\d+$", "", wname).split("/")
            owner = "/".join(parts[:-1]) or layer_name
            by_layer.setdefault(owner, []).append((parts[-1], np.asarray(g[wname])))
        for owner, entries in by_layer.items():
            out.append(LayerWeights(owner, tuple(a for _, a in entries), None, tuple(n for n, _ in entries)))
    return out


def read(path: str | os.PathLike) -> Weights:
    """The layers and arrays of a weights file, in the file's order.

    Reads specdsl's ``.npz`` checkpoints (:func:`specdsl.weights.save`), Keras' ``.keras`` models, whole-model
    ``.h5`` files and Keras 2 weight files (``.h5``, as keras.applications publishes them) by their layer order,
    and Keras 3 ``.weights.h5`` files by layer name. No code in the file runs.

    Raises:
        WeightsError: the file is missing or is none of these.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weights file {path}.")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF"):
        return _read_h5(path)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if "config.json" in names:
            return _read_keras_zip(path)
        return _read_npz(path)
    raise WeightsError(
        f"{path} is not a weights file specdsl reads: a specdsl .npz checkpoint, a Keras .keras model, or a Keras "
        ".h5 file."
    )

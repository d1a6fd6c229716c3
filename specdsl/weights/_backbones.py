"""A backbone's weights (``- backbone: {spec: vgg16, weights: ...}``) loaded into the model built from a plan.

``weights: imagenet`` is the file Keras publishes for that network (keras.applications' ``.h5``, with its top or
without), downloaded once into the user's cache (``~/.cache/specdsl/weights``) and checked against the checksum
Keras publishes; ``$SPECDSL_WEIGHTS_MIRROR`` (a folder URL holding the files under their own names) replaces
Keras' address. A path is any file :func:`specdsl.weights.read` reads, or a torch state dict (``.pth``/``.pt``, e.g.
torchvision's), read with ``weights_only=True`` and converted to Keras' layout by the torch backend's own layouts.

The file's layers are matched to the backbone's layers by structure: the n-th layer with weights of the file to
the n-th of the backbone (a file that keeps no order, by name). With ``include_top: false`` the file may go on
past the backbone's last layer (the top the backbone dropped). A file that does not fit is one WeightsError at the
backbone's use, naming the first layer that differs and both shapes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._download import download
from .._text import shown
from .._user_cache import user_cache_root
from ..backends import get_backend
from ..errors import BackendMissingError, WeightsError
from ..plan import Plan, PlanNode
from ._files import Weights, read
from ._fit import Unnamed, _shape_error, fits, match
from ._layout import keras_weights
from ._models import set_arrays

MIRROR_ENV = "SPECDSL_WEIGHTS_MIRROR"
KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
# network -> (folder under KERAS_BASE, file with the top, its checksum, file without it, its checksum): the files
# keras.applications loads for weights="imagenet", with the file_hash it checks them against.
PRETRAINED: dict[str, tuple[str, str, str, str, str]] = {
    "vgg16": (
        "vgg16/",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:64373286793e3c8b2b4e3219cbf3544b",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:6d6bbae143d832006294945121d1f1fc",
    ),
    "resnet50": (
        "resnet/",
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:2cb95161c43110f7111970584f804107",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:4d473c1dd8becc155b73f8504c6f6626",
    ),
    "inceptionv3": (
        "inception_v3/",
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "md5:9a0d58056eeedaa3f26cb7ebd46da564",
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "md5:bcbd6486424b2319ff4ef7d526e38f63",
    ),
}
UNCHECKED = {
    "mobilenetv2": KERAS_BASE
    + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_ALPHA_ROWS_no_top.h5"
}
"""Networks Keras publishes weights of without a checksum: specdsl downloads nothing it cannot check."""
TORCH_SUFFIXES = (".pth", ".pt")


def load_backbones(model: Any, plan: Plan, *, progress: bool = True) -> Any:
    """Load the weights every backbone of ``plan`` asks for into ``model`` (its torch or Keras model); return it.

    Backbones without ``weights:`` keep the model's fresh weights. Raises a WeightsError at the backbone's use
    when its file cannot be had or does not fit.
    """
    for bb in getattr(plan.spec, "backbones", ()):
        if bb.weights is None:
            continue
        source = pretrained_file(bb, progress=progress) if bb.weights == "imagenet" else Path(bb.weights)
        arrays = backbone_arrays(plan, bb, source)
        set_arrays(model, plan, arrays, nodes=_weighted(plan, bb))
    return model


def pretrained_file(bb: Any, *, progress: bool = True, cache: Path | None = None) -> Path:
    """The published weights of a bundled backbone in the user's cache, downloaded and checked when missing."""
    if bb.network in UNCHECKED:
        raise _error(
            bb,
            f"Keras publishes no checksum of {bb.network}'s weights, so specdsl does not download them.",
            f"Download the file yourself ({UNCHECKED[bb.network]}, your alpha and input size in its name) and "
            "give its path: `weights: PATH`.",
        )
    if bb.network not in PRETRAINED:
        raise _error(
            bb,
            f"there are no published weights of `{shown(bb.network)}`; `weights: imagenet` is for "
            f"{', '.join(PRETRAINED)}.",
            "Give a weights file (`weights: PATH`), or leave `weights:` out for fresh weights.",
        )
    folder, top, top_sum, notop, notop_sum = PRETRAINED[bb.network]
    name, checksum = (top, top_sum) if bb.include_top else (notop, notop_sum)
    mirror = os.environ.get(MIRROR_ENV)
    urls = [f"{mirror.rstrip('/')}/{name}"] if mirror else [KERAS_BASE + folder + name]
    dest = (cache or user_cache_root() / "weights") / name
    try:
        return download(urls, dest, checksum, progress=progress, error=WeightsError)
    except WeightsError as e:
        raise _error(
            bb,
            e.message,
            f"Set {MIRROR_ENV} to a folder URL that serves {name}, or download it yourself and give its path: "
            "`weights: PATH`.",
        ) from None


def backbone_arrays(plan: Plan, bb: Any, source: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Each weighted layer of backbone ``bb`` of ``plan`` with its arrays (Keras' layout) from the file
    ``source``, matched by structure; a located WeightsError at the backbone's use when it does not fit."""
    nodes = _weighted(plan, bb)
    path = Path(source)
    if path.suffix in TORCH_SUFFIXES:
        return _from_torch(nodes, _torch_state(path, bb), str(path), bb)
    try:
        weights = read(path)
    except WeightsError as e:
        raise _error(bb, e.message, e.hint) from None
    return _from_keras(nodes, weights, bb)


def _weighted(plan: Plan, bb: Any) -> list[PlanNode]:
    return [plan[name] for name in bb.nodes if keras_weights(plan[name])]


def _from_keras(nodes: list[PlanNode], weights: Weights, bb: Any) -> dict[str, list[np.ndarray]]:
    """In order (a file that keeps no order: by name, the use's prefix left out), as :func:`._fit.match` pairs."""
    try:
        pairs, layers = match(nodes, weights, names_first=False, key=lambda name: _local(name, bb))
    except Unnamed as e:
        raise _error(
            bb,
            f"{weights.source} keeps no layer order, so its layers are matched by name, and it has no "
            f"layer `{e.name}` (the backbone's layer `{e.node.name}`).",
        ) from None
    for node, lw, how in pairs:  # a shape is said at the backbone's use, with the backbone's layer
        if not fits(node, lw):
            misfit = _shape_error(node, lw, weights.source, how)
            raise _error(bb, f"{misfit.message.removesuffix('.')} ({_at(node)}).", misfit.hint)
    if layers is not None and len(layers) < len(nodes):
        node = nodes[len(layers)]
        raise _error(
            bb,
            f"{weights.source} holds {len(layers)} layers with weights, the backbone {len(nodes)}: nothing is "
            f"left for `{node.name}` ({_at(node)}) and the layers after it.",
            _HINT,
        )
    if layers is not None and len(layers) > len(nodes) and bb.include_top:
        raise _error(
            bb,
            f"{weights.source} holds {len(layers)} layers with weights, the backbone {len(nodes)}: from "
            f"{layers[len(nodes)].describe()} on, the file's layers have no counterpart.",
            "Is the file the weights of this network (with its top, or without)?",
        )
    return {node.name: list(lw.arrays) for node, lw, _ in pairs}


def _torch_state(path: Path, bb: Any) -> list[tuple[str, np.ndarray]]:
    """A torch state dict's tensors in order, as numpy arrays (``num_batches_tracked`` left out)."""
    try:
        import torch
    except ImportError:
        raise BackendMissingError("torch", "Reading a torch state dict", extra="torch") from None
    if not path.is_file():
        raise _error(bb, f"no weights file {path}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _error(bb, f"{path} cannot be read as a torch state dict ({type(e).__name__}).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that holds one
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise _error(bb, f"{path} holds no torch state dict (a mapping of names to tensors).")
    return [
        (str(k), v.detach().cpu().float().numpy())
        for k, v in state.items()
        if not str(k).endswith("num_batches_tracked")
    ]


def _from_torch(
    nodes: list[PlanNode], tensors: list[tuple[str, np.ndarray]], source: str, bb: Any
) -> dict[str, list[np.ndarray]]:
    """Tensors of a state dict taken in order, each checked against the torch backend's tensor of the node it
    goes to (its name's last part: weight, bias, running_mean, ...; its shape in torch's layout) and converted
    to Keras' layout by the torch backend's layout of that tensor."""
    torch_backend: Any = get_backend("torch")
    out: dict[str, list[np.ndarray]] = {}
    i = 0
    for node in nodes:
        arrays = []
        for (key, layout), (wname, shape) in zip(torch_backend.build_node(node).keras, keras_weights(node)):
            want = tuple(layout.from_keras(np.empty(shape, dtype=np.float32)).shape)
            if i >= len(tensors):
                raise _error(
                    bb,
                    f"{source} holds {len(tensors)} tensors; nothing is left for `{node.name}`'s {wname} "
                    f"{want} ({_at(node)}) and the layers after it.",
                    _HINT,
                )
            fkey, array = tensors[i]
            if fkey.rsplit(".", 1)[-1] != key.rsplit(".", 1)[-1] or tuple(array.shape) != want:
                raise _error(
                    bb,
                    f"`{node.name}`'s {wname} is `{key.rsplit('.', 1)[-1]}` {want} in torch's layout, but the "
                    f"tensor of {source} there is `{shown(fkey)}` {tuple(array.shape)}, matched in order "
                    f"({_at(node)}).",
                    _HINT,
                )
            arrays.append(np.asarray(layout.to_keras(array)))
            i += 1
        out[node.name] = arrays
    if i < len(tensors) and bb.include_top:
        raise _error(
            bb,
            f"{source} holds {len(tensors)} tensors, the backbone {i}: from `{shown(tensors[i][0])}` on, the "
            "file's tensors have no counterpart.",
            "Is the file the weights of this network (with its top, or without)?",
        )
    return out


_HINT = "Is the file the weights of this network (the same input channels, widths and layer order)?"


def _local(name: str, bb: Any) -> str:
    prefix = f"{bb.name}_"
    return name[len(prefix) :] if name.startswith(prefix) else name


def _at(node: PlanNode) -> str:
    return f"{node.path} at {node.loc}" if node.loc is not None else node.path


def _error(bb: Any, message: str, hint: str | None = None) -> WeightsError:
    return WeightsError(f"backbone `{shown(bb.name)}`: {message}", loc=bb.loc, path=bb.where, hint=hint)

"""Pictures of what a trained model computes, as PNG grids (torch; the lecture material's "what the network sees"):

- ``feature_maps_<i>.png``: for validation image ``i``, the output of every convolution (the most active channels
  of each, up to :data:`CHANNELS`), one row per layer;
- ``filters.png``: the kernels of the first convolution(s), the ones that read the image itself (RGB when they
  read three channels);
- ``saliency.png``: per image, the image with its true and predicted labels, its Grad-CAM map (Selvaraju et al.
  2017: the last spatial layer's channels weighted by the gradient of the predicted class) and its gradient
  saliency (|d score / d pixel|) over it. A model that is right for the wrong reason shows it here: a "wolf"
  found in the snow around the husky, not in the animal.

Everything is computed from a :class:`~._trained.Trained` model (``_trained``) and images of the spec's own
data, preprocessed as training preprocessed them (``_saliency`` computes the maps). torch and matplotlib are
imported inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._text import terminal
from ..errors import DataError, SpecError, StoreError
from ..plan import PlanNode, fmt
from ._images import BAD, FONT, GOOD, Grid, overlay, rgb, scaled
from ._saliency import cam_node, conv_nodes, first_convs, model_inputs, predictions, saliency_maps
from ._trained import Trained

CHANNELS = 16  # channels shown per layer in a feature map grid
LAYERS = 16  # convolutions shown in a feature map grid (evenly chosen when a model has more)
FILTERS = 64  # kernels shown per first convolution
MAP_TILE = 56  # pixels of a feature map tile
IMAGE_TILE = 128  # pixels of an image in the saliency grid
FILTER_TILE = 40  # pixels of a kernel
PAD = 6
LABEL_W = 170  # the row labels' column


def _spread(items: list[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return items
    picks = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def _label(trained: Trained, index: int) -> str:
    names = trained.class_names
    return terminal(names[index]) if 0 <= index < len(names) else str(index)


def feature_map_grid(trained: Trained, image: np.ndarray, label: int, path: str | os.PathLike) -> Path | None:
    """The feature maps of one image: a row per convolution (up to :data:`LAYERS`), its :data:`CHANNELS` most
    active channels, each stretched to its own range (viridis). None when the model has no convolution."""
    import torch

    nodes = _spread(conv_nodes(trained.plan), LAYERS)
    if not nodes:
        return None
    with torch.no_grad():
        values = trained.model.node_outputs(model_inputs(trained, image[None]))
    pred, prob = predictions(trained, image[None])
    cols = min(CHANNELS, max(n.shape[-1] for n in nodes))
    head = IMAGE_TILE + 2 * PAD + 18
    width = LABEL_W + cols * (MAP_TILE + PAD) + PAD
    height = head + len(nodes) * (MAP_TILE + PAD) + PAD
    grid = Grid(width, height)
    right = int(pred[0]) == int(label)
    grid.tile(PAD, PAD + 16, IMAGE_TILE, IMAGE_TILE, rgb(image))
    grid.text(
        PAD,
        PAD,
        f"true {_label(trained, int(label))}, predicted {_label(trained, int(pred[0]))} ({prob[0]:.2f})",
        color=GOOD if right else BAD,
        weight="bold",
    )
    grid.text(
        IMAGE_TILE + 3 * PAD,
        PAD + 20,
        f"{terminal(trained.plan.name)}: feature maps of "
        f"{len(nodes)} of {len(conv_nodes(trained.plan))} convolutions",
        size=FONT + 1,
    )
    grid.text(
        IMAGE_TILE + 3 * PAD,
        PAD + 40,
        f"each row: the {cols} most active channels (mean output), each scaled to its own range",
        color="#555555",
    )
    for r, node in enumerate(nodes):
        maps = values[node.name][0].numpy()  # (C, H, W)
        order = np.argsort(-maps.mean((1, 2)), kind="stable")[:cols]
        y = head + r * (MAP_TILE + PAD)
        grid.text(PAD, y + MAP_TILE // 2 - 14, terminal(node.name), weight="bold", va="top")
        grid.text(PAD, y + MAP_TILE // 2 + 2, fmt(node.shape), color="#555555", va="top")
        for c, channel in enumerate(order):
            grid.tile(
                LABEL_W + c * (MAP_TILE + PAD), y, MAP_TILE, MAP_TILE, scaled(maps[channel]), cmap="viridis"
            )
    return grid.save(path)


def _kernels(trained: Trained, node: PlanNode) -> np.ndarray:
    """The node's kernels as (filters, in channels, kh, kw)."""
    module = getattr(trained.model, trained.model.names[node.name])
    weight = (module.depthwise.weight if node.kind == "separable_conv2d" else module.weight).detach().numpy()
    return weight.transpose(1, 0, 2, 3) if node.kind == "conv2d_transpose" else weight


def filter_grid(trained: Trained, path: str | os.PathLike) -> Path | None:
    """The kernels of the first convolution(s), up to :data:`FILTERS` each, 16 a row: RGB when a kernel reads
    three channels, else its first channel in gray; each kernel scaled to its own range. None without one."""
    nodes = first_convs(trained.plan)
    if not nodes:
        return None
    per_row = 16
    blocks = []
    for node in nodes:
        k = _kernels(trained, node)[:FILTERS]
        blocks.append((node, k, -(-len(k) // per_row)))
    width = 2 * PAD + per_row * (FILTER_TILE + PAD)
    height = PAD + sum(22 + rows * (FILTER_TILE + PAD) for _, _, rows in blocks) + PAD
    grid = Grid(width, height)
    y = PAD
    for node, k, rows in blocks:
        total = _kernels(trained, node).shape[0]
        what = "RGB" if k.shape[1] == 3 else "gray" if k.shape[1] == 1 else f"input channel 1 of {k.shape[1]}"
        grid.text(
            PAD,
            y,
            f"{terminal(node.name)}: {min(total, FILTERS)} of {total} kernels "
            f"{k.shape[2]}x{k.shape[3]} ({what})",
            weight="bold",
        )
        y += 22
        for i, kernel in enumerate(k):
            tile = scaled(kernel.transpose(1, 2, 0)) if kernel.shape[0] == 3 else scaled(kernel[0])
            grid.tile(
                PAD + (i % per_row) * (FILTER_TILE + PAD),
                y + (i // per_row) * (FILTER_TILE + PAD),
                FILTER_TILE,
                FILTER_TILE,
                tile,
                cmap=None,
            )
        y += rows * (FILTER_TILE + PAD)
    return grid.save(path)


def saliency_grid(trained: Trained, images: np.ndarray, labels: np.ndarray, path: str | os.PathLike) -> Path:
    """One row per image: the image with its true and predicted labels (green when right, red when wrong), its
    Grad-CAM map and its gradient saliency over it."""
    pred, prob = predictions(trained, images)
    saliency, cam = saliency_maps(trained, images, pred)
    target = cam_node(trained.plan)
    columns = [
        "image",
        f"Grad-CAM ({terminal(target.name)})" if target is not None else "Grad-CAM (no layer)",
        "gradient saliency",
    ]
    width = LABEL_W + len(columns) * (IMAGE_TILE + PAD) + PAD
    head = 42
    height = head + len(images) * (IMAGE_TILE + PAD) + PAD
    grid = Grid(width, height)
    grid.text(
        PAD,
        PAD,
        f"{terminal(trained.plan.name)}: where the predicted class's score comes from",
        size=FONT + 1,
        weight="bold",
    )
    if trained.source:
        grid.text(
            width - PAD, PAD + 2, f"weights: {terminal(trained.source)}"[-60:], color="#555555", ha="right"
        )
    for c, title in enumerate(columns):
        grid.text(LABEL_W + c * (IMAGE_TILE + PAD) + IMAGE_TILE // 2, head - 16, title, ha="center")
    for r, image in enumerate(images):
        y = head + r * (IMAGE_TILE + PAD)
        right = int(pred[r]) == int(labels[r])
        grid.text(PAD, y + 30, f"true {_label(trained, int(labels[r]))}", weight="bold")
        grid.text(
            PAD,
            y + 50,
            f"predicted {_label(trained, int(pred[r]))}",
            color=GOOD if right else BAD,
            weight="bold",
        )
        grid.text(PAD, y + 70, f"probability {prob[r]:.2f}", color="#555555")
        base = rgb(image)
        grid.tile(LABEL_W, y, IMAGE_TILE, IMAGE_TILE, base)
        if cam is not None:
            grid.tile(LABEL_W + IMAGE_TILE + PAD, y, IMAGE_TILE, IMAGE_TILE, overlay(base, cam[r]))
        grid.tile(
            LABEL_W + 2 * (IMAGE_TILE + PAD),
            y,
            IMAGE_TILE,
            IMAGE_TILE,
            overlay(base, saliency[r], cmap="hot", alpha=0.6),
        )
    return grid.save(path)


def output_folder(folder: str | os.PathLike) -> Path:
    """``folder``, created when missing; a StoreError when it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot create the folder {terminal(folder)} ({e.strerror or e}).",
            store=str(folder),
            hint="Pass -o another folder.",
        ) from None
    return folder


def explain_images(
    trained: Trained, images: np.ndarray, labels: np.ndarray, folder: str | os.PathLike
) -> list[Path]:
    """Every picture of ``trained`` for ``images`` (uint8, N x H x W x C, the model's input size) and their true
    ``labels``, written to ``folder``: ``saliency.png``, ``filters.png`` and ``feature_maps_<i>.png`` for each
    image (the last two when the model has convolutions). Returns the files written."""
    if len(trained.plan.input_shape) != 3:
        raise SpecError(
            f"explain draws images, but the model's input is {fmt(trained.plan.input_shape)}.",
            hint="Explain a model whose input is an image (height, width, channels).",
        )
    if len(images) == 0:
        raise DataError(
            "there are no images to explain (the validation split is empty).",
            hint="Give the spec's data a validation split.",
        )
    folder = output_folder(folder)
    files = [saliency_grid(trained, images, labels, folder / "saliency.png")]
    filters = filter_grid(trained, folder / "filters.png")
    if filters is not None:
        files.append(filters)
    for i, (image, label) in enumerate(zip(images, labels)):
        maps = feature_map_grid(trained, image, int(label), folder / f"feature_maps_{i}.png")
        if maps is not None:
            files.append(maps)
    return files

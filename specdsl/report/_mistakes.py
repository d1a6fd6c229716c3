"""The pictures of an evaluation, as PNG files: the confusion matrix (class names on the axes, the counts in the
cells) and a grid of the images the model got wrong most confidently, each with its true and predicted class and
the probability it gave (the lectures' husky-vs-wolf lesson: a model sure of a wrong answer shows what it
learned instead). matplotlib's object API on its Agg canvas (no pyplot); matplotlib is imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._text import terminal
from ._images import BAD, FONT, Grid, rgb

MISTAKES = 16  # images in the grid of confident mistakes, by default
TILE = 128  # pixels of an image in that grid
COLUMNS = 8
PAD = 8
CAPTION = 36  # two lines of text under each image


def confident_mistakes(true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """Indices of the (up to) ``n`` wrong predictions with the highest ``confidence``, the most confident first
    (ties in index order)."""
    wrong = np.flatnonzero(np.asarray(true) != np.asarray(predicted))
    order = np.argsort(-np.asarray(confidence)[wrong], kind="stable")
    return wrong[order[:n]]


def confusion_png(confusion: np.ndarray, names: list[str], path: str | os.PathLike, title: str) -> Path:
    """The confusion matrix (rows true, columns predicted) as a PNG: a cell's colour its share of its true class,
    its count written in it, the class names on both axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(names)
    side = max(4.0, 1.2 + 0.45 * n)
    figure = Figure(figsize=(side + 1.0, side), dpi=100, facecolor="white")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    labels = [terminal(name)[:24] for name in names]
    ax.set_xticks(range(n), labels, rotation=45 if max(map(len, labels), default=0) > 2 else 0, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(terminal(title)[:80], fontsize=FONT + 1)
    size = max(5.0, min(FONT, 120 / max(n, 1)))
    for i in range(n):
        for j in range(n):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(confusion[i, j])), ha="center", va="center", color=colour, fontsize=size)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100, format="png", facecolor="white")
    return path


def mistakes_png(
    images: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    names: list[str],
    path: str | os.PathLike,
    title: str,
) -> Path:
    """``images`` (uint8, N x H x W x C, N >= 1) in a grid of up to :data:`COLUMNS` a row, each with its true
    class and its predicted class with the probability given."""
    columns = min(COLUMNS, len(images))
    rows = -(-len(images) // columns)
    head = 30
    width = PAD + columns * (TILE + PAD)
    width = max(width, 360)
    height = head + rows * (TILE + CAPTION + PAD) + PAD
    grid = Grid(width, height)
    grid.text(PAD, PAD, terminal(title)[:90], size=FONT + 1, weight="bold")

    def name(i: int) -> str:
        return terminal(names[i])[:18] if 0 <= i < len(names) else str(i)

    for k, image in enumerate(images):
        x = PAD + (k % columns) * (TILE + PAD)
        y = head + (k // columns) * (TILE + CAPTION + PAD)
        grid.tile(x, y, TILE, TILE, rgb(image))
        grid.text(x, y + TILE + 3, f"true {name(int(true[k]))}", weight="bold")
        grid.text(x, y + TILE + 19, f"pred {name(int(predicted[k]))} {confidence[k]:.2f}", color=BAD)
    return grid.save(path)

"""PNG grids of images, laid out in pixels: the pictures of a trained model (and of its evaluation) share them.

A :class:`Grid` is a picture of exactly ``width`` x ``height`` pixels: tiles are painted into a numpy array at pixel
positions (top-left origin), and texts are drawn over it by matplotlib's object API on its Agg canvas (no pyplot, no
window, nothing global changed) when it is saved. numpy and matplotlib only; matplotlib is imported on use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

DPI = 100
FONT = 9  # points: 12.5 px at DPI
GOOD, BAD = "#1a7f37", "#cf222e"  # a right and a wrong prediction


class Grid:
    """A picture of ``width`` x ``height`` pixels: ``tile`` paints images into its pixels (numpy, nearest
    neighbour), ``text`` adds text that matplotlib draws over them when the grid is saved."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.pixels = np.ones((self.height, self.width, 3))
        self._texts: list[tuple[int, int, str, dict[str, Any]]] = []

    def tile(self, x: int, y: int, w: int, h: int, image: np.ndarray, *, cmap: str | None = None) -> None:
        """``image`` stretched over the box (x, y, w, h) from the top left, nearest neighbour: H x W values in
        0..1 coloured by ``cmap`` (gray when None), or H x W x 3 RGB in 0..1."""
        a = np.asarray(image, dtype=np.float64)
        rows = np.arange(h) * a.shape[0] // h
        cols = np.arange(w) * a.shape[1] // w
        a = a[rows][:, cols]
        if a.ndim == 2:
            if cmap is None:
                a = np.repeat(a[..., None], 3, axis=-1)
            else:
                import matplotlib

                a = matplotlib.colormaps[cmap](np.clip(a, 0.0, 1.0))[..., :3]
        self.pixels[y : y + h, x : x + w] = np.clip(a, 0.0, 1.0)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        *,
        size: float = FONT,
        color: str = "black",
        weight: str = "normal",
        ha: str = "left",
        va: str = "top",
    ) -> None:
        """``text`` at pixel (x, y) from the top left (plain text: ``$`` and the like are not mathtext)."""
        self._texts.append(
            (x, y, text, {"fontsize": size, "color": color, "fontweight": weight, "ha": ha, "va": va})
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the PNG (exactly width x height pixels)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI, facecolor="white")
        FigureCanvasAgg(figure)
        figure.figimage(self.pixels, xo=0, yo=0, origin="upper", resize=False)
        for x, y, text, style in self._texts:
            figure.text(x / self.width, 1 - y / self.height, text, usetex=False, parse_math=False, **style)
        path = Path(path)
        figure.savefig(path, dpi=DPI, format="png", facecolor="white")
        return path


def scaled(values: Any, *, percentile: float | None = None) -> np.ndarray:
    """``values`` stretched to 0..1 (min to max, or 0 to the ``percentile`` of the values); a constant array is 0."""
    a = np.asarray(values, dtype=np.float64)
    lo = 0.0 if percentile is not None else float(a.min()) if a.size else 0.0
    hi = (
        float(np.percentile(a, percentile))
        if percentile is not None and a.size
        else float(a.max())
        if a.size
        else 0.0
    )
    if not np.isfinite(hi - lo) or hi - lo <= 1e-12:
        return np.zeros(a.shape)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 H x W x C image as H x W x 3 floats in 0..1 (gray repeated; of more channels, the first)."""
    a = np.asarray(image, dtype=np.float64) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 3:
        return a
    return np.repeat(a[..., :1], 3, axis=-1)


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """``heat`` (H x W in 0..1, the image's size) coloured by ``cmap`` over ``image`` (H x W x 3 in 0..1)."""
    import matplotlib

    colours = matplotlib.colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]
    return np.clip((1 - alpha) * image + alpha * colours, 0.0, 1.0)

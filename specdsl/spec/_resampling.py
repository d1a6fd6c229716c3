"""The layer kinds that resample an image without weights: upsampling2d, resizing, cropping2d (a family of
``_layers``, which imports this module's kinds after its own; the same conventions hold: channels-last shapes
without the batch axis, one tagged model per kind)."""

from __future__ import annotations

from typing import Literal

from ._kinds import LayerSpec, register_layer
from ._types import Pair, PosInt


@register_layer(
    "upsampling2d",
    keras_class="UpSampling2D",
    auto_name="up_sampling2d",
    primary="size",
    aliases=("up_sampling2d",),
)
class UpSampling2D(LayerSpec):
    """Repeats each row ``sh`` and each column ``sw`` times (``size``; nearest), or interpolates (bilinear, half-pixel
    centres as Keras). (H, W, C) -> (H * sh, W * sw, C). No parameters.

        - upsampling2d: 2
    """

    kind: Literal["upsampling2d"] = "upsampling2d"
    size: Pair = (2, 2)
    interpolation: Literal["nearest", "bilinear"] = "nearest"


@register_layer("resizing", keras_class="Resizing")
class Resizing(LayerSpec):
    """Resizes an image to ``height`` x ``width``, as Keras' Resizing: bilinear (the default) or nearest, both with
    half-pixel centres, without antialiasing. (H, W, C) -> (height, width, C). No parameters.

        - resizing: {height: 224, width: 224}
    """

    kind: Literal["resizing"] = "resizing"
    height: PosInt
    width: PosInt
    interpolation: Literal["bilinear", "nearest"] = "bilinear"

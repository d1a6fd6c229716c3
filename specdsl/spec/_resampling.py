"""The layer kinds that resample an image without weights: upsampling2d, resizing, cropping2d (a family of
``_layers``, which imports this module's kinds after its own; the same conventions hold: channels-last shapes
without the batch axis, one tagged model per kind)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ._kinds import LayerSpec, register_layer
from ._types import PadAmounts2D, PadInput2D, Pair, PosInt, _padding2d


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


@register_layer("cropping2d", keras_class="Cropping2D", primary="cropping")
class Cropping2D(LayerSpec):
    """Crops rows and columns off an image's edges, as Keras' Cropping2D. (H, W, C) -> (H - t - b, W - l - r, C);
    something must be left. No parameters.

        - cropping2d: 1                  # one off every side
        - cropping2d: [[0, 1], [2, 2]]   # (top, bottom), (left, right)
    """

    kind: Literal["cropping2d"] = "cropping2d"
    cropping: PadAmounts2D = Field(default=((0, 0), (0, 0)), description="c | [ch, cw] | [[t, b], [l, r]]")

    @field_validator("cropping", mode="before", json_schema_input_type=PadInput2D)
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return _padding2d(value)

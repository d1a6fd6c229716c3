"""The layer kinds that resample an image without weights: upsampling2d, resizing, cropping2d (a family of
``_layers``, which imports this module's kinds after its own; the same conventions hold: channels-last shapes
without the batch axis, one tagged model per kind)."""

from __future__ import annotations

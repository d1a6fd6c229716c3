"""The Keras layers that Keras itself lacks, registered so that ``.keras`` files holding them load.

``source()`` copies these classes verbatim into the generated code, so they use nothing but ``keras``.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="specdsl")
class Bias(keras.layers.Layer):
    """A learned bias added to the input: one per channel (``per="channel"``, shape (C,)) or one for
    every value of the input (``per="position"``, shape (H, W, C), one per board point in AlphaGo)."""

    def __init__(self, per="channel", **kwargs):
        super().__init__(**kwargs)
        if per not in ("channel", "position"):
            raise ValueError(f"`per` must be 'channel' or 'position', but got per={per!r}")
        self.per = per

    def build(self, input_shape):
        shape = tuple(input_shape[1:]) if self.per == "position" else (input_shape[-1],)
        self.bias = self.add_weight(shape=shape, initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "per": self.per}


@keras.saving.register_keras_serializable(package="specdsl")
class PaddedAveragePooling(keras.layers.Layer):
    """Average pooling over explicit (before, after) zero padding of each spatial axis, the padding left
    out of every average: Keras' ``padding="same"`` given as amounts, so that every Keras backend computes
    the same thing (Keras' torch backend counts replicated edge values when 'same' padding is uneven)."""

    def __init__(self, pool_size, strides, padding, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)
        self.padding = tuple(tuple(p) for p in padding)

    def call(self, inputs):
        pads = [(0, 0), *self.padding, (0, 0)]
        ones = keras.ops.ones_like(inputs[..., :1])
        total = keras.ops.average_pool(keras.ops.pad(inputs, pads), self.pool_size, self.strides, "valid")
        share = keras.ops.average_pool(keras.ops.pad(ones, pads), self.pool_size, self.strides, "valid")
        return total / share

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


CUSTOM_LAYERS: dict[str, type[keras.layers.Layer]] = {
    "Bias": Bias,
    "PaddedAveragePooling": PaddedAveragePooling,
}

"""The layer kinds of the spec language: one tagged pydantic model per kind, in one registry.

A layer is written in YAML with its kind as the single key, and its arguments under it:

    - conv2d: {filters: 32, kernel: 3, padding: same, activation: relu}
    - maxpool2d: 2            # a scalar sets the kind's main argument (here: pool)
    - flatten                 # a kind with no arguments may stand alone

or in the tagged form ``{kind: conv2d, filters: 32, kernel: 3}``. Every kind also takes ``name`` (used to refer
to the layer, and shown in summaries) and ``inputs`` (names of the layers it reads; by default the layer before it).

Shapes are channels-last and exclude the batch axis: images (H, W, C), sequences (L, C), vectors (N,).
The registry (``LAYERS``, ``ALIASES``, :func:`register_layer`) and the fields every kind has (:class:`LayerSpec`)
are in ``_kinds``; the kinds that resample an image without weights are in ``_resampling``. Adding a kind means:
one model here or there (``@register_layer``), one shape rule (``@register_rule`` in ``specdsl/plan/_rules.py``,
declaring its weights), one builder per backend (``@register_builder`` in each backend's ``_builders.py``) and its
cases in ``tests/layer_cases.py``; the tests, the fuzzing, the schema, the reference (``specdsl schema --kinds``),
the weights' layout and the messages listing kinds follow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AliasChoices, Field, field_validator, model_validator

from ._kinds import LAYERS, LayerSpec, register_layer
from ._types import (
    MAX_SIZE,
    Activation,
    NonNegInt,
    PadAmounts2D,
    Padding1D,
    Padding2D,
    PadInput2D,
    Pair,
    PoolPadding,
    PosInt,
    Single,
    _padding2d,
)


class _Conv(LayerSpec):
    padding: Padding2D = Field(
        default="valid", description="valid | same (as Keras) | p | [ph, pw] | [[t, b], [l, r]]"
    )
    use_bias: bool = True
    activation: Activation | None = None
    kernel_initializer: str | None = Field(
        default=None, description="Initializer name, passed to the backend."
    )


@register_layer("conv2d", keras_class="Conv2D", primary="filters", aliases=("convolution2d",))
class Conv2D(_Conv):
    """2-D convolution. (H, W, C) -> (H', W', filters) with H' = floor((H + pad - k_eff) / s) + 1,
    k_eff = d * (k - 1) + 1; padding 'same' gives H' = ceil(H / s). Parameters: kh * kw * C / groups * filters
    (+ filters for the bias).

        - conv2d: {filters: 64, kernel: 3, strides: 2, padding: same, activation: relu}
    """

    kind: Literal["conv2d"] = "conv2d"
    filters: PosInt
    kernel: Pair = Field(validation_alias=AliasChoices("kernel", "kernel_size"))
    strides: Pair = Field(default=(1, 1), validation_alias=AliasChoices("strides", "stride"))
    dilation: Pair = Field(default=(1, 1), validation_alias=AliasChoices("dilation", "dilation_rate"))
    groups: PosInt = 1

    @model_validator(mode="after")
    def _groups_divide_filters(self) -> Conv2D:
        if self.filters % self.groups:
            raise ValueError(
                f"filters must be divisible by groups, but got filters={self.filters}, groups={self.groups}"
            )
        return self


@register_layer("conv1d", keras_class="Conv1D", primary="filters", aliases=("convolution1d",))
class Conv1D(LayerSpec):
    """1-D convolution over sequences. (L, C) -> (L', filters), the same size rule as conv2d."""

    kind: Literal["conv1d"] = "conv1d"
    filters: PosInt
    kernel: Single = Field(validation_alias=AliasChoices("kernel", "kernel_size"))
    strides: Single = Field(default=1, validation_alias=AliasChoices("strides", "stride"))
    dilation: Single = Field(default=1, validation_alias=AliasChoices("dilation", "dilation_rate"))
    groups: PosInt = 1
    padding: Padding1D = Field(default="valid", description="valid | same | p | [left, right]")
    use_bias: bool = True
    activation: Activation | None = None
    kernel_initializer: str | None = None

    @model_validator(mode="after")
    def _groups_divide_filters(self) -> Conv1D:
        if self.filters % self.groups:
            raise ValueError(
                f"filters must be divisible by groups, but got filters={self.filters}, groups={self.groups}"
            )
        return self


@register_layer("depthwise_conv2d", keras_class="DepthwiseConv2D", aliases=("depthwiseconv2d",))
class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution: each input channel convolved with its own depth_multiplier filters.
    (H, W, C) -> (H', W', C * depth_multiplier). Parameters: kh * kw * C * m (+ C * m bias)."""

    kind: Literal["depthwise_conv2d"] = "depthwise_conv2d"
    kernel: Pair = Field(validation_alias=AliasChoices("kernel", "kernel_size"))
    strides: Pair = Field(default=(1, 1), validation_alias=AliasChoices("strides", "stride"))
    dilation: Pair = Field(default=(1, 1), validation_alias=AliasChoices("dilation", "dilation_rate"))
    depth_multiplier: PosInt = 1


@register_layer(
    "separable_conv2d", keras_class="SeparableConv2D", primary="filters", aliases=("separableconv2d",)
)
class SeparableConv2D(_Conv):
    """Depthwise convolution followed by a 1x1 pointwise one. (H, W, C) -> (H', W', filters).
    Parameters: kh * kw * C * m + C * m * filters (+ filters bias)."""

    kind: Literal["separable_conv2d"] = "separable_conv2d"
    filters: PosInt
    kernel: Pair = Field(validation_alias=AliasChoices("kernel", "kernel_size"))
    strides: Pair = Field(default=(1, 1), validation_alias=AliasChoices("strides", "stride"))
    dilation: Pair = Field(default=(1, 1), validation_alias=AliasChoices("dilation", "dilation_rate"))
    depth_multiplier: PosInt = 1


@register_layer("conv2d_transpose", keras_class="Conv2DTranspose", primary="filters", aliases=("deconv2d",))
class Conv2DTranspose(LayerSpec):
    """Transposed 2-D convolution (upsampling). As Keras: valid gives H * s + max(k_eff - s, 0), same gives
    H * s; with output_padding: (H - 1) * s + k_eff - 2 * pad + output_padding. Parameters: kh * kw * filters * C
    (+ filters)."""

    kind: Literal["conv2d_transpose"] = "conv2d_transpose"
    filters: PosInt
    kernel: Pair = Field(validation_alias=AliasChoices("kernel", "kernel_size"))
    strides: Pair = Field(default=(1, 1), validation_alias=AliasChoices("strides", "stride"))
    padding: PoolPadding = "valid"
    output_padding: tuple[NonNegInt, NonNegInt] | None = None
    dilation: Pair = Field(default=(1, 1), validation_alias=AliasChoices("dilation", "dilation_rate"))
    use_bias: bool = True
    activation: Activation | None = None
    kernel_initializer: str | None = None

    @field_validator(
        "output_padding", mode="before", json_schema_input_type=NonNegInt | tuple[NonNegInt, NonNegInt] | None
    )
    @classmethod
    def _pair_op(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value


class _Pool2D(LayerSpec):
    pool: Pair = Field(default=(2, 2), validation_alias=AliasChoices("pool", "pool_size"))
    strides: Pair | None = Field(
        default=None,
        validation_alias=AliasChoices("strides", "stride"),
        description="Default: the pool size.",
    )
    padding: PoolPadding = "valid"


@register_layer(
    "maxpool2d",
    keras_class="MaxPooling2D",
    auto_name="max_pooling2d",
    primary="pool",
    aliases=("max_pooling2d", "maxpooling2d"),
)
class MaxPool2D(_Pool2D):
    """Max pooling. (H, W, C) -> (floor((H - p) / s) + 1, ..., C); 'same' gives ceil(H / s). No parameters.

    - maxpool2d: 2
    """

    kind: Literal["maxpool2d"] = "maxpool2d"


@register_layer(
    "avgpool2d",
    keras_class="AveragePooling2D",
    auto_name="average_pooling2d",
    primary="pool",
    aliases=("average_pooling2d", "averagepooling2d", "avg_pool2d"),
)
class AvgPool2D(_Pool2D):
    """Average pooling, the same sizes as maxpool2d; with 'same' the padding is left out of the average (as Keras)."""

    kind: Literal["avgpool2d"] = "avgpool2d"


class _Pool1D(LayerSpec):
    pool: Single = Field(default=2, validation_alias=AliasChoices("pool", "pool_size"))
    strides: Single | None = Field(default=None, validation_alias=AliasChoices("strides", "stride"))
    padding: PoolPadding = "valid"


@register_layer(
    "maxpool1d",
    keras_class="MaxPooling1D",
    auto_name="max_pooling1d",
    primary="pool",
    aliases=("max_pooling1d", "maxpooling1d"),
)
class MaxPool1D(_Pool1D):
    """Max pooling over sequences. (L, C) -> (L', C)."""

    kind: Literal["maxpool1d"] = "maxpool1d"


@register_layer(
    "avgpool1d",
    keras_class="AveragePooling1D",
    auto_name="average_pooling1d",
    primary="pool",
    aliases=("average_pooling1d", "averagepooling1d"),
)
class AvgPool1D(_Pool1D):
    """Average pooling over sequences. (L, C) -> (L', C)."""

    kind: Literal["avgpool1d"] = "avgpool1d"


@register_layer(
    "global_avgpool2d",
    keras_class="GlobalAveragePooling2D",
    auto_name="global_average_pooling2d",
    aliases=("global_average_pooling2d", "globalaveragepooling2d", "gap2d"),
)
class GlobalAvgPool2D(LayerSpec):
    """Mean over height and width. (H, W, C) -> (C,)."""

    kind: Literal["global_avgpool2d"] = "global_avgpool2d"


@register_layer(
    "global_maxpool2d",
    keras_class="GlobalMaxPooling2D",
    auto_name="global_max_pooling2d",
    aliases=("global_max_pooling2d", "globalmaxpooling2d"),
)
class GlobalMaxPool2D(LayerSpec):
    """Max over height and width. (H, W, C) -> (C,)."""

    kind: Literal["global_maxpool2d"] = "global_maxpool2d"


@register_layer(
    "global_avgpool1d",
    keras_class="GlobalAveragePooling1D",
    auto_name="global_average_pooling1d",
    aliases=("global_average_pooling1d",),
)
class GlobalAvgPool1D(LayerSpec):
    """Mean over the sequence. (L, C) -> (C,)."""

    kind: Literal["global_avgpool1d"] = "global_avgpool1d"


@register_layer(
    "global_maxpool1d",
    keras_class="GlobalMaxPooling1D",
    auto_name="global_max_pooling1d",
    aliases=("global_max_pooling1d",),
)
class GlobalMaxPool1D(LayerSpec):
    """Max over the sequence. (L, C) -> (C,)."""

    kind: Literal["global_maxpool1d"] = "global_maxpool1d"


@register_layer(
    "zero_padding2d", keras_class="ZeroPadding2D", primary="padding", aliases=("zeropadding2d", "pad2d")
)
class ZeroPadding2D(LayerSpec):
    """Pads height and width with zeros. (H, W, C) -> (H + t + b, W + l + r, C).

    - zero_padding2d: 2          # 2 on every side
    - zero_padding2d: [[0, 1], [0, 1]]
    """

    kind: Literal["zero_padding2d"] = "zero_padding2d"
    padding: PadAmounts2D = Field(default=((1, 1), (1, 1)), description="p | [ph, pw] | [[t, b], [l, r]]")

    @field_validator("padding", mode="before", json_schema_input_type=PadInput2D)
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return _padding2d(value)


@register_layer(
    "batchnorm",
    keras_class="BatchNormalization",
    auto_name="batch_normalization",
    aliases=("batch_normalization", "batchnormalization", "bn"),
)
class BatchNorm(LayerSpec):
    """Batch normalization over the last (channel) axis. Shape unchanged. Parameters as Keras counts them:
    gamma and beta trainable (C each, when scale/center), moving mean and variance non-trainable (C each)."""

    kind: Literal["batchnorm"] = "batchnorm"
    axis: int = Field(
        default=-1, description="The channels: -1, or as Keras counts with the batch axis (3 for images)."
    )
    momentum: float = Field(
        default=0.99, gt=0, lt=1, description="Keras convention: moving = m * moving + (1-m) * batch"
    )
    epsilon: float = Field(default=1e-3, gt=0)
    center: bool = True
    scale: bool = True


@register_layer(
    "layernorm",
    keras_class="LayerNormalization",
    auto_name="layer_normalization",
    aliases=("layer_normalization", "layernormalization", "ln"),
)
class LayerNorm(LayerSpec):
    """Layer normalization over the last axis. Shape unchanged. Parameters: gamma and beta, C each."""

    kind: Literal["layernorm"] = "layernorm"
    epsilon: float = Field(default=1e-3, gt=0)
    center: bool = True
    scale: bool = True


@register_layer(
    "group_norm",
    keras_class="GroupNormalization",
    auto_name="group_normalization",
    primary="groups",
    aliases=("group_normalization", "groupnormalization", "gn"),
)
class GroupNorm(LayerSpec):
    """Group normalization (Keras' GroupNormalization, torch's nn.GroupNorm): the channels are split into
    ``groups`` groups of C / groups, and each example's group is normalized over its channels and every position.
    Shape unchanged; ``groups`` must divide the channels. Parameters: gamma and beta, C each (when scale/center).

        - group_norm: 8
    """

    kind: Literal["group_norm"] = "group_norm"
    groups: PosInt = 32
    epsilon: float = Field(default=1e-3, gt=0)
    center: bool = True
    scale: bool = True


@register_layer("dropout", keras_class="Dropout", primary="rate")
class Dropout(LayerSpec):
    """Zeroes each value with probability ``rate`` in training. Shape unchanged; no parameters.

    - dropout: 0.5
    """

    kind: Literal["dropout"] = "dropout"
    rate: float = Field(ge=0, lt=1)


@register_layer(
    "spatial_dropout2d", keras_class="SpatialDropout2D", primary="rate", aliases=("spatialdropout2d",)
)
class SpatialDropout2D(LayerSpec):
    """Drops whole feature maps (channels) with probability ``rate`` in training. (H, W, C) unchanged."""

    kind: Literal["spatial_dropout2d"] = "spatial_dropout2d"
    rate: float = Field(ge=0, lt=1)


@register_layer("flatten", keras_class="Flatten")
class Flatten(LayerSpec):
    """Flattens everything but the batch axis, in channels-last order as Keras does. (H, W, C) -> (H * W * C,)."""

    kind: Literal["flatten"] = "flatten"


@register_layer("dense", keras_class="Dense", primary="units", aliases=("linear", "fully_connected", "fc"))
class Dense(LayerSpec):
    """Fully connected layer on the last axis. (..., N) -> (..., units). Parameters: N * units (+ units bias).

    - dense: {units: 10, activation: softmax}
    """

    kind: Literal["dense"] = "dense"
    units: PosInt
    activation: Activation | None = None
    use_bias: bool = True
    kernel_initializer: str | None = None


@register_layer("reshape", keras_class="Reshape", primary="shape")
class Reshape(LayerSpec):
    """Reshapes to ``shape`` (batch axis excluded, channels-last; one entry may be -1). Sizes must agree."""

    kind: Literal["reshape"] = "reshape"
    shape: list[Annotated[int, Field(le=MAX_SIZE)]] = Field(
        min_length=1, max_length=8, validation_alias=AliasChoices("shape", "target_shape")
    )

    @field_validator("shape")
    @classmethod
    def _check(cls, value: list[int]) -> list[int]:
        if sum(1 for v in value if v == -1) > 1:
            raise ValueError(f"at most one entry may be -1, but got shape={value}")
        if any(v == 0 or v < -1 for v in value):
            raise ValueError(f"entries must be positive (or one -1), but got shape={value}")
        return value


@register_layer("activation", keras_class="Activation", primary="function", aliases=("act",))
class ActivationLayer(LayerSpec):
    """Applies an activation function. Shape unchanged; no parameters.

    - activation: relu
    - activation: {function: leaky_relu, negative_slope: 0.1}
    """

    kind: Literal["activation"] = "activation"
    function: Activation = Field(validation_alias=AliasChoices("function", "activation"))
    negative_slope: float | None = Field(
        default=None, ge=0, description="leaky_relu only (default 0.2, as keras.activations.leaky_relu)"
    )

    @model_validator(mode="after")
    def _slope_only_for_leaky(self) -> ActivationLayer:
        if self.negative_slope is not None and self.function != "leaky_relu":
            raise ValueError(f"negative_slope applies to leaky_relu only, but function={self.function}")
        return self


class _Merge(LayerSpec):
    pass


@register_layer("add", keras_class="Add", inputs=(2, None))
class Add(_Merge):
    """Elementwise sum of two or more inputs of the same shape (residual connections).

    - add: {inputs: [shortcut, bn3]}
    """

    kind: Literal["add"] = "add"


@register_layer("multiply", keras_class="Multiply", inputs=(2, None))
class Multiply(_Merge):
    """Elementwise product of two or more inputs whose shapes broadcast: of one rank, each axis equal or 1 in one
    of them; (H, W, C) x (1, 1, C) -> (H, W, C) scales each channel, as a squeeze-and-excitation gate does.

        - multiply: {inputs: [features, gate]}
    """

    kind: Literal["multiply"] = "multiply"


@register_layer(
    "concat", keras_class="Concatenate", auto_name="concatenate", aliases=("concatenate",), inputs=(2, None)
)
class Concat(_Merge):
    """Joins inputs along ``axis`` (default -1, the channels); every other axis must agree (inception modules)."""

    kind: Literal["concat"] = "concat"
    axis: int = -1


@register_layer("rescaling", keras_class="Rescaling", primary="scale")
class Rescaling(LayerSpec):
    """x * scale + offset, e.g. ``rescaling: 0.00392156862745098`` (1/255). Shape unchanged; no parameters."""

    kind: Literal["rescaling"] = "rescaling"
    scale: float
    offset: float = 0.0


@register_layer("bias", keras_class="Bias", primary="per")
class Bias(LayerSpec):
    """A learned bias added to the input. ``per: channel`` has one per channel (C parameters);
    ``per: position`` one for every value of the input (H * W * C), as AlphaGo's policy network has one per board point.

        - conv2d: {filters: 1, kernel: 1, use_bias: false}
        - bias: position
    """

    kind: Literal["bias"] = "bias"
    per: Literal["channel", "position"] = "channel"


# the kinds of a family with a module of its own, registered after these
from ._resampling import *  # noqa: E402, F403

# a union of the registered kinds, made at run time (so not writable as X | Y)
AnyLayer = Union[tuple(kind.model for kind in LAYERS.values())]  # type: ignore[valid-type]  # noqa: UP007

"""One builder per layer kind: a plan node -> the Keras layer(s) that compute it, described as plain data.

A builder returns a list of :class:`LayerCall` (usually one; a conv with explicit padding amounts gets a
ZeroPadding2D before it). ``build()`` instantiates the calls and ``source()`` prints them, so the model in
memory and the generated code cannot drift apart. Builders import no framework; sizes, strides and padding
amounts come from the plan (``node.resolved``), options (filters, activation, ...) from the layer's spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from ..._registry import Registry
from ...errors import BackendError
from ...plan import PlanNode
from ...spec import LAYERS
from ...spec import layers as L
from .._limits import LIMITS


@dataclass(frozen=True)
class LayerCall:
    """The constructor call of one Keras layer: its class (a name in ``keras.layers`` or ``CUSTOM_LAYERS``, or a
    plug-in's own layer class itself) and its arguments.

    The last call of a node is named as the node; an earlier one as ``<node>_<suffix>``.
    """

    cls: str | type
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None


Builder = Callable[[PlanNode], list[LayerCall]]
BUILDERS: Registry[Builder] = Registry("Keras builder", within=LAYERS)
register_builder = BUILDERS.register  # @register_builder("conv2d"): the Keras builder of a layer kind


def refuse(node: PlanNode, message: str, hint: str | None = None) -> BackendError:
    """A BackendError located at the node's text, for a node Keras cannot express."""
    return BackendError(message, loc=node.loc, path=f"{node.path} ({node.kind})", hint=hint)


# ----------------------------------------------------------------------------------------------------------
# helpers


def _size(pair: tuple[int, ...]) -> int | tuple[int, ...]:
    """(3, 3) -> 3, (3, 2) -> (3, 2): as a person writes Keras."""
    return pair[0] if len(set(pair)) == 1 else tuple(pair)


def _amounts(padding: tuple[tuple[int, int], ...]) -> Any:
    """ZeroPadding2D's argument, in its shortest form: 1 | (1, 2) | ((1, 0), (0, 2))."""
    if all(before == after for before, after in padding):
        return _size(tuple(before for before, _ in padding))
    return tuple(tuple(p) for p in padding)


def _changed(**pairs: tuple[Any, Any]) -> dict[str, Any]:
    """Keyword arguments whose value differs from Keras' default: ``name=(value, default)``."""
    return {key: value for key, (value, default) in pairs.items() if value != default}


def _padding(node: PlanNode) -> tuple[list[LayerCall], str]:
    """The plan's padding as Keras takes it: 'same' (written so, or explicit amounts that are exactly 'same''s, as
    AlphaGo's 5x5 conv with padding 2: that reads better as 'same'), 'valid', or a ZeroPadding layer of the
    explicit amounts before a valid conv."""
    r = node.resolved
    if r.same:
        return [], "same"
    if not any(before or after for before, after in r.padding):
        return [], "valid"
    if len(r.padding) == 1:
        return [LayerCall("ZeroPadding1D", kwargs={"padding": _size(r.padding[0])}, suffix="pad")], "valid"
    return [LayerCall("ZeroPadding2D", kwargs={"padding": _amounts(r.padding)}, suffix="pad")], "valid"


def _no_strided_dilation(node: PlanNode) -> None:
    for limit in LIMITS:  # the limits `validate` reports, so that the two say the same
        if limit.backend == "keras" and node.kind in limit.kinds and limit.applies(node):
            raise refuse(node, limit.message(node), limit.hint)


# ----------------------------------------------------------------------------------------------------------
# convolutions


@register_builder("conv2d")
def _conv2d(node: PlanNode) -> list[LayerCall]:
    layer, r = cast(L.Conv2D, node.layer), node.resolved
    _no_strided_dilation(node)
    pad, padding = _padding(node)
    kwargs = _changed(
        strides=(_size(r.strides), 1),
        padding=(padding, "valid"),
        dilation_rate=(_size(r.dilation), 1),
        groups=(layer.groups, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("Conv2D", (layer.filters, _size(r.kernel)), kwargs)]


@register_builder("conv1d")
def _conv1d(node: PlanNode) -> list[LayerCall]:
    layer, r = cast(L.Conv1D, node.layer), node.resolved
    _no_strided_dilation(node)
    pad, padding = _padding(node)
    kwargs = _changed(
        strides=(_size(r.strides), 1),
        padding=(padding, "valid"),
        dilation_rate=(_size(r.dilation), 1),
        groups=(layer.groups, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("Conv1D", (layer.filters, _size(r.kernel)), kwargs)]


@register_builder("depthwise_conv2d")
def _depthwise(node: PlanNode) -> list[LayerCall]:
    layer, r = cast(L.DepthwiseConv2D, node.layer), node.resolved
    pad, padding = _padding(node)
    kwargs = _changed(
        strides=(_size(r.strides), 1),
        padding=(padding, "valid"),
        depth_multiplier=(layer.depth_multiplier, 1),
        dilation_rate=(_size(r.dilation), 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        depthwise_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("DepthwiseConv2D", (_size(r.kernel),), kwargs)]


@register_builder("separable_conv2d")
def _separable(node: PlanNode) -> list[LayerCall]:
    layer, r = cast(L.SeparableConv2D, node.layer), node.resolved
    pad, padding = _padding(node)
    kwargs = _changed(
        strides=(_size(r.strides), 1),
        padding=(padding, "valid"),
        dilation_rate=(_size(r.dilation), 1),
        depth_multiplier=(layer.depth_multiplier, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        depthwise_initializer=(layer.kernel_initializer, None),
        pointwise_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("SeparableConv2D", (layer.filters, _size(r.kernel)), kwargs)]


@register_builder("conv2d_transpose")
def _conv_transpose(node: PlanNode) -> list[LayerCall]:
    layer, r = cast(L.Conv2DTranspose, node.layer), node.resolved
    _no_strided_dilation(node)
    kwargs = _changed(
        strides=(_size(r.strides), 1),
        padding=("same" if r.same else "valid", "valid"),
        output_padding=(layer.output_padding and _size(layer.output_padding), None),
        dilation_rate=(_size(r.dilation), 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [LayerCall("Conv2DTranspose", (layer.filters, _size(r.kernel)), kwargs)]


# ----------------------------------------------------------------------------------------------------------
# pooling


def _pool(cls: str) -> Builder:
    def build(node: PlanNode) -> list[LayerCall]:
        r = node.resolved
        if r.same and cls.startswith("Average") and any(before != after for before, after in r.padding):
            # Keras' torch backend averages replicated edge values into uneven 'same' windows; give the
            # padding as amounts to a layer that leaves it out, as Keras defines 'same' average pooling.
            return [
                LayerCall(
                    "PaddedAveragePooling",
                    kwargs={"pool_size": r.kernel, "strides": r.strides, "padding": r.padding},
                )
            ]
        kwargs = _changed(
            strides=(_size(r.strides), _size(r.kernel)),  # Keras' default: the pool size
            padding=("same" if r.same else "valid", "valid"),
        )
        return [LayerCall(cls, (_size(r.kernel),), kwargs)]

    return build


register_builder("maxpool2d")(_pool("MaxPooling2D"))
register_builder("avgpool2d")(_pool("AveragePooling2D"))
register_builder("maxpool1d")(_pool("MaxPooling1D"))
register_builder("avgpool1d")(_pool("AveragePooling1D"))


def _plain(cls: str) -> Builder:
    def build(node: PlanNode) -> list[LayerCall]:
        return [LayerCall(cls)]

    return build


register_builder("global_avgpool2d")(_plain("GlobalAveragePooling2D"))
register_builder("global_maxpool2d")(_plain("GlobalMaxPooling2D"))
register_builder("global_avgpool1d")(_plain("GlobalAveragePooling1D"))
register_builder("global_maxpool1d")(_plain("GlobalMaxPooling1D"))
register_builder("flatten")(_plain("Flatten"))
register_builder("add")(_plain("Add"))
register_builder("multiply")(_plain("Multiply"))


@register_builder("zero_padding2d")
def _zero_padding(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.ZeroPadding2D, node.layer)
    return [LayerCall("ZeroPadding2D", (_amounts(layer.padding),))]


@register_builder("upsampling2d")
def _upsampling(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.UpSampling2D, node.layer)
    kwargs = _changed(size=(_size(layer.size), 2), interpolation=(layer.interpolation, "nearest"))
    return [LayerCall("UpSampling2D", (), kwargs)]


@register_builder("resizing")
def _resizing(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Resizing, node.layer)
    kwargs = _changed(interpolation=(layer.interpolation, "bilinear"))
    return [LayerCall("Resizing", (layer.height, layer.width), kwargs)]


@register_builder("cropping2d")
def _cropping(node: PlanNode) -> list[LayerCall]:
    return [LayerCall("Cropping2D", (_amounts(cast(L.Cropping2D, node.layer).cropping),))]


# ----------------------------------------------------------------------------------------------------------
# normalization, regularization, dense, shape


@register_builder("batchnorm")
def _batchnorm(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.BatchNorm, node.layer)
    kwargs = _changed(
        momentum=(layer.momentum, 0.99),
        epsilon=(layer.epsilon, 1e-3),
        center=(layer.center, True),
        scale=(layer.scale, True),
    )
    return [LayerCall("BatchNormalization", (), kwargs)]


@register_builder("layernorm")
def _layernorm(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.LayerNorm, node.layer)
    kwargs = _changed(epsilon=(layer.epsilon, 1e-3), center=(layer.center, True), scale=(layer.scale, True))
    return [LayerCall("LayerNormalization", (), kwargs)]


@register_builder("group_norm")
def _group_norm(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.GroupNorm, node.layer)
    kwargs = _changed(
        groups=(layer.groups, 32),
        epsilon=(layer.epsilon, 1e-3),
        center=(layer.center, True),
        scale=(layer.scale, True),
    )
    return [LayerCall("GroupNormalization", (), kwargs)]


@register_builder("dropout")
def _dropout(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Dropout, node.layer)
    return [LayerCall("Dropout", (layer.rate,))]


@register_builder("spatial_dropout2d")
def _spatial_dropout(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.SpatialDropout2D, node.layer)
    return [LayerCall("SpatialDropout2D", (layer.rate,))]


@register_builder("dense")
def _dense(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Dense, node.layer)
    kwargs = _changed(
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [LayerCall("Dense", (layer.units,), kwargs)]


@register_builder("reshape")
def _reshape(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Reshape, node.layer)
    return [LayerCall("Reshape", (tuple(layer.shape),))]


@register_builder("activation")
def _activation(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.ActivationLayer, node.layer)
    if layer.negative_slope is not None:
        return [LayerCall("LeakyReLU", kwargs={"negative_slope": layer.negative_slope})]
    # The string "leaky_relu" is keras.activations.leaky_relu, negative_slope 0.2.
    return [LayerCall("Activation", (layer.function,))]


@register_builder("concat")
def _concat(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Concat, node.layer)
    # The spec's axis leaves out the batch axis; Keras counts it.
    axis = layer.axis
    return [LayerCall("Concatenate", (), _changed(axis=(axis if axis < 0 else axis + 1, -1)))]


@register_builder("rescaling")
def _rescaling(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Rescaling, node.layer)
    return [LayerCall("Rescaling", (layer.scale,), _changed(offset=(layer.offset, 0.0)))]


@register_builder("bias")
def _bias(node: PlanNode) -> list[LayerCall]:
    layer = cast(L.Bias, node.layer)
    return [LayerCall("Bias", (), _changed(per=(layer.per, "channel")))]

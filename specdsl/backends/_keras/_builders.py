"""One builder per layer kind: a plan node -> the Keras layer(s) that compute it, described as plain data.

A builder returns a list of :class:`LayerCall` (usually one; a conv with explicit padding amounts gets a
ZeroPadding2D before it). ``build()`` instantiates the calls and ``source()`` prints them, so the model in
memory and the generated code cannot drift apart. Builders import no framework; sizes come from the plan
and its rules only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..._registry import Registry
from ...errors import BackendError
from ...plan import PlanNode, same_padding
from ...spec import LAYERS


@dataclass(frozen=True)
class LayerCall:
    """The constructor call of one Keras layer: its class (in ``keras.layers``, or one of ``CUSTOM_LAYERS``) and
    its arguments.

    The last call of a node is named as the node; an earlier one as ``<node>_<suffix>``.
    """

    cls: str
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


def _explicit_padding(node: PlanNode, padding: Any, kernel, strides, dilation) -> tuple[list[LayerCall], str]:
    """'valid' / 'same' pass through; explicit amounts become a ZeroPadding layer before a valid conv,
    unless they are exactly what 'same' pads (AlphaGo's 5x5 conv, padding 2): that reads better as 'same'."""
    if isinstance(padding, str):
        return [], padding
    rank = len(kernel)
    pads = (padding,) if rank == 1 else padding
    if not any(before or after for before, after in pads):
        return [], "valid"
    sizes = node.input_shapes[0][:rank]
    same = tuple(same_padding(*axis) for axis in zip(sizes, kernel, strides, dilation, strict=True))
    if tuple(pads) == same:
        return [], "same"
    if rank == 1:
        return [LayerCall("ZeroPadding1D", kwargs={"padding": _size(padding)}, suffix="pad")], "valid"
    return [LayerCall("ZeroPadding2D", kwargs={"padding": _amounts(padding)}, suffix="pad")], "valid"


def _no_strided_dilation(
    node: PlanNode, cls: str, strides: tuple[int, ...], dilation: tuple[int, ...]
) -> None:
    if max(strides) > 1 and max(dilation) > 1:
        raise refuse(
            node,
            f"Keras' {cls} cannot combine strides > 1 with dilation > 1, but got strides={_size(strides)} "
            f"and dilation={_size(dilation)}.",
            "Use strides: 1 and downsample with a pooling layer after it, or drop the dilation.",
        )


# ----------------------------------------------------------------------------------------------------------
# convolutions


@register_builder("conv2d")
def _conv2d(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    _no_strided_dilation(node, "Conv2D", layer.strides, layer.dilation)
    pad, padding = _explicit_padding(node, layer.padding, layer.kernel, layer.strides, layer.dilation)
    kwargs = _changed(
        strides=(_size(layer.strides), 1),
        padding=(padding, "valid"),
        dilation_rate=(_size(layer.dilation), 1),
        groups=(layer.groups, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("Conv2D", (layer.filters, _size(layer.kernel)), kwargs)]


@register_builder("conv1d")
def _conv1d(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    _no_strided_dilation(node, "Conv1D", (layer.strides,), (layer.dilation,))
    pad, padding = _explicit_padding(
        node, layer.padding, (layer.kernel,), (layer.strides,), (layer.dilation,)
    )
    kwargs = _changed(
        strides=(layer.strides, 1),
        padding=(padding, "valid"),
        dilation_rate=(layer.dilation, 1),
        groups=(layer.groups, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("Conv1D", (layer.filters, layer.kernel), kwargs)]


@register_builder("depthwise_conv2d")
def _depthwise(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    pad, padding = _explicit_padding(node, layer.padding, layer.kernel, layer.strides, layer.dilation)
    kwargs = _changed(
        strides=(_size(layer.strides), 1),
        padding=(padding, "valid"),
        depth_multiplier=(layer.depth_multiplier, 1),
        dilation_rate=(_size(layer.dilation), 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        depthwise_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("DepthwiseConv2D", (_size(layer.kernel),), kwargs)]


@register_builder("separable_conv2d")
def _separable(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    pad, padding = _explicit_padding(node, layer.padding, layer.kernel, layer.strides, layer.dilation)
    kwargs = _changed(
        strides=(_size(layer.strides), 1),
        padding=(padding, "valid"),
        dilation_rate=(_size(layer.dilation), 1),
        depth_multiplier=(layer.depth_multiplier, 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        depthwise_initializer=(layer.kernel_initializer, None),
        pointwise_initializer=(layer.kernel_initializer, None),
    )
    return [*pad, LayerCall("SeparableConv2D", (layer.filters, _size(layer.kernel)), kwargs)]


@register_builder("conv2d_transpose")
def _conv_transpose(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    _no_strided_dilation(node, "Conv2DTranspose", layer.strides, layer.dilation)
    kwargs = _changed(
        strides=(_size(layer.strides), 1),
        padding=(layer.padding, "valid"),
        output_padding=(layer.output_padding and _size(layer.output_padding), None),
        dilation_rate=(_size(layer.dilation), 1),
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [LayerCall("Conv2DTranspose", (layer.filters, _size(layer.kernel)), kwargs)]


# ----------------------------------------------------------------------------------------------------------
# pooling


def _pool(cls: str, rank: int) -> Builder:
    def build(node: PlanNode) -> list[LayerCall]:
        layer = node.layer
        pool = (layer.pool,) if rank == 1 else layer.pool
        strides = layer.strides or layer.pool
        strides = (strides,) if rank == 1 else strides
        if cls.startswith("Average") and layer.padding == "same":
            # Keras' torch backend averages replicated edge values into uneven 'same' windows; give the
            # padding as amounts to a layer that leaves it out, as Keras defines 'same' average pooling.
            pads = tuple(
                same_padding(n, k, s)
                for n, k, s in zip(node.input_shapes[0][:rank], pool, strides, strict=True)
            )
            if any(before != after for before, after in pads):
                return [
                    LayerCall(
                        "PaddedAveragePooling",
                        kwargs={"pool_size": pool, "strides": strides, "padding": pads},
                    )
                ]
        kwargs = _changed(
            strides=(layer.strides and _size(strides), None),
            padding=(layer.padding, "valid"),
        )
        return [LayerCall(cls, (_size(pool),), kwargs)]

    return build


register_builder("maxpool2d")(_pool("MaxPooling2D", 2))
register_builder("avgpool2d")(_pool("AveragePooling2D", 2))
register_builder("maxpool1d")(_pool("MaxPooling1D", 1))
register_builder("avgpool1d")(_pool("AveragePooling1D", 1))


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
    return [LayerCall("ZeroPadding2D", (_amounts(node.layer.padding),))]


# ----------------------------------------------------------------------------------------------------------
# normalization, regularization, dense, shape


@register_builder("batchnorm")
def _batchnorm(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    kwargs = _changed(
        momentum=(layer.momentum, 0.99),
        epsilon=(layer.epsilon, 1e-3),
        center=(layer.center, True),
        scale=(layer.scale, True),
    )
    return [LayerCall("BatchNormalization", (), kwargs)]


@register_builder("layernorm")
def _layernorm(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    kwargs = _changed(epsilon=(layer.epsilon, 1e-3), center=(layer.center, True), scale=(layer.scale, True))
    return [LayerCall("LayerNormalization", (), kwargs)]


@register_builder("dropout")
def _dropout(node: PlanNode) -> list[LayerCall]:
    return [LayerCall("Dropout", (node.layer.rate,))]


@register_builder("spatial_dropout2d")
def _spatial_dropout(node: PlanNode) -> list[LayerCall]:
    return [LayerCall("SpatialDropout2D", (node.layer.rate,))]


@register_builder("dense")
def _dense(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    kwargs = _changed(
        activation=(layer.activation, None),
        use_bias=(layer.use_bias, True),
        kernel_initializer=(layer.kernel_initializer, None),
    )
    return [LayerCall("Dense", (layer.units,), kwargs)]


@register_builder("reshape")
def _reshape(node: PlanNode) -> list[LayerCall]:
    return [LayerCall("Reshape", (tuple(node.layer.shape),))]


@register_builder("activation")
def _activation(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    if layer.negative_slope is not None:
        return [LayerCall("LeakyReLU", kwargs={"negative_slope": layer.negative_slope})]
    # The string "leaky_relu" is keras.activations.leaky_relu, negative_slope 0.2.
    return [LayerCall("Activation", (layer.function,))]


@register_builder("concat")
def _concat(node: PlanNode) -> list[LayerCall]:
    # The spec's axis leaves out the batch axis; Keras counts it.
    axis = node.layer.axis
    return [LayerCall("Concatenate", (), _changed(axis=(axis if axis < 0 else axis + 1, -1)))]


@register_builder("rescaling")
def _rescaling(node: PlanNode) -> list[LayerCall]:
    layer = node.layer
    return [LayerCall("Rescaling", (layer.scale,), _changed(offset=(layer.offset, 0.0)))]


@register_builder("bias")
def _bias(node: PlanNode) -> list[LayerCall]:
    return [LayerCall("Bias", (), _changed(per=(node.layer.per, "channel")))]

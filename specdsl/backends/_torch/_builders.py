"""One builder per layer kind: what torch module computes a plan node, described once for ``build`` and ``source``.

A builder takes a :class:`~specdsl.plan.PlanNode` and returns a :class:`~._built.Built`: the constructor call of
the node's module (a ``ModuleCall``, which ``build`` evaluates and ``source`` writes out), how to initialize its
parameters as Keras does, and where Keras' weights of the layer go. Sizes, padding amounts and fans come from the
plan (``node.shape``, ``node.resolved``); nothing here recomputes them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, cast

from torch import nn

from ..._plugins import load_plugins
from ..._registry import Registry
from ...errors import BackendError
from ...plan import PlanNode, Resolved
from ...spec import INITIALIZERS, LAYERS
from ...spec import layers as L
from . import _modules as M
from ._built import (
    AS_IS,
    CHANNELS_LAST,
    DENSE,
    KERNEL_1D,
    KERNEL_2D,
    Built,
    Layout,
    ModuleCall,
    call,
    depthwise_layout,
)

BACKEND = "torch"


# ---------------------------------------------------------------------------------------------------------------
# The registry

Builder = Callable[[PlanNode], Built]
BUILDERS: Registry[Builder] = Registry("torch builder", within=LAYERS)
register_builder = BUILDERS.register  # @register_builder("conv2d"): the torch builder of a layer kind


def build_node(node: PlanNode) -> Built:
    """The Built of one plan node; a kind without a builder is a BackendError located at the layer."""
    if node.kind not in BUILDERS:
        load_plugins("specdsl.torch")  # a plug-in's kind: its builder registers as its module is imported
    fn = BUILDERS.get(node.kind)
    if fn is None:
        raise BackendError(
            f"the {BACKEND} backend has no builder for layer kind `{node.kind}`.",
            loc=node.loc,
            path=node.path or None,
            hint=f"Kinds it builds: {', '.join(sorted(BUILDERS))}. Use the keras backend, or a plug-in's builder.",
        )
    return fn(node)


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces


def _act(name: str | None, negative_slope: float | None = None) -> ModuleCall | None:
    """The module of a Keras activation name, in torch's layout (softmax over the channel axis); None for linear."""
    if name is None or name == "linear":
        return None
    if name == "leaky_relu":
        return call(nn.LeakyReLU, 0.2 if negative_slope is None else negative_slope)
    if name == "softmax":
        return call(nn.Softmax, dim=1)
    return call(ACTIVATIONS[name])


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,  # exact (erf), as Keras' default
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6, as Keras 3
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
}


def _initializer(node: PlanNode) -> str:
    name = getattr(node.layer, "kernel_initializer", None) or "glorot_uniform"
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # GlorotUniform -> glorot_uniform, as Keras accepts
    if snake not in INITIALIZERS:
        near = difflib.get_close_matches(snake, INITIALIZERS, n=1)
        raise BackendError(
            f"kernel_initializer `{name}` is not one the {BACKEND} backend knows; it knows "
            f"{', '.join(INITIALIZERS)}.",
            loc=node.loc,
            path=node.path or None,
            hint=f"Did you mean `{near[0]}`?" if near else None,
        )
    return snake


def _short(pair: tuple[int, ...]) -> int | tuple[int, ...]:
    """(3, 3) -> 3, as torch users write square sizes; (3, 2) stays."""
    return pair[0] if len(set(pair)) == 1 else tuple(pair)


def _pads(r: Resolved) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """The plan's padding amounts as torch takes them: (symmetric padding per axis for torch's layer, None), or
    (zeros, the asymmetric amounts in ``F.pad``'s order, last axis first: (left, right, top, bottom))."""
    if all(before == after for before, after in r.padding):
        return tuple(before for before, _ in r.padding), None
    return (0,) * len(r.padding), tuple(x for axis in reversed(r.padding) for x in axis)


def _window_options(r: Resolved, padding: tuple[int, ...]) -> list[tuple[str, Any]]:
    """kwargs of a torch conv: kernel_size, and stride, padding, dilation unless they are torch's defaults."""
    kw: list[tuple[str, Any]] = [("kernel_size", _short(r.kernel))]
    if set(r.strides) != {1}:
        kw.append(("stride", _short(r.strides)))
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
    if set(r.dilation) != {1}:
        kw.append(("dilation", _short(r.dilation)))
    return kw


def _conv_options(node: PlanNode, cls_plain, cls_full, *, groups=1, bias=True):
    """kwargs of a conv module, leaving out torch's defaults; the helper class when padding or activation need it."""
    padding, pad = _pads(node.resolved)
    kw = _window_options(node.resolved, padding)
    if groups != 1:
        kw.append(("groups", groups))
    if not bias:
        kw.append(("bias", False))
    act = _act(cast("L.Conv2D | L.Conv1D | L.DepthwiseConv2D | L.SeparableConv2D", node.layer).activation)
    if pad is None and act is None:
        return cls_plain, kw
    if pad is not None:
        kw.append(("pad", pad))
    if act is not None:
        kw.append(("activation", act))
    return cls_full, kw


def _kernels(node: PlanNode, *paths: str) -> tuple[tuple[str, str, int, int], ...]:
    """(parameter, initializer, fan_in, fan_out) of each kernel, the fans as the plan resolved them."""
    init = _initializer(node)
    return tuple(
        (path, init, fan_in, fan_out)
        for path, (fan_in, fan_out) in zip(paths, node.resolved.fans, strict=True)
    )


def _with_bias(layer, kernel_entry: tuple[str, Layout]) -> tuple[tuple[str, Layout], ...]:
    return (kernel_entry, ("bias", AS_IS)) if layer.use_bias else (kernel_entry,)


# ---------------------------------------------------------------------------------------------------------------
# Convolutions


@register_builder("conv2d")
def _conv2d(node: PlanNode) -> Built:
    layer = cast(L.Conv2D, node.layer)
    c = node.input_shapes[0][-1]
    cls, kw = _conv_options(node, nn.Conv2d, M.Conv2dPadAct, groups=layer.groups, bias=layer.use_bias)
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=_kernels(node, "weight"),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_2D)),
    )


@register_builder("conv1d")
def _conv1d(node: PlanNode) -> Built:
    layer = cast(L.Conv1D, node.layer)
    c = node.input_shapes[0][-1]
    cls, kw = _conv_options(node, nn.Conv1d, M.Conv1dPadAct, groups=layer.groups, bias=layer.use_bias)
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=_kernels(node, "weight"),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_1D)),
    )


@register_builder("depthwise_conv2d")
def _depthwise_conv2d(node: PlanNode) -> Built:
    layer = cast(L.DepthwiseConv2D, node.layer)
    c = node.input_shapes[0][-1]
    m = layer.depth_multiplier
    cls, kw = _conv_options(node, nn.Conv2d, M.Conv2dPadAct, groups=c, bias=layer.use_bias)
    return Built(
        ModuleCall(cls, (c, c * m), tuple(kw)),
        kernels=_kernels(node, "weight"),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", depthwise_layout(m))),
    )


@register_builder("separable_conv2d")
def _separable_conv2d(node: PlanNode) -> Built:
    layer = cast(L.SeparableConv2D, node.layer)
    c = node.input_shapes[0][-1]
    m = layer.depth_multiplier
    padding, pad = _pads(node.resolved)
    kw = _window_options(node.resolved, padding)
    if m != 1:
        kw.append(("depth_multiplier", m))
    if not layer.use_bias:
        kw.append(("bias", False))
    if pad is not None:
        kw.append(("pad", pad))
    act = _act(layer.activation)
    if act is not None:
        kw.append(("activation", act))
    keras = (("depthwise.weight", depthwise_layout(m)), ("pointwise.weight", KERNEL_2D))
    return Built(
        ModuleCall(M.SeparableConv2d, (c, layer.filters), tuple(kw)),
        kernels=_kernels(node, "depthwise.weight", "pointwise.weight"),
        zeros=("pointwise.bias",) if layer.use_bias else (),
        keras=keras + ((("pointwise.bias", AS_IS),) if layer.use_bias else ()),
    )


def _transpose_axis(before: int, after: int, s: int, d: int) -> tuple[int, int, int, int]:
    """torch (padding, output_padding, crop before, crop after) that crop Keras' (before, after) from the full
    transposed convolution on one axis: torch drops ``padding`` values at both ends and adds ``output_padding``
    at the end; what that cannot express is cropped after it."""
    limit = max(s, d)  # torch requires output_padding < max(stride, dilation)
    if after < before and before - after < limit:
        return before, before - after, 0, 0  # output_padding adds back what the symmetric padding over-crops
    if after >= 0:
        p = min(before, after)
        return p, 0, before - p, after - p
    return 0, -after, before, 0  # Keras' rule keeps -after < s


@register_builder("conv2d_transpose")
def _conv2d_transpose(node: PlanNode) -> Built:
    layer, r = cast(L.Conv2DTranspose, node.layer), node.resolved
    c = node.input_shapes[0][-1]
    axes = [_transpose_axis(*r.padding[i], r.strides[i], r.dilation[i]) for i in range(2)]
    padding = (axes[0][0], axes[1][0])
    output_padding = (axes[0][1], axes[1][1])
    crop = (axes[0][2], axes[0][3], axes[1][2], axes[1][3])
    kw: list[tuple[str, Any]] = [("kernel_size", _short(r.kernel))]
    if set(r.strides) != {1}:
        kw.append(("stride", _short(r.strides)))
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
    if set(output_padding) != {0}:
        kw.append(("output_padding", _short(output_padding)))
    if not layer.use_bias:
        kw.append(("bias", False))
    if set(r.dilation) != {1}:
        kw.append(("dilation", _short(r.dilation)))
    act = _act(layer.activation)
    cls = nn.ConvTranspose2d
    if any(crop) or act is not None:
        cls = M.ConvTranspose2dCropAct
        if any(crop):
            kw.append(("crop", crop))
        if act is not None:
            kw.append(("activation", act))
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=_kernels(node, "weight"),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_2D)),
    )


# ---------------------------------------------------------------------------------------------------------------
# Pooling


def _pool(node: PlanNode, average: bool) -> Built:
    r = node.resolved
    rank = len(r.kernel)
    pool, strides = _short(r.kernel), _short(r.strides)
    padding, pad = _pads(r)
    kw: list[tuple[str, Any]] = []
    if r.strides != r.kernel:
        kw.append(("stride", strides))
    if pad is not None:
        if average:
            return Built(call(M.AvgPool2dSame if rank == 2 else M.AvgPool1dSame, pool, strides, pad))
        return Built(
            call(
                nn.Sequential,
                call(nn.ConstantPad2d if rank == 2 else nn.ConstantPad1d, pad, float("-inf")),
                ModuleCall(nn.MaxPool2d if rank == 2 else nn.MaxPool1d, (pool,), tuple(kw)),
            )
        )
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
        if average:
            kw.append(("count_include_pad", False))  # Keras leaves 'same' padding out of the mean
    cls = (
        (nn.AvgPool2d if average else nn.MaxPool2d)
        if rank == 2
        else (nn.AvgPool1d if average else nn.MaxPool1d)
    )
    return Built(ModuleCall(cls, (pool,), tuple(kw)))


register_builder("maxpool2d")(lambda node: _pool(node, average=False))
register_builder("avgpool2d")(lambda node: _pool(node, average=True))
register_builder("maxpool1d")(lambda node: _pool(node, average=False))
register_builder("avgpool1d")(lambda node: _pool(node, average=True))


def _global(pool: type[nn.Module]) -> Builder:
    return lambda node: Built(call(nn.Sequential, call(pool, 1), call(nn.Flatten)))


register_builder("global_avgpool2d")(_global(nn.AdaptiveAvgPool2d))
register_builder("global_maxpool2d")(_global(nn.AdaptiveMaxPool2d))
register_builder("global_avgpool1d")(_global(nn.AdaptiveAvgPool1d))
register_builder("global_maxpool1d")(_global(nn.AdaptiveMaxPool1d))


@register_builder("zero_padding2d")
@register_builder("cropping2d")
def _pad2d(node: PlanNode) -> Built:
    (t, b), (left, right) = node.resolved.padding  # negative amounts crop (cropping2d)
    return Built(call(nn.ZeroPad2d, (left, right, t, b)))


def _upsample(bilinear: bool, **size: Any) -> Built:
    """nn.Upsample as Keras resizes on torch: bilinear without aligned corners or antialiasing; nearest (half-pixel
    centres) as torch's nearest for a whole factor, which repeats rows and columns and exports to ONNX."""
    mode = {"mode": "bilinear", "align_corners": False} if bilinear else {"mode": "nearest"}
    return Built(call(nn.Upsample, **size, **mode))


@register_builder("upsampling2d")
def _upsampling2d(node: PlanNode) -> Built:
    layer = cast(L.UpSampling2D, node.layer)
    return _upsample(layer.interpolation == "bilinear", scale_factor=_short(layer.size))


@register_builder("resizing")
def _resizing(node: PlanNode) -> Built:
    if cast(L.Resizing, node.layer).interpolation == "bilinear":
        return _upsample(True, size=node.shape[:2])
    return Built(call(M.NearestResize, node.shape[:2], node.input_shapes[0][:2]))


# ---------------------------------------------------------------------------------------------------------------
# Normalization, regularization


@register_builder("batchnorm")
def _batchnorm(node: PlanNode) -> Built:
    layer = cast(L.BatchNorm, node.layer)
    shape = node.input_shapes[0]
    c = shape[-1]
    kw: list[tuple[str, Any]] = [("eps", layer.epsilon), ("momentum", _torch_momentum(layer.momentum))]
    keras: tuple[tuple[str, Layout], ...] = ()
    if layer.scale:
        keras += (("weight", AS_IS),)
    if layer.center:
        keras += (("bias", AS_IS),)
    keras += (("running_mean", AS_IS), ("running_var", AS_IS))
    if layer.center != layer.scale:
        module = ModuleCall(M.BatchNorm, (c,), (*kw, ("center", layer.center), ("scale", layer.scale)))
    else:
        if not layer.center:
            kw.append(("affine", False))
        module = ModuleCall(nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d, (c,), tuple(kw))
    return Built(module, keras=keras)


def _torch_momentum(keras_momentum: float) -> float:
    """Keras: moving = m * moving + (1 - m) * batch; torch: running = (1 - m) * running + m * batch."""
    return float(round(1.0 - keras_momentum, 12))


@register_builder("layernorm")
def _layernorm(node: PlanNode) -> Built:
    layer = cast(L.LayerNorm, node.layer)
    kw: list[tuple[str, Any]] = [("eps", layer.epsilon)]
    if not layer.center:
        kw.append(("center", False))
    if not layer.scale:
        kw.append(("scale", False))
    keras = ((("weight", AS_IS),) if layer.scale else ()) + ((("bias", AS_IS),) if layer.center else ())
    return Built(ModuleCall(M.ChannelLayerNorm, (node.input_shapes[0][-1],), tuple(kw)), keras=keras)


@register_builder("group_norm")
def _group_norm(node: PlanNode) -> Built:
    layer = cast(L.GroupNorm, node.layer)
    args = (layer.groups, node.input_shapes[0][-1])
    keras = ((("weight", AS_IS),) if layer.scale else ()) + ((("bias", AS_IS),) if layer.center else ())
    if layer.center != layer.scale:
        kw = (("eps", layer.epsilon), ("center", layer.center), ("scale", layer.scale))
        return Built(ModuleCall(M.PartialGroupNorm, args, kw), keras=keras)
    affine = () if layer.center else (("affine", False),)
    return Built(ModuleCall(nn.GroupNorm, args, (("eps", layer.epsilon), *affine)), keras=keras)


@register_builder("dropout")
def _dropout(node: PlanNode) -> Built:
    layer = cast(L.Dropout, node.layer)
    return Built(call(nn.Dropout, layer.rate))


@register_builder("spatial_dropout2d")
def _spatial_dropout2d(node: PlanNode) -> Built:
    layer = cast(L.SpatialDropout2D, node.layer)
    return Built(call(nn.Dropout2d, layer.rate))


# ---------------------------------------------------------------------------------------------------------------
# Shape changes, dense, activations, merges


@register_builder("flatten")
def _flatten(node: PlanNode) -> Built:
    return Built(call(M.ChannelsLastFlatten))


@register_builder("reshape")
def _reshape(node: PlanNode) -> Built:
    return Built(call(M.ChannelsLastReshape, list(node.shape)))  # the plan's shape, -1 resolved


@register_builder("dense")
def _dense(node: PlanNode) -> Built:
    layer = cast(L.Dense, node.layer)
    shape = node.input_shapes[0]
    n = shape[-1]
    act = _act(layer.activation)
    kw: list[tuple[str, Any]] = [] if layer.use_bias else [("bias", False)]
    if act is None and len(shape) == 1:
        module = ModuleCall(nn.Linear, (n, layer.units), tuple(kw))
    else:
        module = ModuleCall(
            M.Dense, (n, layer.units), tuple(kw + ([("activation", act)] if act is not None else []))
        )
    return Built(
        module,
        kernels=_kernels(node, "weight"),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", DENSE)),
    )


@register_builder("activation")
def _activation(node: PlanNode) -> Built:
    layer = cast(L.ActivationLayer, node.layer)
    return Built(_act(layer.function, layer.negative_slope) or call(nn.Identity))


@register_builder("add")
def _add(node: PlanNode) -> Built:
    return Built(call(M.Add))


@register_builder("multiply")
def _multiply(node: PlanNode) -> Built:
    return Built(call(M.Multiply))


@register_builder("concat")
def _concat(node: PlanNode) -> Built:
    layer = cast(L.Concat, node.layer)
    rank = len(node.input_shapes[0])
    axis = layer.axis % rank
    # channels-last axis `rank - 1` is torch's axis 1; the others move one up
    dim = 1 if axis == rank - 1 else axis + 2
    return Built(ModuleCall(M.Concat, (), (("dim", dim),) if dim != 1 else ()))


@register_builder("rescaling")
def _rescaling(node: PlanNode) -> Built:
    layer = cast(L.Rescaling, node.layer)
    return Built(ModuleCall(M.Rescaling, (layer.scale,), (("offset", layer.offset),) if layer.offset else ()))


@register_builder("bias")
def _bias(node: PlanNode) -> Built:
    layer = cast(L.Bias, node.layer)
    shape = node.input_shapes[0]
    if layer.per == "channel":
        return Built(call(M.Bias, (shape[-1],)), keras=(("bias", AS_IS),))
    torch_shape = (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)
    return Built(call(M.Bias, torch_shape), keras=(("bias", CHANNELS_LAST),))

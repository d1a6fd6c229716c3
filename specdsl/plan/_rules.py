"""Pure shape, parameter and FLOP rules, one per layer kind. No framework is imported here.

Every rule takes the layer's spec model and its input shapes (channels-last, batch axis excluded) and returns
the output shape, the parameter counts exactly as Keras' ``model.summary()`` counts them (trainable and
non-trainable), the forward FLOPs for one example, the warnings of the layer (a stride leaving input out), and
what it resolved for the backends (:class:`~specdsl.plan.Resolved`: window sizes and padding amounts as tuples,
kernels' fans). Sliding windows are sized in ``_windows.py``, the one place their arithmetic lives.

FLOP convention: a multiply-add is 2 FLOPs (so conv and dense FLOPs are 2x their MACs); a bias add, an
activation, a comparison in max pooling or an add in average pooling is 1 FLOP per value; batch normalization
in inference is 2 FLOPs per value (scale and shift). Data movement (flatten, reshape, padding, dropout) is free.

The planner calls these rules; the summary and both backends read what the plan recorded, and nothing else
computes a shape, a padding amount or a fan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._registry import Registry
from ..spec import layers as L
from ._windows import (
    NO_WARNINGS,
    NOTHING,
    ONES_2D,
    Resolved,
    RuleError,
    RuleWarning,
    Shape,
    fmt,
    numel,
    transpose_length,
    transpose_padding,
    weights,
    windows_1d,
    windows_2d,
)

# What a rule gives: (output shape, trainable, non-trainable, FLOPs, warnings, what it resolved). A plain tuple: it
# is made about ten times faster than a named tuple, and planning InceptionV3 makes ~300 of them.
Out = tuple[Shape, int, int, int, tuple[RuleWarning, ...], Resolved]
_new = tuple.__new__  # a Resolved made as its _make() makes it, without the keyword machinery


Rule = Callable[..., Out]
RULES: Registry[Rule] = Registry("rule", within=L.LAYERS)
register_rule = RULES.register  # @register_rule("conv2d"): the shape rule of a layer kind, registered once


def _rank_error(kind: str, ins: Shape, rank: int) -> RuleError:
    meaning, hint = {
        3: (
            "(H, W, C)",
            "Images are (height, width, channels); put the layer before the flatten, or reshape.",
        ),
        2: ("(L, C)", "Sequences are (length, channels); reshape first."),
    }[rank]
    return RuleError(
        f"{kind} needs a {meaning} input of rank {rank}, but got shape {fmt(ins)} (rank {len(ins)}).", hint
    )


def _groups_error(c: int, groups: int) -> RuleError:
    return RuleError(
        f"input channels must be divisible by groups, but got {c} channels and groups={groups}.",
        f"Use groups that divide {c}.",
    )


def _bias_weight(use_bias: bool, n: int) -> tuple[tuple[str, Shape], ...]:
    """The bias weight of a kernel layer, when it has one."""
    return (("bias", (n,)),) if use_bias else ()


def _affine(layer: L.BatchNorm | L.LayerNorm | L.GroupNorm, c: int) -> tuple[tuple[str, Shape], ...]:
    """A normalization's gamma (``scale``) and beta (``center``), as Keras names and orders them."""
    return (("gamma", (c,)),) * layer.scale + (("beta", (c,)),) * layer.center


def _act_flops(activation: str | None, n: int) -> int:
    return n if activation is not None and activation != "linear" else 0


# Rules read each field of a layer once: a pydantic model's attribute is several times slower to read than a
# local variable, and the rules are the whole cost of planning.


# ---------------------------------------------------------------------------------------------------------------
# Rules


@register_rule("conv2d")
def _conv2d(layer: L.Conv2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("conv2d", x, 3)
    c, groups, kernel, filters, use_bias = x[2], layer.groups, layer.kernel, layer.filters, layer.use_bias
    if c % groups:
        raise _groups_error(c, groups)
    strides, dilation = layer.strides, layer.dilation
    (oh, ow), warn, pads, same = windows_2d("kernel", x, kernel, strides, dilation, layer.padding)
    rf = kernel[0] * kernel[1]
    fan_in = rf * (c // groups)
    n_out = oh * ow * filters
    flops = 2 * fan_in * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    w = (("kernel", (*kernel, c // groups, filters)), *_bias_weight(use_bias, filters))
    resolved = _new(Resolved, (kernel, strides, dilation, pads, same, ((fan_in, rf * filters),), w))
    return (oh, ow, filters), fan_in * filters + (filters if use_bias else 0), 0, flops, warn, resolved


@register_rule("conv1d")
def _conv1d(layer: L.Conv1D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 2:
        raise _rank_error("conv1d", x, 2)
    c, groups, kernel, filters, use_bias = x[1], layer.groups, layer.kernel, layer.filters, layer.use_bias
    if c % groups:
        raise _groups_error(c, groups)
    strides, dilation = layer.strides, layer.dilation
    n, warn, pads, same = windows_1d("kernel", x, kernel, strides, dilation, layer.padding)
    fan_in = kernel * (c // groups)
    n_out = n * filters
    flops = 2 * fan_in * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    w = (("kernel", (kernel, c // groups, filters)), *_bias_weight(use_bias, filters))
    fans = ((fan_in, kernel * filters),)
    resolved = _new(Resolved, ((kernel,), (strides,), (dilation,), pads, same, fans, w))
    return (n, filters), fan_in * filters + (filters if use_bias else 0), 0, flops, warn, resolved


@register_rule("depthwise_conv2d")
def _depthwise(layer: L.DepthwiseConv2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("depthwise_conv2d", x, 3)
    kernel, strides, dilation, m, use_bias = (
        layer.kernel,
        layer.strides,
        layer.dilation,
        layer.depth_multiplier,
        layer.use_bias,
    )
    (oh, ow), warn, pads, same = windows_2d("kernel", x, kernel, strides, dilation, layer.padding)
    out_c = x[2] * m
    k = kernel[0] * kernel[1]
    n_out = oh * ow * out_c
    flops = 2 * k * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    # Keras' depthwise kernel is (kh, kw, C, m)
    w = (("kernel", (*kernel, x[2], m)), *_bias_weight(use_bias, out_c))
    resolved = _new(Resolved, (kernel, strides, dilation, pads, same, ((k * x[2], k * m),), w))
    return (oh, ow, out_c), k * out_c + (out_c if use_bias else 0), 0, flops, warn, resolved


@register_rule("separable_conv2d")
def _separable(layer: L.SeparableConv2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("separable_conv2d", x, 3)
    kernel, strides, dilation, filters, use_bias = (
        layer.kernel,
        layer.strides,
        layer.dilation,
        layer.filters,
        layer.use_bias,
    )
    (oh, ow), warn, pads, same = windows_2d("kernel", x, kernel, strides, dilation, layer.padding)
    m = layer.depth_multiplier
    mid = x[2] * m
    k = kernel[0] * kernel[1]
    weights = k * mid + mid * filters + (filters if use_bias else 0)
    n_out = oh * ow * filters
    flops = (
        2 * k * oh * ow * mid
        + 2 * mid * n_out
        + (n_out if use_bias else 0)
        + _act_flops(layer.activation, n_out)
    )
    # the depthwise kernel (kh, kw, C, m), then the pointwise one (1, 1, C * m, filters)
    fans = ((k * x[2], k * m), (mid, filters))
    w = (
        ("depthwise_kernel", (*kernel, x[2], m)),
        ("pointwise_kernel", (1, 1, mid, filters)),
        *_bias_weight(use_bias, filters),
    )
    resolved = _new(Resolved, (kernel, strides, dilation, pads, same, fans, w))
    return (oh, ow, filters), weights, 0, flops, warn, resolved


@register_rule("conv2d_transpose")
def _conv_transpose(layer: L.Conv2DTranspose, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("conv2d_transpose", x, 3)
    kernel, strides, filters, use_bias = layer.kernel, layer.strides, layer.filters, layer.use_bias
    op = layer.output_padding
    if op is not None:
        for i, axis in enumerate(("height", "width")):
            if op[i] >= strides[i]:
                raise RuleError(
                    f"output_padding must be smaller than strides, but got output_padding={op[i]} and "
                    f"strides={strides[i]} on the {axis} axis."
                )
    dilation, padding = layer.dilation, layer.padding
    oh, ow = (
        transpose_length(x[i], kernel[i], strides[i], dilation[i], padding, op and op[i]) for i in range(2)
    )
    if oh <= 0 or ow <= 0:
        raise RuleError(
            f"output would be {oh}x{ow} for its {fmt(x)} input.", "Use padding: valid or a larger input."
        )
    k = kernel[0] * kernel[1]
    weights = k * x[2] * filters + (filters if use_bias else 0)
    n_out = oh * ow * filters
    flops = (
        2 * k * x[2] * x[0] * x[1] * filters
        + (n_out if use_bias else 0)
        + _act_flops(layer.activation, n_out)
    )
    crops = tuple(
        transpose_padding(x[i], out, kernel[i], strides[i], dilation[i], padding, op and op[i])
        for i, out in enumerate((oh, ow))
    )
    # Keras' kernel is (kh, kw, filters, C)
    w = (("kernel", (*kernel, filters, x[2])), *_bias_weight(use_bias, filters))
    resolved = _new(
        Resolved, (kernel, strides, dilation, crops, padding == "same", ((k * filters, k * x[2]),), w)
    )
    return (oh, ow, filters), weights, 0, flops, NO_WARNINGS, resolved


def _pool2d(kind: str) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != 3:
            raise _rank_error(kind, x, 3)
        pool = layer.pool
        strides = layer.strides or pool
        (oh, ow), warn, pads, same = windows_2d("pool", x, pool, strides, ONES_2D, layer.padding)
        resolved = _new(Resolved, (pool, strides, ONES_2D, pads, same, (), ()))
        return (oh, ow, x[2]), 0, 0, oh * ow * x[2] * pool[0] * pool[1], warn, resolved

    return fn


def _pool1d(kind: str) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != 2:
            raise _rank_error(kind, x, 2)
        pool = layer.pool
        strides = layer.strides or pool
        n, warn, pads, same = windows_1d("pool", x, pool, strides, 1, layer.padding)
        return (
            (n, x[1]),
            0,
            0,
            n * x[1] * pool,
            warn,
            _new(Resolved, ((pool,), (strides,), (1,), pads, same, (), ())),
        )

    return fn


def _global_pool(kind: str, rank: int) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != rank:
            raise _rank_error(kind, x, rank)
        return (x[-1],), 0, 0, numel(x), NO_WARNINGS, NOTHING

    return fn


for _kind in ("maxpool2d", "avgpool2d"):
    register_rule(_kind)(_pool2d(_kind))
for _kind in ("maxpool1d", "avgpool1d"):
    register_rule(_kind)(_pool1d(_kind))
register_rule("global_avgpool2d")(_global_pool("global_avgpool2d", 3))
register_rule("global_maxpool2d")(_global_pool("global_maxpool2d", 3))
register_rule("global_avgpool1d")(_global_pool("global_avgpool1d", 2))
register_rule("global_maxpool1d")(_global_pool("global_maxpool1d", 2))


@register_rule("zero_padding2d")
def _zero_padding(layer: L.ZeroPadding2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("zero_padding2d", x, 3)
    (t, b), (left, right) = padding = layer.padding
    resolved = _new(Resolved, ((), (), (), padding, False, (), ()))
    return (x[0] + t + b, x[1] + left + right, x[2]), 0, 0, 0, NO_WARNINGS, resolved


@register_rule("cropping2d")
def _cropping(layer: L.Cropping2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("cropping2d", x, 3)
    (t, b), (left, right) = layer.cropping
    h, w = x[0] - t - b, x[1] - left - right
    if h <= 0 or w <= 0:
        raise RuleError(
            f"cropping {t} + {b} rows and {left} + {right} columns leaves nothing of its {fmt(x)} input "
            f"(output would be {h}x{w}).",
            "Crop less, or crop after fewer downsampling layers.",
        )
    # the crop as negative padding amounts, as the backends pad
    resolved = _new(Resolved, ((), (), (), ((-t, -b), (-left, -right)), False, (), ()))
    return (h, w, x[2]), 0, 0, 0, NO_WARNINGS, resolved


def _resized(x: Shape, height: int, width: int, interpolation: str) -> Out:
    """An image resized to ``height`` x ``width``: bilinear weighs four values (7 FLOPs an output value)."""
    out = (height, width, x[2])
    return out, 0, 0, 7 * numel(out) if interpolation == "bilinear" else 0, NO_WARNINGS, NOTHING


@register_rule("upsampling2d")
def _upsampling(layer: L.UpSampling2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("upsampling2d", x, 3)
    sh, sw = layer.size
    return _resized(x, x[0] * sh, x[1] * sw, layer.interpolation)


@register_rule("resizing")
def _resizing(layer: L.Resizing, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("resizing", x, 3)
    return _resized(x, layer.height, layer.width, layer.interpolation)


@register_rule("batchnorm")
def _batchnorm(layer: L.BatchNorm, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if layer.axis not in (-1, len(x)):  # Keras counts the batch axis: 3 is an image's channels
        raise RuleError(
            f"batchnorm normalizes the channels, the last axis (channels-last): axis -1 or {len(x)} for its "
            f"{fmt(x)} input (Keras counts the batch axis), but got axis={layer.axis}.",
            "Write axis: -1, or leave it out.",
        )
    c = x[-1]
    w = (*_affine(layer, c), ("moving_mean", (c,)), ("moving_variance", (c,)))
    # (a bool counts 0 or 1)
    return x, c * (layer.center + layer.scale), 2 * c, 2 * numel(x), NO_WARNINGS, weights(*w)


@register_rule("layernorm")
def _layernorm(layer: L.LayerNorm, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    c = x[-1]
    return x, c * (layer.center + layer.scale), 0, 5 * numel(x), NO_WARNINGS, weights(*_affine(layer, c))


@register_rule("group_norm")
def _group_norm(layer: L.GroupNorm, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    c = x[-1]
    if c % layer.groups:
        raise _groups_error(c, layer.groups)
    return x, c * (layer.center + layer.scale), 0, 5 * numel(x), NO_WARNINGS, weights(*_affine(layer, c))


@register_rule("dropout")
def _dropout(layer: L.Dropout, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, 0, NO_WARNINGS, NOTHING


@register_rule("spatial_dropout2d")
def _spatial_dropout(layer: L.SpatialDropout2D, ins: Sequence[Shape]) -> Out:
    if len(ins[0]) != 3:
        raise _rank_error("spatial_dropout2d", ins[0], 3)
    return ins[0], 0, 0, 0, NO_WARNINGS, NOTHING


@register_rule("flatten")
def _flatten(layer: L.Flatten, ins: Sequence[Shape]) -> Out:
    return (numel(ins[0]),), 0, 0, 0, NO_WARNINGS, NOTHING


@register_rule("dense")
def _dense(layer: L.Dense, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    n, units, use_bias = x[-1], layer.units, layer.use_bias
    n_out = numel(x[:-1]) * units
    flops = 2 * n * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    w = (("kernel", (n, units)), *_bias_weight(use_bias, units))
    resolved = _new(Resolved, ((), (), (), (), False, ((n, units),), w))
    return (*x[:-1], units), n * units + (units if use_bias else 0), 0, flops, NO_WARNINGS, resolved


@register_rule("reshape")
def _reshape(layer: L.Reshape, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    target = layer.shape
    total = numel(x)
    known = numel(v for v in target if v != -1)
    if -1 in target:
        if total % known:
            raise RuleError(
                f"cannot reshape {fmt(x)} ({total:,} values) to {target}: {total:,} is not divisible by {known:,}."
            )
        shape = tuple(total // known if v == -1 else v for v in target)
    else:
        shape = tuple(target)
        if known != total:
            raise RuleError(
                f"cannot reshape {fmt(x)} ({total:,} values) to {fmt(shape)} ({known:,} values).",
                "Use -1 for the axis to infer.",
            )
    return shape, 0, 0, 0, NO_WARNINGS, NOTHING


@register_rule("activation")
def _activation(layer: L.ActivationLayer, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, _act_flops(layer.function, numel(ins[0])), NO_WARNINGS, NOTHING


def _same_shapes_error(ins: Sequence[Shape], names: Sequence[str]) -> RuleError:
    """The error for the first input whose shape differs from the first one's (there is one)."""
    names = list(names) or [f"input {i}" for i in range(len(ins))]
    name, shape = next((n, s) for n, s in zip(names[1:], ins[1:]) if s != ins[0])
    return RuleError(
        f"inputs must all have the same shape, but `{names[0]}` is {fmt(ins[0])} and `{name}` is {fmt(shape)}.",
        "Match them with a 1x1 conv2d (channels) or a strided conv/pool (size) on one branch.",
    )


@register_rule("add")
def _add(layer: L.Add, ins: Sequence[Shape], names: Sequence[str] = ()) -> Out:
    first = ins[0]
    if ins.count(first) != len(ins):
        raise _same_shapes_error(ins, names)
    return first, 0, 0, (len(ins) - 1) * numel(first), NO_WARNINGS, NOTHING


@register_rule("multiply")
def _multiply(layer: L.Multiply, ins: Sequence[Shape], names: Sequence[str] = ()) -> Out:
    out = ins[0]
    for i, shape in enumerate(ins[1:], 1):
        if len(shape) != len(out) or any(m != n and 1 not in (m, n) for m, n in zip(out, shape)):
            names = list(names) or [f"input {j}" for j in range(len(ins))]
            raise RuleError(
                f"inputs must broadcast to one shape (each axis equal, or 1 in one of them), but `{names[0]}` is "
                f"{fmt(ins[0])} and `{names[i]}` is {fmt(shape)}.",
                f"To scale each channel by a gate (squeeze and excitation), give the gate one value per channel "
                f"on axes of 1: `reshape: {[1] * (len(ins[0]) - 1) + [ins[0][-1]]}`.",
            )
        out = tuple(max(m, n) for m, n in zip(out, shape))
    return out, 0, 0, (len(ins) - 1) * numel(out), NO_WARNINGS, NOTHING


@register_rule("concat")
def _concat(layer: L.Concat, ins: Sequence[Shape], names: Sequence[str] = ()) -> Out:
    first, axis = ins[0], layer.axis
    rank = len(first)
    if not -rank <= axis < rank:
        raise RuleError(f"axis must be in [-{rank}, {rank - 1}] for rank-{rank} inputs, but got axis={axis}.")
    axis %= rank
    rest = first[:axis] + first[axis + 1 :]
    for i, shape in enumerate(ins):
        if len(shape) != rank or shape[:axis] + shape[axis + 1 :] != rest:
            names = list(names) or [f"input {i}" for i in range(len(ins))]
            raise RuleError(
                f"inputs must agree on every axis but axis {layer.axis}, but `{names[0]}` is {fmt(first)} "
                f"and `{names[i]}` is {fmt(shape)}.",
                "Give every branch the same spatial size (same padding, equal strides).",
            )
    return (*rest[:axis], sum([s[axis] for s in ins]), *rest[axis:]), 0, 0, 0, NO_WARNINGS, NOTHING


@register_rule("rescaling")
def _rescaling(layer: L.Rescaling, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, numel(ins[0]) * (2 if layer.offset else 1), NO_WARNINGS, NOTHING


@register_rule("bias")
def _bias(layer: L.Bias, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    n = numel(x)
    shape = x if layer.per == "position" else (x[-1],)
    return x, numel(shape), 0, n, NO_WARNINGS, weights(("bias", shape))


MERGE_KINDS = frozenset(k for k, v in L.LAYERS.items() if v.max_inputs != 1)

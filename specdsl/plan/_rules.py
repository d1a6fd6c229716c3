"""Pure shape, parameter and FLOP rules, one per layer kind. No framework is imported here.

Every rule takes the layer's spec model and its input shapes (channels-last, batch axis excluded) and returns
the output shape, the parameter counts exactly as Keras' ``model.summary()`` counts them (trainable and
non-trainable), and the forward FLOPs for one example.

FLOP convention: a multiply-add is 2 FLOPs (so conv and dense FLOPs are 2x their MACs); a bias add, an
activation, a comparison in max pooling or an add in average pooling is 1 FLOP per value; batch normalization
in inference is 2 FLOPs per value (scale and shift). Data movement (flatten, reshape, padding, dropout) is free.

Both backends and the summary call these rules; nothing else computes a shape.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

from .._registry import Registry
from ..spec import layers as L

Shape = tuple[int, ...]


class RuleError(ValueError):
    """A rule's inputs do not work out; the planner adds the file location and the layer's path."""

    def __init__(self, message: str, hint: str | None = None, *, too_small: bool = False):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # A window that does not fit a valid-padded input: the planner's hint names what shrank the input before it.
        self.too_small = too_small


# What a rule gives: (output shape, trainable, non-trainable, FLOPs, warnings). A plain tuple: it is made
# about ten times faster than a named tuple, and planning InceptionV3 makes ~300 of them.
Out = tuple[Shape, int, int, int, tuple[str, ...]]
NO_WARNINGS: tuple[str, ...] = ()


Rule = Callable[..., Out]
RULES: Registry[Rule] = Registry("rule", within=L.LAYERS)
register_rule = RULES.register  # @register_rule("conv2d"): the shape rule of a layer kind, registered once


def fmt(shape: Sequence[int]) -> str:
    """(2, 2, 128) -> '2x2x128'."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


numel: Callable[[Iterable[int]], int] = math.prod  # values in a tensor of a shape (1 for a scalar)


# ---------------------------------------------------------------------------------------------------------------
# Sizes of sliding windows (conv, pooling), the one place they are computed.


def same_padding(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """Padding (before, after) that Keras' 'same' applies to one axis: the extra pixel goes after."""
    k_eff = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def window_length(n: int, k: int, s: int, d: int, pad: str | tuple[int, int]) -> tuple[int, int]:
    """Output length of a window of size k, stride s, dilation d sliding over n values.

    ``pad`` is 'valid', 'same' or explicit (before, after) amounts. Returns (output length, values that the
    floor leaves out at the end). The output length may be <= 0; the caller reports it.
    """
    if pad == "same":
        return -(-n // s), 0
    before, after = (0, 0) if isinstance(pad, str) else pad
    k_eff = d * (k - 1) + 1
    span = n + before + after - k_eff
    if span < 0:
        return 0, 0
    return span // s + 1, span % s


# The way out of a window that does not fit its valid-padded input, by what shrank the input before it.
TOO_SMALL_HINTS = {
    "pool": "Use padding: same, or drop a pooling layer before it.",
    "strides": "Use padding: same, or lower the strides of a layer before it.",
    "none": "Use padding: same or a smaller kernel, or give the model a larger input.",
}
POOL_KINDS = frozenset({"maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"})


def _pad_text(pad: str | tuple) -> str:
    return pad if isinstance(pad, str) else str([list(p) for p in pad]) if isinstance(pad[0], tuple) else str(list(pad))


def _windows_2d(
    what: str, ins: Shape, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], pad
) -> tuple[tuple[int, int], tuple[str, ...]]:
    """Spatial output size of a 2-D window op, with errors and floor warnings stated in the spec's terms."""
    if pad == "same":  # Keras' 'same': ceil(n / s) whatever the window, and no input left out
        return (-(-ins[0] // s[0]), -(-ins[1] // s[1])), NO_WARNINGS
    if pad == "valid":  # the common case, when the windows fit and the stride leaves nothing out
        span_h, span_w = ins[0] - d[0] * (k[0] - 1) - 1, ins[1] - d[1] * (k[1] - 1) - 1
        if span_h >= 0 and span_w >= 0 and not span_h % s[0] and not span_w % s[1]:
            return (span_h // s[0] + 1, span_w // s[1] + 1), NO_WARNINGS
    h, w = ins[0], ins[1]
    pads = (pad, pad) if isinstance(pad, str) else pad
    oh, dh = window_length(h, k[0], s[0], d[0], pads[0])
    ow, dw = window_length(w, k[1], s[1], d[1], pads[1])
    if oh <= 0 or ow <= 0:
        hint = TOO_SMALL_HINTS["pool"] if pad == "valid" else "Use a smaller kernel, or give it a larger input."
        dil = f" (dilation {fmt(d)}: effective {fmt(tuple(d[i] * (k[i] - 1) + 1 for i in range(2)))})" if d != (1, 1) else ""
        raise RuleError(
            f"{what} {fmt(k)}{dil} does not fit its {fmt(ins)} input with padding={_pad_text(pad)} "
            f"(output would be {max(oh, 0)}x{max(ow, 0)}).",
            hint,
            too_small=pad == "valid",
        )
    # A window smaller than its stride skips rows everywhere by design (a strided 1x1 conv): no warning there.
    dh = dh if d[0] * (k[0] - 1) + 1 >= s[0] else 0
    dw = dw if d[1] * (k[1] - 1) + 1 >= s[1] else 0
    warnings = []
    if dh or dw:
        lost = []
        if dh:
            lost.append(f"the last {dh} row{'s' if dh > 1 else ''}")
        if dw:
            lost.append(f"the last {dw} column{'s' if dw > 1 else ''}")
        warnings.append(
            f"stride {fmt(s)} over {h}x{w} leaves out {' and '.join(lost)} of the input "
            f"(floor in the output size). Use padding: same to keep them."
        )
    return (oh, ow), tuple(warnings)


def _windows_1d(what: str, ins: Shape, k: int, s: int, d: int, pad) -> tuple[int, tuple[str, ...]]:
    n = ins[0]
    out, dropped = window_length(n, k, s, d, pad)
    if out <= 0:
        hint = TOO_SMALL_HINTS["pool"] if pad == "valid" else "Use a smaller kernel."
        dil = f" (dilation {d}: effective {d * (k - 1) + 1})" if d != 1 else ""
        raise RuleError(
            f"{what} {k}{dil} does not fit its {fmt(ins)} input with padding={_pad_text(pad)} (output would be 0).",
            hint,
            too_small=pad == "valid",
        )
    warnings = NO_WARNINGS
    if dropped and d * (k - 1) + 1 >= s:
        warnings = (f"stride {s} over length {n} leaves out the last {dropped} values (floor in the output size).",)
    return out, warnings


def _rank_error(kind: str, ins: Shape, rank: int) -> RuleError:
    meaning, hint = {
        3: ("(H, W, C)", "Images are (height, width, channels); put the layer before the flatten, or reshape."),
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
    (oh, ow), warn = _windows_2d("kernel", x, kernel, layer.strides, layer.dilation, layer.padding)
    fan_in = kernel[0] * kernel[1] * (c // groups)
    n_out = oh * ow * filters
    flops = 2 * fan_in * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (oh, ow, filters), fan_in * filters + (filters if use_bias else 0), 0, flops, warn


@register_rule("conv1d")
def _conv1d(layer: L.Conv1D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 2:
        raise _rank_error("conv1d", x, 2)
    c, groups, kernel, filters, use_bias = x[1], layer.groups, layer.kernel, layer.filters, layer.use_bias
    if c % groups:
        raise _groups_error(c, groups)
    n, warn = _windows_1d("kernel", x, kernel, layer.strides, layer.dilation, layer.padding)
    fan_in = kernel * (c // groups)
    n_out = n * filters
    flops = 2 * fan_in * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (n, filters), fan_in * filters + (filters if use_bias else 0), 0, flops, warn


@register_rule("depthwise_conv2d")
def _depthwise(layer: L.DepthwiseConv2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("depthwise_conv2d", x, 3)
    kernel, use_bias = layer.kernel, layer.use_bias
    (oh, ow), warn = _windows_2d("kernel", x, kernel, layer.strides, layer.dilation, layer.padding)
    out_c = x[2] * layer.depth_multiplier
    k = kernel[0] * kernel[1]
    n_out = oh * ow * out_c
    flops = 2 * k * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (oh, ow, out_c), k * out_c + (out_c if use_bias else 0), 0, flops, warn


@register_rule("separable_conv2d")
def _separable(layer: L.SeparableConv2D, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    if len(x) != 3:
        raise _rank_error("separable_conv2d", x, 3)
    kernel, filters, use_bias = layer.kernel, layer.filters, layer.use_bias
    (oh, ow), warn = _windows_2d("kernel", x, kernel, layer.strides, layer.dilation, layer.padding)
    mid = x[2] * layer.depth_multiplier
    k = kernel[0] * kernel[1]
    weights = k * mid + mid * filters + (filters if use_bias else 0)
    n_out = oh * ow * filters
    flops = 2 * k * oh * ow * mid + 2 * mid * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (oh, ow, filters), weights, 0, flops, warn


def transpose_length(n: int, k: int, s: int, d: int, padding: str, output_padding: int | None) -> int:
    """Keras' deconv_output_length."""
    k_eff = d * (k - 1) + 1
    if output_padding is None:
        return n * s + max(k_eff - s, 0) if padding == "valid" else n * s
    pad = 0 if padding == "valid" else k_eff // 2
    return (n - 1) * s + k_eff - 2 * pad + output_padding


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
        raise RuleError(f"output would be {oh}x{ow} for its {fmt(x)} input.", "Use padding: valid or a larger input.")
    k = kernel[0] * kernel[1]
    weights = k * x[2] * filters + (filters if use_bias else 0)
    n_out = oh * ow * filters
    flops = 2 * k * x[2] * x[0] * x[1] * filters + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (oh, ow, filters), weights, 0, flops, NO_WARNINGS


def _pool2d(kind: str) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != 3:
            raise _rank_error(kind, x, 3)
        pool = layer.pool
        (oh, ow), warn = _windows_2d("pool", x, pool, layer.strides or pool, (1, 1), layer.padding)
        return (oh, ow, x[2]), 0, 0, oh * ow * x[2] * pool[0] * pool[1], warn

    return fn


def _pool1d(kind: str) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != 2:
            raise _rank_error(kind, x, 2)
        pool = layer.pool
        n, warn = _windows_1d("pool", x, pool, layer.strides or pool, 1, layer.padding)
        return (n, x[1]), 0, 0, n * x[1] * pool, warn

    return fn


def _global_pool(kind: str, rank: int) -> Rule:
    def fn(layer, ins: Sequence[Shape]) -> Out:
        (x,) = ins
        if len(x) != rank:
            raise _rank_error(kind, x, rank)
        return (x[-1],), 0, 0, numel(x), NO_WARNINGS

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
    (t, b), (left, right) = layer.padding
    return (x[0] + t + b, x[1] + left + right, x[2]), 0, 0, 0, NO_WARNINGS


@register_rule("batchnorm")
def _batchnorm(layer: L.BatchNorm, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    c = x[-1]
    return x, c * (layer.center + layer.scale), 2 * c, 2 * numel(x), NO_WARNINGS  # (a bool counts 0 or 1)


@register_rule("layernorm")
def _layernorm(layer: L.LayerNorm, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    c = x[-1]
    return x, c * (layer.center + layer.scale), 0, 5 * numel(x), NO_WARNINGS


@register_rule("dropout")
def _dropout(layer: L.Dropout, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, 0, NO_WARNINGS


@register_rule("spatial_dropout2d")
def _spatial_dropout(layer: L.SpatialDropout2D, ins: Sequence[Shape]) -> Out:
    if len(ins[0]) != 3:
        raise _rank_error("spatial_dropout2d", ins[0], 3)
    return ins[0], 0, 0, 0, NO_WARNINGS


@register_rule("flatten")
def _flatten(layer: L.Flatten, ins: Sequence[Shape]) -> Out:
    return (numel(ins[0]),), 0, 0, 0, NO_WARNINGS


@register_rule("dense")
def _dense(layer: L.Dense, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    n, units, use_bias = x[-1], layer.units, layer.use_bias
    n_out = numel(x[:-1]) * units
    flops = 2 * n * n_out + (n_out if use_bias else 0) + _act_flops(layer.activation, n_out)
    return (*x[:-1], units), n * units + (units if use_bias else 0), 0, flops, NO_WARNINGS


@register_rule("reshape")
def _reshape(layer: L.Reshape, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    target = layer.shape
    total = numel(x)
    known = numel(v for v in target if v != -1)
    if -1 in target:
        if total % known:
            raise RuleError(f"cannot reshape {fmt(x)} ({total:,} values) to {target}: {total:,} is not divisible by {known:,}.")
        shape = tuple(total // known if v == -1 else v for v in target)
    else:
        shape = tuple(target)
        if known != total:
            raise RuleError(
                f"cannot reshape {fmt(x)} ({total:,} values) to {fmt(shape)} ({known:,} values).",
                "Use -1 for the axis to infer.",
            )
    return shape, 0, 0, 0, NO_WARNINGS


@register_rule("activation")
def _activation(layer: L.ActivationLayer, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, _act_flops(layer.function, numel(ins[0])), NO_WARNINGS


def _same_shapes_error(ins: Sequence[Shape], names: Sequence[str]) -> RuleError:
    """The error for the first input whose shape differs from the first one's (there is one)."""
    names = list(names) or [f"input {i}" for i in range(len(ins))]
    name, shape = next((n, s) for n, s in zip(names[1:], ins[1:]) if s != ins[0])
    return RuleError(
        f"inputs must all have the same shape, but `{names[0]}` is {fmt(ins[0])} and `{name}` is {fmt(shape)}.",
        "Match them with a 1x1 conv2d (channels) or a strided conv/pool (size) on one branch.",
    )


@register_rule("add")
@register_rule("multiply")
def _elementwise(layer: L.Add | L.Multiply, ins: Sequence[Shape], names: Sequence[str] = ()) -> Out:
    first = ins[0]
    if ins.count(first) != len(ins):
        raise _same_shapes_error(ins, names)
    return first, 0, 0, (len(ins) - 1) * numel(first), NO_WARNINGS


@register_rule("concat")
def _concat(layer: L.Concat, ins: Sequence[Shape], names: Sequence[str] = ()) -> Out:
    first, axis = ins[0], layer.axis
    rank = len(first)
    if not -rank <= axis < rank:
        raise RuleError(f"axis must be in [-{rank}, {rank - 1}] for rank-{rank} inputs, but got axis={axis}.")
    axis %= rank
    rest = first[:axis] + first[axis + 1:]
    for i, shape in enumerate(ins):
        if len(shape) != rank or shape[:axis] + shape[axis + 1:] != rest:
            names = list(names) or [f"input {i}" for i in range(len(ins))]
            raise RuleError(
                f"inputs must agree on every axis but axis {layer.axis}, but `{names[0]}` is {fmt(first)} "
                f"and `{names[i]}` is {fmt(shape)}.",
                "Give every branch the same spatial size (same padding, equal strides).",
            )
    return (*rest[:axis], sum([s[axis] for s in ins]), *rest[axis:]), 0, 0, 0, NO_WARNINGS


@register_rule("rescaling")
def _rescaling(layer: L.Rescaling, ins: Sequence[Shape]) -> Out:
    return ins[0], 0, 0, numel(ins[0]) * (2 if layer.offset else 1), NO_WARNINGS


@register_rule("bias")
def _bias(layer: L.Bias, ins: Sequence[Shape]) -> Out:
    (x,) = ins
    n = numel(x)
    return x, n if layer.per == "position" else x[-1], 0, n, NO_WARNINGS


MERGE_KINDS = frozenset(k for k, v in L.LAYERS.items() if v.max_inputs != 1)

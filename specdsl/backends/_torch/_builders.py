"""One builder per layer kind: what torch module computes a plan node, described once for both ``build`` and ``source``.

A builder takes a :class:`~specdsl.plan.PlanNode` and returns a :class:`Built`: the constructor call of the node's
module (a :class:`ModuleCall`, which ``build`` evaluates and ``source`` writes out), how to initialize its parameters as
Keras does, and where Keras' weights of the layer go. Sizes come from the plan and from ``specdsl.plan``'s rules
(``same_padding``); nothing here recomputes an output shape.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..._registry import Registry
from ...errors import BackendError
from ...plan import PlanNode, same_padding
from ...spec import LAYERS
from . import _modules as M

BACKEND = "torch"


# ---------------------------------------------------------------------------------------------------------------
# What a builder returns


@dataclass(frozen=True)
class ModuleCall:
    """The constructor call of a torch module, ``fn(*args, **kwargs)``: ``make()`` evaluates it, ``code()`` writes it
    as Python source. Arguments may themselves be ModuleCalls (an activation module inside a conv)."""

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def make(self) -> Any:
        return self.fn(*(_make(a) for a in self.args), **{k: _make(v) for k, v in self.kwargs})

    def code(self) -> str:
        parts = [_literal(a) for a in self.args] + [f"{k}={_literal(v)}" for k, v in self.kwargs]
        return f"{qualname(self.fn)}({', '.join(parts)})"

    def helpers(self) -> list[Callable]:
        """The functions and classes of ``_modules`` this call uses (they go into generated source)."""
        found = [self.fn] if self.fn.__module__ == M.__name__ else []
        for value in (*self.args, *(v for _, v in self.kwargs)):
            if isinstance(value, ModuleCall):
                found += value.helpers()
        return found


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ModuleCall:
    """``call(nn.Dropout, 0.5)``: the ModuleCall of ``nn.Dropout(0.5)``."""
    return ModuleCall(fn, args, tuple(kwargs.items()))


def qualname(fn: Callable[..., Any]) -> str:
    """How generated source names ``fn``: ``nn.Conv2d`` for torch's, the bare name for ours (defined in the file)."""
    if fn.__module__ == M.__name__:
        return fn.__name__
    if getattr(nn, fn.__name__, None) is fn:
        return f"nn.{fn.__name__}"
    raise ValueError(f"{fn!r} is neither in torch.nn nor in {M.__name__}")


def _make(value: Any) -> Any:
    return value.make() if isinstance(value, ModuleCall) else value


def _literal(value: Any) -> str:
    if isinstance(value, ModuleCall):
        return value.code()
    if isinstance(value, float) and math.isinf(value):
        return 'float("-inf")' if value < 0 else 'float("inf")'
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return f"[{', '.join(_literal(v) for v in value)}]"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"cannot write {value!r} as a literal")


@dataclass(frozen=True)
class Layout:
    """How one torch tensor maps to the Keras weight it corresponds to (both ways, on numpy arrays)."""

    to_keras: Callable[[np.ndarray], np.ndarray]
    from_keras: Callable[[np.ndarray], np.ndarray]


def _permute(*dims: int) -> Layout:
    inverse = tuple(int(i) for i in np.argsort(dims))
    return Layout(lambda a: a.transpose(dims), lambda a: a.transpose(inverse))


AS_IS = Layout(lambda a: a, lambda a: a)
# conv (out, in, kh, kw) <-> (kh, kw, in, out); transposed conv (in, out, kh, kw) <-> (kh, kw, out, in)
KERNEL_2D = _permute(2, 3, 1, 0)
KERNEL_1D = _permute(2, 1, 0)  # (out, in, k) <-> (k, in, out)
DENSE = _permute(1, 0)  # (out, in) <-> (in, out)
CHANNELS_LAST = Layout(lambda a: np.moveaxis(a, 0, -1), lambda a: np.moveaxis(a, -1, 0))


def _depthwise(m: int) -> Layout:
    """Depthwise kernel: torch (C * m, 1, kh, kw) <-> Keras (kh, kw, C, m); output channel c * m + j in both."""
    return Layout(
        lambda a: a.reshape(a.shape[0] // m, m, *a.shape[2:]).transpose(2, 3, 0, 1),
        lambda a: a.transpose(2, 3, 0, 1).reshape(-1, 1, a.shape[0], a.shape[1]),
    )


@dataclass(frozen=True)
class Built:
    """A node's module and what to know about its parameters.

    ``kernels``: (parameter, Keras initializer, fan_in, fan_out) to fill as Keras would, fans as Keras counts them
    for its kernel's shape; ``zeros``: parameters Keras starts at zero (biases); ``keras``: (parameter or buffer,
    layout) in the order of the Keras layer's ``weights``.
    """

    module: ModuleCall
    kernels: tuple[tuple[str, str, int, int], ...] = ()
    zeros: tuple[str, ...] = ()
    keras: tuple[tuple[str, Layout], ...] = ()


# ---------------------------------------------------------------------------------------------------------------
# The registry

Builder = Callable[[PlanNode], Built]
BUILDERS: Registry[Builder] = Registry("torch builder", within=LAYERS)
register_builder = BUILDERS.register  # @register_builder("conv2d"): the torch builder of a layer kind


def build_node(node: PlanNode) -> Built:
    """The Built of one plan node; a kind without a builder is a BackendError located at the layer."""
    fn = BUILDERS.get(node.kind)
    if fn is None:
        raise BackendError(
            f"the {BACKEND} backend has no builder for layer kind `{node.kind}`.",
            loc=node.loc,
            path=node.path or None,
            hint=f"Kinds it builds: {', '.join(sorted(BUILDERS))}. Use the keras backend, or register one with "
            f"specdsl.backends._torch.register_builder('{node.kind}').",
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
    if snake not in M.INITIALIZERS:
        near = difflib.get_close_matches(snake, M.INITIALIZERS, n=1)
        raise BackendError(
            f"kernel_initializer `{name}` is not one the {BACKEND} backend knows; it knows "
            f"{', '.join(M.INITIALIZERS)}.",
            loc=node.loc,
            path=node.path or None,
            hint=f"Did you mean `{near[0]}`?" if near else None,
        )
    return snake


def _short(pair: tuple[int, ...]) -> int | tuple[int, ...]:
    """(3, 3) -> 3, as torch users write square sizes; (3, 2) stays."""
    return pair[0] if len(set(pair)) == 1 else tuple(pair)


def _pads_2d(
    padding, size, kernel, strides, dilation
) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """Keras' padding as (symmetric padding for torch's layer, asymmetric (left, right, top, bottom) or None)."""
    if padding == "valid":
        (t, b), (left, right) = (0, 0), (0, 0)
    elif padding == "same":
        t, b = same_padding(size[0], kernel[0], strides[0], dilation[0])
        left, right = same_padding(size[1], kernel[1], strides[1], dilation[1])
    else:
        (t, b), (left, right) = padding
    if t == b and left == right:
        return (t, left), None
    return (0, 0), (left, right, t, b)


def _pads_1d(padding, n, k, s, d) -> tuple[int, tuple[int, int] | None]:
    if padding == "valid":
        left, right = 0, 0
    elif padding == "same":
        left, right = same_padding(n, k, s, d)
    else:
        left, right = padding
    return (left, None) if left == right else (0, (left, right))


def _conv_options(
    node: PlanNode, cls_plain, cls_full, *, kernel, strides, dilation, padding, pad, groups=1, bias=True
):
    """kwargs of a conv module, leaving out torch's defaults; the helper class when padding or activation need it."""
    kw: list[tuple[str, Any]] = [("kernel_size", _short(kernel))]
    if set(strides) != {1}:
        kw.append(("stride", _short(strides)))
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
    if set(dilation) != {1}:
        kw.append(("dilation", _short(dilation)))
    if groups != 1:
        kw.append(("groups", groups))
    if not bias:
        kw.append(("bias", False))
    act = _act(node.layer.activation)
    if pad is None and act is None:
        return cls_plain, kw
    if pad is not None:
        kw.append(("pad", pad))
    if act is not None:
        kw.append(("activation", act))
    return cls_full, kw


def _with_bias(layer, kernel_entry: tuple[str, Layout]) -> tuple[tuple[str, Layout], ...]:
    return (kernel_entry, ("bias", AS_IS)) if layer.use_bias else (kernel_entry,)


# ---------------------------------------------------------------------------------------------------------------
# Convolutions


@register_builder("conv2d")
def _conv2d(node: PlanNode) -> Built:
    layer = node.layer
    h, w, c = node.input_shapes[0]
    padding, pad = _pads_2d(layer.padding, (h, w), layer.kernel, layer.strides, layer.dilation)
    cls, kw = _conv_options(
        node,
        nn.Conv2d,
        M.Conv2dPadAct,
        kernel=layer.kernel,
        strides=layer.strides,
        dilation=layer.dilation,
        padding=padding,
        pad=pad,
        groups=layer.groups,
        bias=layer.use_bias,
    )
    rf = layer.kernel[0] * layer.kernel[1]
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=(("weight", _initializer(node), rf * c // layer.groups, rf * layer.filters),),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_2D)),
    )


@register_builder("conv1d")
def _conv1d(node: PlanNode) -> Built:
    layer = node.layer
    n, c = node.input_shapes[0]
    padding, pad = _pads_1d(layer.padding, n, layer.kernel, layer.strides, layer.dilation)
    cls, kw = _conv_options(
        node,
        nn.Conv1d,
        M.Conv1dPadAct,
        kernel=(layer.kernel,),
        strides=(layer.strides,),
        dilation=(layer.dilation,),
        padding=(padding,),
        pad=pad,
        groups=layer.groups,
        bias=layer.use_bias,
    )
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=(
            ("weight", _initializer(node), layer.kernel * c // layer.groups, layer.kernel * layer.filters),
        ),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_1D)),
    )


@register_builder("depthwise_conv2d")
def _depthwise_conv2d(node: PlanNode) -> Built:
    layer = node.layer
    h, w, c = node.input_shapes[0]
    m = layer.depth_multiplier
    padding, pad = _pads_2d(layer.padding, (h, w), layer.kernel, layer.strides, layer.dilation)
    cls, kw = _conv_options(
        node,
        nn.Conv2d,
        M.Conv2dPadAct,
        kernel=layer.kernel,
        strides=layer.strides,
        dilation=layer.dilation,
        padding=padding,
        pad=pad,
        groups=c,
        bias=layer.use_bias,
    )
    rf = layer.kernel[0] * layer.kernel[1]
    return Built(
        ModuleCall(cls, (c, c * m), tuple(kw)),
        kernels=(("weight", _initializer(node), rf * c, rf * m),),  # Keras' kernel is (kh, kw, C, m)
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", _depthwise(m))),
    )


@register_builder("separable_conv2d")
def _separable_conv2d(node: PlanNode) -> Built:
    layer = node.layer
    h, w, c = node.input_shapes[0]
    m = layer.depth_multiplier
    padding, pad = _pads_2d(layer.padding, (h, w), layer.kernel, layer.strides, layer.dilation)
    kw: list[tuple[str, Any]] = [("kernel_size", _short(layer.kernel))]
    if set(layer.strides) != {1}:
        kw.append(("stride", _short(layer.strides)))
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
    if set(layer.dilation) != {1}:
        kw.append(("dilation", _short(layer.dilation)))
    if m != 1:
        kw.append(("depth_multiplier", m))
    if not layer.use_bias:
        kw.append(("bias", False))
    if pad is not None:
        kw.append(("pad", pad))
    act = _act(layer.activation)
    if act is not None:
        kw.append(("activation", act))
    rf = layer.kernel[0] * layer.kernel[1]
    init = _initializer(node)
    keras = (("depthwise.weight", _depthwise(m)), ("pointwise.weight", KERNEL_2D))
    return Built(
        ModuleCall(M.SeparableConv2d, (c, layer.filters), tuple(kw)),
        kernels=(
            ("depthwise.weight", init, rf * c, rf * m),
            ("pointwise.weight", init, c * m, layer.filters),
        ),
        zeros=("pointwise.bias",) if layer.use_bias else (),
        keras=keras + ((("pointwise.bias", AS_IS),) if layer.use_bias else ()),
    )


def _transpose_axis(n: int, out: int, k: int, s: int, d: int, padding: str, output_padding: int | None):
    """torch (padding, output_padding, crop before, crop after) giving Keras' transposed-conv output on one axis.

    Torch computes the full transposed convolution, of length (n - 1) * s + k_eff, then drops ``padding`` values
    at both ends and adds ``output_padding`` at the end. Keras (TensorFlow and JAX) drops ``before`` values at the
    start, as JAX's conv_transpose padding rule puts them, and ends at the plan's output length ``out``.
    """
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        before = 0
    else:
        pad_len = s + k_eff - 2 if output_padding is None else k_eff + k_eff % 2 - 2 + (output_padding or 0)
        before = k_eff - 1 - min(pad_len // 2 + pad_len % 2, k_eff - 1)
    after = (n - 1) * s + k_eff - before - out  # negative: values to add at the end
    limit = max(s, d)  # torch requires output_padding < max(stride, dilation)
    if after < before and before - after < limit:
        return before, before - after, 0, 0  # output_padding adds back what the symmetric padding over-crops
    if after >= 0:
        p = min(before, after)
        return p, 0, before - p, after - p
    return 0, -after, before, 0  # Keras' rule keeps -after < s


@register_builder("conv2d_transpose")
def _conv2d_transpose(node: PlanNode) -> Built:
    layer = node.layer
    h, w, c = node.input_shapes[0]
    oh, ow, _ = node.shape
    op = layer.output_padding or (None, None)
    axes = [
        _transpose_axis(n, out, layer.kernel[i], layer.strides[i], layer.dilation[i], layer.padding, op[i])
        for i, (n, out) in enumerate(((h, oh), (w, ow)))
    ]
    padding = (axes[0][0], axes[1][0])
    output_padding = (axes[0][1], axes[1][1])
    crop = (axes[0][2], axes[0][3], axes[1][2], axes[1][3])
    kw: list[tuple[str, Any]] = [("kernel_size", _short(layer.kernel))]
    if set(layer.strides) != {1}:
        kw.append(("stride", _short(layer.strides)))
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
    if set(output_padding) != {0}:
        kw.append(("output_padding", _short(output_padding)))
    if not layer.use_bias:
        kw.append(("bias", False))
    if set(layer.dilation) != {1}:
        kw.append(("dilation", _short(layer.dilation)))
    act = _act(layer.activation)
    cls = nn.ConvTranspose2d
    if any(crop) or act is not None:
        cls = M.ConvTranspose2dCropAct
        if any(crop):
            kw.append(("crop", crop))
        if act is not None:
            kw.append(("activation", act))
    rf = layer.kernel[0] * layer.kernel[1]
    return Built(
        ModuleCall(cls, (c, layer.filters), tuple(kw)),
        kernels=(
            ("weight", _initializer(node), rf * layer.filters, rf * c),
        ),  # Keras' kernel is (kh, kw, filters, C)
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", KERNEL_2D)),
    )


# ---------------------------------------------------------------------------------------------------------------
# Pooling


def _pool2d(node: PlanNode, average: bool) -> Built:
    layer = node.layer
    h, w, _ = node.input_shapes[0]
    strides = layer.strides or layer.pool
    padding, pad = _pads_2d(layer.padding, (h, w), layer.pool, strides, (1, 1))
    kw: list[tuple[str, Any]] = []
    if strides != layer.pool:
        kw.append(("stride", _short(strides)))
    if pad is not None:
        if average:
            return Built(call(M.AvgPool2dSame, _short(layer.pool), _short(strides), pad))
        return Built(
            call(
                nn.Sequential,
                call(nn.ConstantPad2d, pad, float("-inf")),
                ModuleCall(nn.MaxPool2d, (_short(layer.pool),), tuple(kw)),
            )
        )
    if set(padding) != {0}:
        kw.append(("padding", _short(padding)))
        if average:
            kw.append(("count_include_pad", False))  # Keras leaves 'same' padding out of the mean
    return Built(ModuleCall(nn.AvgPool2d if average else nn.MaxPool2d, (_short(layer.pool),), tuple(kw)))


def _pool1d(node: PlanNode, average: bool) -> Built:
    layer = node.layer
    n, _ = node.input_shapes[0]
    strides = layer.strides or layer.pool
    padding, pad = _pads_1d(layer.padding, n, layer.pool, strides, 1)
    kw: list[tuple[str, Any]] = []
    if strides != layer.pool:
        kw.append(("stride", strides))
    if pad is not None:
        if average:
            return Built(call(M.AvgPool1dSame, layer.pool, strides, pad))
        return Built(
            call(
                nn.Sequential,
                call(nn.ConstantPad1d, pad, float("-inf")),
                ModuleCall(nn.MaxPool1d, (layer.pool,), tuple(kw)),
            )
        )
    if padding:
        kw.append(("padding", padding))
        if average:
            kw.append(("count_include_pad", False))
    return Built(ModuleCall(nn.AvgPool1d if average else nn.MaxPool1d, (layer.pool,), tuple(kw)))


register_builder("maxpool2d")(lambda node: _pool2d(node, average=False))
register_builder("avgpool2d")(lambda node: _pool2d(node, average=True))
register_builder("maxpool1d")(lambda node: _pool1d(node, average=False))
register_builder("avgpool1d")(lambda node: _pool1d(node, average=True))


def _global(pool: type[nn.Module]) -> Builder:
    return lambda node: Built(call(nn.Sequential, call(pool, 1), call(nn.Flatten)))


register_builder("global_avgpool2d")(_global(nn.AdaptiveAvgPool2d))
register_builder("global_maxpool2d")(_global(nn.AdaptiveMaxPool2d))
register_builder("global_avgpool1d")(_global(nn.AdaptiveAvgPool1d))
register_builder("global_maxpool1d")(_global(nn.AdaptiveMaxPool1d))


@register_builder("zero_padding2d")
def _zero_padding2d(node: PlanNode) -> Built:
    (t, b), (left, right) = node.layer.padding
    return Built(call(nn.ZeroPad2d, (left, right, t, b)))


# ---------------------------------------------------------------------------------------------------------------
# Normalization, regularization


@register_builder("batchnorm")
def _batchnorm(node: PlanNode) -> Built:
    layer = node.layer
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
    layer = node.layer
    kw: list[tuple[str, Any]] = [("eps", layer.epsilon)]
    if not layer.center:
        kw.append(("center", False))
    if not layer.scale:
        kw.append(("scale", False))
    keras = ((("weight", AS_IS),) if layer.scale else ()) + ((("bias", AS_IS),) if layer.center else ())
    return Built(ModuleCall(M.ChannelLayerNorm, (node.input_shapes[0][-1],), tuple(kw)), keras=keras)


@register_builder("dropout")
def _dropout(node: PlanNode) -> Built:
    return Built(call(nn.Dropout, node.layer.rate))


@register_builder("spatial_dropout2d")
def _spatial_dropout2d(node: PlanNode) -> Built:
    return Built(call(nn.Dropout2d, node.layer.rate))


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
    layer = node.layer
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
        kernels=(("weight", _initializer(node), n, layer.units),),
        zeros=("bias",) if layer.use_bias else (),
        keras=_with_bias(layer, ("weight", DENSE)),
    )


@register_builder("activation")
def _activation(node: PlanNode) -> Built:
    layer = node.layer
    return Built(_act(layer.function, layer.negative_slope) or call(nn.Identity))


@register_builder("add")
def _add(node: PlanNode) -> Built:
    return Built(call(M.Add))


@register_builder("multiply")
def _multiply(node: PlanNode) -> Built:
    return Built(call(M.Multiply))


@register_builder("concat")
def _concat(node: PlanNode) -> Built:
    rank = len(node.input_shapes[0])
    axis = node.layer.axis % rank
    # channels-last axis `rank - 1` is torch's axis 1; the others move one up
    dim = 1 if axis == rank - 1 else axis + 2
    return Built(ModuleCall(M.Concat, (), (("dim", dim),) if dim != 1 else ()))


@register_builder("rescaling")
def _rescaling(node: PlanNode) -> Built:
    layer = node.layer
    return Built(ModuleCall(M.Rescaling, (layer.scale,), (("offset", layer.offset),) if layer.offset else ()))


@register_builder("bias")
def _bias(node: PlanNode) -> Built:
    shape = node.input_shapes[0]
    if node.layer.per == "channel":
        return Built(call(M.Bias, (shape[-1],)), keras=(("bias", AS_IS),))
    torch_shape = (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)
    return Built(call(M.Bias, torch_shape), keras=(("bias", CHANNELS_LAST),))

"""The small modules the torch backend needs beyond ``torch.nn``, so that one torch module does what one Keras
layer does.

Everything here imports torch and nothing else: ``source()`` copies the classes a model uses, as they are written
here, into the generated file. Tensors are in torch's layout, channels first: (N, C, H, W), (N, C, L) or (N, F).
Every class is TorchScript-compatible (hence no ``from __future__ import annotations`` here).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv2dPadAct(nn.Conv2d):
    """nn.Conv2d that pads first and applies an activation after, as one Keras Conv2D does.

    ``pad`` is (left, right, top, bottom) zeros added before the convolution: Keras' 'same' padding puts the odd
    pixel after, which nn.Conv2d's symmetric ``padding`` cannot express.
    """

    def __init__(self, *args, pad=(0, 0, 0, 0), activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = nn.ZeroPad2d(pad) if any(pad) else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self._conv_forward(self.pad(x), self.weight, self.bias))


class Conv1dPadAct(nn.Conv1d):
    """nn.Conv1d that pads first (``pad``: (left, right) zeros) and applies an activation after, as Keras' Conv1D."""

    def __init__(self, *args, pad=(0, 0), activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = nn.ZeroPad1d(pad) if any(pad) else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self._conv_forward(self.pad(x), self.weight, self.bias))


class ConvTranspose2dCropAct(nn.ConvTranspose2d):
    """nn.ConvTranspose2d with Keras' output size and an activation.

    ``crop`` is (top, bottom, left, right) rows and columns removed from the output, where torch's symmetric
    ``padding`` cannot crop as Keras does.
    """

    def __init__(self, *args, crop=(0, 0, 0, 0), activation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.crop = list(crop)
        self.act = activation if activation is not None else nn.Identity()

    # No output_size: Keras fixes the output size, and the crop is worked out for it. A transposed convolution's
    # padding is a tuple. (TorchScript reads `# type:` comments: an ignore must end its line.)
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.conv_transpose2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,  # type: ignore[arg-type]
            self.output_padding,
            self.groups,
            self.dilation,
        )
        c = self.crop
        y = y[:, :, c[0] : y.shape[2] - c[1], c[2] : y.shape[3] - c[3]]
        return self.act(y)


class SeparableConv2d(nn.Module):
    """A depthwise convolution (``depth_multiplier`` filters per input channel, no bias) followed by a 1x1 pointwise
    one (with the bias), then an activation: Keras' SeparableConv2D. ``pad`` as in Conv2dPadAct."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        depth_multiplier=1,
        bias=True,
        pad=(0, 0, 0, 0),
        activation=None,
    ):
        super().__init__()
        mid = in_channels * depth_multiplier
        self.pad = nn.ZeroPad2d(pad) if any(pad) else nn.Identity()
        self.depthwise = nn.Conv2d(
            in_channels, mid, kernel_size, stride, padding, dilation, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pointwise(self.depthwise(self.pad(x))))


class Dense(nn.Linear):
    """nn.Linear on the channel axis (axis 1) of an input of any rank, then an activation: Keras' Dense, which acts
    on the last axis of channels-last data."""

    def __init__(self, in_features, out_features, bias=True, activation=None):
        super().__init__(in_features, out_features, bias=bias)
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x.dim() - 1  # not -1: the ONNX exporter writes negative dims into Transpose as they are
        if last > 1:
            return self.act(F.linear(x.movedim(1, last), self.weight, self.bias).movedim(last, 1))
        return self.act(F.linear(x, self.weight, self.bias))


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalization over axis 1 of an input of any rank, where Keras' ``center``/``scale`` leave out only one of
    beta (``bias``) and gamma (``weight``), which torch's ``affine`` cannot."""

    def __init__(self, num_features, eps=1e-3, momentum=0.01, center=True, scale=True):
        super().__init__(num_features, eps=eps, momentum=momentum)
        if not scale:
            self.register_parameter("weight", None)
        if not center:
            self.register_parameter("bias", None)

    def _check_input_dim(self, input):
        pass


class ChannelLayerNorm(nn.Module):
    """Layer normalization over the channel axis (axis 1) only, as Keras' LayerNormalization over the last axis of
    channels-last data; ``center``/``scale`` keep beta (``bias``) and gamma (``weight``)."""

    def __init__(self, num_channels, eps=1e-3, center=True, scale=True):
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.register_parameter("weight", nn.Parameter(torch.ones(num_channels)) if scale else None)
        self.register_parameter("bias", nn.Parameter(torch.zeros(num_channels)) if center else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x.dim() - 1  # not -1: the ONNX exporter writes negative dims into Transpose as they are
        # weight and bias are parameters or None (registered so), which torch's stubs type as Tensor | Module
        y = F.layer_norm(x.movedim(1, last), [self.num_channels], self.weight, self.bias, self.eps)  # type: ignore[arg-type]
        return y.movedim(last, 1)


class PartialGroupNorm(nn.Module):
    """nn.GroupNorm where Keras' ``center``/``scale`` leave out only one of beta (``bias``) and gamma
    (``weight``), which torch's ``affine`` cannot."""

    def __init__(self, num_groups, num_channels, eps=1e-3, center=True, scale=True):
        super().__init__()
        self.num_groups = num_groups
        self.eps = eps
        self.register_parameter("weight", nn.Parameter(torch.ones(num_channels)) if scale else None)
        self.register_parameter("bias", nn.Parameter(torch.zeros(num_channels)) if center else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # weight and bias are parameters or None (registered so), which torch's stubs type as Tensor | Module
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)  # type: ignore[arg-type]


class AvgPool2dSame(nn.Module):
    """Average pooling with asymmetric padding ``pad`` (left, right, top, bottom) whose padded values are left out of
    each mean, as Keras' AveragePooling2D with padding 'same'."""

    def __init__(self, kernel_size, stride, pad):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = list(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride)
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel_size, self.stride)
        return total / count


class AvgPool1dSame(nn.Module):
    """Average pooling with asymmetric padding ``pad`` (left, right) whose padded values are left out of each mean,
    as Keras' AveragePooling1D with padding 'same'."""

    def __init__(self, kernel_size, stride, pad):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = list(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool1d(F.pad(x, self.pad), self.kernel_size, self.stride)
        count = F.avg_pool1d(F.pad(ones, self.pad), self.kernel_size, self.stride)
        return total / count


class NearestResize(nn.Module):
    """Resizes (N, C, H, W) to ``size`` (height, width), each output pixel the input pixel under its centre, as Keras'
    nearest resize (torch's nearest-exact), by two gathers, which export to ONNX where nearest-exact does not."""

    def __init__(self, size, in_size):
        super().__init__()
        for name, n, m in (("rows", in_size[0], size[0]), ("cols", in_size[1], size[1])):
            scale = torch.tensor(n / m, dtype=torch.float32)  # in float32, as torch's own kernel
            centres = (
                torch.floor((torch.arange(m, dtype=torch.float32) + 0.5) * scale).long().clamp(max=n - 1)
            )
            self.register_buffer(name, centres, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the buffers are tensors, which torch's stubs type as Tensor | Module
        return x.index_select(2, self.rows).index_select(3, self.cols)  # type: ignore[arg-type]


class ChannelsLastFlatten(nn.Module):
    """Flattens (N, C, ...) in channels-last order, as Keras' Flatten does, so that Dense weights carry over."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(1, x.dim() - 1).flatten(1)


class ChannelsLastReshape(nn.Module):
    """Reshapes to ``shape``, given channels-last and without the batch axis as Keras' Reshape takes it."""

    def __init__(self, shape):
        super().__init__()
        self.shape = list(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.movedim(1, x.dim() - 1).reshape([-1] + self.shape)
        return y.movedim(y.dim() - 1, 1)


class Add(nn.Module):
    """Elementwise sum of a list of tensors of one shape."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(nn.Module):
    """Elementwise product of a list of tensors of one shape."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    """Concatenates a list of tensors along ``dim`` (1: the channels)."""

    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Rescaling(nn.Module):
    """x * scale + offset, as Keras' Rescaling."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale = scale
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class Bias(nn.Module):
    """A learned bias added to the input: shaped like the whole input without the batch axis (C, H, W) for one bias
    per position, or (C,) for one per channel."""

    def __init__(self, shape):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias.dim() == 1 and x.dim() > 2:
            return x + self.bias.reshape([-1] + [1] * (x.dim() - 2))
        return x + self.bias


def keras_init_(tensor, initializer, fan_in, fan_out):
    """Fill ``tensor`` in place as Keras' ``initializer`` does, with the fans Keras counts for the layer's kernel."""
    # name -> (scale, mode, distribution) of Keras' VarianceScaling initializers
    variance_scaling = {
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
        "he_normal": (2.0, "fan_in", "normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "lecun_normal": (1.0, "fan_in", "normal"),
    }
    with torch.no_grad():
        if initializer == "zeros":
            return tensor.zero_()
        if initializer == "ones":
            return tensor.fill_(1.0)
        if initializer == "random_normal":
            return tensor.normal_(0.0, 0.05)
        if initializer == "random_uniform":
            return tensor.uniform_(-0.05, 0.05)
        if initializer == "truncated_normal":
            return nn.init.trunc_normal_(tensor, 0.0, 0.05, -0.1, 0.1)
        scale, mode, distribution = variance_scaling[initializer]
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return tensor.uniform_(-limit, limit)
        # Keras draws from a normal truncated at 2 standard deviations, widened to keep the variance
        std = math.sqrt(variance) / 0.87962566103423978
        return nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std)

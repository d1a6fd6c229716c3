"""Modules of ``torch.nn`` and of specdsl's own torch backend as operators: a traced module's ``call_module``
nodes, mapped by the module's type (convolutions, normalization, pooling, activations, the backend's merges,
flatten, reshape and bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._fx_writer import OpWriter, as_tuple

ACT_MODULES = {
    "ReLU": "relu",
    "ReLU6": "relu6",
    "SELU": "selu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "SiLU": "silu",
    "Hardsigmoid": "hard_sigmoid",
    "Softplus": "softplus",
}


class ModuleOps(OpWriter):
    """The operators of the ``call_module`` nodes."""

    def module(self, node: Any) -> None:
        from torch import nn

        from ..backends import get_backend

        torch_backend: Any = get_backend("torch")
        M = torch_backend.modules  # the torch backend's own modules

        m = self.modules[node.target]
        cls = type(m).__name__
        where = self._where(node)
        name = node.target.replace(".", "_")
        x = node.args[0]
        out = node.name

        def ref(a):
            return self.ref(a)

        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            self._conv(m, ref(x), out, where, name, getattr(m, "pad", None), getattr(m, "act", None))
        elif isinstance(m, nn.ConvTranspose2d):
            pads = [*m.padding, *m.padding]
            mid = self.fresh(out) if getattr(m, "act", None) is not None else out
            self.add(
                "ConvTranspose",
                [ref(x), self.const(m.weight), *([self.const(m.bias)] if m.bias is not None else [])],
                [mid],
                where,
                name,
                strides=list(m.stride),
                pads=pads,
                output_padding=list(m.output_padding),
                dilations=list(m.dilation),
                group=m.groups,
                crop=list(getattr(m, "crop", [0, 0, 0, 0])),
            )
            if mid != out:
                self._act_module(m.act, mid, out, where, name)
        elif isinstance(m, nn.Linear):
            mid = self.fresh(out) if isinstance(getattr(m, "act", None), nn.Module) else out
            axis = 0 if isinstance(m, M.Dense) else -1
            self.add(
                "Linear",
                [ref(x), self.const(m.weight), *([self.const(m.bias)] if m.bias is not None else [])],
                [mid],
                where,
                name,
                axis=axis,
            )
            if mid != out:
                self._act_module(m.act, mid, out, where, name)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is None:
                self.add("?", [ref(x)], [out], where + " without running statistics", name)
                return
            momentum = 0.99 if m.momentum is None else float(round(1.0 - m.momentum, 12))
            ins = [
                ref(x),
                self.const(m.weight) if m.weight is not None else "",
                self.const(m.bias) if m.bias is not None else "",
                self.const(m.running_mean),
                self.const(m.running_var),
            ]
            self.add("BatchNormalization", ins, [out], where, name, epsilon=float(m.eps), momentum=momentum)
        elif isinstance(m, M.ChannelLayerNorm) or (
            isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1
        ):
            weights = [self.const(w) if w is not None else "" for w in (m.weight, m.bias)]
            axis = 0 if isinstance(m, M.ChannelLayerNorm) else -1  # channels first, or the last axis
            self.add(
                "LayerNormalization", [ref(x), *weights], [out], where, name, axis=axis, epsilon=float(m.eps)
            )
        elif isinstance(m, (nn.GroupNorm, M.PartialGroupNorm)):
            weights = [self.const(w) if w is not None else "" for w in (m.weight, m.bias)]
            self.add(
                "GroupNormalization",
                [ref(x), *weights],
                [out],
                where,
                name,
                num_groups=int(m.num_groups),
                epsilon=float(m.eps),
            )
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            self._pool(m, ref(x), out, where, name)
        elif isinstance(m, (M.AvgPool2dSame, M.AvgPool1dSame)):
            k = as_tuple(m.kernel_size, 2 if isinstance(m, M.AvgPool2dSame) else 1)
            pad = list(m.pad)  # (left, right[, top, bottom])
            pads = [pad[2], pad[0], pad[3], pad[1]] if len(k) == 2 else [pad[0], pad[1]]
            self.add(
                "AveragePool",
                [ref(x)],
                [out],
                where,
                name,
                kernel_shape=list(k),
                strides=list(as_tuple(m.stride, len(k))),
                pads=pads,
                count_include_pad=0,
            )
        elif isinstance(
            m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)
        ):
            size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,)
            if any(s != 1 for s in size):
                self.add("?", [ref(x)], [out], where + f" to {tuple(size)} (only to 1)", name)
                return
            self.add("GlobalAveragePool" if "Avg" in cls else "GlobalMaxPool", [ref(x)], [out], where, name)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                self.add("?", [ref(x)], [out], where + f" from axis {m.start_dim} to {m.end_dim}", name)
                return
            self.add("Flatten", [ref(x)], [out], where, name, axis=1)
        elif isinstance(m, M.ChannelsLastFlatten):
            mid = self.fresh(out)
            rank = len(self.shapes[x.name]) + 1
            self.add("Transpose", [ref(x)], [mid], where, name, perm=[0, *range(2, rank), 1])
            self.add("Flatten", [mid], [out], where, name, axis=1)
        elif isinstance(m, M.ChannelsLastReshape):
            a, b = self.fresh(out), self.fresh(out)
            rank = len(self.shapes[x.name]) + 1
            self.add("Transpose", [ref(x)], [a], where, name, perm=[0, *range(2, rank), 1])
            self.add("Reshape", [a], [b], where, name, shape=list(m.shape))
            out_rank = len(m.shape) + 1
            self.add("Transpose", [b], [out], where, name, perm=[0, out_rank - 1, *range(1, out_rank - 1)])
        elif isinstance(m, (nn.Dropout, nn.Dropout2d)):
            self.add(
                "Dropout", [ref(x)], [out], where, name, rate=float(m.p), spatial=isinstance(m, nn.Dropout2d)
            )
        elif isinstance(m, nn.Identity):
            self.add("Identity", [ref(x)], [out], where, name)
        elif isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d, nn.ZeroPad1d, nn.ConstantPad1d)):
            self._pad(list(m.padding), float(getattr(m, "value", 0.0)), ref(x), out, where, name)
        elif isinstance(m, (M.Add, M.Multiply)):
            xs = [self.ref(a) for a in x]
            prev = xs[0]
            for i, other in enumerate(xs[1:]):
                dst = out if i == len(xs) - 2 else self.fresh(out)
                self.add("Add" if isinstance(m, M.Add) else "Mul", [prev, other], [dst], where, name)
                prev = dst
        elif isinstance(m, M.Concat):
            self.add("Concat", [self.ref(a) for a in x], [out], where, name, axis=m.dim - 1)
        elif isinstance(m, M.Rescaling):
            mid = self.fresh(out)
            self.add("Mul", [ref(x), self.const(np.float64(m.scale))], [mid], where, name)
            self.add("Add", [mid, self.const(np.float64(m.offset))], [out], where, name)
        elif isinstance(m, M.Bias):
            bias = m.bias.detach().cpu().numpy()
            rank = len(self.shapes[x.name])
            if bias.ndim == 1 and rank > 1:
                bias = bias.reshape(-1, *([1] * (rank - 1)))
            self.add("Add", [ref(x), self.const(bias)], [out], where, name)
        elif isinstance(m, M.SeparableConv2d):
            a = self.fresh(out)
            self._conv(m.depthwise, ref(x), a, where, name, m.pad, None)
            self._conv(m.pointwise, a, out, where, name, None, m.act)
        elif cls in ACT_MODULES or isinstance(m, (nn.ELU, nn.GELU, nn.LeakyReLU, nn.Softmax)):
            self._act_module(m, ref(x), out, where, name)
        else:
            self.add("?", [ref(x) if not isinstance(x, (list, tuple)) else ""], [out], where, name)

    def _act_module(self, m: Any, x: str, out: str, where: str, name: str) -> None:
        from torch import nn

        cls = type(m).__name__
        if isinstance(m, nn.Identity):
            self.add("Identity", [x], [out], where, name)
        elif cls in ACT_MODULES:
            if isinstance(m, nn.Softplus) and (m.beta != 1):
                self.add("?", [x], [out], where + f" with beta={m.beta}", name)
                return
            self.add("Act", [x], [out], where, name, function=ACT_MODULES[cls])
        elif isinstance(m, nn.ELU) and m.alpha == 1.0:
            self.add("Act", [x], [out], where, name, function="elu")
        elif isinstance(m, nn.GELU) and m.approximate == "none":
            self.add("Act", [x], [out], where, name, function="gelu")
        elif isinstance(m, nn.LeakyReLU):
            self.add(
                "Act", [x], [out], where, name, function="leaky_relu", negative_slope=float(m.negative_slope)
            )
        elif isinstance(m, nn.Softmax):
            dim = -1 if m.dim is None else m.dim
            self.add("Act", [x], [out], where, name, function="softmax", axis=dim - 1 if dim > 0 else dim)
        else:
            self.add("?", [x], [out], where + f" with {cls}", name)

    def _conv(self, m: Any, x: str, out: str, where: str, name: str, pad: Any, act: Any) -> None:
        from torch import nn

        if m.padding_mode != "zeros":
            self.add("?", [x], [out], where + f" with padding_mode={m.padding_mode!r}", name)
            return
        rank = len(m.kernel_size)
        if isinstance(pad, (nn.ZeroPad2d, nn.ZeroPad1d)):
            padded = self.fresh(out)
            self._pad(list(pad.padding), 0.0, x, padded, where, name)
            x = padded
        if isinstance(m.padding, str):
            if m.padding == "valid":
                sym = [(0, 0)] * rank
            else:  # 'same' (stride 1): torch puts the odd value after, as Keras
                sym = [
                    (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                    for k, d in zip(m.kernel_size, m.dilation)
                ]
        else:
            sym = [(p, p) for p in m.padding]
        pads = [b for b, _ in sym] + [a for _, a in sym]
        mid = self.fresh(out) if isinstance(act, nn.Module) and not isinstance(act, nn.Identity) else out
        ins = [x, self.const(m.weight), *([self.const(m.bias)] if m.bias is not None else [])]
        self.add(
            "Conv",
            ins,
            [mid],
            where,
            name,
            strides=list(m.stride),
            pads=pads,
            dilations=list(m.dilation),
            group=m.groups,
        )
        if mid != out:
            self._act_module(act, mid, out, where, name)

    def _pool(self, m: Any, x: str, out: str, where: str, name: str) -> None:
        from torch import nn

        rank = 2 if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) else 1
        k = as_tuple(m.kernel_size, rank)
        s = as_tuple(m.stride if m.stride is not None else m.kernel_size, rank)
        p = as_tuple(m.padding, rank)
        if m.ceil_mode or getattr(m, "return_indices", False) or getattr(m, "divisor_override", None):
            self.add("?", [x], [out], where + " with ceil_mode, return_indices or divisor_override", name)
            return
        if any(d != 1 for d in as_tuple(getattr(m, "dilation", 1), rank)):
            self.add("?", [x], [out], where + " with dilation", name)
            return
        attrs = {"kernel_shape": list(k), "strides": list(s), "pads": [*p, *p]}
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
            self.add(
                "AveragePool", [x], [out], where, name, count_include_pad=int(m.count_include_pad), **attrs
            )
        else:
            self.add("MaxPool", [x], [out], where, name, **attrs)

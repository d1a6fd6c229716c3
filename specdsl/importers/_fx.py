"""torch modules -> operators for :mod:`._ops`, by tracing them with torch.fx.

``torch.fx.symbolic_trace`` records what the module's ``forward`` does; modules of ``torch.nn`` (and those of
specdsl's torch backend) are kept whole and mapped by their type, everything else is traced through down to the
functions it calls (``F.conv2d``, ``torch.cat``, ``x.view``, ``+``). Shapes come from running the traced module
once on zeros of the input shape (``ShapeProp``). The module is traced in inference mode (its mode is put back
after), so batch norms use their running statistics and dropout is a layer of its own.

A module's input shape is given in torch's layout without the batch axis (``(3, 224, 224)``); specdsl's own torch
models know theirs.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .._text import shown
from ..errors import SourceError
from ._graph import Graph
from ._ops import Op, OpGraph, lower

BATCH = 2


def from_torch(module: Any, source: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The spec layers of a torch module that torch.fx can trace."""
    import torch

    plan = getattr(module, "plan", None)
    if input_shape is None and plan is not None and hasattr(plan, "input_shape"):
        from ..backends._torch import torch_shape

        input_shape = torch_shape(plan.input_shape)
    if input_shape is None:
        raise SourceError(
            f"importing the torch module `{type(module).__name__}` needs its input shape.",
            path=shown(source, 200),
            hint="Give it in torch's layout without the batch axis: --input-shape 3,224,224.",
        )
    was_training = module.training
    module.eval()
    try:
        graph = _trace(module, source)
        gm = torch.fx.GraphModule(module, graph)
        _shapes(gm, input_shape, source)
        ops = _Converter(gm, source).run()
    finally:
        module.train(was_training)
    ops.input_shape = tuple(input_shape)
    ops.name = str(getattr(plan, "name", None) or type(module).__name__)
    g = lower(ops)
    g.counts = _counts(module)
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        g.notes.append(
            f"{len(frozen)} parameter(s) are frozen in the source; the spec counts them as trainable."
        )
    return g


def _counts(module: Any) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) as Keras counts: batch norms' running statistics are non-trainable."""
    from torch import nn

    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return trainable + frozen + stats, trainable + frozen, stats


def _trace(module: Any, source: str) -> Any:
    import torch.fx

    from ..backends._torch import _modules as M

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return type(m).__module__ == M.__name__ or super().is_leaf_module(m, qualname)

    try:
        return Tracer().trace(module)
    except Exception as e:
        raise SourceError(
            f"torch.fx cannot trace `{type(module).__name__}`: {type(e).__name__}: {_first_line(e)}",
            path=shown(source, 200),
            hint="torch.fx traces a forward without control flow on tensor values or shapes; see "
            "https://pytorch.org/docs/stable/fx.html#limitations-of-symbolic-tracing.",
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return shown(text.splitlines()[0] if text else type(e).__name__, 300)


def _shapes(gm: Any, input_shape: tuple[int, ...], source: str) -> None:
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((BATCH, *input_shape)))
    except Exception as e:
        raise SourceError(
            f"running the module on an input of {(BATCH, *input_shape)} failed: {type(e).__name__}: {_first_line(e)}",
            path=shown(source, 200),
            hint="Is --input-shape right (torch's layout, without the batch axis)?",
        ) from None


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
ACT_FUNCTIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "selu": "selu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "silu": "silu",
    "hardsigmoid": "hard_sigmoid",
    "softplus": "softplus",
    "elu": "elu",
    "gelu": "gelu",
    "leaky_relu": "leaky_relu",
    "softmax": "softmax",
}


class _Converter:
    def __init__(self, gm: Any, source: str):
        self.gm = gm
        self.source = source
        self.modules = dict(gm.named_modules())
        self.ops: list[Op] = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.n = 0

    # -- helpers

    def const(self, value: Any) -> str:
        import torch

        self.n += 1
        name = f"<const {self.n}>"
        array = (
            value.detach().cpu().numpy()
            if isinstance(value, torch.Tensor)
            else np.asarray(value, dtype=np.float32)
        )
        self.constants[name] = array
        return name

    def ref(self, arg: Any) -> str:
        """The value name of an argument: a node's name, or a new constant."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return arg.name
        return self.const(arg)

    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}<{self.n}>"

    def add(
        self, type_: str, inputs: list[str], outputs: list[str], where: str, name: str, **attrs: Any
    ) -> None:
        self.ops.append(Op(type_, inputs, outputs, attrs, where, name))

    # -- the walk

    def run(self) -> OpGraph:
        import torch

        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise SourceError(
                f"the module's forward takes {len(placeholders)} inputs; a spec has one.",
                path=shown(self.source, 200),
            )
        outputs: list[str] = []
        for node in self.gm.graph.nodes:
            meta = node.meta.get("tensor_meta")
            if meta is not None and hasattr(meta, "shape"):
                self.shapes[node.name] = tuple(int(d) for d in meta.shape[1:])
            if node.op == "placeholder":
                continue
            if node.op == "output":
                out = node.args[0]
                outputs = [a.name for a in (out if isinstance(out, (tuple, list)) else [out])]
                continue
            if node.op == "get_attr":
                value = self.gm
                for part in node.target.split("."):
                    value = getattr(value, part)
                if isinstance(value, torch.Tensor):
                    self.constants[node.name] = value.detach().cpu().numpy()
                continue
            if meta is None or not hasattr(meta, "shape"):
                continue  # sizes, tuples: shape arithmetic the ops take from the shapes instead
            try:
                if node.op == "call_module":
                    self.module(node)
                else:
                    self.function(node)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
                # arguments of a form the mapping does not read (a reduction without axes, ...)
                self.add(
                    "?",
                    [],
                    [node.name],
                    self._where(node) + f" with these arguments ({type(e).__name__})",
                    node.name,
                )
        return OpGraph(
            name="model",
            source=self.source,
            input=placeholders[0].name,
            input_shape=(),
            ops=self.ops,
            outputs=outputs,
            constants=self.constants,
            shapes=self.shapes,
        )

    def _where(self, node: Any) -> str:
        if node.op == "call_module":
            return f"module `{node.target}` ({type(self.modules[node.target]).__name__})"
        stack = node.meta.get("nn_module_stack") or {}
        inside = f" in `{next(reversed(stack))}`" if stack else ""
        what = (
            node.target
            if isinstance(node.target, str)
            else getattr(node.target, "__name__", str(node.target))
        )
        kind = "method" if node.op == "call_method" else "function"
        return f"{kind} `{what}` (`{node.name}`{inside})"

    # -- modules

    def module(self, node: Any) -> None:
        from torch import nn

        from ..backends._torch import _modules as M

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
        elif isinstance(m, M.ChannelLayerNorm):
            self.add(
                "LayerNormalization",
                [
                    ref(x),
                    self.const(m.weight) if m.weight is not None else "",
                    self.const(m.bias) if m.bias is not None else "",
                ],
                [out],
                where,
                name,
                axis=0,
                epsilon=float(m.eps),
            )
        elif isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            self.add(
                "LayerNormalization",
                [
                    ref(x),
                    self.const(m.weight) if m.weight is not None else "",
                    self.const(m.bias) if m.bias is not None else "",
                ],
                [out],
                where,
                name,
                axis=-1,
                epsilon=float(m.eps),
            )
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            self._pool(m, ref(x), out, where, name)
        elif isinstance(m, (M.AvgPool2dSame, M.AvgPool1dSame)):
            k = _tuple(m.kernel_size, 2 if isinstance(m, M.AvgPool2dSame) else 1)
            pad = list(m.pad)  # (left, right[, top, bottom])
            pads = [pad[2], pad[0], pad[3], pad[1]] if len(k) == 2 else [pad[0], pad[1]]
            self.add(
                "AveragePool",
                [ref(x)],
                [out],
                where,
                name,
                kernel_shape=list(k),
                strides=list(_tuple(m.stride, len(k))),
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
        k = _tuple(m.kernel_size, rank)
        s = _tuple(m.stride if m.stride is not None else m.kernel_size, rank)
        p = _tuple(m.padding, rank)
        if m.ceil_mode or getattr(m, "return_indices", False) or getattr(m, "divisor_override", None):
            self.add("?", [x], [out], where + " with ceil_mode, return_indices or divisor_override", name)
            return
        if any(d != 1 for d in _tuple(getattr(m, "dilation", 1), rank)):
            self.add("?", [x], [out], where + " with dilation", name)
            return
        attrs = {"kernel_shape": list(k), "strides": list(s), "pads": [*p, *p]}
        if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
            self.add(
                "AveragePool", [x], [out], where, name, count_include_pad=int(m.count_include_pad), **attrs
            )
        else:
            self.add("MaxPool", [x], [out], where, name, **attrs)

    def _pad(self, padding: list[int], value: float, x: str, out: str, where: str, name: str) -> None:
        """torch's pad amounts (last axis first: left, right, top, bottom) as per-axis (before, after)."""
        rank = len(padding) // 2
        per_axis = [(padding[2 * i], padding[2 * i + 1]) for i in range(rank)][::-1]
        self.add("Pad", [x], [out], where, name, pads=[(0, 0), *per_axis], value=value)

    # -- functions and methods

    def function(self, node: Any) -> None:
        import torch
        import torch.nn.functional as F

        where = self._where(node)
        name = node.name
        t = node.target
        args = list(node.args)
        kw = dict(node.kwargs)
        out = node.name
        fname = t if isinstance(t, str) else getattr(t, "__name__", "")

        def arg(i: int, key: str, default: Any = None) -> Any:
            return args[i] if len(args) > i else kw.get(key, default)

        if node.op == "call_method" and fname in ("contiguous", "clone", "detach", "float"):
            self.add("Identity", [self.ref(args[0])], [out], where, name)
        elif fname in ACT_FUNCTIONS and (
            node.op == "call_method"
            or t
            in (getattr(torch, fname, None), getattr(F, fname, None), getattr(torch.special, fname, None))
        ):
            function = ACT_FUNCTIONS[fname]
            extra: dict[str, Any] = {}
            if function == "softmax":
                dim = arg(1, "dim", -1)
                extra["axis"] = dim - 1 if dim > 0 else dim
            elif function == "leaky_relu":
                extra["negative_slope"] = float(arg(1, "negative_slope", 0.01))
            elif function == "gelu" and kw.get("approximate", "none") != "none":
                self.add("?", [self.ref(args[0])], [out], where + " with approximate='tanh'", name)
                return
            elif function == "elu" and arg(1, "alpha", 1.0) != 1.0:
                self.add("?", [self.ref(args[0])], [out], where + " with alpha != 1", name)
                return
            self.add("Act", [self.ref(args[0])], [out], where, name, function=function, **extra)
        elif (
            t in (operator.add, operator.iadd, torch.add)
            or fname in ("add", "add_")
            and node.op == "call_method"
        ):
            self.add("Add", [self.ref(args[0]), self.ref(args[1])], [out], where, name)
        elif t in (operator.sub, torch.sub) or fname == "sub" and node.op == "call_method":
            self.add("Sub", [self.ref(args[0]), self.ref(args[1])], [out], where, name)
        elif t in (operator.mul, operator.imul, torch.mul) or fname == "mul" and node.op == "call_method":
            self.add("Mul", [self.ref(args[0]), self.ref(args[1])], [out], where, name)
        elif t in (operator.truediv, torch.div) or fname == "div" and node.op == "call_method":
            self.add("Div", [self.ref(args[0]), self.ref(args[1])], [out], where, name)
        elif t in (torch.cat, torch.concat) or fname in ("cat", "concat"):
            dim = arg(1, "dim", 0)
            self.add(
                "Concat", [self.ref(a) for a in args[0]], [out], where, name, axis=dim - 1 if dim > 0 else dim
            )
        elif t in (F.conv1d, F.conv2d):
            w, b = arg(1, "weight"), arg(2, "bias")
            weight = self.constants.get(w.name) if w is not None else None
            rank = weight.ndim - 2 if weight is not None else 2
            stride = _tuple(arg(3, "stride", 1), rank)
            padding = arg(4, "padding", 0)
            dilation = _tuple(arg(5, "dilation", 1), rank)
            if isinstance(padding, str):
                k = weight.shape[2:]
                sym = (
                    [(0, 0)] * rank
                    if padding == "valid"
                    else [(d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for kk, d in zip(k, dilation)]
                )
            else:
                sym = [(p, p) for p in _tuple(padding, rank)]
            ins = [self.ref(args[0]), self.ref(w), *([self.ref(b)] if b is not None else [])]
            self.add(
                "Conv",
                ins,
                [out],
                where,
                name,
                strides=list(stride),
                pads=[a for a, _ in sym] + [b_ for _, b_ in sym],
                dilations=list(dilation),
                group=int(arg(6, "groups", 1)),
            )
        elif t is F.linear:
            b = arg(2, "bias")
            self.add(
                "Linear",
                [self.ref(args[0]), self.ref(arg(1, "weight")), *([self.ref(b)] if b is not None else [])],
                [out],
                where,
                name,
                axis=-1,
            )
        elif t is F.batch_norm:
            if arg(5, "training", False):
                self.add("?", [self.ref(args[0])], [out], where + " in training mode", name)
                return
            ins = [self.ref(args[0])] + [
                self.ref(a) if a is not None else ""
                for a in (arg(3, "weight"), arg(4, "bias"), arg(1, "running_mean"), arg(2, "running_var"))
            ]
            momentum = arg(6, "momentum", 0.1)
            self.add(
                "BatchNormalization",
                ins,
                [out],
                where,
                name,
                epsilon=float(arg(7, "eps", 1e-5)),
                momentum=float(round(1.0 - (momentum if momentum is not None else 0.01), 12)),
            )
        elif t is F.layer_norm:
            shape = arg(1, "normalized_shape")
            if len(shape) != 1:
                self.add("?", [self.ref(args[0])], [out], where + " over more than the last axis", name)
                return
            w, b = arg(2, "weight"), arg(3, "bias")
            self.add(
                "LayerNormalization",
                [
                    self.ref(args[0]),
                    self.ref(w) if w is not None else "",
                    self.ref(b) if b is not None else "",
                ],
                [out],
                where,
                name,
                axis=-1,
                epsilon=float(arg(4, "eps", 1e-5)),
            )
        elif t in (
            F.adaptive_avg_pool2d,
            F.adaptive_max_pool2d,
            F.adaptive_avg_pool1d,
            F.adaptive_max_pool1d,
        ):
            size = arg(1, "output_size")
            if any(s != 1 for s in (size if isinstance(size, (tuple, list)) else (size,))):
                self.add("?", [self.ref(args[0])], [out], where + " to a size other than 1", name)
                return
            self.add(
                "GlobalAveragePool" if "avg" in fname else "GlobalMaxPool",
                [self.ref(args[0])],
                [out],
                where,
                name,
            )
        elif t in (F.max_pool2d, F.avg_pool2d, F.max_pool1d, F.avg_pool1d):
            rank = 2 if "2d" in fname else 1
            k = _tuple(arg(1, "kernel_size"), rank)
            s = _tuple(arg(2, "stride") or k, rank)
            p = _tuple(arg(3, "padding", 0), rank)
            ceil = arg(5 if "max" in fname else 4, "ceil_mode", False)
            if ceil:
                self.add("?", [self.ref(args[0])], [out], where + " with ceil_mode", name)
                return
            attrs = {"kernel_shape": list(k), "strides": list(s), "pads": [*p, *p]}
            if "avg" in fname:
                self.add(
                    "AveragePool",
                    [self.ref(args[0])],
                    [out],
                    where,
                    name,
                    count_include_pad=int(arg(5, "count_include_pad", True)),
                    **attrs,
                )
            else:
                self.add("MaxPool", [self.ref(args[0])], [out], where, name, **attrs)
        elif t is F.pad:
            mode = arg(2, "mode", "constant")
            if mode != "constant":
                self.add("?", [self.ref(args[0])], [out], where + f" with mode={mode!r}", name)
                return
            self._pad(
                list(arg(1, "pad")), float(arg(3, "value", 0.0) or 0.0), self.ref(args[0]), out, where, name
            )
        elif t is F.dropout or fname == "dropout":
            self.add("Identity", [self.ref(args[0])], [out], where, name)
        elif t in (torch.flatten,) or fname == "flatten":
            start = arg(1, "start_dim", 0 if node.op == "call_function" else 0)
            end = arg(2, "end_dim", -1)
            if start != 1 or end != -1:
                self.add("?", [self.ref(args[0])], [out], where + f" from axis {start} to {end}", name)
                return
            self.add("Flatten", [self.ref(args[0])], [out], where, name, axis=1)
        elif fname in ("view", "reshape", "squeeze", "unsqueeze"):
            self.add("Reshape", [self.ref(args[0])], [out], where, name, shape=list(self.shapes[node.name]))
        elif fname in ("movedim", "permute", "transpose"):
            self._permute(node, fname, args, kw, out, where, name)
        elif fname in ("mean", "amax") and node.op == "call_method":
            dims = arg(1, "dim")
            if dims is None:
                self.add("?", [self.ref(args[0])], [out], where + " over every axis", name)
                return
            dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
            keep = arg(2, "keepdim", False)
            self.add(
                "ReduceMean" if fname == "mean" else "ReduceMax",
                [self.ref(args[0])],
                [out],
                where,
                name,
                axes=[d - 1 if d > 0 else d for d in dims],
                keepdims=int(bool(keep)),
            )
        else:
            first = args[0] if args else None
            self.add("?", [self.ref(first) if hasattr(first, "name") else ""], [out], where, name)

    def _permute(self, node: Any, fname: str, args: list, kw: dict, out: str, where: str, name: str) -> None:
        x = args[0]
        rank = len(self.shapes[x.name]) + 1
        order = list(range(rank))
        if fname == "movedim":
            src, dst = args[1] % rank, args[2] % rank
            order.remove(src)
            order.insert(dst, src)
        elif fname == "permute":
            dims = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
            order = [d % rank for d in dims]
        else:
            a, b = args[1] % rank, args[2] % rank
            order[a], order[b] = order[b], order[a]
        self.add("Transpose", [self.ref(x)], [out], where, name, perm=order)


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank

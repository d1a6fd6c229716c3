"""Functions, methods and Python operators as operators: a traced module's ``call_function`` and ``call_method``
nodes (``F.conv2d``, ``torch.cat``, ``x.view``, ``+``), mapped by the function and its arguments.
"""

from __future__ import annotations

import operator
from typing import Any

from ._fx_writer import OpWriter, as_tuple

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


class FunctionOps(OpWriter):
    """The operators of the ``call_function`` and ``call_method`` nodes."""

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
            stride = as_tuple(arg(3, "stride", 1), rank)
            padding = arg(4, "padding", 0)
            dilation = as_tuple(arg(5, "dilation", 1), rank)
            if isinstance(padding, str):
                k = weight.shape[2:]
                sym = (
                    [(0, 0)] * rank
                    if padding == "valid"
                    else [(d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for kk, d in zip(k, dilation)]
                )
            else:
                sym = [(p, p) for p in as_tuple(padding, rank)]
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
            k = as_tuple(arg(1, "kernel_size"), rank)
            s = as_tuple(arg(2, "stride") or k, rank)
            p = as_tuple(arg(3, "padding", 0), rank)
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

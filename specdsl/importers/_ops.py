"""Tensor-level graphs (ONNX's, torch.fx's) -> spec layers, with every tensor's layout tracked.

ONNX and torch compute channels-first (N, C, H, W) and spell a model as operators (Conv, Relu, Transpose,
Reshape, MatMul, Add, ...); a spec is channels-last and spelled as layers. Both importers turn their source into
an :class:`OpGraph` of ONNX-like :class:`Op` s, and :func:`lower` turns that into spec layers. Each tensor is
followed as a :class:`Val`: the spec node holding it, its spec shape, and where each of the source's axes is in
the spec's, so that a Transpose or a Squeeze costs no layer, a Conv checks that it reads channels-first data, a
Flatten of channels-first data (whose order differs from the spec's channels-last flatten) permutes the rows of
the dense layer after it, and a Pad is merged into the conv or pooling that reads it. A max pooling whose
(symmetric) padding is neither 'valid' nor 'same' is zero padding then a valid pooling when its input cannot be
negative (after a ReLU), where the two agree exactly.

Then, as a spec writes them: a conv's activation and bias (Conv -> Relu, MatMul -> Add) fold into the conv, and a
depthwise conv followed by a 1x1 conv is one separable conv. Shapes come from the language's own rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._text import shown
from ..errors import SourceError
from ..plan import RULES, RuleError, fmt, same_padding
from ..plan._rules import MERGE_KINDS
from ..spec import LAYERS
from ._graph import Graph, Layer, Problems

Shape = tuple[int, ...]


@dataclass
class Op:
    """One operator: ONNX's op type (or ``Act``: an activation by its spec name; ``Linear``: torch's linear
    layer), value names in and out, attributes, and where it is in the source (for messages)."""

    type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    where: str = ""
    name: str = ""


@dataclass
class OpGraph:
    """A source as operators. Shapes leave out the batch axis and are in the source's layout."""

    name: str
    source: str
    input: str
    input_shape: Shape
    ops: list[Op]
    outputs: list[str]
    constants: dict[str, np.ndarray]
    shapes: dict[str, Shape] = field(default_factory=dict)
    input_channels_last: bool = False
    fixed: set[str] = field(default_factory=set)  # constants that are not parameters (ONNX Constant nodes)


@dataclass(frozen=True)
class Val:
    """A source tensor as the spec holds it: node ``ref``, spec shape ``shape`` (channels-last), and for each of the
    source's axes (batch left out) the spec axis it is (None: an axis of size 1 the spec does not have). A flattened
    vector whose source order is not the spec's carries ``order`` (source element j is spec element order[j]); a
    padding not yet given to the layer reading it is ``pad`` (per spatial axis (before, after), and the value)."""

    ref: str
    shape: Shape
    axes: tuple[int | None, ...]
    order: Any = None
    nonneg: bool = False
    pad: tuple[tuple[tuple[int, int], ...], float] | None = None


class Unsupported(Exception):
    def __init__(self, why: str = ""):
        super().__init__(why)
        self.why = why


def channels_first(rank: int) -> tuple[int, ...]:
    """The axes of a channels-first source tensor of a spec rank: (C, H, W) -> (2, 0, 1)."""
    return (rank - 1, *range(rank - 1)) if rank > 1 else (0,)


def _is_cf(v: Val) -> bool:
    return v.axes == channels_first(len(v.shape)) and v.order is None


NONNEG_ACTS = {"relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "softplus"}
FOLD_ACT = {"conv2d", "conv1d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose", "dense"}


class _Lower:
    def __init__(self, g: OpGraph, problems: Problems):
        self.g = g
        self.problems = problems
        self.layers: list[Layer] = []
        self.vals: dict[str, Val] = {}
        self.taken: dict[str, int] = {}
        self.op: Op | None = None

    # -- values

    def const(self, name: str) -> np.ndarray | None:
        return None if not name else self.g.constants.get(name)

    def val(self, name: str) -> Val:
        if name not in self.vals:
            raise Unsupported(f"reads `{shown(name)}`, which no operator the language has computes")
        return self.vals[name]

    def plain(self, name: str) -> Val:
        """The value, its pending padding made a zero_padding2d."""
        v = self.val(name)
        if v.pad is None:
            return v
        amounts, value = v.pad
        if value != 0 or len(v.shape) != 3:
            raise Unsupported(f"a padding with {value} that no convolution or pooling takes")
        ref = self.emit(
            "zero_padding2d", {"padding": [list(a) for a in amounts]}, [replace(v, pad=None)], "pad"
        )
        return self._out(ref, v)

    def _out(self, ref: str, like: Val, **changes: Any) -> Val:
        shape = self.shape_of(ref)
        return replace(like, ref=ref, shape=shape, pad=None, **changes)

    def shape_of(self, ref: str) -> Shape:
        return self._shapes[ref]

    # -- layers

    def emit(self, kind: str, args: dict[str, Any], ins: list[Val], suffix: str = "", weights=()) -> str:
        op = self.op
        base = (op.name or op.type.lower()) + (f"_{suffix}" if suffix else "")
        n = self.taken.get(base, 0)
        name = base if n == 0 else f"{base}_{n}"
        while name in self._shapes:
            n += 1
            name = f"{base}_{n}"
        self.taken[base] = n + 1
        model = LAYERS[kind].model
        spec = model.model_validate({**args, "kind": kind})
        shapes = tuple(v.shape for v in ins)
        try:
            rule = RULES[kind]
            out = rule(spec, shapes, [v.ref for v in ins]) if kind in MERGE_KINDS else rule(spec, shapes)
        except RuleError as e:
            raise Unsupported(f"as {kind} on {', '.join(fmt(s) for s in shapes)}: {e.message}") from None
        self._shapes[name] = out[0]
        self.layers.append(
            Layer(
                kind,
                args,
                name,
                [v.ref for v in ins],
                [np.asarray(w, dtype=np.float32) for w in weights],
                op.where,
            )
        )
        return name

    # -- the walk

    def run(self) -> Graph:
        g = self.g
        rank = len(g.input_shape)
        self._shapes: dict[str, Shape] = {}
        if g.input_channels_last or rank == 1:
            shape, axes = tuple(g.input_shape), tuple(range(rank))
        else:
            shape = (*g.input_shape[1:], g.input_shape[0])
            axes = channels_first(rank)
        self._shapes[g.input] = shape
        self.vals[g.input] = Val(g.input, shape, axes)
        needed = _needed(g)
        failed: set[str] = (
            set()
        )  # what an op the language lacks computes: what reads it is not reported again
        for op in g.ops:
            if id(op) not in needed:
                continue
            self.op = op
            if failed.intersection(op.inputs):
                failed.update(op.outputs)
                continue
            handler = HANDLERS.get(op.type)
            if handler is None:
                self.problems.add(op.where, group=op.type if op.type != "?" else None)
                failed.update(op.outputs)
                continue
            try:
                outs = handler(self, op)
            except Unsupported as e:
                self.problems.add(op.where, e.why, group=op.type)
                failed.update(op.outputs)
                continue
            for name, v in zip(op.outputs, outs):
                self.vals[name] = v
                self._check_shape(op, name, v)
        self.problems.raise_if_any()
        outs = []
        for name in g.outputs:
            self.op = Op("output", [], [], where=f"output `{name}`", name="output")
            if name in failed:
                continue
            try:
                outs.append(self.plain(name))
            except Unsupported as e:
                self.problems.add(f"output `{shown(name)}`", e.why)
        self.problems.raise_if_any()
        notes = []
        for name, v in zip(g.outputs, outs):
            if v.order is not None or (len(v.shape) > 1 and not _is_cf(v)):
                notes.append(
                    f"output `{shown(name)}` is laid out differently in the spec's torch model than in the source "
                    "(the spec's is channels-first, flattened channels-last)."
                )
        refs = [v.ref for v in outs]
        if not self.layers:  # the identity: a spec has at least one layer
            self.op = Op("Identity", [], [], name="identity")
            refs = [self.emit("activation", {"function": "linear"}, [outs[0]])]
        layers = _fold(self.layers, refs)
        return Graph(
            name=g.name,
            source=g.source,
            input_name=g.input,
            input_shape=shape,
            layers=layers,
            outputs=refs,
            output_shapes=[v.shape for v in outs],
            notes=notes,
        )

    def _check_shape(self, op: Op, name: str, v: Val) -> None:
        src = self.g.shapes.get(name)
        if src is None or v.pad is not None or v.order is not None:
            return
        if len(src) != len(v.axes):
            return
        expect = [d for d, a in zip(src, v.axes) if a is not None]
        got = [v.shape[a] for a in v.axes if a is not None]
        if expect != got or any(d != 1 for d, a in zip(src, v.axes) if a is None):
            raise SourceError(
                f"{op.where}: the spec computes {fmt(v.shape)} where the source has {fmt(src)}. "
                "This is a bug in specdsl's importer; please report it."
            )


def _needed(g: OpGraph) -> set[int]:
    """The ops the outputs need through their data inputs (shape arithmetic feeding a Reshape is not lowered)."""
    made_by = {out: op for op in g.ops for out in op.outputs}
    needed: set[int] = set()
    stack = list(g.outputs)
    while stack:
        name = stack.pop()
        op = made_by.get(name)
        if op is None or id(op) in needed:
            continue
        needed.add(id(op))
        data = DATA_INPUTS.get(op.type)
        stack += [
            n for i, n in enumerate(op.inputs) if n and (data is None or i in data) and n not in g.constants
        ]
    return needed


DATA_INPUTS = {
    "Reshape": {0},
    "Pad": {0},
    "Squeeze": {0},
    "Unsqueeze": {0},
    "Conv": {0},
    "ConvTranspose": {0},
    "Gemm": {0},
    "BatchNormalization": {0},
    "Clip": {0},
    "Linear": {0},
    "Dropout": {0},
}


# ---------------------------------------------------------------------------------------------------------------
# Handlers: op -> the Vals of its outputs

Handler = Callable[[_Lower, Op], list[Val]]
HANDLERS: dict[str, Handler] = {}


def _handles(*types: str):
    def deco(fn: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = fn
        return fn

    return deco


def _pads(pads: list[int] | None, rank: int) -> list[tuple[int, int]]:
    pads = list(pads or [0] * (2 * rank))
    return [(int(pads[i]), int(pads[i + rank])) for i in range(rank)]


def _padding(amounts: list[tuple[int, int]], sizes: Shape, kernel, strides, dilation) -> Any:
    """Explicit amounts in the language's words: 'valid', 'same', or [[t, b], [l, r]] ([l, r] for sequences)."""
    if all(a == (0, 0) for a in amounts):
        return "valid"
    if all(a == same_padding(n, k, s, d) for a, n, k, s, d in zip(amounts, sizes, kernel, strides, dilation)):
        return "same"
    return list(amounts[0]) if len(amounts) == 1 else [list(a) for a in amounts]


def _merge_pad(v: Val, own: list[tuple[int, int]], value: float) -> list[tuple[int, int]]:
    if v.pad is None:
        return own
    amounts, pad_value = v.pad
    if pad_value != value:
        raise Unsupported(f"a padding with {pad_value} before it")
    return [(a + c, b + d) for (a, b), (c, d) in zip(own, amounts)]


@_handles("Identity", "Cast")
def _identity(lo: _Lower, op: Op) -> list[Val]:
    return [lo.val(op.inputs[0])]


@_handles("Dropout")
def _dropout(lo: _Lower, op: Op) -> list[Val]:
    v = lo.plain(op.inputs[0])
    rate = op.attrs.get("rate", 0.0)
    if not rate:
        return [v]
    kind = "spatial_dropout2d" if op.attrs.get("spatial") else "dropout"
    return [lo._out(lo.emit(kind, {"rate": float(rate)}, [v]), v)]


@_handles("Conv")
def _conv(lo: _Lower, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    w = lo.const(op.inputs[1])
    b = lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if w is None:
        raise Unsupported("weights that are not constants")
    rank = w.ndim - 2
    if rank not in (1, 2) or len(x.shape) != rank + 1 or not _is_cf(x):
        raise Unsupported(f"a {rank}-D convolution of {fmt(x.shape)} data")
    kernel = tuple(int(k) for k in w.shape[2:])
    strides = tuple(op.attrs.get("strides") or [1] * rank)
    dilation = tuple(op.attrs.get("dilations") or [1] * rank)
    group = int(op.attrs.get("group", 1))
    auto = op.attrs.get("auto_pad", "NOTSET")
    sizes = x.shape[:rank]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        own = [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
        own = [(b_, a_) for a_, b_ in own] if auto == "SAME_LOWER" else own
    else:
        own = _pads(op.attrs.get("pads"), rank)
    amounts = _merge_pad(x, own, 0.0)
    x = replace(x, pad=None)
    sizes = x.shape[:rank]
    padding = _padding(amounts, sizes, kernel, strides, dilation)
    c, out = x.shape[-1], int(w.shape[0])
    weights = [w.transpose(2, 3, 1, 0) if rank == 2 else w.transpose(2, 1, 0)]
    if b is not None:
        weights.append(b)
    args: dict[str, Any] = {
        "kernel": list(kernel) if rank == 2 else kernel[0],
        "strides": list(strides) if rank == 2 else strides[0],
        "padding": padding,
        "dilation": list(dilation) if rank == 2 else dilation[0],
        "use_bias": b is not None,
    }
    if rank == 2 and group == c and group > 1 and out % c == 0:
        m = out // c
        weights[0] = w.reshape(c, m, *kernel).transpose(2, 3, 0, 1)
        kind = "depthwise_conv2d"
        args["depth_multiplier"] = m
    else:
        kind = "conv2d" if rank == 2 else "conv1d"
        args.update(filters=out, groups=group)
    return [lo._out(lo.emit(kind, args, [x], weights=weights), x, nonneg=False)]


@_handles("BatchNormalization")
def _batchnorm(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    r = len(x.shape)
    if not x.axes or x.axes[0] != r - 1 or x.order is not None:
        raise Unsupported("normalization over an axis that is not the channels")
    names = (op.inputs + ["", "", "", ""])[1:5]
    scale, bias, mean, var = (lo.const(n) if n else None for n in names)
    if mean is None or var is None:
        raise Unsupported("batch statistics that are not constants")
    # a fixed (not learned) gamma of ones or beta of zeros is a batch norm without scale or center, as an
    # exporter writes torch's BatchNorm without weight or bias
    if scale is not None and names[0] in lo.g.fixed and np.all(scale == 1):
        scale = None
    if bias is not None and names[1] in lo.g.fixed and np.all(bias == 0):
        bias = None
    weights = [a for a in (scale, bias) if a is not None] + [mean, var]
    args = {
        "epsilon": float(op.attrs.get("epsilon", 1e-5)),
        "momentum": float(op.attrs.get("momentum", 0.9)),
        "scale": scale is not None,
        "center": bias is not None,
    }
    return [lo._out(lo.emit("batchnorm", args, [x], weights=weights), x, nonneg=False)]


@_handles("LayerNormalization")
def _layernorm(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    r = len(x.shape)
    axis = op.attrs.get("axis", -1)
    axis = axis % len(x.axes)
    if x.axes[axis] != r - 1 or (op.attrs.get("normalized", 1) != 1) or x.order is not None:
        raise Unsupported("normalization over more than the channel axis")
    scale, bias = (lo.const(n) if n else None for n in (op.inputs + ["", ""])[1:3])
    weights = [a for a in (scale, bias) if a is not None]
    args = {
        "epsilon": float(op.attrs.get("epsilon", 1e-5)),
        "scale": scale is not None,
        "center": bias is not None,
    }
    return [lo._out(lo.emit("layernorm", args, [x], weights=weights), x, nonneg=False)]


@_handles("Act")
def _act(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    fn = op.attrs["function"]
    if fn == "softmax":
        axis = op.attrs.get("axis", -1) % len(x.axes)
        if x.axes[axis] != len(x.shape) - 1 or x.order is not None:
            raise Unsupported("a softmax over an axis that is not the channels")
    args: dict[str, Any] = {"function": fn}
    if op.attrs.get("negative_slope") is not None:
        args["negative_slope"] = float(op.attrs["negative_slope"])
    ref = lo.emit("activation", args, [x])
    return [lo._out(ref, x, nonneg=fn in NONNEG_ACTS)]


def _scalar(a: np.ndarray) -> float | None:
    if a.size != 1:
        return None
    value = a.reshape(-1)[0]
    return float(str(np.float32(value))) if a.dtype == np.float32 else float(value)


@_handles("Add", "Sub", "Mul", "Div")
def _binary(lo: _Lower, op: Op) -> list[Val]:
    a_c, b_c = lo.const(op.inputs[0]), lo.const(op.inputs[1])
    if a_c is None and b_c is None:
        a, b = lo.plain(op.inputs[0]), lo.plain(op.inputs[1])
        if op.type not in ("Add", "Mul"):
            raise Unsupported("an elementwise difference or quotient of two tensors")
        if a.axes != b.axes or a.shape != b.shape or a.order is not None or b.order is not None:
            raise Unsupported(f"tensors of different shapes or layouts ({fmt(a.shape)}, {fmt(b.shape)})")
        kind = "add" if op.type == "Add" else "multiply"
        return [lo._out(lo.emit(kind, {}, [a, b]), a, nonneg=a.nonneg and b.nonneg)]
    if a_c is not None and b_c is not None:
        raise Unsupported("arithmetic on constants alone")
    first_const = a_c is not None
    c = a_c if first_const else b_c
    x = lo.plain(op.inputs[1] if first_const else op.inputs[0])
    k = _scalar(c)
    if k is not None:
        if op.type == "Mul":
            args = {"scale": k}
        elif op.type == "Div" and not first_const and k != 0:
            args = {"scale": 1.0 / k}
        elif op.type == "Add":
            args = {"scale": 1.0, "offset": k}
        elif op.type == "Sub":
            args = {"scale": -1.0, "offset": k} if first_const else {"scale": 1.0, "offset": -k}
        else:
            raise Unsupported("a constant divided by a tensor")
        keep = (
            op.type in ("Add", "Mul", "Div")
            and x.nonneg
            and (args["scale"] >= 0 and args.get("offset", 0) >= 0)
        )
        return [lo._out(lo.emit("rescaling", args, [x]), x, nonneg=keep)]
    if op.type != "Add":
        raise Unsupported(f"{op.type} by a constant of shape {c.shape}: only a bias (Add) or one number")
    return [_bias(lo, x, c)]


def _bias(lo: _Lower, x: Val, c: np.ndarray) -> Val:
    """x + c for a constant c that is one value per channel, or one per value of x."""
    src = [d for d in c.shape]
    n_src = len(x.axes)
    while len(src) > n_src and src[0] == 1:  # a leading batch axis of 1
        src = src[1:]
    c = c.reshape(src) if src else c.reshape(())
    if len(src) < n_src:
        c = c.reshape((1,) * (n_src - len(src)) + tuple(src))
    r = len(x.shape)
    full = tuple(x.shape[a] if a is not None else 1 for a in x.axes)
    chan = [i for i, a in enumerate(x.axes) if a == r - 1]
    if c.ndim == n_src and x.order is None:
        if (
            all(d == 1 or i in chan for i, d in enumerate(c.shape))
            and chan
            and c.shape[chan[0]] == x.shape[-1]
        ):
            ref = lo.emit("bias", {"per": "channel"}, [x], weights=[c.reshape(-1)])
            return lo._out(ref, x, nonneg=False)
        if tuple(c.shape) == full:
            spec_axes = [a for a in x.axes if a is not None]
            keep = [i for i, a in enumerate(x.axes) if a is not None]
            arr = c.reshape([c.shape[i] for i in keep]).transpose(np.argsort(spec_axes))
            ref = lo.emit("bias", {"per": "position"}, [x], weights=[arr])
            return lo._out(ref, x, nonneg=False)
    raise Unsupported(f"a constant of shape {tuple(c.shape)} added to {fmt(x.shape)} data")


def _dense(lo: _Lower, x: Val, axis: int, kernel: np.ndarray, bias: np.ndarray | None) -> Val:
    """A dense layer on source axis ``axis`` of x, kernel (in, out) in the source's order of that axis."""
    r = len(x.shape)
    axis %= len(x.axes)
    if x.axes[axis] != r - 1:
        raise Unsupported("a matrix product over an axis that is not the last of the spec's layout")
    if x.order is not None:
        spec_kernel = np.empty_like(kernel)
        spec_kernel[np.asarray(x.order)] = kernel
        kernel = spec_kernel
    weights = [kernel] + ([bias] if bias is not None else [])
    ref = lo.emit(
        "dense",
        {"units": int(kernel.shape[1]), "use_bias": bias is not None},
        [replace(x, order=None)],
        weights=weights,
    )
    return lo._out(ref, x, order=None, nonneg=False)


@_handles("MatMul")
def _matmul(lo: _Lower, op: Op) -> list[Val]:
    w = lo.const(op.inputs[1])
    if w is None or w.ndim != 2:
        raise Unsupported("a matrix product with a matrix that is not a constant")
    return [_dense(lo, lo.plain(op.inputs[0]), -1, w, None)]


@_handles("Gemm")
def _gemm(lo: _Lower, op: Op) -> list[Val]:
    if op.attrs.get("transA", 0):
        raise Unsupported("transA=1")
    w = lo.const(op.inputs[1])
    c = lo.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    if w is None:
        raise Unsupported("a matrix that is not a constant")
    w = (w.T if op.attrs.get("transB", 0) else w) * float(op.attrs.get("alpha", 1.0))
    bias = None if c is None else np.broadcast_to(c * float(op.attrs.get("beta", 1.0)), (w.shape[1],)).copy()
    x = lo.plain(op.inputs[0])
    if len(x.axes) != 1:
        raise Unsupported(f"Gemm of {fmt(x.shape)} data")
    return [_dense(lo, x, 0, w, bias)]


@_handles("Linear")
def _linear(lo: _Lower, op: Op) -> list[Val]:
    w, b = lo.const(op.inputs[1]), lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    return [_dense(lo, lo.plain(op.inputs[0]), op.attrs.get("axis", -1), w.T, b)]


@_handles("Transpose")
def _transpose(lo: _Lower, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    perm = list(op.attrs["perm"])
    if perm[0] != 0 or x.order is not None:
        raise Unsupported("a transpose that moves the batch axis")
    return [replace(x, axes=tuple(x.axes[p - 1] for p in perm[1:]))]


def _flat_order(x: Val) -> np.ndarray | None:
    spec_axes = [a for a in x.axes if a is not None]
    idx = np.arange(int(np.prod(x.shape))).reshape(x.shape).transpose(spec_axes).reshape(-1)
    return None if np.array_equal(idx, np.arange(idx.size)) else idx


@_handles("Flatten")
def _flatten(lo: _Lower, op: Op) -> list[Val]:
    if op.attrs.get("axis", 1) != 1:
        raise Unsupported(f"axis={op.attrs['axis']}: only everything but the batch axis is flattened")
    return [_to_vector(lo, lo.plain(op.inputs[0]))]


def _to_vector(lo: _Lower, x: Val) -> Val:
    if x.order is not None:
        return x
    if len(x.shape) == 1:
        return replace(x, axes=(0,))
    order = _flat_order(x)
    ref = lo.emit("flatten", {}, [x])
    return lo._out(ref, x, axes=(0,), order=order)


@_handles("Reshape")
def _reshape(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    if "shape" not in op.attrs:
        raise Unsupported("a target shape that is not known")
    target = tuple(int(d) for d in op.attrs["shape"])
    src = tuple(x.shape[a] if a is not None else 1 for a in x.axes)
    if (
        len(target) == 1
        and target[0] == int(np.prod(x.shape))
        and len(x.shape) > 1
        or (len(target) == 1 and x.order is not None)
    ):
        return [_to_vector(lo, x)]
    # only axes of size 1 come or go: the layout follows, no layer
    if [d for d in target if d != 1] == [d for d in src if d != 1] and x.order is None:
        real = iter([a for a, d in zip(x.axes, src) if d != 1])
        ones = [a for a, d in zip(x.axes, src) if d == 1 and a is not None]
        if not ones:
            return [replace(x, axes=tuple(next(real) if d != 1 else None for d in target))]
    if x.order is None and x.axes == tuple(range(len(x.shape))):
        ref = lo.emit("reshape", {"shape": list(target)}, [x])
        return [lo._out(ref, x, axes=tuple(range(len(target))))]
    raise Unsupported(f"a reshape of channels-first {fmt(src)} data to {fmt(target)}")


@_handles("Concat")
def _concat(lo: _Lower, op: Op) -> list[Val]:
    xs = [lo.plain(n) for n in op.inputs]
    axis = op.attrs["axis"] % len(xs[0].axes)
    if any(v.axes != xs[0].axes or v.order is not None for v in xs) or xs[0].axes[axis] is None:
        raise Unsupported("inputs laid out differently")
    spec_axis = xs[0].axes[axis]
    args = {} if spec_axis == len(xs[0].shape) - 1 else {"axis": spec_axis}
    ref = lo.emit("concat", args, xs)
    return [lo._out(ref, xs[0], nonneg=all(v.nonneg for v in xs))]


@_handles("Pad")
def _pad(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    if op.attrs.get("mode", "constant") != "constant":
        raise Unsupported(f"mode={op.attrs['mode']!r}: only zeros (or -inf before a max pooling) pad")
    pads = list(op.attrs["pads"])  # per source axis (batch left out): (before, after)
    if not _is_cf(x) or len(x.shape) < 2 or any(pads[0]):
        raise Unsupported("padding of axes other than the spatial ones")
    value = float(op.attrs.get("value", 0.0))
    return [replace(x, pad=(tuple(tuple(p) for p in pads[1:]), value))]


def _pool(lo: _Lower, op: Op, average: bool) -> list[Val]:
    x = lo.val(op.inputs[0])
    rank = len(x.shape) - 1
    if rank not in (1, 2) or not _is_cf(x):
        raise Unsupported(f"pooling of {fmt(x.shape)} data")
    if op.attrs.get("ceil_mode", 0):
        raise Unsupported("ceil_mode=1")
    if any(d != 1 for d in op.attrs.get("dilations") or [1]):
        raise Unsupported("dilated pooling")
    kernel = tuple(op.attrs["kernel_shape"])
    strides = tuple(op.attrs.get("strides") or [1] * rank)
    own = _pads(op.attrs.get("pads"), rank)
    include = bool(op.attrs.get("count_include_pad", 0))
    pending = x.pad
    if (
        pending is not None
        and pending[1] not in (0.0, -np.inf)
        or (pending and average and pending[1] != 0.0)
    ):
        raise Unsupported(f"a padding with {pending[1]} before it")
    if pending is not None and pending[1] == -np.inf:
        amounts = _merge_pad(x, own, -np.inf)
        x = replace(x, pad=None)
    elif pending is not None:  # zeros padded first: counted in an average, a value in a max
        if not average and not x.nonneg:
            raise Unsupported("zero padding before a max pooling of values that may be negative")
        x = lo.plain(op.inputs[0])
        amounts = own
    else:
        amounts = own
    sizes = x.shape[:rank]
    padding = _padding(amounts, sizes, kernel, strides, (1,) * rank)
    same_ok = not average or not include
    if padding not in ("valid", "same") or (padding == "same" and not same_ok):
        if (average and include) or (not average and x.nonneg):
            if rank != 2:
                raise Unsupported("padding of sequences (the language pads only 2-D data)")
            ref = lo.emit("zero_padding2d", {"padding": [list(a) for a in amounts]}, [x], "pad")
            x = lo._out(ref, x)
            padding = "valid"
        else:
            raise Unsupported(
                f"padding {[list(a) for a in amounts]}, which is neither 'valid' nor 'same'"
                + ("" if average else ", of values that may be negative")
            )
    kind = ("avgpool" if average else "maxpool") + ("2d" if rank == 2 else "1d")
    args: dict[str, Any] = {"pool": list(kernel) if rank == 2 else kernel[0], "padding": padding}
    if strides != kernel:  # a pool's strides default to its size
        args["strides"] = list(strides) if rank == 2 else strides[0]
    return [lo._out(lo.emit(kind, args, [x]), x)]


HANDLERS["MaxPool"] = lambda lo, op: _pool(lo, op, average=False)
HANDLERS["AveragePool"] = lambda lo, op: _pool(lo, op, average=True)


def _global(lo: _Lower, op: Op, average: bool, keepdims: bool) -> Val:
    x = lo.plain(op.inputs[0])
    rank = len(x.shape) - 1
    if rank not in (1, 2) or not _is_cf(x):
        raise Unsupported(f"global pooling of {fmt(x.shape)} data")
    kind = f"global_{'avg' if average else 'max'}pool{rank}d"
    ref = lo.emit(kind, {}, [x])
    return lo._out(ref, x, axes=(0,) + ((None,) * rank if keepdims else ()))


HANDLERS["GlobalAveragePool"] = lambda lo, op: [_global(lo, op, True, True)]
HANDLERS["GlobalMaxPool"] = lambda lo, op: [_global(lo, op, False, True)]


@_handles("ReduceMean", "ReduceMax")
def _reduce(lo: _Lower, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    axes = sorted(a % len(x.axes) for a in op.attrs.get("axes", []))
    if axes != list(range(1, len(x.axes))) or not _is_cf(x):
        raise Unsupported("a reduction over other axes than all the spatial ones")
    return [_global(lo, op, op.type == "ReduceMean", bool(op.attrs.get("keepdims", 1)))]


@_handles("ConvTranspose")
def _conv_transpose(lo: _Lower, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    w = lo.const(op.inputs[1])
    b = lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if w is None or w.ndim != 4 or not _is_cf(x) or int(op.attrs.get("group", 1)) != 1:
        raise Unsupported("only 2-D transposed convolutions without groups")
    kernel = tuple(int(k) for k in w.shape[2:])
    strides = tuple(op.attrs.get("strides") or [1, 1])
    dilation = tuple(op.attrs.get("dilations") or [1, 1])
    pads = _pads(op.attrs.get("pads"), 2)
    output_padding = tuple(op.attrs.get("output_padding") or [0, 0])
    crop = tuple(op.attrs.get("crop") or (0, 0, 0, 0))
    found = _transpose_options(x.shape[:2], kernel, strides, dilation, pads, output_padding, crop)
    if found is None:
        raise Unsupported("a padding and output_padding that no Keras transposed convolution has")
    padding, op_pad = found
    args: dict[str, Any] = {
        "filters": int(w.shape[1]),
        "kernel": list(kernel),
        "strides": list(strides),
        "dilation": list(dilation),
        "padding": padding,
        "use_bias": b is not None,
    }
    if op_pad is not None:
        args["output_padding"] = list(op_pad)
    weights = [w.transpose(2, 3, 1, 0)] + ([b] if b is not None else [])
    return [lo._out(lo.emit("conv2d_transpose", args, [x], weights=weights), x, nonneg=False)]


def _transpose_options(sizes, kernel, strides, dilation, pads, output_padding, crop):
    """The Keras padding and output_padding whose torch form (as the torch backend builds it) is this one."""
    from ..plan import transpose_length

    try:
        from ..backends._torch._builders import _transpose_axis
    except ImportError:
        return None
    for padding in ("valid", "same"):
        for op_pad in [None, *[(a, b) for a in range(strides[0]) for b in range(strides[1])]]:
            ok = True
            for i in range(2):
                o = None if op_pad is None else op_pad[i]
                out = transpose_length(sizes[i], kernel[i], strides[i], dilation[i], padding, o)
                got = _transpose_axis(sizes[i], out, kernel[i], strides[i], dilation[i], padding, o)
                before, after = pads[i]
                if before != after:
                    ok = False
                    break
                want = (before, output_padding[i], crop[2 * i], crop[2 * i + 1])
                if got != want:
                    ok = False
                    break
            if ok:
                return padding, op_pad
    return None


# ---------------------------------------------------------------------------------------------------------------
# Folds: what a spec writes as one layer


def _fold(layers: list[Layer], outputs: list[str]) -> list[Layer]:
    layers = list(layers)
    changed = True
    while changed:
        changed = False
        readers: dict[str, list[Layer]] = {}
        for layer in layers:
            for name in layer.inputs:
                readers.setdefault(name, []).append(layer)
        by_name = {layer.name: layer for layer in layers}
        for layer in layers:
            users = readers.get(layer.name, [])
            if len(users) != 1 or layer.name in outputs:
                continue
            nxt = users[0]
            merged = _merge(layer, nxt)
            if merged is None:
                continue
            # `layer` becomes the merged layer under its own name; `nxt` goes, its readers read `layer`
            by_name[layer.name] = merged
            for other in layers:
                other.inputs = [layer.name if i == nxt.name else i for i in other.inputs]
            outputs[:] = [layer.name if o == nxt.name else o for o in outputs]
            layers = [merged if x is layer else x for x in layers if x is not nxt]
            changed = True
            break
    return layers


def _merge(a: Layer, b: Layer) -> Layer | None:
    """One layer doing what ``a`` then ``b`` do, or None."""
    if b.inputs != [a.name]:
        return None
    if (
        a.kind in FOLD_ACT
        and b.kind == "activation"
        and a.args.get("activation") in (None, "linear")
        and b.args.get("negative_slope", 0.2 if b.args["function"] == "leaky_relu" else None) in (None, 0.2)
    ):
        return Layer(
            a.kind, {**a.args, "activation": b.args["function"]}, a.name, a.inputs, a.weights, a.origin
        )
    if (
        a.kind in FOLD_ACT
        and b.kind == "bias"
        and b.args.get("per") == "channel"
        and not a.args.get("use_bias", True)
        and a.args.get("activation") in (None, "linear")
    ):
        return Layer(
            a.kind, {**a.args, "use_bias": True}, a.name, a.inputs, [*a.weights, *b.weights], a.origin
        )
    if (
        a.kind == "rescaling"
        and b.kind == "rescaling"
        and a.args.get("offset", 0) == 0
        and b.args.get("scale") == 1.0
    ):
        return Layer(
            "rescaling",
            {"scale": a.args["scale"], "offset": b.args.get("offset", 0.0)},
            a.name,
            a.inputs,
            [],
            a.origin,
        )
    if (
        a.kind == "depthwise_conv2d"
        and b.kind == "conv2d"
        and not a.args.get("use_bias")
        and a.args.get("activation") in (None, "linear")
        and b.args["kernel"] == [1, 1]
        and b.args["strides"] == [1, 1]
        and b.args.get("groups", 1) == 1
        and b.args["padding"] == "valid"
        and b.args["dilation"] == [1, 1]
    ):
        args = {k: a.args[k] for k in ("kernel", "strides", "padding", "dilation", "depth_multiplier")}
        args.update(filters=b.args["filters"], use_bias=b.args["use_bias"])
        if b.args.get("activation"):
            args["activation"] = b.args["activation"]
        return Layer("separable_conv2d", args, a.name, a.inputs, [a.weights[0], *b.weights], a.origin)
    return None


def lower(g: OpGraph) -> Graph:
    """The spec layers of an operator graph; what has no spec equivalent is one SourceError naming every op."""
    problems = Problems(g.source)
    return _Lower(g, problems).run()

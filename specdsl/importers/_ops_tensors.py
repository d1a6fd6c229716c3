"""The handlers of the operators that are not sliding windows: identity and dropout, batch and layer
normalization, activations, arithmetic with a constant (a scale, a bias, a rescaling) or between two tensors (add,
multiply), MatMul, Gemm and torch's linear layers (dense), and the layout operators (Transpose, Flatten, Reshape,
Concat), which move a value's axes rather than add a layer where they can.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plan import fmt
from ._ops import Op, Unsupported, Val, handles

if TYPE_CHECKING:
    from ._ops_lower import Lowering

NONNEG_ACTS = {"relu", "relu6", "sigmoid", "hard_sigmoid", "softmax", "softplus"}


@handles("Identity", "Cast")
def _identity(lo: Lowering, op: Op) -> list[Val]:
    return [lo.val(op.inputs[0])]


@handles("Dropout")
def _dropout(lo: Lowering, op: Op) -> list[Val]:
    v = lo.plain(op.inputs[0])
    rate = op.attrs.get("rate", 0.0)
    if not rate:
        return [v]
    kind = "spatial_dropout2d" if op.attrs.get("spatial") else "dropout"
    return [lo._out(lo.emit(kind, {"rate": float(rate)}, [v]), v)]


@handles("BatchNormalization")
def _batchnorm(lo: Lowering, op: Op) -> list[Val]:
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


@handles("GroupNormalization")
def _group_norm(lo: Lowering, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    if not x.axes or x.axes[0] != len(x.shape) - 1 or x.order is not None:
        raise Unsupported("normalization over groups of an axis that is not the channels")
    scale, bias = (lo.const(n) if n else None for n in (op.inputs + ["", ""])[1:3])
    args = {
        "groups": int(op.attrs["num_groups"]),
        "epsilon": float(op.attrs.get("epsilon", 1e-5)),
        "scale": scale is not None,
        "center": bias is not None,
    }
    weights = [a for a in (scale, bias) if a is not None]
    return [lo._out(lo.emit("group_norm", args, [x], weights=weights), x, nonneg=False)]


@handles("LayerNormalization")
def _layernorm(lo: Lowering, op: Op) -> list[Val]:
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


@handles("Act")
def _act(lo: Lowering, op: Op) -> list[Val]:
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


def _laid_out_as(lo: Lowering, x: Val, like: Val) -> Val:
    """``x`` as a spec tensor of ``like``'s rank and layout, where the source has it so with axes of size 1 that
    the spec left out (a squeeze-and-excitation gate, (C,) in the spec and (C, 1, 1) in the source): a reshape."""
    if x.axes == like.axes or x.order is not None or len(x.axes) != len(like.axes) or None in like.axes:
        return x
    src = [x.shape[a] if a is not None else 1 for a in x.axes]
    target = [1] * len(like.axes)
    for i, a in enumerate(like.axes):
        target[a] = src[i]
    if [d for d in target if d != 1] != [d for d in x.shape if d != 1]:
        return x
    return lo._out(lo.emit("reshape", {"shape": target}, [x]), x, axes=like.axes)


@handles("Add", "Sub", "Mul", "Div")
def _binary(lo: Lowering, op: Op) -> list[Val]:
    a_c, b_c = lo.const(op.inputs[0]), lo.const(op.inputs[1])
    if a_c is None and b_c is None:
        a, b = lo.plain(op.inputs[0]), lo.plain(op.inputs[1])
        if op.type == "Mul":
            a, b = _laid_out_as(lo, a, b), _laid_out_as(lo, b, a)
        if op.type not in ("Add", "Mul"):
            raise Unsupported("an elementwise difference or quotient of two tensors")
        # a product broadcasts (a squeeze-and-excitation gate of 1x1xC), as the multiply kind does; a sum does not
        same = a.shape == b.shape or (
            op.type == "Mul"
            and len(a.shape) == len(b.shape)
            and all(m == n or 1 in (m, n) for m, n in zip(a.shape, b.shape))
        )
        if a.axes != b.axes or not same or a.order is not None or b.order is not None:
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


def _bias(lo: Lowering, x: Val, c: np.ndarray) -> Val:
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


def _dense(lo: Lowering, x: Val, axis: int, kernel: np.ndarray, bias: np.ndarray | None) -> Val:
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


@handles("MatMul")
def _matmul(lo: Lowering, op: Op) -> list[Val]:
    w = lo.const(op.inputs[1])
    if w is None or w.ndim != 2:
        raise Unsupported("a matrix product with a matrix that is not a constant")
    return [_dense(lo, lo.plain(op.inputs[0]), -1, w, None)]


@handles("Gemm")
def _gemm(lo: Lowering, op: Op) -> list[Val]:
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


@handles("Linear")
def _linear(lo: Lowering, op: Op) -> list[Val]:
    w, b = lo.const(op.inputs[1]), lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    return [_dense(lo, lo.plain(op.inputs[0]), op.attrs.get("axis", -1), w.T, b)]


@handles("Transpose")
def _transpose(lo: Lowering, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    perm = list(op.attrs["perm"])
    if perm[0] != 0 or x.order is not None:
        raise Unsupported("a transpose that moves the batch axis")
    return [replace(x, axes=tuple(x.axes[p - 1] for p in perm[1:]))]


def _flat_order(x: Val) -> np.ndarray | None:
    spec_axes = [a for a in x.axes if a is not None]
    idx = np.arange(int(np.prod(x.shape))).reshape(x.shape).transpose(spec_axes).reshape(-1)
    return None if np.array_equal(idx, np.arange(idx.size)) else idx


@handles("Flatten")
def _flatten(lo: Lowering, op: Op) -> list[Val]:
    if op.attrs.get("axis", 1) != 1:
        raise Unsupported(f"axis={op.attrs['axis']}: only everything but the batch axis is flattened")
    return [_to_vector(lo, lo.plain(op.inputs[0]))]


def _to_vector(lo: Lowering, x: Val) -> Val:
    if x.order is not None:
        return x
    if len(x.shape) == 1:
        return replace(x, axes=(0,))
    order = _flat_order(x)
    ref = lo.emit("flatten", {}, [x])
    return lo._out(ref, x, axes=(0,), order=order)


@handles("Reshape")
def _reshape(lo: Lowering, op: Op) -> list[Val]:
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


@handles("Concat")
def _concat(lo: Lowering, op: Op) -> list[Val]:
    xs = [lo.plain(n) for n in op.inputs]
    axis = op.attrs["axis"] % len(xs[0].axes)
    if any(v.axes != xs[0].axes or v.order is not None for v in xs) or xs[0].axes[axis] is None:
        raise Unsupported("inputs laid out differently")
    spec_axis = xs[0].axes[axis]
    args = {} if spec_axis == len(xs[0].shape) - 1 else {"axis": spec_axis}
    ref = lo.emit("concat", args, xs)
    return [lo._out(ref, xs[0], nonneg=all(v.nonneg for v in xs))]

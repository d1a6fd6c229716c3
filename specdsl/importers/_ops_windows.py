"""The handlers of sliding windows: Conv (a depthwise conv where the groups are the channels), ConvTranspose, Pad
(held by the value until a conv or pooling reads it), MaxPool and AveragePool, global pooling and reductions over
the spatial axes. Explicit padding amounts become 'valid', 'same' or the amounts, in the language's words.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import get_backend
from ..errors import BackendMissingError
from ..plan import fmt, same_padding, transpose_length, transpose_padding
from ._ops import HANDLERS, Op, Shape, Unsupported, Val, handles, is_channels_first

if TYPE_CHECKING:
    from ._ops_lower import Lowering


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


@handles("Conv")
def _conv(lo: Lowering, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    w = lo.const(op.inputs[1])
    b = lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if w is None:
        raise Unsupported("weights that are not constants")
    rank = w.ndim - 2
    if rank not in (1, 2) or len(x.shape) != rank + 1 or not is_channels_first(x):
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


@handles("Pad")
def _pad(lo: Lowering, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    if op.attrs.get("mode", "constant") != "constant":
        raise Unsupported(f"mode={op.attrs['mode']!r}: only zeros (or -inf before a max pooling) pad")
    pads = list(op.attrs["pads"])  # per source axis (batch left out): (before, after)
    if not is_channels_first(x) or len(x.shape) < 2 or any(pads[0]):
        raise Unsupported("padding of axes other than the spatial ones")
    if any(p < 0 for axis in pads for p in axis):
        raise Unsupported(f"a negative padding (a crop: {pads[1:]})")
    value = float(op.attrs.get("value", 0.0))
    return [replace(x, pad=(tuple(tuple(p) for p in pads[1:]), value))]


def _pool(lo: Lowering, op: Op, average: bool) -> list[Val]:
    x = lo.val(op.inputs[0])
    rank = len(x.shape) - 1
    if rank not in (1, 2) or not is_channels_first(x):
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


def _global(lo: Lowering, op: Op, average: bool, keepdims: bool) -> Val:
    x = lo.plain(op.inputs[0])
    rank = len(x.shape) - 1
    if rank not in (1, 2) or not is_channels_first(x):
        raise Unsupported(f"global pooling of {fmt(x.shape)} data")
    kind = f"global_{'avg' if average else 'max'}pool{rank}d"
    ref = lo.emit(kind, {}, [x])
    return lo._out(ref, x, axes=(0,) + ((None,) * rank if keepdims else ()))


HANDLERS["GlobalAveragePool"] = lambda lo, op: [_global(lo, op, True, True)]
HANDLERS["GlobalMaxPool"] = lambda lo, op: [_global(lo, op, False, True)]


@handles("ReduceMean", "ReduceMax")
def _reduce(lo: Lowering, op: Op) -> list[Val]:
    x = lo.val(op.inputs[0])
    axes = sorted(a % len(x.axes) for a in op.attrs.get("axes", []))
    if axes != list(range(1, len(x.axes))) or not is_channels_first(x):
        raise Unsupported("a reduction over other axes than all the spatial ones")
    return [_global(lo, op, op.type == "ReduceMean", bool(op.attrs.get("keepdims", 1)))]


@handles("ConvTranspose")
def _conv_transpose(lo: Lowering, op: Op) -> list[Val]:
    x = lo.plain(op.inputs[0])
    w = lo.const(op.inputs[1])
    b = lo.const(op.inputs[2]) if len(op.inputs) > 2 else None
    if w is None or w.ndim != 4 or not is_channels_first(x) or int(op.attrs.get("group", 1)) != 1:
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
    try:
        torch_backend: Any = get_backend("torch")
    except BackendMissingError:
        return None
    for padding in ("valid", "same"):
        for op_pad in [None, *[(a, b) for a in range(strides[0]) for b in range(strides[1])]]:
            ok = True
            for i in range(2):
                o = None if op_pad is None else op_pad[i]
                out = transpose_length(sizes[i], kernel[i], strides[i], dilation[i], padding, o)
                cropped = transpose_padding(sizes[i], out, kernel[i], strides[i], dilation[i], padding, o)
                got = torch_backend.transpose_axis(*cropped, strides[i], dilation[i])
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

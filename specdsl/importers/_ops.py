"""Tensor-level graphs (ONNX's, torch.fx's) -> spec layers, with every tensor's layout tracked: the operator graph.

ONNX and torch compute channels-first (N, C, H, W) and spell a model as operators (Conv, Relu, Transpose,
Reshape, MatMul, Add, ...); a spec is channels-last and spelled as layers. Both importers turn their source into
an :class:`OpGraph` of ONNX-like :class:`Op` s, and :func:`~._ops_lower.lower` turns that into spec layers. Each
tensor is followed as a :class:`Val`: the spec node holding it, its spec shape, and where each of the source's
axes is in the spec's, so that a Transpose or a Squeeze costs no layer, a Conv checks that it reads
channels-first data, a Flatten of channels-first data (whose order differs from the spec's channels-last flatten)
permutes the rows of the dense layer after it, and a Pad is merged into the conv or pooling that reads it. A max
pooling whose (symmetric) padding is neither 'valid' nor 'same' is zero padding then a valid pooling when its input
cannot be negative (after a ReLU), where the two agree exactly.

Then, as a spec writes them: a conv's activation and bias (Conv -> Relu, MatMul -> Add) fold into the conv, and a
depthwise conv followed by a 1x1 conv is one separable conv. Shapes come from the language's own rules.

The modules: this one (:class:`Op`, :class:`OpGraph`, :class:`Val`, and ``HANDLERS``: each op type's handler,
registered with :func:`handles`); ``_ops_lower`` (:func:`~._ops_lower.lower`: the walk over the ops, calling each
one's handler); ``_ops_windows`` (the handlers of sliding windows: Conv, ConvTranspose, Pad, pooling, global
pooling and reductions); ``_ops_tensors`` (the other handlers: normalization, activations, arithmetic, dense
layers, Transpose, Flatten, Reshape, Concat); ``_ops_fold`` (what a spec writes as one layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ._ops_lower import Lowering

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


def is_channels_first(v: Val) -> bool:
    """Whether the value is laid out as the source's channels-first tensor (and not reordered by a flatten)."""
    return v.axes == channels_first(len(v.shape)) and v.order is None


# The layer kinds the handlers lower operators to: what ONNX files and torch modules import as. A registered kind
# not named here (a new one, a plug-in's) is refused by the ONNX and torch.fx importers, naming its node or module.
LOWERED_KINDS = frozenset(
    {
        *("conv2d", "conv1d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose"),
        *("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d"),
        *("global_avgpool2d", "global_maxpool2d", "global_avgpool1d", "global_maxpool1d"),
        *("zero_padding2d", "batchnorm", "layernorm", "group_norm", "dropout", "spatial_dropout2d"),
        *("flatten", "dense", "reshape", "activation", "add", "multiply", "concat", "rescaling", "bias"),
    }
)

Handler = Callable[["Lowering", Op], list[Val]]
HANDLERS: dict[str, Handler] = {}


def handles(*types: str):
    """Register the decorated function as the handler of these op types."""

    def deco(fn: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = fn
        return fn

    return deco

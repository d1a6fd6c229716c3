"""Lowering an :class:`~._ops.OpGraph` to spec layers: each op, in order, through its handler (``HANDLERS``), each
layer emitted planned by the language's own rule, every source tensor followed as a :class:`~._ops.Val`; then the
folds (``_ops_fold``). What has no spec equivalent is one SourceError naming every such op.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .._text import shown
from ..errors import SourceError
from ..plan import MERGE_KINDS, RULES, RuleError, fmt
from ..spec import LAYERS
from . import _ops_tensors, _ops_windows  # noqa: F401  (register their handlers)
from ._graph import Graph, Layer, Problems
from ._ops import HANDLERS, Op, OpGraph, Shape, Unsupported, Val, channels_first, is_channels_first
from ._ops_fold import fold


class Lowering:
    """The walk over one graph: the layers emitted so far, the Val of each source tensor, the op at hand."""

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
            if v.order is not None or (len(v.shape) > 1 and not is_channels_first(v)):
                notes.append(
                    f"output `{shown(name)}` is laid out differently in the spec's torch model than in the source "
                    "(the spec's is channels-first, flattened channels-last)."
                )
        refs = [v.ref for v in outs]
        if not self.layers:  # the identity: a spec has at least one layer
            self.op = Op("Identity", [], [], name="identity")
            refs = [self.emit("activation", {"function": "linear"}, [outs[0]])]
        layers = fold(self.layers, refs)
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


def lower(g: OpGraph) -> Graph:
    """The spec layers of an operator graph; what has no spec equivalent is one SourceError naming every op."""
    problems = Problems(g.source)
    return Lowering(g, problems).run()

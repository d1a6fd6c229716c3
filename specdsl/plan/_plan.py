"""The static plan: every node's shapes, parameter counts, FLOPs and activation memory, from the rules alone."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from .._text import terminal
from ..errors import Loc, ShapeError
from ..spec import LAYERS, LayerEntry, LayerSpec, ModelSpec, gc_paused, register_shape_inference
from ._rules import MERGE_KINDS, RULES
from ._windows import NOTHING, POOL_KINDS, TOO_SMALL_HINTS, Resolved, RuleError, Shape, fmt, numel

BYTES_PER_VALUE = 4  # float32


class PlanNode(NamedTuple):
    """One node of the plan: the layer (``kind`` "input" and no layer for the model's input), the nodes it reads
    and their shapes, its output shape, parameter counts and FLOPs, where the spec wrote it (``path``, ``loc``),
    and what its rule resolved for the backends (``resolved``: window sizes and padding amounts as tuples, the
    fans of its kernels; see :class:`Resolved`). (Immutable; a named tuple because it is the cheapest immutable
    object to make, and planning is meant to take microseconds.)"""

    name: str
    kind: str
    layer: LayerSpec | None
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]
    shape: Shape
    trainable: int = 0
    non_trainable: int = 0
    flops: int = 0
    path: str = ""
    loc: Loc | None = None
    resolved: Resolved = NOTHING

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def frozen(self) -> bool:
        """Whether it has weights and says ``trainable: false`` (or a use around it does)."""
        return bool(self.params) and self.layer is not None and not self.layer.trainable

    @property
    def activation_bytes(self) -> int:
        return numel(self.shape) * BYTES_PER_VALUE

    @property
    def keras_class(self) -> str:
        return "InputLayer" if self.kind == "input" else LAYERS[self.kind].keras_class


@dataclass(frozen=True)
class PlanWarning:
    """A warning of a node: its message, where, and its code (which a layer's ``silence:`` names)."""

    message: str
    loc: Loc | None
    path: str
    code: str = ""

    def __str__(self) -> str:
        prefix = f"{self.loc}: " if self.loc else ""
        return terminal(f"{prefix}{self.path}: warning [{self.code}]: {self.message}")


@dataclass
class Plan:
    """The checked, counted graph of a spec: the single source of truth for shapes and counts."""

    spec: ModelSpec
    nodes: list[PlanNode]
    outputs: list[str]
    warnings: list[PlanWarning] = field(default_factory=list)

    @cached_property
    def by_name(self) -> dict[str, PlanNode]:
        return {n.name: n for n in self.nodes}

    def __getitem__(self, name: str) -> PlanNode:
        return self.by_name[name]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> Shape:
        return self.nodes[0].shape

    @property
    def output_shapes(self) -> list[Shape]:
        return [self.by_name[o].shape for o in self.outputs]

    @property
    def output_shape(self) -> Shape:
        return self.output_shapes[0]

    @property
    def layers(self) -> list[PlanNode]:
        return self.nodes[1:]

    @property
    def trainable(self) -> int:
        return sum(n.trainable for n in self.nodes)

    @property
    def non_trainable(self) -> int:
        return sum(n.non_trainable for n in self.nodes)

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def activation_bytes(self) -> int:
        """Bytes of every node's output for one example (float32, forward pass, input included)."""
        return sum(n.activation_bytes for n in self.nodes)

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_PER_VALUE

    def totals(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "trainable": self.trainable,
            "non_trainable": self.non_trainable,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "param_bytes": self.param_bytes,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
        }


def plan(spec: ModelSpec) -> Plan:
    """Infer every node's shape and counts; raise a located ShapeError at the first node that does not work out."""
    with gc_paused():  # a plan is many small objects without cycles
        return _plan(spec)


def _plan(spec: ModelSpec) -> Plan:
    # A named tuple made the way its own _make() makes it: several times faster than calling PlanNode(...).
    make, node_type = tuple.__new__, PlanNode
    name, shape = spec.input.name, tuple(spec.input.shape)
    nodes = [make(node_type, (name, "input", None, (), (), shape, 0, 0, 0, "input", spec.input_loc, NOTHING))]
    shapes: dict[str, Shape] = {name: shape}
    warnings: list[PlanWarning] = []
    limits = spec.limits
    max_params, max_act = limits.max_params, limits.max_activation_bytes
    max_flops: float = limits.max_flops if limits.max_flops is not None else math.inf
    merge_kinds, rules, prod, size = MERGE_KINDS, RULES, math.prod, BYTES_PER_VALUE
    params = flops = 0
    act = prod(shape) * size
    # The loop is the whole cost of planning (about a microsecond a node): locals, and no work that only an
    # error needs.
    for entry in spec.layers:
        layer = entry.layer
        kind = layer.kind
        names = entry.inputs
        ins = (shapes[names[0]],) if len(names) == 1 else tuple([shapes[i] for i in names])
        try:
            out = rules[kind](layer, ins, names) if kind in merge_kinds else rules[kind](layer, ins)
        except RuleError as e:
            raise _refused(e, entry, nodes) from None
        shape, trainable, non_trainable, node_flops, node_warnings, resolved = out
        if not layer.trainable:  # frozen: every weight non-trainable, as Keras counts a frozen layer
            trainable, non_trainable = 0, trainable + non_trainable
        if node_warnings:
            silenced = layer.silence or ()
            warnings.extend(
                PlanWarning(message, entry.loc, entry.where, code)
                for code, message in node_warnings
                if code not in silenced
            )
        params += trainable + non_trainable
        flops += node_flops
        act += prod(shape) * size
        if params > max_params or flops > max_flops or act > max_act:
            _over_limits(entry, ins, limits, params, flops, act)
        nodes.append(
            make(
                node_type,
                (
                    entry.name,
                    kind,
                    layer,
                    names,
                    ins,
                    shape,
                    trainable,
                    non_trainable,
                    node_flops,
                    entry.path,
                    entry.loc,
                    resolved,
                ),
            )
        )
        shapes[entry.name] = shape
    return Plan(spec=spec, nodes=nodes, outputs=list(spec.outputs), warnings=warnings)


def _refused(e: RuleError, entry: LayerEntry, nodes: list[PlanNode]) -> ShapeError:
    """The located error of a layer whose rule refuses its inputs."""
    hint = TOO_SMALL_HINTS[_shrunk_by(nodes, entry.inputs)] if e.too_small else e.hint
    return ShapeError(e.message, loc=entry.loc, path=entry.where, hint=hint)


@register_shape_inference("plan")
class _Prefix:
    """The plan of a model's first layers as expansion gives them, for expressions that read a layer's shape
    (``${input.channels}``): the same rules and errors as :func:`plan`; parameters, warnings and limits are
    left to the plan of the whole model."""

    def __init__(self, name: str, shape: Shape, loc: Loc | None):
        self.nodes = [PlanNode(name, "input", None, (), (), shape, path="input", loc=loc)]
        self.shapes = {name: shape}

    def add(self, entry: LayerEntry) -> Shape:
        layer, names, shapes = entry.layer, entry.inputs, self.shapes
        ins = tuple([shapes[i] for i in names])
        try:
            out = (
                RULES[layer.kind](layer, ins, names)
                if layer.kind in MERGE_KINDS
                else RULES[layer.kind](layer, ins)
            )
        except RuleError as e:
            raise _refused(e, entry, self.nodes) from None
        shape = shapes[entry.name] = out[0]
        self.nodes.append(PlanNode(entry.name, layer.kind, layer, names, ins, shape, resolved=out[5]))
        return shape


def _shrunk_by(nodes: list[PlanNode], names: tuple[str, ...]) -> str:
    """What made a node's input small: "pool" when a pooling layer precedes it, "strides" when a strided one
    does, else "none" (only on the error path: it walks the node's ancestors)."""
    by_name = {node.name: node for node in nodes}
    seen: set[str] = set()
    stack, found = list(names), "none"
    while stack:
        node = by_name.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.kind in POOL_KINDS:
            return "pool"
        strides = node.resolved.strides
        if node.kind != "conv2d_transpose" and strides and max(strides) > 1:
            found = "strides"
        stack.extend(node.inputs)
    return found


def _over_limits(entry: Any, ins: tuple[Shape, ...], limits: Any, params: int, flops: int, act: int) -> None:
    if params > limits.max_params:
        shape = f" ({fmt(ins[0])})" if len(ins[0]) > 1 else ""
        raise ShapeError(
            f"{entry.kind} on an input of {numel(ins[0]):,} values{shape} brings the model to {params:,} parameters "
            f"({iec_bytes(params * BYTES_PER_VALUE)} as float32), beyond the bound of {limits.max_params:,}.",
            loc=entry.loc,
            path=entry.where,
            hint="Shrink the input before it (pooling, strided convolutions, global pooling), "
            "or raise `limits: {max_params: ...}`.",
        )
    if limits.max_flops is not None and flops > limits.max_flops:
        raise ShapeError(
            f"the model reaches {flops:,} FLOPs per example here, beyond the bound of {limits.max_flops:,}.",
            loc=entry.loc,
            path=entry.where,
            hint="Downsample earlier or use fewer filters, or raise `limits: {max_flops: ...}`.",
        )
    raise ShapeError(
        f"activations reach {iec_bytes(act)} per example here, beyond the bound of "
        f"{iec_bytes(limits.max_activation_bytes)}.",
        loc=entry.loc,
        path=entry.where,
        hint="Downsample earlier, or raise `limits: {max_activation_bytes: ...}`.",
    )


def iec_bytes(n: float) -> str:
    """1536 -> "1.5 KiB": bytes in powers of 1024, named so (KiB, MiB, GiB, TiB; a bound written "2GB" is 1.9 GiB).
    The one formatter of sizes: the summary, the plan's bounds, the search's and training's memory messages."""
    if n < 1024:
        return f"{n:,.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:,.1f} {unit}"

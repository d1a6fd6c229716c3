"""What every importer produces: the source model as a graph of spec layers, with the source's own weights and counts.

An importer (Keras, ONNX, torch.fx) walks its source once and gives a :class:`Graph`: one :class:`Layer` per spec
layer, in graph order, with the spec kind and arguments, the names of the layers it reads, and its weights already
in Keras' layout. What has no spec equivalent is collected in :class:`Problems` and reported in one message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._text import shown
from ..errors import Loc, SourceError

Shape = tuple[int, ...]


@dataclass
class Layer:
    """One spec layer: ``kind`` and ``args`` as the spec writes them (channels-last), ``inputs`` the names of the
    layers it reads (or the graph's input name), ``weights`` its arrays in Keras' layout and ``get_weights()``
    order, ``origin`` what it came from in the source (for messages: ``layer `conv1` (Conv2D)``)."""

    kind: str
    args: dict[str, Any]
    name: str
    inputs: list[str]
    weights: list[np.ndarray] = field(default_factory=list)
    origin: str = ""


@dataclass
class Graph:
    """A source model as spec layers. ``counts`` are the source's (total, trainable, non-trainable) parameters
    where it counts them as Keras does; ``output_shapes`` its outputs' shapes, channels-last, batch axis left out."""

    name: str
    source: str
    input_name: str
    input_shape: Shape
    layers: list[Layer]
    outputs: list[str]
    output_shapes: list[Shape]
    counts: tuple[int, int, int] | None = None
    notes: list[str] = field(default_factory=list)


class Problems:
    """The parts of a source with no spec equivalent, gathered while walking it, raised together at the end.

    Each is named once; more of the same class (and reason) are counted after the first (``and 39 more like it``).
    """

    def __init__(self, source: str):
        self.source = source
        self.items: list[tuple[str, str]] = []
        self.groups: dict[tuple[str, str], list[str]] = {}

    def add(self, where: str, why: str = "", group: str | None = None) -> None:
        self.items.append((where, why))
        self.groups.setdefault((group or where, why), []).append(where)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        parts = []
        for (_, why), wheres in list(self.groups.items())[:12]:
            more = f" and {len(wheres) - 1} more like it" if len(wheres) > 1 else ""
            parts.append(f"{wheres[0]}{f' ({why})' if why else ''}{more}")
        rest = len(self.groups) - 12
        tail = f"; and {rest} more" if rest > 0 else ""
        one = len(self.items) == 1
        it = "it" if one else "them"
        raise SourceError(
            f"{'; '.join(parts)}{tail} {'has' if one else 'have'} no equivalent in the spec language.",
            loc=Loc(shown(self.source, 200)),
            hint=f"Replace {it} in the source model with layers the language has (`specdsl schema` lists its kinds), "
            f"or leave {it} out and add {it} to the imported spec by hand.",
        )

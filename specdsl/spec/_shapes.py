"""The shapes of the layers expanded so far, for the expressions that read them (``${input.channels}``).

Shapes come from the plan's rules, and the plan comes after the spec in the flow: ``specdsl.plan`` registers how
to infer them in :data:`SHAPE_INFERENCE` when it is imported (``specdsl`` imports it). Expansion asks for a shape
only when an expression reads one; :class:`Shapes` then infers the layers expanded since it was last asked, in
order, each layer's rule once, so a spec that reads no shape costs nothing more and one that reads many costs one
pass of the rules over its layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .._registry import Registry
from ..errors import Loc

if TYPE_CHECKING:
    from ._expand import LayerEntry

Shape = tuple[int, ...]


class PrefixInference(Protocol):
    """The shapes of a model's layers, one layer at a time in the order of the model, as the plan infers them."""

    def add(self, entry: LayerEntry) -> Shape:
        """The output shape of ``entry`` (its inputs were added before it); where its rule refuses its inputs,
        the plan's located :class:`~specdsl.errors.ShapeError`."""
        ...


InferenceFactory = Callable[[str, Shape, "Loc | None"], PrefixInference]
"""Makes a :class:`PrefixInference` from the model's input: its name, its shape and where the spec writes it."""

SHAPE_INFERENCE: Registry[InferenceFactory] = Registry("shape inference")
"""How expansion infers shapes: ``"plan"``, registered by ``specdsl.plan``."""

register_shape_inference = SHAPE_INFERENCE.register


class Shapes:
    """The shapes of the layers of one expansion (``entries``, a list it appends to), inferred when asked."""

    def __init__(
        self, input_name: str, input_shape: Shape, input_loc: Loc | None, entries: Sequence[LayerEntry]
    ):
        self.known: dict[str, Shape] = {input_name: input_shape}
        self.input = (input_name, input_shape, input_loc)
        self.entries = entries
        self.done = 0  # entries whose shapes are known
        self.inference: PrefixInference | None = None

    def __call__(self, name: str) -> Shape:
        """The output shape of the layer called ``name`` (the model's input or a layer expanded already)."""
        known = self.known.get(name)
        if known is not None:
            return known
        if self.inference is None:
            self.inference = SHAPE_INFERENCE["plan"](*self.input)
        add, entries = self.inference.add, self.entries
        for i in range(self.done, len(entries)):
            entry = entries[i]
            self.known[entry.name] = add(entry)
        self.done = len(entries)
        return self.known[name]

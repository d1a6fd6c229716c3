"""Matching a file's layers to a plan's nodes: by name where every name is there, else by structure (order)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

import numpy as np

from .._text import shown
from ..errors import WeightsError
from ..plan import Plan, PlanNode
from ._files import LayerWeights, Weights
from ._layout import keras_weights


def weighted_nodes(plan: Plan) -> list[PlanNode]:
    """The plan's nodes that hold weights, in graph order."""
    return [node for node in plan.layers if keras_weights(node)]


class Unnamed(LookupError):
    """A file that keeps no layer order lacks the name of ``node`` (the file's name for it: ``name``)."""

    def __init__(self, node: PlanNode, name: str) -> None:
        super().__init__(name)
        self.node, self.name = node, name


def match(
    nodes: list[PlanNode], weights: Weights, *, names_first: bool = True, key: Callable[[str], str] = str
) -> tuple[list[tuple[PlanNode, LayerWeights, str]], list[LayerWeights] | None]:
    """Each of ``nodes`` with its layer of ``weights`` and how it was matched (``"by name"``, ``"in order"``), for
    the caller to check (:func:`fits`); and the file's layers with weights where they were matched in order (for
    it to count), else None.

    By name (``key`` maps a node's name to the file's) where the file keeps no order, or, with ``names_first``,
    where it has every name; else in order: the n-th layer with weights of the file to the n-th node.

    Raises:
        Unnamed: a file that keeps no order has no layer of a node's name.
    """
    by_name = weights.by_name()
    if not weights.ordered or (names_first and all(key(node.name) in by_name for node in nodes)):
        for node in nodes:
            if key(node.name) not in by_name:
                raise Unnamed(node, key(node.name))
        pairs, layers = [(node, by_name[key(node.name)], "by name") for node in nodes], None
    else:
        layers = [lw for lw in weights.layers if lw.arrays]
        pairs = [(node, lw, "in order") for node, lw in zip(nodes, layers)]
    return pairs, layers


def fits(node: PlanNode, lw: LayerWeights) -> bool:
    """``lw`` holds arrays of the shapes ``node``'s layer needs, in its order."""
    return [s for _, s in keras_weights(node)] == list(lw.shapes)


def fit(plan: Plan, weights: Weights) -> dict[str, list[np.ndarray]]:
    """Each weighted node's arrays (Keras layout, ``get_weights()`` order) from ``weights``.

    Layers are matched by name when the file has a layer named as every weighted node of the plan, and otherwise
    by structure: the n-th layer with weights in the file goes to the n-th node with weights in the plan.

    Raises:
        WeightsError: located at the first node that does not fit, naming the file's layer and both shapes.
    """
    nodes = weighted_nodes(plan)
    try:
        pairs, layers = match(nodes, weights)
    except Unnamed as e:
        raise _error(
            e.node,
            f"{weights.source} keeps no layer order, so its layers are matched by name, and it has no layer "
            f"`{e.name}`.",
            f"Its layers: {_names(weights.layers)}.",
        ) from None
    for node, lw, how in pairs:
        if not fits(node, lw):
            raise _shape_error(node, lw, weights.source, how)
    if layers is not None and len(layers) != len(nodes):
        _count_error(plan, nodes, layers, weights.source)
    return {node.name: list(lw.arrays) for node, lw, _ in pairs}


def check_arrays(plan: Plan, arrays: Mapping[str, Sequence[np.ndarray]], source: str) -> None:
    """Every weighted node has its arrays in ``arrays``, of the shapes its layer needs."""
    for node in weighted_nodes(plan):
        if node.name not in arrays:
            raise _error(node, f"there are no weights for `{node.name}` in {source}.")
        lw = LayerWeights(node.name, tuple(np.asarray(a) for a in arrays[node.name]))
        if not fits(node, lw):
            raise _shape_error(node, lw, source, "by name")


def _shape_error(node: PlanNode, lw: LayerWeights, source: str, how: str) -> WeightsError:
    need = keras_weights(node)
    got = lw.shapes
    if len(need) != len(got):
        return _error(
            node,
            f"`{node.name}` holds {len(need)} weights ({', '.join(f'{n} {s}' for n, s in need)}), but layer "
            f"{lw.describe()} of {source} has {len(got)} ({', '.join(str(s) for s in got) or 'none'}), matched {how}.",
        )
    i = next(i for i, ((_, s), g) in enumerate(zip(need, got)) if s != g)
    return _error(
        node,
        f"`{node.name}`'s {need[i][0]} is {need[i][1]}, but layer {lw.describe()} of {source} has {got[i]} there, "
        f"matched {how}.",
        "Is the file the weights of this architecture (the same input shape, widths and layer order)?",
    )


def _count_error(plan: Plan, nodes: list[PlanNode], layers: list[LayerWeights], source: str) -> NoReturn:
    if len(layers) < len(nodes):
        node = nodes[len(layers)]
        raise _error(
            node,
            f"{source} holds {len(layers)} layers with weights, the model {len(nodes)}: nothing is left for "
            f"`{node.name}` and the layers after it.",
        )
    extra = layers[len(nodes)]
    raise WeightsError(
        f"{source} holds {len(layers)} layers with weights, but the model `{shown(plan.name)}` has {len(nodes)}: "
        f"from {extra.describe()} on, the file's layers have no counterpart.",
        hint="Is the file the weights of this architecture (with its top, or without)?",
    )


def _names(layers: Sequence[LayerWeights], limit: int = 8) -> str:
    names = [f"`{shown(lw.name)}`" for lw in layers[:limit]]
    return ", ".join(names) + (", ..." if len(layers) > limit else "") if names else "none"


def _error(node: PlanNode, message: str, hint: str | None = None) -> WeightsError:
    return WeightsError(message, loc=node.loc, path=f"{node.path} ({node.kind})", hint=hint)

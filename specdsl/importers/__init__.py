"""Existing models as spec text: Keras (``.keras``, ``.h5``, a model object), ONNX files, torch modules (torch.fx).

    >>> from specdsl.importers import import_model
    >>> imported = import_model("resnet50.keras")
    >>> print(imported.text)                       # the spec, with blocks and repeat where the structure repeats
    >>> imported.plan.params                       # exactly the source's count
    25636712
    >>> imported.write_weights("resnet50.npz")     # the source's weights, for specdsl.weights.load_into

Every import plans the spec it writes and checks it against the source: the total, trainable and non-trainable
parameter counts (as Keras counts them) and every output's shape. The flat form (one layer per line, every graph
edge by ``inputs:``) is checked first; the compact form (``blocks:`` with ``params:`` and ``repeat:`` where runs
of the same structure follow each other) must plan to the same nodes, shapes and counts, node by node, or the
flat form is written. What the language cannot express is one :class:`~specdsl.SourceError` naming every such
layer (a Keras layer's name and class, an ONNX node's name and op type, a torch module's path or function).

The modules: ``_sources`` (what a SOURCE names: a file read as data, or ``module:attribute`` run); the importers,
each giving a :class:`Graph` (``_graph``): ``_keras`` (Keras models, layer by layer, reading Keras' private graph
through ``specdsl._compat._keras``; ``_keras_portable`` folds the built-in layers that portable ``.keras`` files
write specdsl's own as back into one bias or average pooling), ``_onnx`` (ONNX files) and ``_fx`` (torch modules
traced with torch.fx: ``_fx_modules`` maps modules, ``_fx_functions`` functions and methods, ``_fx_writer`` holds
what they share); the tensor-level graph that ONNX and torch.fx lower to spec layers: ``_ops`` (operators, values,
the handler registry), ``_ops_lower`` (the walk), ``_ops_windows`` and ``_ops_tensors`` (the handlers),
``_ops_fold`` (what a spec writes as one layer); and the spec text: ``_spec`` (the flat form) and the compact form,
``_compact`` (written out) with ``_compact_passes``, ``_compact_items`` and ``_compact_params``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._text import shown
from ..errors import SourceError, SpecdslError
from ..plan import Plan, fmt
from ._graph import Graph, Layer, Problems
from ._spec import document, flat_layers, to_yaml

__all__ = [
    "Graph",
    "Imported",
    "Layer",
    "Problems",
    "from_keras",
    "import_model",
    "imported_kinds",
    "read_graph",
]

IMPORTERS = ("keras", "torch", "onnx")


def imported_kinds(importer: str) -> frozenset[str]:
    """The registered layer kinds an importer (``keras``, ``torch`` or ``onnx``) maps a source's layers to; a
    source layer of another kind is refused, named in the importer's one error.

    Keras layers map by the class each kind registers (``keras_class``), so the Keras importer takes every
    registered kind; ONNX and torch.fx lower operators, and take the kinds their handlers lower to.
    """
    if importer not in IMPORTERS:
        raise ValueError(f"importer must be one of {', '.join(IMPORTERS)}, but got {importer!r}")
    from ..spec import LAYERS

    if importer == "keras":
        return frozenset(LAYERS)
    from ._ops import LOWERED_KINDS

    return LOWERED_KINDS & frozenset(LAYERS)


@dataclass
class Imported:
    """An imported model: the spec ``text`` (compact unless ``flat`` was asked or compaction did not plan to the
    same nodes), its ``plan``, the ``flat_text`` and its plan, and the source's weights by graph layer."""

    graph: Graph
    text: str
    plan: Plan
    flat_text: str
    flat_plan: Plan
    compact: bool
    notes: list[str] = field(default_factory=list)
    _nodes: dict[str, str] = field(default_factory=dict, repr=False)  # graph layer -> node name in `plan`

    def weights(self) -> dict[str, list[np.ndarray]]:
        """The source's weights by node name of :attr:`plan`, in Keras' layout."""
        return {self._nodes[layer.name]: layer.weights for layer in self.graph.layers if layer.weights}

    def write_weights(self, path: str | os.PathLike) -> Path:
        """Write the source's weights as a specdsl checkpoint (``.npz``) that the spec's models load."""
        from ..weights import write

        return write(path, self.plan, self.weights())


def read_graph(source: Any, *, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The :class:`Graph` of a source: a file or ``module:attribute`` (see :mod:`._sources`), a Keras model, or a
    torch module (``input_shape`` in torch's layout, without the batch axis, e.g. ``(3, 224, 224)``)."""
    if isinstance(source, (str, os.PathLike)):
        from ._sources import load_model

        label = os.fspath(source)
        kind, obj = load_model(label)
    else:
        label, kind, obj = type(source).__name__, _kind(source), source
    if kind == "keras":
        from ._keras import from_keras

        return from_keras(obj, label)
    if kind == "onnx":
        from ._onnx import from_onnx

        return from_onnx(obj, label, input_shape=input_shape)
    from ._fx import from_torch

    return from_torch(obj, label, input_shape=input_shape)


def from_keras(model: Any, source: str = "a Keras model") -> Graph:
    """The :class:`Graph` of a Keras model object."""
    from ._keras import from_keras as convert

    return convert(model, source)


def import_model(
    source: Any, *, flat: bool = False, input_shape: tuple[int, ...] | None = None, file: str = "<import>"
) -> Imported:
    """Import a model as a spec that plans to exactly its parameter counts and output shapes.

    Args:
        source: a ``.keras`` / ``.h5`` / ``.onnx`` file, ``module:function`` / ``module:Class`` (runs that code),
            a Keras model or a torch module.
        flat: write the flat form only (one line per layer), not blocks and repeat.
        input_shape: a torch module's input shape in torch's layout without the batch axis (``(3, 32, 32)``);
            an ONNX file's, where the file leaves sizes open.
        file: the name error messages give the spec.

    Raises:
        SourceError: the source cannot be read, or holds layers the language lacks (all named in one message).
    """
    graph = source if isinstance(source, Graph) else read_graph(source, input_shape=input_shape)
    items, nodes, input_name = flat_layers(graph)
    outputs = [nodes[o] for o in graph.outputs]
    last = nodes[graph.layers[-1].name] if graph.layers else input_name
    flat_text = to_yaml(document(graph, items, input_name, outputs, last))
    flat_plan = _plan(flat_text, file, graph)
    _verify(graph, flat_plan)
    text, plan, compact, notes = flat_text, flat_plan, False, list(graph.notes)
    if not flat:
        from ._compact import compact_document

        doc = compact_document(graph, items, nodes, input_name, outputs, last)
        if doc is not None:
            compact_text = to_yaml(doc)
            try:
                compact_plan = _plan(compact_text, file, graph)
                _same_nodes(flat_plan, compact_plan)
                text, plan, compact = compact_text, compact_plan, True
            except SpecdslError as e:
                notes.append(
                    f"the compact form did not plan to the flat one ({e.message}); the flat form is written."
                )
    # graph layer -> node name of the written plan (the compact form's nodes follow the flat form's, in order)
    order = {node.name: i for i, node in enumerate(flat_plan.nodes)}
    names = {layer.name: plan.nodes[order[nodes[layer.name]]].name for layer in graph.layers}
    return Imported(graph, text, plan, flat_text, flat_plan, compact, notes, names)


def _kind(model: Any) -> str:
    from ._sources import kind_of

    kind = kind_of(model)
    if kind is None:
        raise SourceError(
            f"cannot import a {type(model).__name__}: give a Keras model, a torch module or a file."
        )
    return kind


def _plan(text: str, file: str, graph: Graph) -> Plan:
    from ..plan import plan
    from ..spec import load

    try:
        return plan(load(text, file=file))
    except SpecdslError as e:
        raise SourceError(
            f"the spec made from {shown(graph.source, 200)} does not plan ({e.format()}). "
            "This is a bug in specdsl's importer; please report it."
        ) from None


def _verify(graph: Graph, plan: Plan) -> None:
    """The plan must count and shape as the source does."""
    if graph.counts is not None:
        total, trainable, non_trainable = graph.counts
        frozen = any("frozen" in note for note in graph.notes)
        if plan.params != total or (
            not frozen and (plan.trainable, plan.non_trainable) != (trainable, non_trainable)
        ):
            raise SourceError(
                f"the spec made from {shown(graph.source, 200)} counts {plan.params:,} parameters "
                f"({plan.trainable:,} trainable, {plan.non_trainable:,} non-trainable), the source {total:,} "
                f"({trainable:,}, {non_trainable:,}). This is a bug in specdsl's importer; please report it."
            )
    got = [tuple(s) for s in plan.output_shapes]
    if got != [tuple(s) for s in graph.output_shapes]:
        raise SourceError(
            f"the spec made from {shown(graph.source, 200)} outputs {', '.join(fmt(s) for s in got)}, the source "
            f"{', '.join(fmt(s) for s in graph.output_shapes)}. This is a bug in specdsl's importer; please report it."
        )


def _same_nodes(flat: Plan, compact: Plan) -> None:
    """The compact form must be the flat one node by node: kind, arguments, inputs (by position), shape, counts."""
    if len(flat.nodes) != len(compact.nodes):
        raise SourceError(f"{len(compact.nodes)} nodes where the flat form has {len(flat.nodes)}")
    at = [{n.name: i for i, n in enumerate(p.nodes)} for p in (flat, compact)]
    for a, b in zip(flat.nodes, compact.nodes):
        if _node_key(a, at[0]) != _node_key(b, at[1]):
            raise SourceError(
                f"node `{b.name}` ({b.kind}, {fmt(b.shape)}) stands where the flat form has `{a.name}` "
                f"({a.kind}, {fmt(a.shape)})"
            )
    if [at[0][o] for o in flat.outputs] != [at[1][o] for o in compact.outputs]:
        raise SourceError("the outputs differ")


def _node_key(node: Any, at: dict[str, int]) -> tuple:
    layer = node.layer.model_dump(exclude={"name", "inputs"}) if node.layer is not None else None
    return (
        node.kind,
        layer,
        tuple(at[i] for i in node.inputs),
        node.shape,
        node.trainable,
        node.non_trainable,
    )

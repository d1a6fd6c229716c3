"""The spec language: text in, a flat validated graph of layers (:class:`ModelSpec`) out.

Stages, each taking the previous one's output and nothing else (:func:`load` runs them all; :func:`from_tree`
the last three on a tree already read):

1. read: YAML/JSON text to a tree of :class:`LocDict` and :class:`LocList` that know the line and column of
   every key and value, with the standard tags only and bounded in size and nesting (``_yaml``);
2. draw: every search distribution replaced by a value from a :class:`Sampler`, top-down (``_draw``);
3. expand: blocks and ``repeat`` expanded, ``$param`` references and ``${...}`` expressions substituted, names
   and inputs resolved (``_expand``; block definitions and scopes in ``_blocks``, expressions in ``_expr``),
   within the bounds on layers, nesting and operations (``_bounds``); an expression that reads a layer's shape
   (``${input.channels}``) has the layers before it inferred by the plan's rules, which ``specdsl.plan``
   registers in :data:`SHAPE_INFERENCE` (``_shapes``);
4. validate: each layer by its kind's pydantic model (``_layers``, and ``_resampling`` for the kinds that resample
   images; registered in ``_kinds``, on the value types of ``_types``), after Keras' spellings of its kind and
   arguments are turned into the spec's (``_aliases``), each section by its own (``_sections``); a pydantic error
   becomes one :class:`~specdsl.errors.SpecError` at the text that caused it (``_located``). The warning codes a
   layer's ``silence:`` may name are in ``_warnings``.

A ``backbone:`` item (another spec used as a block, a bundled network of ``zoo_names()`` or a spec file, with or
without its top, recorded in ``ModelSpec.backbones`` with the weights it asks for) is expanded by ``_backbone``.

Around them: the entry points and :class:`ModelSpec` (``_document``), the JSON Schema for editors and CI
(``_schema``; its value places, distributions and references in ``_schema_values``), and the validators kept
between processes (``_validators``).
"""

from . import _layers as layers  # the layer kinds' models (Conv2D, ...), for the rules' and builders' types
from ._backbone import Backbone, zoo_names
from ._bounds import MAX_EXPR_OPERATIONS, MAX_LAYERS, MAX_NESTING
from ._document import ModelSpec, from_tree, gc_paused, load
from ._draw import DIST_KINDS, Draw, RandomSampler, Sampler, has_distributions, is_distribution
from ._expand import LayerEntry
from ._expr import MAX_EXPR_CHARS, MAX_EXPR_DEPTH, MAX_INT_BITS
from ._kinds import LAYERS, LayerKind, LayerSpec, canonical_kind, register_layer
from ._located import loc_of, suggest, validate_model
from ._reference import kinds_reference
from ._schema import json_schema
from ._sections import (
    SECTIONS,
    Augment,
    DataSpec,
    EarlyStopping,
    InputSpec,
    Limits,
    Optimizer,
    Schedule,
    SearchSpec,
    Stage,
    TrainSpec,
)
from ._shapes import SHAPE_INFERENCE, PrefixInference, register_shape_inference
from ._sizes import MAX_BATCH, MAX_MEMORY, MAX_SECONDS, MAX_SEED, duration_seconds, memory_bytes
from ._types import ACTIVATIONS, INITIALIZERS, NAME_PATTERN
from ._warnings import WARNINGS
from ._yaml import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
    MAX_VALUES,
    LocDict,
    LocList,
    load_file,
    load_text,
    read_bytes,
    read_text,
)

__all__ = [
    "ACTIVATIONS",
    "DIST_KINDS",
    "INITIALIZERS",
    "LAYERS",
    "MAX_BATCH",
    "MAX_DEPTH",
    "MAX_EXPR_CHARS",
    "MAX_EXPR_DEPTH",
    "MAX_EXPR_OPERATIONS",
    "MAX_FILE_BYTES",
    "MAX_INT_BITS",
    "MAX_INT_DIGITS",
    "MAX_LAYERS",
    "MAX_MEMORY",
    "MAX_NESTING",
    "MAX_SECONDS",
    "MAX_SEED",
    "MAX_VALUES",
    "NAME_PATTERN",
    "PrefixInference",
    "SECTIONS",
    "SHAPE_INFERENCE",
    "Augment",
    "Backbone",
    "DataSpec",
    "Draw",
    "EarlyStopping",
    "InputSpec",
    "LayerEntry",
    "LayerKind",
    "LayerSpec",
    "Limits",
    "LocDict",
    "LocList",
    "ModelSpec",
    "RandomSampler",
    "Optimizer",
    "Sampler",
    "Schedule",
    "SearchSpec",
    "Stage",
    "TrainSpec",
    "WARNINGS",
    "canonical_kind",
    "duration_seconds",
    "from_tree",
    "gc_paused",
    "has_distributions",
    "is_distribution",
    "json_schema",
    "kinds_reference",
    "layers",
    "load",
    "load_file",
    "load_text",
    "loc_of",
    "memory_bytes",
    "read_bytes",
    "read_text",
    "register_layer",
    "register_shape_inference",
    "suggest",
    "validate_model",
    "zoo_names",
]

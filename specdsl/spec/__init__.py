"""The spec language: reading YAML/JSON with locations, layer kinds, sections, blocks, repeat and distributions."""

from ._document import LayerEntry, ModelSpec, RandomSampler, Sampler, is_distribution, load
from ._document import DIST_KINDS, from_tree, gc_paused, has_distributions, suggest
from ._document import _Draw as Draw
from ._document import _loc as loc_of
from ._document import _validate_model as validate_model
from ._layers import LAYERS, LayerKind, LayerSpec, canonical_kind, register_layer
from ._sections import Augment, DataSpec, InputSpec, Limits, SearchSpec, TrainSpec
from ._sections import SECTIONS, duration_seconds
from ._yaml import LocDict, LocList, load_file, load_text
from ._yaml import read_text

__all__ = [
    "DIST_KINDS",
    "Draw",
    "LAYERS",
    "SECTIONS",
    "Augment",
    "DataSpec",
    "InputSpec",
    "LayerEntry",
    "LayerKind",
    "LayerSpec",
    "Limits",
    "LocDict",
    "LocList",
    "ModelSpec",
    "RandomSampler",
    "Sampler",
    "SearchSpec",
    "TrainSpec",
    "canonical_kind",
    "duration_seconds",
    "from_tree",
    "gc_paused",
    "has_distributions",
    "is_distribution",
    "load",
    "load_file",
    "load_text",
    "loc_of",
    "read_text",
    "register_layer",
    "suggest",
    "validate_model",
]

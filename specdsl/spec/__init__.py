"""The spec language: reading YAML/JSON with locations, layer kinds, sections, blocks, repeat and distributions."""

from ._document import LayerEntry, ModelSpec, RandomSampler, Sampler, is_distribution, load
from ._layers import LAYERS, LayerKind, LayerSpec, canonical_kind, register_layer
from ._sections import Augment, DataSpec, InputSpec, Limits, SearchSpec, TrainSpec
from ._yaml import LocDict, LocList, load_file, load_text

__all__ = [
    "LAYERS",
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
    "is_distribution",
    "load",
    "load_file",
    "load_text",
    "register_layer",
]

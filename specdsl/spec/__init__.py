"""The spec language: reading YAML/JSON with locations, layer kinds, sections, blocks, repeat and distributions."""

from ._document import LayerEntry, ModelSpec, RandomSampler, Sampler, is_distribution, load
from ._layers import LAYERS, LayerKind, LayerSpec, canonical_kind, register_layer
from ._sections import Augment, DataSpec, EarlyStopping, InputSpec, Limits, Schedule, SearchSpec, TrainSpec
from ._yaml import LocDict, LocList, load_file, load_text

__all__ = [
    "LAYERS",
    "Augment",
    "DataSpec",
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
    "Sampler",
    "Schedule",
    "SearchSpec",
    "TrainSpec",
    "canonical_kind",
    "is_distribution",
    "load",
    "load_file",
    "load_text",
    "register_layer",
]

"""The spec language: reading YAML/JSON with locations, layer kinds, sections, blocks, repeat and distributions."""

from . import _layers as layers  # the layer kinds' models (Conv2D, ...), for the rules' and builders' types
from ._document import LayerEntry, ModelSpec, RandomSampler, Sampler, gc_paused, is_distribution, load
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
    "gc_paused",
    "is_distribution",
    "layers",
    "load",
    "load_file",
    "load_text",
    "register_layer",
]

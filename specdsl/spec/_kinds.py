"""The registry of layer kinds: :class:`LayerKind` (a kind's model, Keras class, auto name, aliases, main argument
and number of inputs), ``LAYERS`` and ``ALIASES`` filled by :func:`register_layer`, and :class:`LayerSpec`, the
fields every kind has (``name``, ``inputs``). The kinds' models themselves are in ``_layers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from .._plugins import load_plugins
from .._registry import Registry
from ._aliases import keras_names
from ._types import Name, StrictModel
from ._warnings import WarningCode


@dataclass(frozen=True)
class LayerKind:
    """A registered layer kind: its spec model, how Keras names it, and how many inputs it takes."""

    name: str
    model: type[LayerSpec]
    keras_class: str
    auto_name: str
    aliases: tuple[str, ...]
    primary: str | None
    min_inputs: int
    max_inputs: int | None


LAYERS: Registry[LayerKind] = Registry("layer kind", duplicate="layer kind `{name}` is already registered")
ALIASES: Registry[str] = Registry("layer kind alias", duplicate="layer kind `{name}` is already registered")


def register_layer(
    name: str,
    *,
    keras_class: str,
    auto_name: str | None = None,
    aliases: tuple[str, ...] = (),
    primary: str | None = None,
    inputs: tuple[int, int | None] = (1, 1),
) -> Callable[[type[LayerSpec]], type[LayerSpec]]:
    """Class decorator adding a layer kind to ``LAYERS`` (and its aliases to ``ALIASES``); a name or alias
    registered twice, as a kind or as an alias, is an error."""

    def deco(cls: type[LayerSpec]) -> type[LayerSpec]:
        taken = (*LAYERS, *ALIASES, *aliases)
        spellings = (*aliases, *keras_names(name, keras_class, taken))  # Keras' names, where still free
        for key in (name, *aliases):
            LAYERS.check(key)
            ALIASES.check(key)
        LAYERS.add(
            name,
            LayerKind(
                name=name,
                model=cls,
                keras_class=keras_class,
                auto_name=auto_name or name,
                aliases=spellings,
                primary=primary,
                min_inputs=inputs[0],
                max_inputs=inputs[1],
            ),
        )
        for alias in spellings:
            ALIASES.add(alias, name)
        return cls

    return deco


def canonical_kind(name: str) -> str | None:
    """The registered kind for a name or alias, or None; a name not registered first has the plug-ins loaded
    (``specdsl._plugins``: once a process, only when a spec names a kind that is not built in)."""
    if name in LAYERS:
        return name
    if name not in ALIASES:
        load_plugins("specdsl.layers")
        if name in LAYERS:
            return name
    return ALIASES.get(name)


class LayerSpec(StrictModel):
    """Fields every layer kind has."""

    kind: str
    name: Name | None = Field(default=None, description="Name of the layer, unique in the model.")
    inputs: list[str] | None = Field(
        default=None, description="Names of the layers this one reads (default: the layer before it)."
    )
    silence: list[WarningCode] | None = Field(
        default=None, description="Codes of the warnings this layer means (e.g. [drops-rows]), not printed."
    )
    trainable: bool = Field(
        default=True,
        strict=True,
        description="false: the layer is frozen (its weights are non-trainable, a batch norm normalizes by its "
        "moving statistics and keeps them), as Keras' `layer.trainable = False`.",
    )

    @field_validator("inputs", mode="before", json_schema_input_type=str | list[str] | None)
    @classmethod
    def _one_input(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    # Shown in summaries: the arguments that matter, as a short string.
    def describe(self) -> str:
        return ""

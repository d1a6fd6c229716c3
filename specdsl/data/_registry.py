"""The dataset registry: a dict of sources and the decorator that fills it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ._dataset import Arrays

DATASETS: dict[str, DatasetSource] = {}


@dataclass(frozen=True)
class LoadRequest:
    """What a source is asked for: an optional user folder, the cache folder, the wanted image size."""

    cache_dir: Path
    path: Path | None = None
    image_size: tuple[int, int] | None = None
    channels: int | None = None


class DatasetSource:
    """A registered dataset. Subclass it, set the class attributes, implement :meth:`load`, and decorate the
    class with ``@register_dataset("name")``.

    ``load`` returns the native arrays (the loader resizes, converts channels and splits them);
    ``status`` says whether loading now needs network or a path (see :class:`DatasetInfo`).
    """

    name: str = ""
    description: str = ""
    num_classes: int | None = None
    image_shape: tuple[int, int, int] | None = None
    origin: str = ""
    takes_path: bool = False  # whether ``path`` is accepted
    needs_path: bool = False  # whether ``path`` is required
    path_help: str = ""  # what ``path`` should point at
    default_split: tuple[float, float, float] = (0.7, 0.15, 0.15)

    def load(self, request: LoadRequest) -> Arrays:
        raise NotImplementedError

    def status(self, cache_dir: Path) -> str:
        return "cached" if self.cache_file(cache_dir).is_file() else "needs download"

    def cache_file(self, cache_dir: Path, tag: str = "arrays") -> Path:
        """Where this source keeps its decoded arrays."""
        return cache_dir / self.name / f"{tag}.npz"


def register_dataset(name: str):
    """Class decorator: register a :class:`DatasetSource` subclass under ``name``.

    >>> @register_dataset("my_set")
    ... class MySet(DatasetSource):
    ...     def load(self, request): ...

    Registering a name twice raises ValueError.
    """

    def decorate(cls: type[DatasetSource]) -> type[DatasetSource]:
        if name in DATASETS:
            raise ValueError(
                f"a dataset named {name!r} is already registered ({type(DATASETS[name]).__qualname__})"
            )
        source = cls()
        source.name = name
        DATASETS[name] = source
        return cls

    return decorate


def get_source(name: str) -> DatasetSource:
    """The registered source called ``name``; DataError listing the names (and the nearest) otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        pass
    names = sorted(DATASETS)
    close = difflib.get_close_matches(name, names, n=1)
    raise DataError(
        f"unknown dataset `{name}`; the registered datasets are: {', '.join(names)}.",
        hint=f"Did you mean `{close[0]}`?" if close else None,
    )

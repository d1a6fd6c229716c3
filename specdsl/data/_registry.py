"""The dataset registry: a dict of sources and the decorator that fills it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._registry import Registry
from ..errors import DataError
from ._dataset import Arrays

DATASETS: Registry[DatasetSource] = Registry(
    "dataset", duplicate="a dataset named {name!r} is already registered ({existing.__class__.__qualname__})"
)


@dataclass(frozen=True)
class LoadRequest:
    """What a source is asked for: an optional user folder, the cache folder, the wanted image size, how images
    are fitted to it (``resize``) and where decoded images are kept (``storage``: auto, memory or disk)."""

    cache_dir: Path
    path: Path | None = None
    image_size: tuple[int, int] | None = None
    channels: int | None = None
    resize: str = "squash"
    storage: str = "memory"


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


def register_dataset(name: str) -> Callable[[type[DatasetSource]], type[DatasetSource]]:
    """Class decorator: register an instance of a :class:`DatasetSource` subclass in ``DATASETS`` under ``name``.

    >>> @register_dataset("my_set")
    ... class MySet(DatasetSource):
    ...     def load(self, request): ...

    Registering a name twice raises ValueError.
    """

    def decorate(cls: type[DatasetSource]) -> type[DatasetSource]:
        DATASETS.check(name)
        source = cls()
        source.name = name
        DATASETS.add(name, source)
        return cls

    return decorate


def get_source(name: str) -> DatasetSource:
    """The registered source called ``name``; DataError listing the names (and the nearest) otherwise."""
    source = DATASETS.get(name)
    if source is not None:
        return source
    near = DATASETS.nearest(name)
    raise DataError(
        f"unknown dataset `{name}`; the registered datasets are: {', '.join(sorted(DATASETS))}.",
        hint=f"Did you mean `{near}`?" if near else None,
    )

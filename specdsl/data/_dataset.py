"""The value types of specdsl.data: what a loader returns and what the listing shows."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np


class DataWarning(UserWarning):
    """Something in the data was skipped, substituted or rebuilt, but loading went on."""


@contextlib.contextmanager
def data_warnings() -> Iterator[list[str]]:
    """The messages of the DataWarnings raised in the block, every one of them, for a command to print as one line
    each (Python would print a second line, the source line that warned); other warnings are shown as usual."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield messages
        finally:
            messages.extend(str(w.message) for w in caught if issubclass(w.category, DataWarning))
    for w in caught:
        if not issubclass(w.category, DataWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@dataclass
class Dataset:
    """A dataset split three ways, as in-memory numpy arrays.

    ``x_*`` are ``uint8`` arrays of shape ``(N, H, W, C)`` (channels last, ``C=1`` for grayscale);
    ``y_*`` are ``int64`` class indices into ``class_names``.
    ``skipped`` counts the image files that could not be decoded (image folders only);
    ``source`` says where the arrays came from.

    >>> ds = load_dataset("digits")
    >>> ds.image_shape, ds.num_classes
    ((8, 8, 1), 10)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    skipped: int = 0
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.x_train.shape[1:])  # type: ignore[return-value]

    def summary(self) -> str:
        """One line: examples per split, image shape, classes."""
        h, w, c = self.image_shape
        names = (
            ", ".join(self.class_names)
            if len(self.class_names) <= 4
            else f"{self.class_names[0]} .. {self.class_names[-1]}"
        )
        counts = f"train {len(self.y_train):,} / val {len(self.y_val):,} / test {len(self.y_test):,}"
        text = f"{self.name}: {counts}, {h}x{w}x{c} uint8, {self.num_classes} classes ({names})"
        if self.skipped:
            text += f", {self.skipped:,} unreadable files skipped"
        return text


@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`list_datasets`.

    ``status`` is one of ``cached`` (decoded arrays are in the cache folder), ``available`` (on this machine,
    no network needed), ``needs download`` (``specdsl data prepare NAME`` fetches it), ``needs path``
    (give a folder) or ``not installed`` (a Python package is missing; ``source`` names it).
    """

    name: str
    description: str
    num_classes: int | None
    image_shape: tuple[int, int, int] | None
    source: str
    status: str

    @property
    def ready(self) -> bool:
        """True when loading needs neither network nor a path."""
        return self.status in ("cached", "available")


@dataclass
class Arrays:
    """What a source hands to the loader, before resizing and splitting (private).

    With ``x_test`` None the arrays are one pool split by fractions; with ``x_test`` set and ``x_val`` None,
    validation is taken out of train; with all three set, the source's own split is kept.
    """

    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    source: str = ""
    skipped: int = 0
    # Where these arrays are cached (set by the cache), so resized variants can be cached beside them.
    cache_file: Path | None = None
    # What the user should hear about (skipped files, a substitute source); load_dataset warns with each.
    notes: list[str] = field(default_factory=list)

    PARTS = ("train", "val", "test")

    def parts(self):
        """(part, x, y) for each part that is present."""
        for part in self.PARTS:
            x = getattr(self, f"x_{part}")
            if x is not None:
                yield part, x, getattr(self, f"y_{part}")

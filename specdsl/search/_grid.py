"""The grid sampler's grid: its size counted without listing it, bounded by :data:`MAX_GRID_POINTS`, and its
values per parameter."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import SearchError

if TYPE_CHECKING:
    from ._space import Distribution

MAX_GRID_POINTS = 100_000
"""Most combinations a grid search may have. Optuna's GridSampler makes a list of all of them (and shuffles it)
when the study starts; a grid larger than this is refused by ``specdsl validate`` and ``specdsl search``, at the
distribution with the most values, before any value is listed."""


_MANY = 10**18  # a float distribution's count of grid values past which it is not worth counting


def _grid_values(d: Distribution) -> int:
    """How many values a distribution has on a grid, counted without listing them."""
    if d.kind == "choice":
        return len(d.options)
    if d.step is None and d.kind == "float":
        raise SearchError(
            f"the grid sampler needs a `step` on every float distribution, but `{d.name}` has none.",
            loc=d.loc,
            path=d.path,
            hint="Add e.g. `step: 0.1`, or use another sampler (tpe, random, qmc).",
        )
    if d.kind == "int":
        return (int(d.high) - int(d.low)) // int(d.step or 1) + 1
    span = (d.high - d.low) / d.step
    return int(round(span)) + 1 if math.isfinite(span) and span < _MANY else _MANY


def grid_size(dists: list[Distribution]) -> int:
    """The number of combinations the grid sampler walks through: the product of every parameter's number of
    values. Raises a :class:`SearchError` located at the distribution with the most values when it passes
    :data:`MAX_GRID_POINTS`, or at a float distribution without a ``step``."""
    sizes: dict[str, tuple[int, Distribution]] = {}
    for d in dists:
        sizes.setdefault(d.name, (_grid_values(d), d))
    total = math.prod(n for n, _ in sizes.values())
    if total > MAX_GRID_POINTS:
        n, big = max(sizes.values(), key=lambda item: item[0])
        values = f"{n:,}" if n < _MANY or big.kind == "int" else f"more than {_MANY:,}"
        if n >= _MANY and big.kind == "float":
            whole = f"more than {_MANY:,}"
        elif total.bit_length() <= 100:
            whole = f"{total:,}"
        else:
            whole = f"about 10**{int(total.bit_length() * math.log10(2))}"
        others = len(sizes) - 1
        raise SearchError(
            f"the grid would hold {whole} combinations, more than the {MAX_GRID_POINTS:,} a grid search may have; "
            f"this distribution ({big.describe()}) has {values} values"
            f"{f', and {others:,} more distributions multiply them' if others else ''}.",
            loc=big.loc,
            path=big.path,
            hint="Give it a coarser `step` or fewer options, or use another sampler (tpe, random, qmc).",
        )
    return total


def grid_space(dists: list[Distribution]) -> dict[str, list[Any]]:
    """The values Optuna's GridSampler walks through, per parameter (structural choices by index); the grid's
    size is checked first (:func:`grid_size`)."""
    grid_size(dists)
    grid: dict[str, list[Any]] = {}
    for d in dists:
        if d.kind == "choice":
            values: list[Any] = list(range(len(d.options))) if d.structural else list(d.options)
        elif d.kind == "int":
            values = list(range(int(d.low), int(d.high) + 1, int(d.step or 1)))
        else:
            n = int(round((d.high - d.low) / d.step))
            values = [round(d.low + i * d.step, 12) for i in range(n + 1)]
        grid[d.name] = values
    return grid

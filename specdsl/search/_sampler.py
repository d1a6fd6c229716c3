"""Samplers for the spec loader's stage 1: an Optuna trial, and a replay of recorded values."""

from __future__ import annotations

from typing import Any

from ..errors import SearchError
from ._space import param_name, scalar_options


def option_index(options: list[Any], value: Any) -> int:
    """Index of ``value`` among scalar ``options``, telling 1, 1.0 and True apart."""
    for i, option in enumerate(options):
        if type(option) is type(value) and option == value:
            return i
    for i, option in enumerate(options):
        if option == value:
            return i
    raise ValueError(f"{value!r} is not one of the options {options!r}")


class OptunaSampler:
    """Draws a spec's distributions from an Optuna trial, under the names the spec gives them
    (:func:`param_name`: ``layers[2].conv2d.filters`` is ``layers.2.conv2d.filters``, as MLflow requires).

    A choice between scalars is ``suggest_categorical`` over the values themselves; a choice between structures
    (mappings, lists) is ``suggest_categorical`` over the option indices, and the index is what Optuna and MLflow
    record. ``int`` and ``float`` map to ``suggest_int`` / ``suggest_float`` with their ``step`` and ``log``.

        >>> spec = specdsl.load("search_spaces/catsdogs.yaml", sampler=OptunaSampler(trial))
        >>> spec.params.keys() == trial.params.keys()
        True
    """

    def __init__(self, trial: Any):
        self.trial = trial

    def choice(self, name: str, options: list[Any]) -> int:
        name = param_name(name)
        if scalar_options(options):
            return option_index(options, self.trial.suggest_categorical(name, options))
        return int(self.trial.suggest_categorical(name, list(range(len(options)))))

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return int(self.trial.suggest_int(param_name(name), low, high, step=step, log=log))

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        return float(self.trial.suggest_float(param_name(name), low, high, step=step, log=log))


class ReplaySampler:
    """Replays recorded parameter values (an Optuna trial's ``params``) to rebuild the same concrete spec.

    Pure python: ``specdsl best`` and the tests use it without Optuna's trial machinery.
    """

    def __init__(self, params: dict[str, Any]):
        self.params = dict(params)
        self.used: set[str] = set()

    def _get(self, name: str) -> Any:
        name = param_name(name)
        if name not in self.params:
            raise SearchError(
                f"the trial has no value for parameter `{name}`; was the search space changed since the study ran?",
                hint="Freeze the trial with the search space file the study ran on.",
            )
        self.used.add(name)
        return self.params[name]

    def choice(self, name: str, options: list[Any]) -> int:
        value = self._get(name)
        if scalar_options(options):
            try:
                return option_index(options, value)
            except ValueError:
                raise SearchError(
                    f"parameter `{name}` = {value!r} is not one of the options {options!r}."
                ) from None
        if not isinstance(value, int) or not 0 <= value < len(options):
            raise SearchError(f"parameter `{name}` = {value!r} is not an option index below {len(options)}.")
        return value

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        return int(self._get(name))

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        return float(self._get(name))

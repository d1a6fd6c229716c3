"""Drawing search parameters: every distribution of a loaded tree replaced by a value from a :class:`Sampler`.

A distribution stands wherever a value may: ``{choice: [...]}``, ``{int: [lo, hi]}``, ``{float: [lo, hi]}``,
with ``log``, ``step`` and ``name``. The tree is drawn top-down, so that parameters inside an unchosen option
are never drawn, and each parameter is named by its path in the spec (or the ``name`` given).
"""

from __future__ import annotations

from typing import Any, Protocol

from .._text import shown
from ..errors import Loc, SearchError
from ._kinds import ALIASES, LAYERS
from ._located import check_keys, loc_of
from ._yaml import LocDict, LocList

DIST_KINDS = ("choice", "int", "float")
DIST_KEYS = (*DIST_KINDS, "log", "step", "name")


class Sampler(Protocol):
    """Draws search parameters; ``specdsl.search`` adapts an Optuna trial to this."""

    def choice(self, name: str, options: list[Any]) -> int: ...
    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int: ...
    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float: ...


class Draw:
    """Replaces every distribution in the tree by a value drawn from the sampler, top-down."""

    def __init__(self, file: str, sampler: Sampler | None, drawn: dict[str, Any]):
        self.file = file
        self.sampler = sampler
        self.drawn = drawn

    def value(self, node: Any, path: str) -> Any:
        if isinstance(node, dict):
            if is_distribution(node):
                value, option = self.quick_draw(node, path)
                # Inside a chosen option, names carry the option's index: two options may hold different
                # distributions at the same place, and Optuna needs one distribution per name.
                return self.value(value, path if option is None else f"{path}[{option}]")
            # Parts without distributions are the same objects, and a loaded tree remembers them: a search
            # space is drawn for every trial.
            out = None
            for key, child in node.items():
                if isinstance(child, (dict, list)) and not getattr(child, "no_draws", False):
                    new = self.value(child, f"{path}.{key}" if path else str(key))
                    if new is not child:
                        if out is None:
                            out = node.copy() if isinstance(node, LocDict) else dict(node)
                        out[key] = new
            if out is None and isinstance(node, LocDict):
                node.no_draws = True
            return node if out is None else out
        if isinstance(node, list):
            out_list = None
            for i, child in enumerate(node):
                if isinstance(child, (dict, list)) and not getattr(child, "no_draws", False):
                    new = self.value(child, f"{path}[{i}]")
                    if new is not child:
                        if out_list is None:
                            out_list = LocList(node, loc=getattr(node, "loc", None))
                            out_list.item_locs = list(getattr(node, "item_locs", []))
                        out_list[i] = new
            if out_list is None and isinstance(node, LocList):
                node.no_draws = True
            return node if out_list is None else out_list
        return node

    def draw(self, dist: dict, path: str) -> tuple[Any, int | None]:
        """The drawn value, and for a choice the index of the option."""
        kind = next(k for k in DIST_KINDS if k in dist)
        check_keys(dist, DIST_KEYS, f"a `{kind}` distribution", self.file, error=SearchError)
        name = dist.get("name") or (f"{path}" if path else kind)
        loc = getattr(dist, "loc", None) or Loc(self.file)
        spec = dist[kind]
        if self.sampler is None:
            raise SearchError(
                f"a search distribution (`{kind}`) stands where a value is needed.",
                loc=loc,
                path=path,
                hint="This file is a search space: run it with `specdsl search`, or give a single value.",
            )
        if kind == "choice":
            if not isinstance(spec, list) or not spec:
                raise SearchError("`choice` takes a non-empty list of options.", loc=loc, path=path)
            for extra in ("log", "step"):
                if extra in dist:
                    raise SearchError(
                        f"`{extra}` does not apply to `choice`.",
                        loc=loc_of(dist, extra, self.file, value=False),
                    )
            index = self.sampler.choice(name, list(spec))
            value = spec[index]
            self.drawn[name] = value if not isinstance(value, (dict, list)) else f"option {index}"
            return value, index
        low, high = _range(kind, spec, dist, loc, path, self.file)
        log = dist.get("log", False)
        step = dist.get("step")
        if not isinstance(log, bool):
            raise SearchError(
                f"`log` must be true or false, but got {shown(repr(log))}.",
                loc=loc_of(dist, "log", self.file),
            )
        if log and low <= 0:
            raise SearchError(
                f"`low > 0` must hold for log=true, but got (low={low}, high={high}).", loc=loc, path=path
            )
        if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0):
            raise SearchError(
                f"`step` must be a positive number, but got {shown(repr(step))}.",
                loc=loc_of(dist, "step", self.file),
            )
        if step is not None and log:
            raise SearchError("`step` and `log: true` cannot be combined.", loc=loc, path=path)
        if kind == "int":
            step = 1 if step is None else step
            if not isinstance(step, int):
                raise SearchError(
                    f"an `int` distribution needs an integer `step`, but got {shown(repr(step))}.",
                    loc=loc,
                    path=path,
                )
            value = self.sampler.int(name, low, high, step, log)
        else:
            value = self.sampler.float(name, float(low), float(high), step, log)
        self.drawn[name] = value
        return value, None

    def quick_draw(self, dist: dict, path: str) -> tuple[Any, int | None]:
        """:meth:`draw`, from the form that a first draw checked and the loaded tree kept: a search space is
        drawn again for every trial."""
        form = getattr(dist, "dist_form", None)
        if form is None or self.sampler is None:
            drawn = self.draw(dist, path)
            if isinstance(dist, LocDict):
                dist.dist_form = _form_of(dist)
            return drawn
        kind, given, low, high, step, log = form
        name = given or (f"{path}" if path else kind)
        if kind == "choice":
            index = self.sampler.choice(name, low)
            value = low[index]
            self.drawn[name] = value if not isinstance(value, (dict, list)) else f"option {index}"
            return value, index
        value = (self.sampler.int if kind == "int" else self.sampler.float)(name, low, high, step, log)
        self.drawn[name] = value
        return value, None


def is_distribution(node: Any) -> bool:
    """Whether ``node`` is a distribution: a mapping with one of ``choice``, ``int``, ``float`` (no layer)."""
    if not isinstance(node, dict) or ("choice" in node) + ("int" in node) + ("float" in node) != 1:
        return False
    return all(isinstance(k, str) for k in node) and not any(k in LAYERS or k in ALIASES for k in node)


def _form_of(dist: dict) -> tuple:
    """A checked distribution's (kind, name given, low, high, step, log); a choice's options stand for low."""
    kind = next(k for k in DIST_KINDS if k in dist)
    if kind == "choice":
        return kind, dist.get("name"), list(dist[kind]), None, None, False
    low, high = dist[kind]
    step, log = dist.get("step"), dist.get("log", False)
    if kind == "int":
        return kind, dist.get("name"), low, high, 1 if step is None else step, log
    return kind, dist.get("name"), float(low), float(high), step, log


def has_distributions(node: Any) -> bool:
    """Whether ``node`` holds a distribution anywhere."""
    if isinstance(node, dict):
        return is_distribution(node) or any(has_distributions(v) for v in node.values())
    if isinstance(node, list):
        return any(has_distributions(v) for v in node)
    return False


def _range(kind: str, spec: Any, dist: dict, loc: Loc, path: str, file: str) -> tuple[Any, Any]:
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(spec, list)
        or len(spec) != 2
        or not all(isinstance(v, number) and not isinstance(v, bool) for v in spec)
    ):
        what = "two integers" if kind == "int" else "two numbers"
        raise SearchError(
            f"`{kind}` takes [low, high] as {what}, but got {shown(repr(spec))}.", loc=loc, path=path
        )
    low, high = spec
    if low > high:
        raise SearchError(f"`low <= high` must hold, but got (low={low}, high={high}).", loc=loc, path=path)
    return low, high


class RandomSampler:
    """Draws uniformly at random (log-uniformly where asked); used to check search spaces without Optuna."""

    def __init__(self, seed: int = 0):
        import random

        self.rng = random.Random(seed)

    def choice(self, name: str, options: list[Any]) -> int:
        return self.rng.randrange(len(options))

    def int(self, name: str, low: int, high: int, step: int, log: bool) -> int:
        if log:
            import math

            return min(high, max(low, round(math.exp(self.rng.uniform(math.log(low), math.log(high))))))
        return low + step * self.rng.randrange((high - low) // step + 1)

    def float(self, name: str, low: float, high: float, step: float | None, log: bool) -> float:
        import math

        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randrange(int((high - low) / step + 1e-9) + 1)
        return self.rng.uniform(low, high)

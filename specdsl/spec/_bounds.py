"""The bounds on expansion: how many layers a spec expands to, how deep its blocks and repeats nest, how many
operations its expressions take, each refused before the work it would cost is done.

:class:`Bounds` keeps the counts as the ``Expander`` (``_expand``) expands a spec, and refuses a repeat or a
block use from what its text alone says it holds, before its first pass.
"""

from __future__ import annotations

from typing import Any

from ..errors import Loc, SpecError
from . import _expr
from ._blocks import Block
from ._kinds import ALIASES, LAYERS
from ._located import loc_of

MAX_LAYERS = 100_000
"""Most layers a spec may expand to. What costs about as much time or memory as a layer counts as one: a pass
of a repeat or a use of a block that adds no layer, each input a layer reads beyond its first, each 20
parameters of a block at each of its uses, each 1,000 characters of a layer's name and path. A spec that would
pass it is refused before it is built, from its repeat counts (a repeat's first pass stands for all of them)
and from what its text alone says it holds; ResNet-152 has about 500 layers."""

MAX_EXPR_OPERATIONS = 1_000_000
"""Most operations all of a spec's ``${...}`` expressions may take to evaluate, in all (each ``$name`` is
one): an expression is short, but one inside a repeat is evaluated at every pass."""

MAX_NESTING = 100
"""Deepest nesting of block uses and repeats (a block that uses a block that uses ... is one level each)."""

FORESEE_VISITS = 256  # items a repeat's body is looked at for, to bound its size before its first pass

_SIZE_HINT = "Lower the repeat counts, or use fewer blocks."


class Bounds:
    """The counts of one expansion, each against its bound."""

    def __init__(self, file: str, blocks: dict[str, Block]):
        self.file = file
        self.blocks = blocks
        self.stack: list[str] = []  # the blocks being expanded, outermost first
        self.nodes = 0  # layers (and what counts as one) expanded so far, bounded by MAX_LAYERS
        self.operations = 0  # of the expressions evaluated so far, bounded by MAX_EXPR_OPERATIONS
        # How many times the place being expanded will be expanded, as far as is known: the counts of the
        # repeats around it that are in their first pass (a first pass stands for all of a repeat's passes).
        self.weight = 1
        self.depth = 0  # blocks and repeats around the place being expanded, bounded by MAX_NESTING
        self.block_sizes: dict[str, int] = {}  # block name -> fewest nodes one use of it expands to

    def count(self, loc: Loc, path: str, n: int = 1) -> None:
        """Count ``n`` layers (or what costs as much as ``n``) expanded at ``loc``."""
        self.nodes += n
        if self.nodes > MAX_LAYERS:
            raise SpecError(
                f"the spec expands to more than {MAX_LAYERS:,} layers by here.",
                loc=loc,
                path=short_path(path),
                hint=_SIZE_HINT,
            )

    def too_big(self, subject: str, verb: str, size: int, loc: Loc, path: str) -> SpecError:
        around = f", and the repeats around it run it {self.weight:,} times" if self.weight > 1 else ""
        after = f", after the {self.nodes:,} before it" if self.nodes else ""
        return SpecError(
            f"{subject} {verb} to at least {_count_text(size)} layers{around}{after}; "
            f"a spec expands to at most {MAX_LAYERS:,}.",
            loc=loc,
            path=short_path(path),
            hint=_SIZE_HINT,
        )

    def foresee(self, items: list, path: str) -> None:
        """Refuse ``items`` before expanding them when their text alone says they pass :data:`MAX_LAYERS`."""
        total = 0
        for i, item in enumerate(items):
            size = self.fewest(item, 0, None)
            total += size
            if self.nodes + self.weight * total > MAX_LAYERS:
                loc = loc_of(items, i, self.file)
                if self.nodes + self.weight * size <= MAX_LAYERS:
                    raise self.too_big(f"the {path} up to here", "expand", total, loc, path)
                what = _item_text(item, self.blocks) or "this layer"
                raise self.too_big(what, "expands", size, loc, f"{path}[{i}]")

    def foresee_repeat(self, times: int, body: list, loc: Loc, path: str) -> None:
        """Refuse a repeat of ``times`` passes of ``body`` before its first pass when its text alone says that
        they pass :data:`MAX_LAYERS` (looking at :data:`FORESEE_VISITS` items of the body at most)."""
        visits = [FORESEE_VISITS]
        size = times * max(1, sum(self.fewest(x, 0, visits) for x in body))
        if self.nodes + self.weight * size > MAX_LAYERS:
            raise self.too_big(f"repeat of {_count_text(times)}", "expands", size, loc, path)

    def foresee_block(self, name: str, loc: Loc, path: str) -> None:
        """Refuse a use of block ``name`` when its text alone says that it passes :data:`MAX_LAYERS`."""
        size = max(1, self.block_size(name, 0))
        if self.nodes + self.weight * size > MAX_LAYERS:
            raise self.too_big(f"block `{name}`", "expands", size, loc, path)

    def fewest(self, item: Any, depth: int, visits: list[int] | None) -> int:
        """The fewest layers ``item`` expands to, from its text alone: a layer is one, a block use its block's
        (one at least), a repeat with a written count that many passes of its body's (one at least). A count
        given by a parameter counts zero, as does anything nested deeper than MAX_NESTING or beyond
        ``visits[0]`` items."""
        if visits is not None:
            visits[0] -= 1
            if visits[0] < 0:
                return 0
        if depth > MAX_NESTING:
            return 0
        key: Any = item
        if isinstance(item, dict):
            if "kind" in item:
                key = item["kind"]
            elif "repeat" in item:
                times, body = item["repeat"], item.get("layers")
                if type(times) is not int or times <= 0 or not isinstance(body, list):
                    return 0
                return times * max(1, sum(self.fewest(x, depth + 1, visits) for x in body))
            elif len(item) == 1:
                (key,) = item
        if isinstance(key, str) and key in self.blocks and key not in LAYERS and key not in ALIASES:
            return max(1, self.block_size(key, depth + 1))
        return 1

    def block_size(self, name: str, depth: int) -> int:
        if name not in self.block_sizes:
            self.block_sizes[name] = 0  # a block that uses itself is reported when it is expanded
            self.block_sizes[name] = sum(self.fewest(x, depth, None) for x in self.blocks[name].layers)
        return self.block_sizes[name]

    def enter(self, loc: Loc, path: str) -> None:
        """Go one block use or repeat deeper (the caller lowers ``depth`` again when it is done)."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            chain = self.stack if len(self.stack) <= 6 else [*self.stack[:3], "...", *self.stack[-2:]]
            blocks = f" (blocks {' -> '.join(chain)})" if chain else ""
            raise SpecError(
                f"blocks and repeats nest more than {MAX_NESTING} levels deep here{blocks}.",
                loc=loc,
                path=short_path(path),
                hint="Write the inner blocks' layers out, or repeat them instead of nesting.",
            )

    def evaluated(self, text: str, loc: Any, path: str) -> None:
        """Count the operations of the expressions in ``text``, just evaluated; refuse them past
        :data:`MAX_EXPR_OPERATIONS` (a first pass stands for all of its repeat's passes, as for layers)."""
        ops = _expr.operations(text)
        if self.operations + self.weight * ops > MAX_EXPR_OPERATIONS:
            around = f", and the repeats around it run it {self.weight:,} times" if self.weight > 1 else ""
            after = f", after the {self.operations:,} before it" if self.operations else ""
            raise SpecError(
                f"`{_expr.shown(text)}` takes {ops:,} operations to evaluate{around}{after}; "
                f"a spec's expressions take at most {MAX_EXPR_OPERATIONS:,}.",
                loc=self.where(loc),
                path=path,
                hint="Compute fewer values, or use fewer repeat passes.",
            )
        self.operations += ops

    def where(self, loc: Any) -> Loc:
        """``loc`` itself, or the location of the (container, key) it names."""
        return loc if isinstance(loc, Loc) else loc_of(loc[0], loc[1], self.file)


def short_path(path: str) -> str:
    """A path as a message on the bounds shows it: deep nesting makes paths of thousands of characters."""
    return path if len(path) <= 80 else f"{path[:40]}...{path[-30:]}"


def _count_text(n: int) -> str:
    return f"{n:,}" if n.bit_length() <= 100 else _expr.number_text(n)


def _item_text(item: Any, blocks: dict[str, Block]) -> str | None:
    """How a message names a repeat (by its count) or a block use; None for anything else."""
    if isinstance(item, dict) and "kind" not in item and "repeat" in item and type(item["repeat"]) is int:
        return f"repeat of {_count_text(item['repeat'])}"
    key = (
        item
        if isinstance(item, str)
        else next(iter(item))
        if isinstance(item, dict) and len(item) == 1
        else None
    )
    if isinstance(key, str) and key in blocks:
        return f"block `{key}`"
    return None

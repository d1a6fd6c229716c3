"""A staged fine-tune (``train.stages``): which layers each stage unfreezes and what it trains with, checked
against the plan (:func:`stage_plans`), and the stage each epoch of a run is in (:class:`StageRunner`).

A run without stages is one stage of ``train.epochs`` with the train section as it is, so the loops have one
path. Each stage begins with a fresh optimizer (its own, or the section's at its learning rate) over the
parameters that train then, and the section's schedule restarts over its epochs; the monitor, the best epoch
and the checkpoint run on across the stages. Early stopping ends a stage (its patience counts afresh in the
next one), and the run once the last stage ends. Pure Python: no framework is imported.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from ..errors import Loc, SpecError
from ..plan import Plan
from ..spec import LocDict, LocList, Optimizer, TrainSpec


@dataclass(frozen=True)
class StagePlan:
    """One stage as a run trains it: its number (from 1), epochs, the plan's layers it unfreezes when it
    begins, and the train section with its optimizer."""

    number: int
    epochs: int
    unfreeze: tuple[str, ...]
    train: TrainSpec

    @property
    def optimizer(self) -> Optimizer:
        o = self.train.optimizer
        assert isinstance(o, Optimizer)
        return o


def stage_loc(plan: Plan, index: int, key: str | None = None) -> Loc:
    """Where ``train.stages[index]`` (or its ``key``) stands in the spec text, as deep as it is known."""
    loc = Loc(plan.spec.file)
    node: Any = plan.spec.raw
    for part in ("train", "stages", index, key):
        if part is None:
            break
        if isinstance(node, LocDict) and part in node:
            loc = node.loc_of(part, value=True) or loc
        elif isinstance(node, LocList) and isinstance(part, int) and part < len(node):
            loc = node.loc_of(part) or loc
        else:
            break
        node = node[part]
    return loc


def frozen_layers(plan: Plan) -> list[str]:
    """The plan's frozen layers (``trainable: false``), in graph order."""
    return [n.name for n in plan.layers if n.layer is not None and not n.layer.trainable]


def stage_plans(plan: Plan, train: TrainSpec) -> list[StagePlan]:
    """The stages of ``train`` on this plan (one stage of ``train.epochs`` when it has none).

    Raises a located SpecError for an ``unfreeze`` naming a layer the model lacks, or one not frozen (by
    ``trainable: false``, and not unfrozen by an earlier stage), or a count beyond the frozen layers with
    weights still frozen."""
    if not train.stages:
        return [StagePlan(1, train.epochs, (), train)]
    still = frozen_layers(plan)
    out = []
    for i, stage in enumerate(train.stages):
        what = stage.unfreeze
        path = f"train.stages[{i}].unfreeze"
        names: list[str]
        if what is None:
            names = []
        elif what == "all":
            names = list(still)
        elif isinstance(what, int):
            weighted = [n for n in still if plan[n].params]
            if what > len(weighted):
                raise SpecError(
                    f"`unfreeze: {what}` unfreezes the last {what} frozen layers with weights, but "
                    f"{_count(len(weighted), 'is', 'are')} frozen{' still' if i else ''}.",
                    loc=stage_loc(plan, i, "unfreeze"),
                    path=path,
                    hint=f"Unfreeze at most {len(weighted)}, or freeze more layers with `trainable: false`.",
                )
            names = weighted[len(weighted) - what :] if what else []
        else:
            for name in what:
                _check_frozen(plan, name, still, i, path)
            names = list(dict.fromkeys(what))
        still = [n for n in still if n not in names]
        optimizer = stage.optimizer_of(train)
        out.append(
            StagePlan(
                i + 1,
                stage.epochs,
                tuple(names),
                train.model_copy(update={"optimizer": optimizer, "epochs": stage.epochs}),
            )
        )
    return out


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many}" if n else f"none {many}"


def _check_frozen(plan: Plan, name: str, still: list[str], i: int, path: str) -> None:
    layers = [n.name for n in plan.layers]
    loc = stage_loc(plan, i, "unfreeze")
    weighted = [n for n in still if plan[n].params]
    shown = ", ".join(weighted[:8]) + (", ..." if len(weighted) > 8 else "") if weighted else "none"
    if name not in layers:
        near = difflib.get_close_matches(name, layers, n=1)
        raise SpecError(
            f"`unfreeze` names `{name[:60]}`, which is no layer of the model"
            + (f"; did you mean `{near[0]}`?" if near else "."),
            loc=loc,
            path=path,
            hint=f"Frozen layers with weights: {shown}.",
        )
    if name not in still:
        layer = plan[name].layer
        why = (
            "it trains from the start (no `trainable: false`)"
            if layer is None or layer.trainable
            else "an earlier stage unfroze it"
        )
        raise SpecError(
            f"`unfreeze` names `{name}`, which is not frozen: {why}.",
            loc=loc,
            path=path,
            hint=f"Frozen layers with weights: {shown}.",
        )


class StageRunner:
    """The stage of each epoch of a run of ``epochs``: a search's budget may cut the stages short, and a budget
    beyond their sum trains on in the last. At the start of every epoch: stop when :attr:`finished`, else
    :meth:`advance`."""

    def __init__(self, stages: list[StagePlan], epochs: int):
        self.stages = stages
        self.epochs = epochs
        self.planned = [s.epochs for s in stages]
        self.planned[-1] += max(epochs - sum(self.planned), 0)
        self.index = -1
        self.left = 0  # epochs of the current stage after this one
        self.local = 0  # the epoch within the stage
        self.started = 0  # the run's epoch at which the stage began

    @property
    def stage(self) -> StagePlan:
        return self.stages[self.index]

    @property
    def finished(self) -> bool:
        """Whether the last stage has trained all its epochs (or ended early)."""
        return self.index == len(self.stages) - 1 and self.left <= 0

    def advance(self, epoch: int) -> StagePlan | None:
        """The stage that begins with this epoch, or None when the epoch goes on in the current one."""
        if self.index >= 0 and self.left > 0:
            self.left -= 1
            self.local += 1
            return None
        self.index += 1
        self.left, self.local, self.started = self.planned[self.index] - 1, 0, epoch
        return self.stage

    def span(self) -> int:
        """The epochs the current stage's schedule runs over: its own, as far as the run goes."""
        return max(min(self.planned[self.index], self.epochs - self.started), 1)

    def end_stage(self) -> bool:
        """Early stopping ended the current stage: whether another follows (False: the run stops)."""
        self.left = 0
        return self.index < len(self.stages) - 1

"""What a backend refuses among the specs that plan: :data:`LIMITS`, one :class:`Limit` per refusal, and
:func:`backend_limits`, the nodes of a plan that each limit stops. ``specdsl validate`` reports them (an error
when the spec's ``train.backend`` names the backend, a warning with the limit's code otherwise), so that a spec
is not found unbuildable only at ``compile --backend``; the Keras builders refuse by the same entries, so that
both say the same. Nothing here imports a framework;
``tests/backends/test_limits.py`` builds every entry's example in its framework (which must refuse it) and a grid
of layer variants in both backends (which must build whatever no limit stops).

The torch backend has no entry: what torch itself refuses (``padding='same'`` with a stride > 1, a pooling
padding over half its window, an ``output_padding`` not below the stride or the dilation) never reaches it, as
it passes torch explicit amounts (a separate pad where they are asymmetric) and the plan refuses such an
``output_padding``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError
from ..plan import Plan, PlanNode, PlanWarning, fmt


@dataclass(frozen=True)
class Limit:
    """A refusal of one backend: the layer kinds it concerns, when a node meets it, what to tell the user.

    ``code`` is the warning's code (one of ``specdsl.spec.WARNINGS``, which a layer's ``silence:`` names);
    ``example`` a smallest spec it stops, built in the framework by the limit's test."""

    backend: str
    code: str
    kinds: tuple[str, ...]
    applies: Callable[[PlanNode], bool]
    message: Callable[[PlanNode], str]
    hint: str
    example: dict[str, Any]

    def error(self, node: PlanNode) -> BackendError:
        """The located error for a spec whose own backend is this one."""
        return BackendError(
            f"the spec's backend ({self.backend}) cannot build this layer: {self.message(node)}",
            loc=node.loc,
            path=f"{node.path} ({node.kind})",
            hint=self.hint,
        )

    def warning(self, node: PlanNode) -> PlanWarning:
        """The warning for a spec that does not name its backend."""
        return PlanWarning(
            f"the {self.backend} backend cannot build this layer: {self.message(node)} {self.hint}",
            node.loc,
            f"{node.path} ({node.kind})",
            self.code,
        )


def _strided_and_dilated(node: PlanNode) -> bool:
    r = node.resolved
    return max(r.strides) > 1 and max(r.dilation) > 1


def _strided_and_dilated_text(node: PlanNode) -> str:
    cls = {"conv1d": "Conv1D", "conv2d": "Conv2D", "conv2d_transpose": "Conv2DTranspose"}[node.kind]
    r = node.resolved
    return (
        f"Keras' {cls} refuses strides > 1 with dilation > 1, but got strides={fmt(r.strides)} and "
        f"dilation={fmt(r.dilation)}."
    )


LIMITS: tuple[Limit, ...] = (
    Limit(
        backend="keras",
        code="keras-strided-dilation",
        kinds=("conv1d", "conv2d", "conv2d_transpose"),
        applies=_strided_and_dilated,
        message=_strided_and_dilated_text,
        hint=(
            "Use strides: 1 and downsample with a pooling layer after it, or drop the dilation; or build it with "
            "the torch backend (train.backend: torch, compile --backend torch)."
        ),
        example={
            "input": [16, 16, 3],
            "layers": [{"conv2d": {"filters": 4, "kernel": 3, "strides": 2, "dilation": 2}}],
        },
    ),
)

_BY_KIND: dict[str, tuple[Limit, ...]] = {}
for _limit in LIMITS:
    for _kind in _limit.kinds:
        _BY_KIND[_kind] = (*_BY_KIND.get(_kind, ()), _limit)


def backend_limits(plan: Plan) -> list[tuple[Limit, PlanNode]]:
    """Each (limit, node) of the plan that a backend refuses, in plan order."""
    return [
        (limit, node) for node in plan.layers for limit in _BY_KIND.get(node.kind, ()) if limit.applies(node)
    ]


def check_backend_limits(plan: Plan) -> list[PlanWarning]:
    """Raise the first limit of the backend the spec names (``train.backend`` written out); the warnings of the
    others, less those their layer silences."""
    train = plan.spec.train
    named = train.backend if train is not None and "backend" in train.model_fields_set else None
    warnings = []
    for limit, node in backend_limits(plan):
        if limit.backend == named:
            raise limit.error(node)
        if node.layer is None or limit.code not in (node.layer.silence or ()):
            warnings.append(limit.warning(node))
    return warnings

"""The static plan: every node's shape, parameter counts, FLOPs and activation memory from pure rules (no framework),
and what each node's rule resolved for the backends.

:func:`plan` walks a validated :class:`~specdsl.spec.ModelSpec` once, calling the rule of each layer kind
(``RULES``, filled with ``@register_rule`` in ``_rules.py``), and gives a :class:`Plan` of :class:`PlanNode`:
shapes channels-last without the batch axis, trainable and non-trainable counts as Keras' ``model.summary()``
counts them, FLOPs (a multiply-add counts 2), and ``node.resolved`` (:class:`Resolved`: window sizes, strides,
dilation and padding amounts as tuples, 'same' resolved, and the fans of each kernel). A shape that does not work
out, or a model past its ``limits``, is a located ``ShapeError``. ``_plan.py`` holds the walk, the plan's types
and its bounds; sliding windows are sized in ``_windows.py``, the one place that arithmetic lives (with
:class:`Resolved`); ``_summary.py`` lays the plan out as Keras' summary table.

The summary, the search's filters and both backends read the plan; nothing after it computes a shape, a padding
or a fan again. Sizes print through :func:`iec_bytes`, the one formatter of byte counts.
"""

from ._plan import BYTES_PER_VALUE, Plan, PlanNode, PlanWarning, iec_bytes, plan
from ._rules import MERGE_KINDS, RULES, register_rule
from ._summary import (
    RIGHT,
    column_widths,
    is_sequential,
    summary_cells,
    summary_rows,
    summary_text,
    summary_totals,
)
from ._windows import (
    NOTHING,
    Resolved,
    RuleError,
    fmt,
    numel,
    same_padding,
    transpose_length,
    transpose_padding,
    window_length,
)

__all__ = [
    "BYTES_PER_VALUE",
    "MERGE_KINDS",
    "NOTHING",
    "RIGHT",
    "RULES",
    "Plan",
    "PlanNode",
    "PlanWarning",
    "Resolved",
    "RuleError",
    "column_widths",
    "fmt",
    "iec_bytes",
    "is_sequential",
    "numel",
    "plan",
    "register_rule",
    "same_padding",
    "summary_cells",
    "summary_rows",
    "summary_text",
    "summary_totals",
    "transpose_length",
    "transpose_padding",
    "window_length",
]

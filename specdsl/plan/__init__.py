"""The static plan: shapes, parameter counts, FLOPs and activation memory from pure rules (no framework)."""

from ._plan import BYTES_PER_VALUE, Plan, PlanNode, PlanWarning, iec_bytes, plan
from ._summary import RIGHT, column_widths, is_sequential, summary_cells, summary_rows, summary_text, summary_totals
from ._rules import RULES, RuleError, fmt, numel, register_rule, same_padding, transpose_length, window_length

__all__ = [
    "BYTES_PER_VALUE",
    "RIGHT",
    "RULES",
    "Plan",
    "PlanNode",
    "PlanWarning",
    "RuleError",
    "column_widths",
    "fmt",
    "iec_bytes",
    "numel",
    "plan",
    "register_rule",
    "same_padding",
    "is_sequential",
    "summary_cells",
    "summary_rows",
    "summary_text",
    "summary_totals",
    "transpose_length",
    "window_length",
]

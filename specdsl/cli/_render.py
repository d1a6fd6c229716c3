"""Rendering of a plan as a boxed table (the `summary` command).

The table is laid out here, in rich's heavy-head box style, rather than by ``rich.table.Table``: rich measures
and renders every cell through its whole layout machinery (about 300 µs a row), so a 50,000-layer model took
16 s to print; these lines cost a few µs a row. Only the header, the title and the totals are styled by rich.
"""

from __future__ import annotations

import textwrap

from rich.console import Console
from rich.text import Text

from .._text import terminal
from ..plan import RIGHT, Plan, column_widths, summary_cells, summary_totals

PIPE_WIDTH = 180  # piped or captured: no terminal width to fit, keep every column whole up to this


def box_lines(header: list[str], cells: list[list[str]], width: int) -> tuple[list[str], list[str]]:
    """The table as (head, body) lines: head = top border, header row and the rule under it; body = the rows and
    the bottom border. The last column of a graph ("Connected to") wraps at ", " to keep the table within
    ``width``; the others never wrap."""
    widths = column_widths(header, cells)
    wrap = len(header) - 1 if len(header) > 5 else None
    if wrap is not None:
        others = sum(widths[:wrap]) + 3 * len(widths) + 1
        widths[wrap] = max(min(widths[wrap], width - others), len(header[wrap]), 12)

    def row(values: list[str], bar: str) -> str:
        padded = (v.rjust(w) if i in RIGHT else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))
        return f"{bar} " + f" {bar} ".join(padded) + f" {bar}"

    def rule(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    head = [rule("┏", "━", "┳", "┓"), row(header, "┃"), rule("┡", "━", "╇", "┩")]
    body: list[str] = []
    for values in cells:
        if wrap is not None and len(values[wrap]) > widths[wrap]:
            parts = textwrap.wrap(values[wrap], widths[wrap], break_on_hyphens=False) or [""]
            body.append(row([*values[:wrap], parts[0]], "│"))
            body += [row([""] * wrap + [part], "│") for part in parts[1:]]
        else:
            body.append(row(values, "│"))
    body.append(rule("└", "─", "┴", "┘"))
    return head, body


def summary_table(plan: Plan, console: Console) -> None:
    """Print the summary table, the totals and the plan's warnings to ``console``."""
    tty = console.is_terminal
    header, cells = summary_cells(plan)
    cells = [[terminal(c) for c in row] for row in cells]  # names and inputs are a user's text
    head, body = box_lines(header, cells, console.width if tty else PIPE_WIDTH)
    title = f'Model: "{terminal(plan.name)}"'
    if tty:
        console.print(Text(title, style="italic"), soft_wrap=True)
        console.print(head[0], markup=False, highlight=False, soft_wrap=True)
        console.print(Text(head[1], style="bold"), soft_wrap=True)
        console.print(head[2], markup=False, highlight=False, soft_wrap=True)
        console.file.write("\n".join(body) + "\n")
    else:
        console.file.write("\n".join([title, *head, *body]) + "\n")
    for key, value in summary_totals(plan):
        console.print(Text.assemble((f"{key}:", "bold"), f" {value}"), soft_wrap=True)
    if plan.warnings:
        console.print(
            Text("\n").join(
                Text.assemble(
                    (f"warning [{w.code}]:", "yellow"), f" {terminal(w.path)}: {terminal(w.message)}"
                )
                for w in plan.warnings
            ),
            soft_wrap=True,
        )

"""Rich rendering of a plan (the `summary` command)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .._text import markup
from ..plan import Plan, human_bytes, is_sequential, summary_rows, summary_totals


def summary_table(plan: Plan, console: Console) -> None:
    if not console.is_terminal:  # piped or captured: no terminal width to fit, keep every column whole
        console = Console(width=180, highlight=False, soft_wrap=True)
    graph = not is_sequential(plan)
    # rich reads markup in titles and cells: every text from the spec goes in escaped
    table = Table(title=f'Model: "{markup(plan.name)}"', title_justify="left", show_lines=False)
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    table.add_column("Param #", justify="right")
    table.add_column("FLOPs", justify="right")
    table.add_column("Activations", justify="right")
    if graph:
        table.add_column("Connected to")
    for r in summary_rows(plan):
        cells = [markup(r["layer"]), r["output_shape"], f"{r['params']:,}", f"{r['flops']:,}", human_bytes(r["activation_bytes"])]
        if graph:
            cells.append(markup(", ".join(r["inputs"])) or "-")
        table.add_row(*cells)
    console.print(table)
    for key, value in summary_totals(plan):
        console.print(f"[bold]{key}:[/] {value}", highlight=False)
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {markup(w.path)}: {markup(w.message)}", highlight=False)

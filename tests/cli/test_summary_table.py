"""The summary table is laid out by specdsl, line for line as rich.table.Table lays it out, at a few µs a row."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from support import EXAMPLES, example_files
from typer.testing import CliRunner

import specdsl
from specdsl.cli import app
from specdsl.cli._render import PIPE_WIDTH, summary_table
from specdsl.plan import iec_bytes, is_sequential, summary_rows, summary_totals


def rich_summary(plan) -> str:
    """The summary as rich.table.Table rendered it (the layout the table keeps)."""
    console = Console(file=io.StringIO(), width=PIPE_WIDTH, highlight=False, soft_wrap=True)
    graph = not is_sequential(plan)
    table = Table(title=f'Model: "{plan.name}"', title_justify="left")
    table.add_column("Layer (type)", no_wrap=True)
    table.add_column("Output Shape", no_wrap=True)
    for name in ("Param #", "FLOPs", "Activations"):
        table.add_column(name, justify="right")
    if graph:
        table.add_column("Connected to")
    for r in summary_rows(plan):
        cells = [
            r["layer"],
            r["output_shape"],
            f"{r['params']:,}",
            f"{r['flops']:,}",
            iec_bytes(r["activation_bytes"]),
        ]
        table.add_row(*cells, *([", ".join(r["inputs"]) or "-"] if graph else []))
    console.print(table)
    for key, value in summary_totals(plan):
        console.print(f"{key}: {value}")
    for w in plan.warnings:
        console.print(f"warning [{w.code}]: {w.path}: {w.message}")
    return console.file.getvalue()


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_the_table_is_rich_s_layout(path):
    plan = specdsl.check(path)
    console = Console(file=io.StringIO(), width=PIPE_WIDTH)
    summary_table(plan, console)
    assert console.file.getvalue() == rich_summary(plan)


def test_a_graph_s_connections_wrap_to_a_terminal_s_width():
    plan = specdsl.check(EXAMPLES / "inceptionv3.yaml")
    console = Console(file=io.StringIO(), width=150, force_terminal=True, color_system=None)
    summary_table(plan, console)
    lines = console.file.getvalue().splitlines()
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert {len(line) for line in table} == {150}
    first = next(i for i, line in enumerate(lines) if line.startswith("│ concatenate (Concatenate) "))
    assert lines[first].endswith("│ activation_5, activation_7,   │")
    assert lines[first + 1].endswith("│ activation_10, activation_11  │")
    assert lines[first + 1].startswith("│" + " " * 51 + "│")


def test_json_summary_is_indented_as_before():
    result = CliRunner().invoke(app, ["summary", str(EXAMPLES / "mnist_cnn.yaml"), "--format", "json"])
    assert result.exit_code == 0
    assert result.stdout.startswith(
        '{\n  "name": "mnist_cnn",\n  "layers": [\n    {\n      "layer": "input (InputLayer)",'
    )
    assert result.stdout.endswith("\n  }\n}\n")

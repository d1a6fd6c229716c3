"""The plan as a table, laid out like Keras' ``model.summary()`` with FLOPs and activation memory added."""

from __future__ import annotations

from typing import Any

from .._text import terminal
from ._plan import Plan, PlanNode, iec_bytes


def _shape(node: PlanNode) -> str:
    return "(" + ", ".join(["None", *map(str, node.shape)]) + ")"


def label(node: PlanNode) -> str:
    """A layer's name and Keras class, and ``frozen`` for a layer with weights that says ``trainable: false``."""
    frozen = ", frozen" if node.frozen else ""
    return f"{node.name} ({node.keras_class}{frozen})"


def _si(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,}"


def is_sequential(plan: Plan) -> bool:
    """True when every layer reads only the layer right before it (no column for connections is needed)."""
    previous = plan.nodes[0].name
    for node in plan.layers:
        if node.inputs != (previous,):
            return False
        previous = node.name
    return True


def summary_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per layer (the input included): name, type, output shape, params, FLOPs, activation bytes, inputs."""
    return [
        {
            "layer": label(node),
            "name": node.name,
            "type": node.keras_class,
            "output_shape": _shape(node),
            "params": node.params,
            "trainable": node.trainable,
            "non_trainable": node.non_trainable,
            "flops": node.flops,
            "activation_bytes": node.activation_bytes,
            "inputs": list(node.inputs),
        }
        for node in plan.nodes
    ]


def summary_totals(plan: Plan) -> list[tuple[str, str]]:
    return [
        ("Total params", f"{plan.params:,} ({iec_bytes(plan.param_bytes)})"),
        ("Trainable params", f"{plan.trainable:,} ({iec_bytes(plan.trainable * 4)})"),
        ("Non-trainable params", f"{plan.non_trainable:,} ({iec_bytes(plan.non_trainable * 4)})"),
        ("FLOPs per example", f"{plan.flops:,} ({_si(plan.flops)}FLOPs; a multiply-add counts 2)"),
        (
            "Activation memory per example",
            f"{iec_bytes(plan.activation_bytes)} (float32, forward, every layer's output)",
        ),
    ]


HEADER = ("Layer (type)", "Output Shape", "Param #", "FLOPs", "Activations")
CONNECTED = "Connected to"
RIGHT = frozenset({2, 3, 4})  # the numeric columns are right-aligned


def summary_cells(plan: Plan) -> tuple[list[str], list[list[str]]]:
    """The summary's header and one row of cells per layer, as text (with a "Connected to" column for graphs)."""
    graph = not is_sequential(plan)
    header = [*HEADER, CONNECTED] if graph else list(HEADER)
    cells = []
    for node in plan.nodes:
        row = [
            label(node),
            _shape(node),
            f"{node.params:,}",
            f"{node.flops:,}",
            iec_bytes(node.activation_bytes),
        ]
        if graph:
            row.append(", ".join(node.inputs) or "-")
        cells.append(row)
    return header, cells


def column_widths(header: list[str], cells: list[list[str]]) -> list[int]:
    """The width of each column: its widest cell or its header."""
    return [max(len(header[i]), max((len(row[i]) for row in cells), default=0)) for i in range(len(header))]


def summary_text(plan: Plan) -> str:
    """Plain-text summary (stable: stored expected outputs compare against it)."""
    header, table = summary_cells(plan)
    widths = column_widths(header, table)

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    rule = "-" * len(line(header))
    out = [f'Model: "{terminal(plan.name)}"', rule, line(header), "=" * len(rule)]
    out += [line(t) for t in table]
    out.append("=" * len(rule))
    out += [f"{k}: {v}" for k, v in summary_totals(plan)]
    for w in plan.warnings:
        out.append(terminal(f"warning [{w.code}]: {w.path}: {w.message}"))
    return "\n".join(out) + "\n"

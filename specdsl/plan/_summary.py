"""The plan as a table, laid out like Keras' ``model.summary()`` with FLOPs and activation memory added."""

from __future__ import annotations

from typing import Any

from .._text import terminal
from ._plan import Plan, PlanNode, human_bytes


def _shape(node: PlanNode) -> str:
    return "(" + ", ".join(["None", *map(str, node.shape)]) + ")"


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
            "layer": f"{node.name} ({node.keras_class})",
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
        ("Total params", f"{plan.params:,} ({human_bytes(plan.param_bytes)})"),
        ("Trainable params", f"{plan.trainable:,} ({human_bytes(plan.trainable * 4)})"),
        ("Non-trainable params", f"{plan.non_trainable:,} ({human_bytes(plan.non_trainable * 4)})"),
        ("FLOPs per example", f"{plan.flops:,} ({_si(plan.flops)}FLOPs; a multiply-add counts 2)"),
        ("Activation memory per example", f"{human_bytes(plan.activation_bytes)} (float32, forward, every layer's output)"),
    ]


def summary_text(plan: Plan) -> str:
    """Plain-text summary (stable: stored expected outputs compare against it)."""
    rows = summary_rows(plan)
    graph = not is_sequential(plan)
    header = ["Layer (type)", "Output Shape", "Param #", "FLOPs", "Activations"] + (["Connected to"] if graph else [])
    table = [
        [r["layer"], r["output_shape"], f"{r['params']:,}", f"{r['flops']:,}", human_bytes(r["activation_bytes"])]
        + ([", ".join(r["inputs"]) or "-"] if graph else [])
        for r in rows
    ]
    widths = [max(len(header[i]), *(len(t[i]) for t in table)) for i in range(len(header))]
    right = {2, 3, 4}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    out = [f'Model: "{terminal(plan.name)}"', rule, line(header), "=" * len(rule)]
    out += [line(t) for t in table]
    out.append("=" * len(rule))
    out += [f"{k}: {v}" for k, v in summary_totals(plan)]
    for w in plan.warnings:
        out.append(terminal(f"warning: {w.path}: {w.message}"))
    return "\n".join(out) + "\n"

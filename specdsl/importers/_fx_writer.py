"""The state of a torch.fx graph's conversion to operators (:class:`~._ops.Op`), and the ways to write one: the
constants, value names and source locations that the module and function mappings (``_fx_modules``,
``_fx_functions``) share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._ops import Op


class OpWriter:
    """Operators, constants and shapes written so far for one traced module."""

    def __init__(self, gm: Any, source: str):
        self.gm = gm
        self.source = source
        self.modules = dict(gm.named_modules())
        self.ops: list[Op] = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.n = 0

    def const(self, value: Any) -> str:
        import torch

        self.n += 1
        name = f"<const {self.n}>"
        array = (
            value.detach().cpu().numpy()
            if isinstance(value, torch.Tensor)
            else np.asarray(value, dtype=np.float32)
        )
        self.constants[name] = array
        return name

    def ref(self, arg: Any) -> str:
        """The value name of an argument: a node's name, or a new constant."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return arg.name
        return self.const(arg)

    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}<{self.n}>"

    def add(
        self, type_: str, inputs: list[str], outputs: list[str], where: str, name: str, **attrs: Any
    ) -> None:
        self.ops.append(Op(type_, inputs, outputs, attrs, where, name))

    def _where(self, node: Any) -> str:
        if node.op == "call_module":
            return f"module `{node.target}` ({type(self.modules[node.target]).__name__})"
        stack = node.meta.get("nn_module_stack") or {}
        inside = f" in `{next(reversed(stack))}`" if stack else ""
        what = (
            node.target
            if isinstance(node.target, str)
            else getattr(node.target, "__name__", str(node.target))
        )
        kind = "method" if node.op == "call_method" else "function"
        return f"{kind} `{what}` (`{node.name}`{inside})"

    def _pad(self, padding: list[int], value: float, x: str, out: str, where: str, name: str) -> None:
        """torch's pad amounts (last axis first: left, right, top, bottom) as per-axis (before, after)."""
        rank = len(padding) // 2
        per_axis = [(padding[2 * i], padding[2 * i + 1]) for i in range(rank)][::-1]
        self.add("Pad", [x], [out], where, name, pads=[(0, 0), *per_axis], value=value)


def as_tuple(value: Any, rank: int) -> tuple[int, ...]:
    """An int or a sequence of ints (a kernel size, a stride) as a tuple of ``rank`` ints."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank

"""torch modules -> operators (:mod:`._ops`), by tracing them with torch.fx.

``torch.fx.symbolic_trace`` records what the module's ``forward`` does; modules of ``torch.nn`` (and those of
specdsl's torch backend) are kept whole and mapped by their type, everything else is traced through down to the
functions it calls (``F.conv2d``, ``torch.cat``, ``x.view``, ``+``). Shapes come from running the traced module
once on zeros of the input shape (``ShapeProp``). The module is traced in inference mode (its mode is put back
after), so batch norms use their running statistics and dropout is a layer of its own.

A module's input shape is given in torch's layout without the batch axis (``(3, 224, 224)``); specdsl's own torch
models know theirs.

The modules: this one (tracing, shapes, counts and the walk over the traced graph); ``_fx_modules`` (modules as
operators); ``_fx_functions`` (functions, methods and Python operators as operators); ``_fx_writer`` (the state
they share and how they write an operator).
"""

from __future__ import annotations

from typing import Any

from .._text import shown
from ..errors import SourceError
from ._fx_functions import FunctionOps
from ._fx_modules import ModuleOps
from ._graph import Graph
from ._ops import OpGraph
from ._ops_lower import lower

BATCH = 2


def from_torch(module: Any, source: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """The spec layers of a torch module that torch.fx can trace."""
    import torch

    plan = getattr(module, "plan", None)
    if input_shape is None and plan is not None and hasattr(plan, "input_shape"):
        from ..backends import get_backend

        torch_backend: Any = get_backend("torch")
        input_shape = torch_backend.torch_shape(plan.input_shape)
    if input_shape is None:
        raise SourceError(
            f"importing the torch module `{type(module).__name__}` needs its input shape.",
            path=shown(source, 200),
            hint="Give it in torch's layout without the batch axis: --input-shape 3,224,224.",
        )
    was_training = module.training
    module.eval()
    try:
        graph = _trace(module, source)
        gm = torch.fx.GraphModule(module, graph)
        _shapes(gm, input_shape, source)
        ops = _Converter(gm, source).run()
    finally:
        module.train(was_training)
    ops.input_shape = tuple(input_shape)
    ops.name = str(getattr(plan, "name", None) or type(module).__name__)
    g = lower(ops)
    g.counts = _counts(module)
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        g.notes.append(
            f"{len(frozen)} parameter(s) are frozen in the source; the spec counts them as trainable."
        )
    return g


def _counts(module: Any) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) as Keras counts: batch norms' running statistics are non-trainable."""
    from torch import nn

    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    )
    return trainable + frozen + stats, trainable + frozen, stats


def _trace(module: Any, source: str) -> Any:
    import torch.fx

    from ..backends import get_backend

    torch_backend: Any = get_backend("torch")
    M = torch_backend.modules  # the torch backend's own modules

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return type(m).__module__ == M.__name__ or super().is_leaf_module(m, qualname)

    try:
        return Tracer().trace(module)
    except Exception as e:
        raise SourceError(
            f"torch.fx cannot trace `{type(module).__name__}`: {type(e).__name__}: {_first_line(e)}",
            path=shown(source, 200),
            hint="torch.fx traces a forward without control flow on tensor values or shapes; see "
            "https://pytorch.org/docs/stable/fx.html#limitations-of-symbolic-tracing.",
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return shown(text.splitlines()[0] if text else type(e).__name__, 300)


def _shapes(gm: Any, input_shape: tuple[int, ...], source: str) -> None:
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((BATCH, *input_shape)))
    except Exception as e:
        raise SourceError(
            f"running the module on an input of {(BATCH, *input_shape)} failed: {type(e).__name__}: {_first_line(e)}",
            path=shown(source, 200),
            hint="Is --input-shape right (torch's layout, without the batch axis)?",
        ) from None


class _Converter(ModuleOps, FunctionOps):
    """A traced module as an :class:`~._ops.OpGraph`: every node of its graph, in order, as operators."""

    def run(self) -> OpGraph:
        import torch

        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise SourceError(
                f"the module's forward takes {len(placeholders)} inputs; a spec has one.",
                path=shown(self.source, 200),
            )
        outputs: list[str] = []
        for node in self.gm.graph.nodes:
            meta = node.meta.get("tensor_meta")
            if meta is not None and hasattr(meta, "shape"):
                self.shapes[node.name] = tuple(int(d) for d in meta.shape[1:])
            if node.op == "placeholder":
                continue
            if node.op == "output":
                out = node.args[0]
                outputs = [a.name for a in (out if isinstance(out, (tuple, list)) else [out])]
                continue
            if node.op == "get_attr":
                value = self.gm
                for part in node.target.split("."):
                    value = getattr(value, part)
                if isinstance(value, torch.Tensor):
                    self.constants[node.name] = value.detach().cpu().numpy()
                continue
            if meta is None or not hasattr(meta, "shape"):
                continue  # sizes, tuples: shape arithmetic the ops take from the shapes instead
            try:
                if node.op == "call_module":
                    self.module(node)
                else:
                    self.function(node)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
                # arguments of a form the mapping does not read (a reduction without axes, ...)
                self.add(
                    "?",
                    [],
                    [node.name],
                    self._where(node) + f" with these arguments ({type(e).__name__})",
                    node.name,
                )
        return OpGraph(
            name="model",
            source=self.source,
            input=placeholders[0].name,
            input_shape=(),
            ops=self.ops,
            outputs=outputs,
            constants=self.constants,
            shapes=self.shapes,
        )

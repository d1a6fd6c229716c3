"""The in-memory torch model of a plan: one submodule per layer, a forward that follows the plan's graph."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..._text import identifier
from ...errors import BackendError
from ...plan import Plan
from ...spec import LAYERS
from . import _modules as M
from ._builders import build_node
from ._built import Built

INITS = ("keras", "torch")


def torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A plan shape (channels-last, no batch axis) in torch's layout: (H, W, C) -> (C, H, W); (L, C) -> (C, L)."""
    return (shape[-1], *shape[:-1]) if len(shape) > 1 else tuple(shape)


def attribute_names(plan: Plan) -> dict[str, str]:
    """Node name -> a Python identifier for it, usable as a module attribute and as a local variable.

    Spec names are already identifiers; a keyword, a name nn.Module (or generated code) uses itself, or one Python
    would mangle in a class body (``__x``) gets trailing underscores.
    """
    reserved = set(dir(SpecModel)) | {
        "plan",
        "names",
        "_init",
        "_free",
        "_frozen",
        "self",
        "torch",
        "nn",
        "F",
        "math",
        "model",
    }
    # names that can stay as they are keep them; the others get underscores until they are free
    kept = {n.name for n in plan.nodes if identifier(n.name) == n.name and n.name not in reserved}
    taken = reserved | kept
    names: dict[str, str] = {}
    for node in plan.nodes:
        name = node.name if node.name in kept else identifier(node.name, taken)
        taken.add(name)
        names[node.name] = name
    return names


def is_merge(kind: str) -> bool:
    """Whether a kind reads several inputs (its module then takes a list of tensors)."""
    return LAYERS[kind].max_inputs != 1


class SpecModel(nn.Module):
    """The torch model of a plan. Build it with :func:`specdsl.build` (or ``specdsl.backends._torch.build``).

    Each layer is a submodule named after its node (``model.conv2d``), so ``state_dict`` keys read
    ``conv2d.weight``. ``forward`` takes torch's layout: (N, C, H, W) images, (N, C, L) sequences, (N, F) vectors,
    and returns a tensor, or a tuple of tensors for a model with several outputs. ``model.plan`` is the plan.

        >>> model = specdsl.build("examples/lenet5.yaml")
        >>> model(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(self, plan: Plan, built: dict[str, Built]):
        super().__init__()
        self.plan = plan
        self.names = attribute_names(plan)
        # what reset_parameters needs (plain data: the model pickles)
        self._init = {name: (b.kernels, b.zeros) for name, b in built.items()}
        for node in plan.layers:
            self.add_module(self.names[node.name], built[node.name].module.make())
        # after each step, the values no later step reads (freed early, as a hand-written forward would)
        last_use = {name: i for i, node in enumerate(plan.layers) for name in node.inputs}
        for out in plan.outputs:
            last_use[out] = len(plan.layers)
        self._free = [
            tuple(name for name in dict.fromkeys(node.inputs) if last_use[name] == i)
            for i, node in enumerate(plan.layers)
        ]
        self._frozen: set[str] = set()
        self.freeze(
            [node.name for node in plan.layers if node.layer is not None and not node.layer.trainable]
        )

    def freeze(self, names: list[str], frozen: bool = True) -> None:
        """Freeze the layers named (``frozen=False``: unfreeze them): their parameters' ``requires_grad``, and a
        frozen layer's batch norms stay in eval mode (normalizing by their running statistics, which stay as
        they are), as Keras runs a frozen BatchNormalization, whatever ``train()`` says."""
        # a set of node names, plain data: the model pickles
        self._frozen = self._frozen | set(names) if frozen else self._frozen - set(names)
        for name in names:
            getattr(self, self.names[name]).requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> SpecModel:
        super().train(mode)
        for name in getattr(self, "_frozen", ()):  # (nn.Module's __init__ calls train() before it is set)
            for module in getattr(self, self.names[name]).modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values = {self.plan.nodes[0].name: x}
        for node, free in zip(self.plan.layers, self._free):
            values[node.name] = self._step(node, values)
            for name in free:
                del values[name]
        outputs = tuple(values[name] for name in self.plan.outputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def node_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every node's output (the input included), by node name, in torch's layout."""
        values = {self.plan.nodes[0].name: x}
        for node in self.plan.layers:
            values[node.name] = self._step(node, values)
        return values

    def _step(self, node, values: dict[str, torch.Tensor]) -> torch.Tensor:
        module = getattr(self, self.names[node.name])
        if is_merge(node.kind):
            return module([values[name] for name in node.inputs])
        return module(values[node.inputs[0]])

    def reset_parameters(self, init: str = "keras") -> None:
        """Initialize as Keras does (kernels by their initializer with Keras' fans, biases at zero), or, with
        ``init="torch"``, as torch's modules do."""
        if init not in INITS:
            raise BackendError(f"init must be one of {', '.join(INITS)}, but got init={init!r}.")
        if init == "torch":
            for module in self.modules():
                reset = getattr(module, "reset_parameters", None)
                if module is not self and reset is not None:
                    reset()
            return
        for node in self.plan.layers:
            kernels, zeros = self._init[node.name]
            for path, initializer, fan_in, fan_out in kernels:
                M.keras_init_(
                    self.get_parameter(f"{self.names[node.name]}.{path}"), initializer, fan_in, fan_out
                )
            for path in zeros:
                M.keras_init_(self.get_parameter(f"{self.names[node.name]}.{path}"), "zeros", 0, 0)


def build(plan: Plan, **options: Any) -> SpecModel:
    """The torch model of a plan, as a :class:`SpecModel` (an ``nn.Module``) in training mode.

    Options:
        init: ``"keras"`` (default: kernels by their Keras initializer, glorot_uniform unless the spec names
            another, with the fans Keras counts; biases at zero) or ``"torch"`` (torch's own defaults).
        dtype: floating dtype of parameters and buffers, as a torch dtype or its name (``"float64"``); default
            torch's default dtype.
    """
    init = options.pop("init", "keras")
    dtype = options.pop("dtype", None)
    if options:
        raise BackendError(
            f"unknown option(s) {', '.join(sorted(options))} for the torch backend; options: init, dtype."
        )
    if init not in INITS:
        raise BackendError(f"init must be one of {', '.join(INITS)}, but got init={init!r}.")
    if isinstance(dtype, str):
        name = dtype
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise BackendError(
                f"dtype must name a floating torch dtype (float32, float64, ...), but got {name!r}."
            )
    built = {node.name: build_node(node) for node in plan.layers}
    model = SpecModel(plan, built)
    if init == "keras":
        model.reset_parameters("keras")
    return model if dtype is None else model.to(dtype)

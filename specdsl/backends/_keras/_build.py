"""Plan -> functional keras.Model: one Keras layer per plan node (and a ZeroPadding before padded convs)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import keras

from ..._plugins import load_plugins
from ...errors import BackendError
from ...plan import Plan, PlanNode, fmt
from ._builders import BUILDERS, LayerCall, refuse
from ._custom import CUSTOM_LAYERS


@dataclass(frozen=True)
class Step:
    """One Keras layer of the model: its name, what it is, the layers it reads, the plan node it serves."""

    name: str
    call: LayerCall
    inputs: tuple[str, ...]
    node: PlanNode


def steps(plan: Plan) -> list[Step]:
    """The Keras layers of a plan in graph order; a node's last layer carries the node's name."""
    taken = {node.name for node in plan.nodes}
    out: list[Step] = []
    for node in plan.layers:
        builder = BUILDERS.get(node.kind)
        if builder is None:
            load_plugins("specdsl.keras")
            builder = BUILDERS.get(node.kind)
        if builder is None:
            raise refuse(
                node,
                f"the Keras backend cannot build `{node.kind}`; it builds: {', '.join(sorted(BUILDERS))}.",
            )
        calls = builder(node)
        inputs = node.inputs
        for i, call in enumerate(calls):
            if i == len(calls) - 1:
                name = node.name
            else:
                name = base = f"{node.name}_{call.suffix}"
                n = 1
                while name in taken:
                    name, n = f"{base}_{n}", n + 1
                taken.add(name)
            out.append(Step(name, call, inputs, node))
            inputs = (name,)
    return out


def model_name(plan: Plan) -> str:
    """The plan's name as Keras accepts it (no '/' and friends)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", plan.name) or "model"


def check_data_format() -> None:
    if keras.config.image_data_format() != "channels_last":
        raise BackendError(
            f"specdsl models are channels-last (NHWC), but Keras is configured for "
            f"image_data_format={keras.config.image_data_format()!r}.",
            hint="Call keras.config.set_image_data_format('channels_last') or set it in ~/.keras/keras.json.",
        )


def apply(step: Step, inputs: list, dtype: str | None = None):
    """Create the step's Keras layer and call it on its inputs; what Keras refuses is a BackendError."""
    call = step.call
    if isinstance(call.cls, str):
        cls = CUSTOM_LAYERS.get(call.cls) or getattr(keras.layers, call.cls)
    else:  # a plug-in's own layer class
        cls = call.cls
    extra: dict[str, Any] = {"dtype": dtype} if dtype else {}
    if step.node.layer is not None and not step.node.layer.trainable:
        extra["trainable"] = (
            False  # frozen: its weights non-trainable, a BatchNormalization in inference mode
        )
    try:
        layer = cls(*call.args, **call.kwargs, name=step.name, **extra)
        return layer(inputs if len(inputs) > 1 else inputs[0])
    except ValueError as e:
        raise refuse(step.node, f"Keras' {call.cls} refuses this layer: {e}") from e


def build(plan: Plan, **options: Any) -> keras.Model:
    """Build the functional Keras model of a plan: NHWC input, one layer per plan node named as the node.

    Args:
        plan: a checked plan (``specdsl.check(...)``).
        options: ``dtype``, the layers' dtype, e.g. ``"float64"`` (default: Keras' floatx, float32);
            Keras 3's torch backend still multiplies float64 matrices (Dense) in float32.

    Returns:
        A ``keras.Model`` whose every layer's output shape, and whose total / trainable / non-trainable
        parameter counts, equal the plan's (checked before it is returned). A conv given explicit padding
        amounts (other than 'same' ones) is a ``<node>_pad`` ZeroPadding2D, then the valid conv ``<node>``.

    Raises:
        BackendError: the plan uses an option this Keras cannot express (e.g. strides > 1 with dilation > 1),
            or an unknown option was given.

        >>> model = build(specdsl.check("examples/lenet5.yaml"))
        >>> model.summary()
    """
    dtype = options.pop("dtype", None)
    if options:
        raise BackendError(
            f"unknown option(s) {', '.join(sorted(options))} for the keras backend; options: dtype."
        )
    check_data_format()
    first = plan.nodes[0]
    tensors = {first.name: keras.Input(shape=first.shape, name=first.name, dtype=dtype)}
    for step in steps(plan):
        tensors[step.name] = apply(step, [tensors[name] for name in step.inputs], dtype)
    outputs = [tensors[name] for name in plan.outputs]
    model = keras.Model(
        tensors[first.name], outputs[0] if len(outputs) == 1 else outputs, name=model_name(plan)
    )
    _verify(plan, model)
    return model


def _verify(plan: Plan, model: keras.Model) -> None:
    """The model must be the plan: each node's output shape and parameter counts. A mismatch is a bug here."""
    layers = {layer.name: layer for layer in model.layers}  # get_layer() walks the list on every call
    for node in plan.layers:
        layer = layers[node.name]
        shape = tuple(layer.output.shape[1:])
        trainable = sum(_size(w) for w in layer.trainable_weights)
        non_trainable = sum(_size(w) for w in layer.non_trainable_weights)
        if shape != node.shape or (trainable, non_trainable) != (node.trainable, node.non_trainable):
            raise BackendError(
                f"the Keras layer `{node.name}` gives {fmt(shape)} with {trainable:,} trainable and "
                f"{non_trainable:,} non-trainable parameters, but the plan says {fmt(node.shape)} with "
                f"{node.trainable:,} and {node.non_trainable:,}. "
                "This is a bug in specdsl's Keras backend; please report it.",
                loc=node.loc,
                path=f"{node.path} ({node.kind})",
            )


def _size(variable) -> int:
    return math.prod(int(d) for d in variable.shape)

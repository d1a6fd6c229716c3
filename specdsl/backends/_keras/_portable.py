"""A plan's Keras model rewritten with Keras' built-in layers only, so that the ``.keras`` file written from it
loads with plain ``keras.saving.load_model`` where specdsl is not installed.

Each of specdsl's own layers becomes built-in layers computing exactly the same numbers, with the same weights
(so the same parameter counts):

- ``Bias`` (``bias: channel`` or ``bias: position``) -> ``<node>_ones`` (``Rescaling(0, 1)``: a tensor of
  ones shaped as the input), ``<node>`` (``EinsumDense`` multiplying those ones by a kernel that is the bias,
  shape (C,) or the input's shape without the batch axis) and ``<node>_add`` (``Add``: the input plus the bias).
- ``PaddedAveragePooling`` (average pooling over uneven 'same' padding, the padding left out of every mean) ->
  zero padding and a valid average pool of the input (``<node>_pad``, ``<node>_sum``) and of ones
  (``<node>_ones``, ``<node>_ones_pad``, ``<node>_share``), divided (``keras.ops.divide``, which Keras saves as an
  operation of its own).

The weights stay under the node's name (the ``EinsumDense`` of a bias is named as its node), so specdsl's
readers of ``.keras`` files match them to the plan as before. Every other layer is copied from its config with
its weights. A plug-in's own layer class is copied as it is (loading the file then needs that plug-in).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ...errors import BackendError
from ...plan import Plan
from ._build import steps
from ._custom import CUSTOM_LAYERS, Bias, PaddedAveragePooling

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def uses_custom_layers(model: keras.Model) -> bool:
    """Whether ``model`` holds one of specdsl's own Keras layers (which a ``.keras`` file needs specdsl for)."""
    custom = tuple(CUSTOM_LAYERS.values())
    return any(isinstance(layer, custom) for layer in model.layers)


def portable(plan: Plan, model: keras.Model, *, verify: bool = True) -> keras.Model:
    """``model`` (the Keras backend's model of ``plan``, e.g. trained) with built-in Keras layers in place of
    specdsl's own, holding the same weights. With ``verify``, both models are run on a random batch and must give
    the same outputs (a BackendError otherwise: a bug here)."""
    layers = {layer.name: layer for layer in model.layers}
    first = plan.nodes[0]
    taken = {first.name, *layers}

    def fresh(base: str) -> str:
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        return name

    x = keras.Input(shape=first.shape, name=first.name, dtype=model.inputs[0].dtype)
    tensors = {first.name: x}
    for step in steps(plan):
        old = layers[step.name]
        inputs = [tensors[name] for name in step.inputs]
        if isinstance(old, Bias):
            tensors[step.name] = _bias(old, inputs[0], fresh)
        elif isinstance(old, PaddedAveragePooling):
            tensors[step.name] = _average_pool(old, inputs[0], fresh)
        else:
            new = type(old).from_config(old.get_config())
            tensors[step.name] = new(inputs if len(inputs) > 1 else inputs[0])
            new.set_weights(old.get_weights())
    outputs = [tensors[name] for name in plan.outputs]
    rewritten = keras.Model(x, outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    if verify:
        _check_same(plan, model, rewritten)
    return rewritten


def _options(old: keras.layers.Layer) -> dict[str, Any]:
    return {"dtype": old.dtype_policy}


def _bias(old: Bias, x: Any, fresh: Callable[[str], str]) -> Any:
    letters = LETTERS[: len(x.shape)]  # the batch axis first
    kernel = letters[1:] if old.per == "position" else letters[-1]
    ones = keras.layers.Rescaling(0.0, 1.0, name=fresh(f"{old.name}_ones"), **_options(old))(x)
    layer = keras.layers.EinsumDense(
        f"{letters},{kernel}->{letters}",
        output_shape=tuple(int(d) for d in x.shape[1:]),
        name=old.name,
        trainable=old.trainable,
        **_options(old),
    )
    bias = layer(ones)
    layer.set_weights(old.get_weights())
    return keras.layers.Add(name=fresh(f"{old.name}_add"), **_options(old))([x, bias])


def _average_pool(old: PaddedAveragePooling, x: Any, fresh: Callable[[str], str]) -> Any:
    two_d = len(old.pool_size) == 2
    pad_cls = keras.layers.ZeroPadding2D if two_d else keras.layers.ZeroPadding1D
    pool_cls = keras.layers.AveragePooling2D if two_d else keras.layers.AveragePooling1D
    padding = old.padding if two_d else old.padding[0]

    def pooled(t: Any, pad_name: str, pool_name: str) -> Any:
        padded = pad_cls(padding, name=fresh(pad_name), **_options(old))(t)
        pool = pool_cls(old.pool_size, old.strides, "valid", name=fresh(pool_name), **_options(old))
        return pool(padded)

    total = pooled(x, f"{old.name}_pad", f"{old.name}_sum")
    ones = keras.layers.Rescaling(0.0, 1.0, name=fresh(f"{old.name}_ones"), **_options(old))(x)
    share = pooled(ones, f"{old.name}_ones_pad", f"{old.name}_share")
    return keras.ops.divide(total, share)


def _check_same(plan: Plan, model: keras.Model, rewritten: keras.Model) -> None:
    probe = np.random.default_rng(0).standard_normal((2, *plan.input_shape)).astype(model.inputs[0].dtype)
    expected = model(probe, training=False)
    got = rewritten(probe, training=False)
    pairs = zip(_as_list(expected), _as_list(got), strict=True)
    for i, (a, b) in enumerate(pairs):
        a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise BackendError(
                f"the Keras model of {plan.name} written with built-in layers only does not compute what the "
                f"model does (output {i}: {b.shape} against {a.shape}). "
                "This is a bug in specdsl's Keras backend; please report it."
            )


def _as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]

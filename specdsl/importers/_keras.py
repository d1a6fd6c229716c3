"""Keras models -> spec layers: one spec layer per Keras layer, mapped by the language's own registry.

Every layer kind registers the Keras class it builds (``keras_class`` in ``specdsl.spec._layers``); a Keras layer
of that class becomes that kind, its config keys mapped onto the kind's fields by their names and aliases
(``kernel_size`` -> ``kernel``, ``dilation_rate`` -> ``dilation``). A config key the kind has no field for must
hold Keras' default (else the layer is reported), except those that change neither the counts nor the function
(initializers other than the kernel's, regularizers, constraints, dtype, seed). A few Keras classes have no kind
of their own and map onto one (ReLU, LeakyReLU, ELU, Softmax -> activation; Identity -> nothing). Nested models
are inlined, their layers named ``outer_inner``. The built-in layers that the Keras backend's portable ``.keras``
files write a bias or an uneven 'same' average pooling as fold back into that one layer (``_keras_portable``).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .._compat import _keras as K
from .._text import shown
from ..errors import SourceError
from ..plan import same_padding
from ..spec import ACTIVATIONS, INITIALIZERS, LAYERS
from ._graph import Graph, Layer, Problems
from ._keras_portable import DIVIDE, EINSUM, PAD1D, fold_portable


def keras_kinds() -> dict[str, str]:
    """Keras class name -> the registered kind that builds it (read at each import: a plug-in's kind maps too)."""
    return {info.keras_class: kind for kind, info in LAYERS.items()}


NEUTRAL = {"name", "trainable", "dtype", "seed", "synchronized", "autocast", "build_config"}
NEUTRAL_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


class Unsupported(Exception):
    """A layer, or one of its options, that the language cannot express (``why`` says which)."""

    def __init__(self, why: str = ""):
        super().__init__(why)
        self.why = why


Converter = Callable[[Any, dict, tuple[int, ...]], list[tuple[str, dict[str, Any]]]]
SPECIAL: dict[str, Converter] = {}


def _special(*classes: str):
    def deco(fn: Converter) -> Converter:
        for cls in classes:
            SPECIAL[cls] = fn
        return fn

    return deco


# ---------------------------------------------------------------------------------------------------------------
# The model's graph


def from_keras(model: Any, source: str) -> Graph:
    """The spec layers of a Keras model (functional, or a built Sequential; nested models inlined)."""
    graph_model = K.functional(model)
    if graph_model is None:
        raise SourceError(
            f"the Keras model `{shown(getattr(model, 'name', '?'))}` ({type(model).__name__}) has no graph to "
            "import: it is a subclassed model, or a Sequential that was never built.",
            path=shown(source, 200),
            hint="Build it with an input (keras.Input(shape=...)) as a functional or Sequential model.",
        )
    problems = Problems(source)
    inputs = list(graph_model.inputs)
    if len(inputs) != 1:
        raise SourceError(
            f"the Keras model has {len(inputs)} inputs; a spec has one.", path=shown(source, 200)
        )
    shape = tuple(inputs[0].shape[1:])
    if not shape or len(shape) > 3 or any(d is None for d in shape):
        raise SourceError(
            f"the Keras model's input is {_shape_text(inputs[0].shape)}; a spec's input has 1 to 3 axes of known size "
            "after the batch axis.",
            path=shown(source, 200),
            hint="Build the model with a fixed input shape, e.g. keras.Input(shape=(224, 224, 3)).",
        )
    input_name = _input_name(inputs[0])
    walker = _Walker(problems)
    outputs = walker.walk(graph_model, [input_name], "")
    layers = fold_portable(walker.layers, outputs, walker.shapes, problems)
    layers = _fold_paddings(layers, outputs, problems)
    problems.raise_if_any()
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = sum(math.prod(w.shape) for w in model.weights)
    notes = []
    if walker.frozen:
        notes.append(
            f"{len(walker.frozen)} layer(s) are frozen in the source ({', '.join(walker.frozen[:5])}"
            f"{', ...' if len(walker.frozen) > 5 else ''}); the spec counts their weights as trainable."
        )
    return Graph(
        name=str(getattr(model, "name", "model")),
        source=source,
        input_name=input_name,
        input_shape=tuple(int(d) for d in shape),
        layers=layers,
        outputs=outputs,
        output_shapes=[tuple(int(d) for d in t.shape[1:]) for t in graph_model.outputs],
        counts=(int(total), int(trainable), int(total - trainable)),
        notes=notes,
    )


def _input_name(tensor: Any) -> str:
    return K.producer_name(tensor) or "input"


def _shape_text(shape: Any) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


class _Walker:
    def __init__(self, problems: Problems):
        self.problems = problems
        self.layers: list[Layer] = []
        self.frozen: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}  # each layer's input shape

    def walk(self, model: Any, feeds: list[str], prefix: str) -> list[str]:
        """Spec layers for every call in ``model``'s graph that its outputs need; returns their names.

        Calls are taken depth first from the outputs, each after the calls it reads, in the order it reads them:
        a branch's layers stay together (Keras' own order interleaves parallel branches by depth).
        """
        import keras

        refs: dict[int, str] = {id(t): name for t, name in zip(model.inputs, feeds)}
        for call in _calls_in_order(model, refs):
            op, node = call
            ins = K.node_inputs(node)
            in_names = [refs[id(t)] for t in ins]
            if isinstance(op, keras.Model):
                inner = K.functional(op)
                if inner is None:
                    self.problems.add(
                        f"model `{prefix}{op.name}` ({type(op).__name__})", "a subclassed model"
                    )
                    names = [f"{prefix}{op.name}"] * len(K.node_outputs(node))
                else:
                    names = self.walk(inner, in_names, f"{prefix}{op.name}/")
            else:
                names = self.layer(op, node, in_names, prefix)
            for t, name in zip(K.node_outputs(node), names):
                refs[id(t)] = name
        return [refs[id(t)] for t in model.outputs]

    def layer(self, op: Any, node: Any, in_names: list[str], prefix: str) -> list[str]:
        import keras

        name = f"{prefix}{op.name}"
        cls = type(op).__name__
        where = (
            f"layer `{name}` ({cls})" if isinstance(op, keras.layers.Layer) else f"operation `{name}` ({cls})"
        )
        ins = K.node_inputs(node)
        if len(K.calls(op)) > 1 and op.weights:
            self.problems.add(where, f"called {len(K.calls(op))} times: a spec layer cannot share weights")
            return [name]
        if cls == "Identity":
            return [in_names[0]]
        if cls == "Divide" and len(ins) == 2:
            # part of an average pooling in a portable file, or reported (see _keras_portable)
            self.layers.append(Layer(DIVIDE, {}, name, in_names, [], where))
            return [name]
        if not isinstance(op, keras.layers.Layer):
            self.problems.add(where, "a keras.ops call", group=cls)
            return [name]
        in_shape = tuple(ins[0].shape[1:])
        try:
            steps = _convert(op, cls, in_shape)
        except Unsupported as e:
            self.problems.add(where, e.why, group=cls)
            return [name]
        if op.weights and not op.trainable:
            self.frozen.append(f"`{name}`")
        weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in op.weights]
        inputs = in_names
        for i, (kind, args) in enumerate(steps):
            last = i == len(steps) - 1
            step_name = name if last else f"{name}_{kind}"
            self.layers.append(Layer(kind, args, step_name, inputs, weights if last else [], where))
            self.shapes.setdefault(step_name, in_shape)
            inputs = [step_name]
        return [name]


def _calls_in_order(model: Any, known: dict[int, str]) -> list[tuple[Any, Any]]:
    """(operation, node) of every call the model's outputs depend on, each after the calls it reads."""
    made_by: dict[int, tuple[Any, Any]] = {}
    for op in model.operations:
        for node in K.calls(op):
            for t in K.node_outputs(node):
                made_by[id(t)] = (op, node)
    order: list[tuple[Any, Any]] = []
    done: set[int] = set()
    for out in model.outputs:
        stack: list[tuple[Any, bool]] = [(out, False)]
        while stack:
            tensor, expanded = stack.pop()
            if id(tensor) in known or id(tensor) not in made_by:
                continue
            op, node = made_by[id(tensor)]
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append((op, node))
                continue
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(K.node_inputs(node)))
    return order


# ---------------------------------------------------------------------------------------------------------------
# One layer's arguments


def _convert(layer: Any, cls: str, in_shape: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
    config = layer.get_config()
    fmt = config.get("data_format")
    if fmt not in (None, "channels_last"):
        raise Unsupported(f"data_format={fmt!r}: specs are channels-last")
    if cls in SPECIAL:
        return SPECIAL[cls](layer, config, in_shape)
    kind = keras_kinds().get(cls)
    if kind is None:
        raise Unsupported()
    args = _args(kind, type(layer), config, in_shape)
    if kind in POOLS and args.get("strides") == args.get("pool", [2] * (len(in_shape) - 1)):
        del args["strides"]  # a pool's strides default to its size
    return [(kind, args)]


POOLS = ("maxpool2d", "avgpool2d", "maxpool1d", "avgpool1d")


def _aliases(info: Any) -> list[str]:
    choices = getattr(info.validation_alias, "choices", None) or []
    return [c for c in choices if isinstance(c, str)]


def _args(
    kind: str, cls: type, config: dict, in_shape: tuple[int, ...], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The kind's fields from a Keras config, by field name and alias; every other key must hold Keras' default."""
    model = LAYERS[kind].model
    args: dict[str, Any] = {}
    used = set(skip) | {"data_format"}
    # a normalization acts on the last (channel) axis only: batchnorm's axis field takes only that one
    channel_axis = "axis" in config and ("axis" not in model.model_fields or kind == "batchnorm")
    if channel_axis:
        axis = config["axis"]
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if axis not in (-1, len(in_shape)):
            raise Unsupported(f"axis={axis}: normalization is over the last (channel) axis")
        used.add("axis")
    for field, info in model.model_fields.items():
        if field in ("kind", "name", "inputs", "trainable") or (field == "axis" and channel_axis):
            continue
        for key in (field, *_aliases(info)):
            if key in config:
                used.add(key)
                value = _value(kind, field, config[key], config, in_shape)
                if value is not None:
                    args[field] = value
                break
    try:
        defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    for key, value in config.items():
        if key in used or key in NEUTRAL or key.endswith(NEUTRAL_SUFFIXES) or key not in defaults:
            continue
        default = defaults[key]
        if default is inspect.Parameter.empty or not _same(value, default):
            raise Unsupported(f"{key}={shown(repr(value), 40)}")
    return args


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def _value(kind: str, field: str, value: Any, config: dict, in_shape: tuple[int, ...]) -> Any:
    """A config value as the kind's field takes it, or None to leave the field at its default."""
    if field in ("activation", "function"):
        return _activation(value, keep_linear=field == "function")
    if field == "kernel_initializer":
        return _initializer(value)
    if field == "padding" and value == "causal":
        k = config["kernel_size"]
        k = k[0] if isinstance(k, (list, tuple)) else k
        d = config.get("dilation_rate", 1)
        d = d[0] if isinstance(d, (list, tuple)) else d
        return [d * (k - 1), 0]
    if kind == "concat" and field == "axis":
        axis = value if value < 0 else value - 1  # Keras counts the batch axis
        return -1 if axis == len(in_shape) - 1 else axis
    if kind == "rescaling" and not isinstance(value, (int, float)):
        raise Unsupported(f"{field}={shown(repr(value), 40)}: only one number is supported")
    if isinstance(value, tuple):
        return list(value)
    return value


def _activation(value: Any, keep_linear: bool = False) -> str | None:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") if value.get("class_name") == "function" else None
    if not isinstance(value, str):
        raise Unsupported(f"activation={shown(repr(value), 40)}")
    if value == "linear" and not keep_linear:
        return None
    if value not in ACTIVATIONS:
        raise Unsupported(f"activation {value!r}")
    return value


def _initializer(value: Any) -> str | None:
    name = value.get("class_name") if isinstance(value, dict) else value
    if not isinstance(name, str):
        return None
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    # Keras' default (glorot_uniform, the first) is left out, as a spec leaves it out
    return snake if snake in INITIALIZERS[1:] else None


# ---------------------------------------------------------------------------------------------------------------
# Keras classes that map onto another kind, or need a check of their own


@_special("InputLayer")
def _input_layer(layer, config, in_shape):
    raise Unsupported("a second input")


@_special("ReLU")
def _relu(layer, config, in_shape):
    top, slope, threshold = (
        config.get("max_value"),
        config.get("negative_slope") or 0.0,
        config.get("threshold") or 0.0,
    )
    if threshold:
        raise Unsupported(f"threshold={threshold}")
    if top is None and not slope:
        return [("activation", {"function": "relu"})]
    if top == 6 and not slope:
        return [("activation", {"function": "relu6"})]
    if top is None:
        return [("activation", {"function": "leaky_relu", "negative_slope": float(slope)})]
    raise Unsupported(f"max_value={top}, negative_slope={slope}")


@_special("LeakyReLU")
def _leaky(layer, config, in_shape):
    return [
        ("activation", {"function": "leaky_relu", "negative_slope": float(config.get("negative_slope", 0.3))})
    ]


@_special("ELU")
def _elu(layer, config, in_shape):
    if config.get("alpha", 1.0) != 1.0:
        raise Unsupported(f"alpha={config['alpha']}")
    return [("activation", {"function": "elu"})]


@_special("Softmax")
def _softmax(layer, config, in_shape):
    axis = config.get("axis", -1)
    if axis not in (-1, len(in_shape), [-1]):
        raise Unsupported(f"axis={axis}: softmax is over the last axis")
    return [("activation", {"function": "softmax"})]


@_special("GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D")
def _global(layer, config, in_shape):
    kind = keras_kinds()[type(layer).__name__]
    steps = [(kind, _args(kind, type(layer), config, in_shape, skip=("keepdims",)))]
    if config.get("keepdims"):
        steps.append(("reshape", {"shape": [1] * (len(in_shape) - 1) + [in_shape[-1]]}))
    return steps


@_special("PaddedAveragePooling")
def _padded_average(layer, config, in_shape):
    # specdsl's Keras layer for average pooling with uneven 'same' padding
    pool, strides = list(config["pool_size"]), list(config["strides"])
    padding = [list(p) for p in config["padding"]]
    same = [list(same_padding(n, k, s)) for n, k, s in zip(in_shape[: len(pool)], pool, strides)]
    if padding != same:
        raise Unsupported(f"padding={padding}: only 'same' amounts are supported")
    if len(pool) == 1:
        return [("avgpool1d", {"pool": pool[0], "strides": strides[0], "padding": "same"})]
    return [("avgpool2d", {"pool": pool, "strides": strides, "padding": "same"})]


@_special("ZeroPadding1D")
def _pad1d(layer, config, in_shape):
    # the language pads sequences only as a conv1d's padding: this must fold into the conv after it
    pad = config["padding"]
    return [(PAD1D, {"padding": list(pad) if isinstance(pad, (list, tuple)) else [pad, pad]})]


@_special("EinsumDense")
def _einsum_dense(layer, config, in_shape):
    # a bias in a portable file (see _keras_portable), or reported
    keys = ("equation", "output_shape", "bias_axes", "activation", "lora_rank")
    return [(EINSUM, {key: config.get(key) for key in keys})]


# PAD1D (from _keras_portable) is not a kind: folded into the conv1d it feeds, or reported


# ---------------------------------------------------------------------------------------------------------------
# The torch backend's explicit padding, written back as the conv's own


PADDED = {"zero_padding2d": ("conv2d", "depthwise_conv2d", "separable_conv2d"), PAD1D: ("conv1d",)}


def _fold_paddings(layers: list[Layer], outputs: list[str], problems: Problems) -> list[Layer]:
    """``<conv>_pad`` (ZeroPadding2D or 1D) read only by the valid conv ``<conv>``: specdsl's Keras backend writes a
    conv with explicit padding amounts that way; it reads back as one conv with ``padding: [[t, b], [l, r]]``."""
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            readers.setdefault(name, []).append(layer)
    drop: set[str] = set()
    for layer in layers:
        if layer.kind not in PADDED or not layer.name.endswith("_pad") or layer.name in outputs:
            continue
        users = readers.get(layer.name, [])
        if len(users) != 1:
            continue
        conv = users[0]
        if (
            conv.kind in PADDED[layer.kind]
            and conv.name == layer.name[: -len("_pad")]
            and conv.args.get("padding", "valid") == "valid"
        ):
            conv.args["padding"] = layer.args["padding"]
            conv.inputs = list(layer.inputs)
            drop.add(layer.name)
    for layer in layers:
        if layer.kind == PAD1D and layer.name not in drop:
            problems.add(layer.origin, "sequences are padded only as a conv1d's own padding")
    return [layer for layer in layers if layer.name not in drop]

"""Keras' spellings of layers and their arguments, as data: what a spec transcribed from Keras code may write.

- Layer kinds: every kind is also written as its Keras class (``Conv2D``, ``MaxPooling2D``) and that name in
  lower case (``maxpooling2d``), by :func:`keras_names` at registration; Keras' activation layers (``ReLU``,
  ``LeakyReLU``, ``ELU``, ``Softmax``, and ``relu``, ``leaky_relu``, ...) are the ``activation`` kind with their
  function (:data:`ACTIVATION_LAYERS`).
- Arguments: :data:`KERAS_ARGUMENTS` says, for each kind, how the spec takes each constructor argument of its
  Keras class that is not a field of the kind's model under the same name or a pydantic alias of one
  (``kernel_size``, ``dilation_rate``, ``pool_size``, ``target_shape``, ``activation``): Keras' defaults
  (``data_format: channels_last``, ``bias_initializer: zeros``, ...) are accepted and dropped, any other value is
  a located error saying why. Keras' ReLU arguments (``max_value``, ``negative_slope``, ``threshold``) become the
  function they make (``relu6``, ``leaky_relu``); :data:`ACTIVATION_ARGUMENTS` says at which values the
  activation layers' arguments are taken. The JSON Schema (``_schema``) is made from these tables too.
- Sections: :data:`MISPLACED`, keys written in a section that belong in one of its parts (``train.learning_rate``
  belongs under ``train.optimizer``), refused with the line to write.

Aliases are accepted silently: a Keras spelling means the same model, and a note on every transcribed argument
would be noise that ``--strict`` would turn into failures. ``tests/spec/test_aliases.py`` checks every entry
against Keras' own classes and walks the table.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._text import shown
from ..errors import Loc, SpecError
from ._located import loc_of


class Only(NamedTuple):
    """A Keras argument the spec takes only at these values (Keras' default among them), then drops; ``why`` says
    what the spec does instead, ``hint`` the way out (default: leave the argument out)."""

    values: tuple[Any, ...]
    why: str
    hint: str = ""

    def rule(self, key: str) -> str:
        """The rule as a sentence without its end: "Keras' `key` is taken only as ..., as <why>"."""
        shown_values = [_yaml_scalar(v) for v in self.values if v is not None] or ["null"]
        return f"Keras' `{key}` is taken only as {' or '.join(shown_values)}, as {self.why}"

    def takes(self, value: Any) -> bool:
        """Whether ``value`` is one of the values, a boolean only as a boolean (``keepdims: 0`` is no false), as
        the JSON Schema compares them."""
        return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in self.values)


_CHANNELS_LAST = Only(("channels_last", None), "specdsl models are channels-last (NHWC)")
_ZEROS = Only(("zeros",), "the backends start biases at zero")
_NO_REGULARIZER = Only((None,), "specdsl regularizes through train.optimizer.weight_decay")
_NO_CONSTRAINT = Only((None,), "specdsl has no weight constraints")
_NO_SEED = Only((None,), "train.seed seeds every layer")
_LAYER = {  # keras.layers.Layer's own arguments
    "dtype": Only((None, "float32"), "precision is train.precision"),
    "input_shape": Only(
        (None,), "the spec's input shape is its top-level `input:`", "Write it as the spec's `input:`."
    ),
}
_CONV = {
    "data_format": _CHANNELS_LAST,
    "bias_initializer": _ZEROS,
    "kernel_regularizer": _NO_REGULARIZER,
    "bias_regularizer": _NO_REGULARIZER,
    "activity_regularizer": _NO_REGULARIZER,
    "kernel_constraint": _NO_CONSTRAINT,
    "bias_constraint": _NO_CONSTRAINT,
    **_LAYER,
}
_DEPTHWISE = {
    **{k: v for k, v in _CONV.items() if not k.startswith("kernel_")},
    "depthwise_initializer": Only(("glorot_uniform",), "kernel_initializer names the initializer"),
    "depthwise_regularizer": _NO_REGULARIZER,
    "depthwise_constraint": _NO_CONSTRAINT,
}
_SEPARABLE = {
    **_DEPTHWISE,
    "pointwise_initializer": Only(("glorot_uniform",), "kernel_initializer names the initializer"),
    "pointwise_regularizer": _NO_REGULARIZER,
    "pointwise_constraint": _NO_CONSTRAINT,
}
_NORM = {
    "beta_initializer": Only(("zeros",), "the backends start beta at zero"),
    "gamma_initializer": Only(("ones",), "the backends start gamma at one"),
    "beta_regularizer": _NO_REGULARIZER,
    "gamma_regularizer": _NO_REGULARIZER,
    "beta_constraint": _NO_CONSTRAINT,
    "gamma_constraint": _NO_CONSTRAINT,
    **_LAYER,
}
_POOL = {"data_format": _CHANNELS_LAST, **_LAYER}
_GLOBAL_POOL = {**_POOL, "keepdims": Only((False,), "a global pooling gives a vector (C,)")}

KERAS_ARGUMENTS: dict[str, dict[str, Only]] = {
    "conv2d": _CONV,
    "conv1d": _CONV,
    "conv2d_transpose": _CONV,
    "depthwise_conv2d": _DEPTHWISE,
    "separable_conv2d": _SEPARABLE,
    "dense": {
        **{k: v for k, v in _CONV.items() if k != "data_format"},
        "lora_rank": Only((None,), "specdsl has no LoRA"),
        "lora_alpha": Only((None,), "specdsl has no LoRA"),
        "quantization_config": Only((None,), "specdsl does not quantize"),
    },
    "maxpool2d": _POOL,
    "avgpool2d": _POOL,
    "maxpool1d": _POOL,
    "avgpool1d": _POOL,
    "global_avgpool2d": _GLOBAL_POOL,
    "global_maxpool2d": _GLOBAL_POOL,
    "global_avgpool1d": _GLOBAL_POOL,
    "global_maxpool1d": _GLOBAL_POOL,
    "zero_padding2d": _POOL,
    "flatten": _POOL,
    "batchnorm": {
        **_NORM,
        "moving_mean_initializer": Only(("zeros",), "the moving mean starts at zero"),
        "moving_variance_initializer": Only(("ones",), "the moving variance starts at one"),
        "renorm": Only((False,), "specdsl has no batch renormalization"),
        "renorm_clipping": Only((None,), "specdsl has no batch renormalization"),
        "renorm_momentum": Only((0.99,), "specdsl has no batch renormalization"),
        "synchronized": Only((False,), "specdsl trains on one device"),
    },
    "layernorm": {**_NORM, "axis": Only((-1,), "layernorm normalizes the last axis")},
    "group_norm": {
        **_NORM,
        "axis": Only((-1,), "group_norm normalizes groups of the channels, the last axis"),
    },
    "dropout": {
        "noise_shape": Only((None,), "use spatial_dropout2d to drop whole channels"),
        "seed": _NO_SEED,
        **_LAYER,
    },
    "spatial_dropout2d": {"data_format": _CHANNELS_LAST, "seed": _NO_SEED, **_LAYER},
    "reshape": dict(_LAYER),
    "activation": dict(_LAYER),
    "add": dict(_LAYER),
    "multiply": dict(_LAYER),
    "concat": dict(_LAYER),
    "rescaling": dict(_LAYER),
}
# Keras' activation layers: the name a spec writes -> (Keras class, function, Keras' defaults of its arguments).
_RELU = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}
_LEAKY = (
    "LeakyReLU",
    "leaky_relu",
    {"negative_slope": 0.3},
)  # the layer's default slope, not the function's 0.2
ACTIVATION_LAYERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    **dict.fromkeys(("ReLU", "relu"), ("ReLU", "relu", _RELU)),
    **dict.fromkeys(("LeakyReLU", "leakyrelu", "leaky_relu"), _LEAKY),
    **dict.fromkeys(("ELU", "elu"), ("ELU", "elu", {"alpha": 1.0})),
    **dict.fromkeys(("Softmax", "softmax"), ("Softmax", "softmax", {"axis": -1})),
}
# Keras class -> the values of its arguments that the spec takes (negative_slope is the activation kind's own
# field); ReLU's are taken by the activation kind too, with function relu.
ACTIVATION_ARGUMENTS: dict[str, dict[str, Only]] = {
    "ReLU": {
        "max_value": Only((None, 6), "relu6 is max_value 6 alone (without negative_slope)"),
        "threshold": Only((0.0,), "the spec's relu has threshold 0"),
    },
    "ELU": {"alpha": Only((1.0,), "the spec's elu is Keras' default ELU")},
    "Softmax": {"axis": Only((-1,), "the spec's softmax is over the channels, the last axis")},
}

# section -> {key written there: the part it belongs in}
MISPLACED: dict[str, dict[str, str]] = {
    "train": {key: "optimizer" for key in ("learning_rate", "lr", "momentum", "nesterov", "weight_decay")},
}


def keras_names(kind: str, keras_class: str, taken: tuple[str, ...]) -> tuple[str, ...]:
    """The Keras spellings of a kind's name: its Keras class and that in lower case (and, for ``activation``,
    Keras' activation layers), less the names in ``taken``."""
    names = [keras_class, keras_class.lower()]
    if kind == "activation":
        names += list(ACTIVATION_LAYERS)
    return tuple(dict.fromkeys(n for n in names if n != kind and n not in taken))


def keras_arguments(written: str, kind: str, data: dict, file: str, loc: Loc, where: str) -> dict:
    """A layer's arguments with Keras' spellings turned into the spec's (``data`` itself when it has none);
    a Keras argument at a value the spec cannot express is a located SpecError."""
    table = KERAS_ARGUMENTS.get(kind, {})
    activation = ACTIVATION_LAYERS.get(written) if kind == "activation" else None
    if (
        activation is None
        and table.keys().isdisjoint(data)
        and not (kind == "activation" and _RELU.keys() & data)
    ):
        return data
    out = data.copy()  # a LocDict keeps its locations
    for key, only in table.items():
        if key in out:
            value = out.pop(key)
            if not only.takes(value):
                raise _refused(key, value, only, data, file, where)
    if kind == "activation":
        out = _activation(written, activation, out, data, file, loc, where)
    return out


def _activation(
    written: str, activation: tuple | None, out: dict, data: dict, file: str, loc: Loc, where: str
) -> dict:
    """Keras' activation layers, and ReLU's arguments on the activation kind, as a function (and a slope)."""
    if activation is not None:
        cls, function, defaults = activation
        for key in out:
            if key in ("function", "activation") or key not in (
                *defaults,
                "name",
                "inputs",
                "silence",
                "trainable",
            ):
                raise SpecError(
                    f"unknown argument `{shown(str(key))}` of Keras' {cls} (`{written}` is the activation "
                    f"{function}); it takes {', '.join(defaults)}.",
                    loc=loc_of(data, key, file, value=False),
                    path=where,
                    hint="Write `- activation: {function: ...}` for another function.",
                )
        out["function"] = function
        if cls != "ReLU":  # ELU's alpha, Softmax's axis: the one value the spec's function has
            for key, only in ACTIVATION_ARGUMENTS.get(cls, {}).items():
                if key in out and not only.takes(out.pop(key)):
                    raise _refused(key, data[key], only, data, file, where)
            if cls == "LeakyReLU":
                out.setdefault("negative_slope", 0.3)
            return out
    if out.get("function", out.get("activation")) != "relu" or not _RELU.keys() & out.keys():
        return out
    return _relu(out, data, file, where)


def _relu(out: dict, data: dict, file: str, where: str) -> dict:
    """ReLU(max_value, negative_slope, threshold) as the function it is: relu, relu6 or leaky_relu."""
    rules = ACTIVATION_ARGUMENTS["ReLU"]
    max_value = out.pop("max_value", None)
    threshold = out.pop("threshold", 0.0)
    slope = out.pop("negative_slope", None)
    if slope == 0 and not isinstance(slope, bool):
        slope = None  # Keras' default: no slope (any other value is the model's to check)
    out.pop("activation", None)
    if not rules["threshold"].takes(threshold):
        raise _refused("threshold", threshold, rules["threshold"], data, file, where)
    if not rules["max_value"].takes(max_value) or (max_value is not None and slope is not None):
        raise SpecError(
            f"Keras' ReLU with max_value={shown(repr(max_value))}"
            + (f" and negative_slope={shown(repr(slope))}" if slope is not None else "")
            + " has no function in the spec: relu6 is max_value 6 alone, leaky_relu negative_slope alone.",
            loc=loc_of(data, "max_value", file),
            path=where,
            hint="Write max_value: 6 (relu6), negative_slope: 0.1 (leaky_relu), or neither (relu).",
        )
    out["function"] = "relu6" if max_value is not None else "leaky_relu" if slope is not None else "relu"
    if slope is not None:
        out["negative_slope"] = slope
    return out


def _refused(key: str, value: Any, only: Only, data: dict, file: str, where: str) -> SpecError:
    return SpecError(
        f"{only.rule(key)}; but got {_yaml_scalar(value)}.",
        loc=loc_of(data, key, file),
        path=where,
        hint=only.hint or f"Leave `{key}` out.",
    )


def misplaced(section: str, data: Any, file: str) -> None:
    """Refuse a key written directly in ``section`` that belongs in one of its parts, with the line to write."""
    keys = MISPLACED.get(section)
    if not keys or not isinstance(data, dict):
        return
    for key, part in keys.items():
        if key not in data:
            continue
        current = data.get(part)
        mapping = dict(current) if isinstance(current, dict) else {"name": current or "adam"}
        mapping[key] = data[key]
        line = "{" + ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in mapping.items()) + "}"
        raise SpecError(
            f"`{key}` belongs under `{part}:`, not directly under `{section}:`.",
            loc=loc_of(data, key, file, value=False),
            path=f"{section}.{key}",
            hint=f"Write `{part}: {line}` under `{section}:`.",
        )


def _yaml_scalar(value: Any) -> str:
    """A value as YAML writes it in flow style, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return shown(str(value))

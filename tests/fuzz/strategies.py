"""Hypothesis strategies for specs: arbitrary documents built from the language's own words, and well-formed
sequential and graph specs over every registered layer kind: convolutions, pooling and padding with random sizes,
strides, paddings, dilations and groups, every other kind with the arguments of its cases in tests/layer_cases.py."""

from __future__ import annotations

from hypothesis import strategies as st
from layer_cases import CASES

import specdsl
from specdsl.spec import LAYERS

WORDS = sorted(
    {
        *LAYERS,
        "input",
        "layers",
        "blocks",
        "params",
        "repeat",
        "name",
        "inputs",
        "outputs",
        "filters",
        "kernel",
        "strides",
        "padding",
        "units",
        "rate",
        "pool",
        "choice",
        "int",
        "float",
        "log",
        "same",
        "valid",
        "train",
        "data",
        "search",
        "limits",
        "kind",
        "dilation",
        "groups",
        "activation",
        "relu",
        "$x",
        "${x * 2}",
    }
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.sampled_from(WORDS), children, max_size=5),
    ),
    max_leaves=40,
)

ACTIVATIONS = ["relu", "elu", "tanh", "sigmoid", "gelu", "swish", None]


@st.composite
def conv_layer(draw):
    kind = draw(
        st.sampled_from(["conv2d", "conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose"])
    )
    args = {
        "kernel": draw(
            st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)).map(list))
        )
    }
    if kind != "depthwise_conv2d":
        args["filters"] = draw(st.integers(1, 8))
    args["strides"] = draw(st.integers(1, 3))
    if kind == "conv2d_transpose":
        args["padding"] = draw(st.sampled_from(["valid", "same"]))
    else:
        args["padding"] = draw(st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 2)))
        if args["strides"] == 1 and draw(st.booleans()):
            args["dilation"] = draw(st.integers(1, 3))
    if kind == "conv2d" and draw(st.booleans()):
        args["groups"] = 1
    act = draw(st.sampled_from(ACTIVATIONS))
    if act:
        args["activation"] = act
    args["use_bias"] = draw(st.booleans())
    return {kind: args}


@st.composite
def pool_layer(draw):
    kind = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
    return {
        kind: {
            "pool": draw(st.integers(1, 3)),
            "strides": draw(st.integers(1, 3)),
            "padding": draw(st.sampled_from(["valid", "same"])),
        }
    }


# Kinds with a strategy of their own (random sizes, strides, paddings); every other kind is drawn from its cases.
OWN = {
    **dict.fromkeys(["conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose"], conv_layer()),
    **dict.fromkeys(["maxpool2d", "avgpool2d"], pool_layer()),
    "zero_padding2d": st.builds(lambda p: {"zero_padding2d": p}, st.integers(0, 2)),
}


def _image_cases() -> dict[str, list]:
    """Per registered kind without a strategy of its own, the layer of each of its cases in tests/layer_cases.py
    that maps an image to an image: a kind added with its cases is fuzzed with them."""
    found: dict[str, list] = {}
    for kind in LAYERS:
        if kind in OWN or LAYERS[kind].max_inputs != 1:
            continue
        for spec in CASES.get(kind, ()):
            if (
                len(spec["input"]) == 3
                and len(spec["layers"]) == 1
                and len(specdsl.check(spec).output_shape) == 3
            ):
                found.setdefault(kind, []).append(spec["layers"][0])
    return found


IMAGE_CASES = _image_cases()
IMAGE_KINDS = sorted({*OWN, *IMAGE_CASES})


@st.composite
def image_layer(draw):
    """A layer of any registered kind that maps an image to an image; convolutions three times in eight."""
    if draw(st.integers(0, 7)) <= 2:
        return draw(conv_layer())
    kind = draw(st.sampled_from(IMAGE_KINDS))
    return draw(OWN[kind]) if kind in OWN else draw(st.sampled_from(IMAGE_CASES[kind]))


@st.composite
def sequential_spec(draw):
    """An image model: random image layers, then (sometimes) a head of flatten/global pooling and dense layers."""
    h, w, c = draw(st.integers(4, 20)), draw(st.integers(4, 20)), draw(st.integers(1, 4))
    layers = draw(st.lists(image_layer(), min_size=1, max_size=6))
    head = draw(st.sampled_from(["none", "flatten", "gap"]))
    if head != "none":
        layers.append("flatten" if head == "flatten" else "global_avgpool2d")
        layers.append(
            {
                "dense": {
                    "units": draw(st.integers(1, 6)),
                    "activation": draw(st.sampled_from(["softmax", "relu", None])),
                }
            }
        )
    return {"input": [h, w, c], "layers": layers}


@st.composite
def graph_spec(draw):
    """Two branches from one stem merged by add, multiply or concat (same padding keeps sizes equal)."""
    h, w, c = draw(st.integers(5, 16)), draw(st.integers(5, 16)), draw(st.integers(1, 4))
    f = draw(st.integers(1, 6))
    s = draw(st.integers(1, 2))
    merge = draw(st.sampled_from(["add", "multiply", "concat"]))
    k1, k2 = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return {
        "input": [h, w, c],
        "layers": [
            {"conv2d": {"filters": f, "kernel": 3, "padding": "same", "name": "stem"}},
            {"conv2d": {"filters": f, "kernel": k1, "strides": s, "padding": "same", "name": "a"}},
            {
                "conv2d": {
                    "filters": f,
                    "kernel": k2,
                    "strides": s,
                    "padding": "same",
                    "inputs": "stem",
                    "name": "b",
                }
            },
            {"batchnorm": {"inputs": "b", "name": "b_bn"}},
            {merge: {"inputs": ["a", "b_bn"]}},
            "global_maxpool2d",
            {"dense": 3},
        ],
    }

"""Hypothesis strategies for specs: arbitrary documents built from the language's own words, and well-formed
sequential and graph specs over every layer kind with random sizes, strides, paddings, dilations and groups."""

from __future__ import annotations

from hypothesis import strategies as st

from specdsl.spec import LAYERS

WORDS = sorted(
    {*LAYERS, "input", "layers", "blocks", "params", "repeat", "name", "inputs", "outputs", "filters", "kernel",
     "strides", "padding", "units", "rate", "pool", "choice", "int", "float", "log", "same", "valid", "train",
     "data", "search", "limits", "kind", "dilation", "groups", "activation", "relu", "$x", "${x * 2}", "input"}
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS), st.text(max_size=12),
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
    kind = draw(st.sampled_from(["conv2d", "conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose"]))
    args = {"kernel": draw(st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)).map(list)))}
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
def image_layer(draw):
    choice = draw(st.integers(0, 7))
    if choice <= 2:
        return draw(conv_layer())
    if choice == 3:
        kind = draw(st.sampled_from(["maxpool2d", "avgpool2d"]))
        return {kind: {"pool": draw(st.integers(1, 3)), "strides": draw(st.integers(1, 3)),
                       "padding": draw(st.sampled_from(["valid", "same"]))}}
    if choice == 4:
        return draw(st.sampled_from(["batchnorm", "layernorm", {"dropout": 0.3}, {"spatial_dropout2d": 0.2}]))
    if choice == 5:
        return {"zero_padding2d": draw(st.integers(0, 2))}
    if choice == 6:
        return {"activation": draw(st.sampled_from(["relu", "relu6", "selu", "softmax", "hard_sigmoid", "leaky_relu"]))}
    return {"bias": draw(st.sampled_from(["channel", "position"]))}


@st.composite
def sequential_spec(draw):
    """An image model: random image layers, then (sometimes) a head of flatten/global pooling and dense layers."""
    h, w, c = draw(st.integers(4, 20)), draw(st.integers(4, 20)), draw(st.integers(1, 4))
    layers = draw(st.lists(image_layer(), min_size=1, max_size=6))
    head = draw(st.sampled_from(["none", "flatten", "gap"]))
    if head != "none":
        layers.append("flatten" if head == "flatten" else "global_avgpool2d")
        layers.append({"dense": {"units": draw(st.integers(1, 6)), "activation": draw(st.sampled_from(["softmax", "relu", None]))}})
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
            {"conv2d": {"filters": f, "kernel": k2, "strides": s, "padding": "same", "inputs": "stem", "name": "b"}},
            {"batchnorm": {"inputs": "b", "name": "b_bn"}},
            {merge: {"inputs": ["a", "b_bn"]}},
            "global_maxpool2d",
            {"dense": 3},
        ],
    }

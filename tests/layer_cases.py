"""A table of small specs exercising every registered layer kind, shared by the plan and backend tests.

Each case is a spec (as a plain mapping) whose last layer is the kind under test, with odd sizes, strides,
paddings, dilations and groups so that floor/ceil and asymmetric 'same' padding are all exercised.
A test iterating over ``CASES`` covers a new layer kind as soon as its cases are added here; ``test_every_kind
_has_cases`` fails until they are.
"""

from __future__ import annotations


def _one(shape, layer):
    return {"input": list(shape), "layers": [layer]}


def _two(shape, merge):
    """Two branches of the same input, then a merge of them."""
    return {
        "input": list(shape),
        "layers": [
            {"conv2d": {"filters": shape[-1], "kernel": 1, "name": "a"}},
            {
                "conv2d": {
                    "filters": shape[-1],
                    "kernel": 3,
                    "padding": "same",
                    "inputs": "input",
                    "name": "b",
                }
            },
            merge,
        ],
    }


CASES: dict[str, list[dict]] = {
    "conv2d": [
        _one((9, 11, 3), {"conv2d": {"filters": 4, "kernel": 3}}),
        _one((9, 11, 3), {"conv2d": {"filters": 4, "kernel": [3, 2], "strides": 2, "padding": "same"}}),
        _one(
            (10, 10, 4),
            {"conv2d": {"filters": 6, "kernel": 3, "strides": [2, 3], "padding": "same", "use_bias": False}},
        ),
        _one(
            (12, 12, 4),
            {"conv2d": {"filters": 8, "kernel": 3, "dilation": 2, "padding": "same", "activation": "relu"}},
        ),
        _one((12, 12, 4), {"conv2d": {"filters": 8, "kernel": 3, "groups": 2, "activation": "elu"}}),
        _one((7, 7, 2), {"conv2d": {"filters": 3, "kernel": 5, "padding": 2, "activation": "tanh"}}),
        _one((7, 8, 2), {"conv2d": {"filters": 3, "kernel": 3, "strides": 2, "padding": [[1, 0], [0, 2]]}}),
    ],
    "conv1d": [
        _one((20, 3), {"conv1d": {"filters": 5, "kernel": 3}}),
        _one(
            (21, 3),
            {"conv1d": {"filters": 4, "kernel": 4, "strides": 2, "padding": "same", "activation": "relu"}},
        ),
        _one((20, 4), {"conv1d": {"filters": 4, "kernel": 3, "dilation": 2, "groups": 2, "use_bias": False}}),
    ],
    "depthwise_conv2d": [
        _one((9, 9, 3), {"depthwise_conv2d": {"kernel": 3}}),
        _one(
            (10, 11, 4),
            {"depthwise_conv2d": {"kernel": 3, "strides": 2, "padding": "same", "depth_multiplier": 2}},
        ),
    ],
    "separable_conv2d": [
        _one((9, 9, 3), {"separable_conv2d": {"filters": 5, "kernel": 3}}),
        _one(
            (10, 11, 4),
            {
                "separable_conv2d": {
                    "filters": 6,
                    "kernel": 3,
                    "strides": 2,
                    "padding": "same",
                    "depth_multiplier": 2,
                    "activation": "relu",
                }
            },
        ),
    ],
    "conv2d_transpose": [
        _one((5, 6, 3), {"conv2d_transpose": {"filters": 4, "kernel": 3}}),
        _one((5, 6, 3), {"conv2d_transpose": {"filters": 4, "kernel": 3, "strides": 2, "padding": "same"}}),
        _one(
            (5, 5, 3),
            {
                "conv2d_transpose": {
                    "filters": 2,
                    "kernel": 4,
                    "strides": 2,
                    "padding": "same",
                    "use_bias": False,
                }
            },
        ),
        _one((4, 4, 2), {"conv2d_transpose": {"filters": 2, "kernel": 3, "strides": 2}}),
    ],
    "maxpool2d": [
        _one((9, 9, 3), {"maxpool2d": 2}),
        _one((9, 10, 3), {"maxpool2d": {"pool": 3, "strides": 2}}),
        _one((9, 10, 3), {"maxpool2d": {"pool": 2, "padding": "same"}}),
        _one((9, 10, 3), {"maxpool2d": {"pool": 3, "strides": 2, "padding": "same"}}),
    ],
    "avgpool2d": [
        _one((9, 9, 3), {"avgpool2d": 2}),
        _one((9, 10, 3), {"avgpool2d": {"pool": 3, "strides": 1}}),
        _one((9, 10, 3), {"avgpool2d": {"pool": 3, "strides": 2, "padding": "same"}}),
    ],
    "maxpool1d": [
        _one((11, 3), {"maxpool1d": 2}),
        _one((11, 3), {"maxpool1d": {"pool": 3, "strides": 2, "padding": "same"}}),
    ],
    "avgpool1d": [
        _one((11, 3), {"avgpool1d": 2}),
        _one((12, 3), {"avgpool1d": {"pool": 3, "strides": 1}}),
    ],
    "global_avgpool2d": [_one((5, 7, 3), "global_avgpool2d")],
    "global_maxpool2d": [_one((5, 7, 3), "global_maxpool2d")],
    "global_avgpool1d": [_one((9, 4), "global_avgpool1d")],
    "global_maxpool1d": [_one((9, 4), "global_maxpool1d")],
    "zero_padding2d": [
        _one((5, 6, 2), {"zero_padding2d": 2}),
        _one((5, 6, 2), {"zero_padding2d": [[0, 1], [2, 0]]}),
    ],
    "upsampling2d": [
        _one((5, 6, 3), "upsampling2d"),
        _one((4, 5, 2), {"upsampling2d": {"size": [2, 3], "interpolation": "bilinear"}}),
        _one((3, 3, 4), {"upsampling2d": 3}),
    ],
    "resizing": [
        _one((5, 7, 3), {"resizing": {"height": 8, "width": 4}}),
        _one((9, 6, 2), {"resizing": {"height": 4, "width": 11, "interpolation": "nearest"}}),
        _one((4, 4, 3), {"resizing": {"height": 7, "width": 7, "interpolation": "nearest"}}),
    ],
    "cropping2d": [
        _one((7, 8, 3), {"cropping2d": 1}),
        _one((7, 8, 2), {"cropping2d": [[0, 2], [3, 1]]}),
        _one((6, 9, 3), {"cropping2d": [1, 2]}),
    ],
    "batchnorm": [
        _one((6, 6, 4), "batchnorm"),
        _one((8,), {"batchnorm": {"center": False, "epsilon": 0.001}}),
    ],
    "layernorm": [_one((6, 6, 4), "layernorm"), _one((8,), {"layernorm": {"scale": False}})],
    "group_norm": [
        _one((6, 6, 8), {"group_norm": 4}),
        _one((5, 7, 6), {"group_norm": {"groups": 3, "center": False, "epsilon": 1e-5}}),
        _one((8,), {"group_norm": {"groups": 2, "scale": False}}),
        _one((9, 6), {"group_norm": 6}),
    ],
    "dropout": [_one((6, 6, 4), {"dropout": 0.5})],
    "spatial_dropout2d": [_one((6, 6, 4), {"spatial_dropout2d": 0.25})],
    "flatten": [_one((3, 4, 5), "flatten")],
    "dense": [
        _one((12,), {"dense": 7}),
        _one((12,), {"dense": {"units": 5, "activation": "softmax", "use_bias": False}}),
        _one((4, 6), {"dense": {"units": 3, "activation": "sigmoid"}}),
    ],
    "reshape": [_one((24,), {"reshape": [2, 3, 4]}), _one((4, 6, 2), {"reshape": [-1, 4]})],
    "activation": [
        _one((3, 4, 5), {"activation": fn})
        for fn in (
            "relu",
            "relu6",
            "elu",
            "selu",
            "gelu",
            "leaky_relu",
            "sigmoid",
            "hard_sigmoid",
            "tanh",
            "softmax",
            "softplus",
            "swish",
            "silu",
            "linear",
        )
    ]
    + [_one((3, 4, 5), {"activation": {"function": "leaky_relu", "negative_slope": 0.1}})],
    "add": [_two((6, 6, 4), {"add": {"inputs": ["a", "b"]}})],
    "multiply": [
        _two((6, 6, 4), {"multiply": {"inputs": ["a", "b"]}}),
        {  # squeeze and excitation: a 1x1xC gate scales each channel
            "input": [6, 5, 4],
            "layers": [
                {"conv2d": {"filters": 4, "kernel": 1, "name": "a"}},
                "global_avgpool2d",
                {"dense": {"units": 4, "activation": "sigmoid"}},
                {"reshape": {"shape": [1, 1, 4], "name": "gate"}},
                {"multiply": {"inputs": ["a", "gate"]}},
            ],
        },
    ],
    "concat": [
        _two((6, 6, 4), {"concat": {"inputs": ["a", "b"]}}),
        {
            "input": [6, 6, 4],
            "layers": [
                {"conv2d": {"filters": 2, "kernel": 1, "name": "a"}},
                {"conv2d": {"filters": 5, "kernel": 3, "padding": "same", "inputs": "input", "name": "b"}},
                {"maxpool2d": {"pool": 3, "strides": 1, "padding": "same", "inputs": "input", "name": "c"}},
                {"concat": {"inputs": ["a", "b", "c"]}},
            ],
        },
    ],
    "rescaling": [_one((4, 4, 3), {"rescaling": {"scale": 0.00392156862745098, "offset": -0.5}})],
    "bias": [_one((5, 5, 1), {"bias": "position"}), _one((5, 5, 3), {"bias": "channel"})],
}

# Expected output shape and (trainable, non-trainable) parameters of the last layer of each case, worked out by
# hand from the size formulas (floor((n + pad - k_eff) / s) + 1; 'same': ceil(n / s)) and Keras' counting.
EXPECTED: dict[str, list[tuple[tuple[int, ...], int, int]]] = {
    "conv2d": [
        ((7, 9, 4), 3 * 3 * 3 * 4 + 4, 0),
        ((5, 6, 4), 3 * 2 * 3 * 4 + 4, 0),
        ((5, 4, 6), 3 * 3 * 4 * 6, 0),
        ((12, 12, 8), 3 * 3 * 4 * 8 + 8, 0),
        ((10, 10, 8), 3 * 3 * 2 * 8 + 8, 0),
        ((7, 7, 3), 5 * 5 * 2 * 3 + 3, 0),
        ((3, 4, 3), 3 * 3 * 2 * 3 + 3, 0),
    ],
    "conv1d": [((18, 5), 3 * 3 * 5 + 5, 0), ((11, 4), 4 * 3 * 4 + 4, 0), ((16, 4), 3 * 2 * 4, 0)],
    "depthwise_conv2d": [((7, 7, 3), 9 * 3 + 3, 0), ((5, 6, 8), 9 * 8 + 8, 0)],
    "separable_conv2d": [((7, 7, 5), 9 * 3 + 3 * 5 + 5, 0), ((5, 6, 6), 9 * 8 + 8 * 6 + 6, 0)],
    "conv2d_transpose": [
        ((7, 8, 4), 9 * 3 * 4 + 4, 0),
        ((10, 12, 4), 9 * 3 * 4 + 4, 0),
        ((10, 10, 2), 16 * 3 * 2, 0),
        ((9, 9, 2), 9 * 2 * 2 + 2, 0),
    ],
    "maxpool2d": [((4, 4, 3), 0, 0), ((4, 4, 3), 0, 0), ((5, 5, 3), 0, 0), ((5, 5, 3), 0, 0)],
    "avgpool2d": [((4, 4, 3), 0, 0), ((7, 8, 3), 0, 0), ((5, 5, 3), 0, 0)],
    "maxpool1d": [((5, 3), 0, 0), ((6, 3), 0, 0)],
    "avgpool1d": [((5, 3), 0, 0), ((10, 3), 0, 0)],
    "global_avgpool2d": [((3,), 0, 0)],
    "global_maxpool2d": [((3,), 0, 0)],
    "global_avgpool1d": [((4,), 0, 0)],
    "global_maxpool1d": [((4,), 0, 0)],
    "zero_padding2d": [((9, 10, 2), 0, 0), ((6, 8, 2), 0, 0)],
    "upsampling2d": [((10, 12, 3), 0, 0), ((8, 15, 2), 0, 0), ((9, 9, 4), 0, 0)],
    "resizing": [((8, 4, 3), 0, 0), ((4, 11, 2), 0, 0), ((7, 7, 3), 0, 0)],
    "cropping2d": [((5, 6, 3), 0, 0), ((5, 4, 2), 0, 0), ((4, 5, 3), 0, 0)],
    "batchnorm": [((6, 6, 4), 8, 8), ((8,), 8, 16)],
    "layernorm": [((6, 6, 4), 8, 0), ((8,), 8, 0)],
    "group_norm": [((6, 6, 8), 16, 0), ((5, 7, 6), 6, 0), ((8,), 8, 0), ((9, 6), 12, 0)],
    "dropout": [((6, 6, 4), 0, 0)],
    "spatial_dropout2d": [((6, 6, 4), 0, 0)],
    "flatten": [((60,), 0, 0)],
    "dense": [((7,), 12 * 7 + 7, 0), ((5,), 12 * 5, 0), ((4, 3), 6 * 3 + 3, 0)],
    "reshape": [((2, 3, 4), 0, 0), ((12, 4), 0, 0)],
    "activation": [((3, 4, 5), 0, 0)] * 15,
    "add": [((6, 6, 4), 0, 0)],
    "multiply": [((6, 6, 4), 0, 0), ((6, 5, 4), 0, 0)],
    "concat": [((6, 6, 8), 0, 0), ((6, 6, 11), 0, 0)],
    "rescaling": [((4, 4, 3), 0, 0)],
    "bias": [((5, 5, 1), 25, 0), ((5, 5, 3), 3, 0)],
}


def all_cases():
    """(test id, kind, spec) for every case, in a stable order."""
    for kind, cases in CASES.items():
        for i, spec in enumerate(cases):
            yield f"{kind}-{i}", kind, spec

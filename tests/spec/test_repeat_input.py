"""``prev`` inside a repeat: the pass's input (the layer before the repeat on the first pass, the last layer of
the pass before on the others), in ``inputs:`` and in expressions; ``input`` stays the enclosing block's input
(at the top, the model's)."""

from __future__ import annotations

import pytest

import specdsl
from specdsl import SpecError


def graph(source):
    return [(n.name, n.inputs, n.shape) for n in specdsl.check(source).layers]


def refused(source) -> str:
    with pytest.raises(SpecError) as e:
        specdsl.check(source)
    return str(e.value)


def test_prev_is_the_passs_input_and_input_the_blocks():
    doc = {
        "input": [6],
        "blocks": {
            "b": {
                "layers": [
                    {
                        "repeat": 2,
                        "layers": [
                            {"dense": {"units": "${prev.channels + 1}", "name": "d"}},
                            {"concat": {"inputs": ["prev", "d", "input"]}},
                        ],
                    }
                ]
            }
        },
        "layers": [{"dense": {"units": 4, "name": "stem"}}, {"b": {"name": "blk"}}],
    }
    assert graph(doc) == [
        ("stem", ("input",), (4,)),
        ("blk_d_0", ("stem",), (5,)),
        ("concatenate", ("stem", "blk_d_0", "stem"), (13,)),  # prev and input are both stem on the first pass
        ("blk_d_1", ("concatenate",), (14,)),
        ("concatenate_1", ("concatenate", "blk_d_1", "stem"), (31,)),  # input stays the block's input
    ]


def test_nested_repeats_each_have_their_own_prev():
    doc = {
        "input": [2],
        "layers": [
            {
                "repeat": 2,
                "layers": [
                    {"dense": {"units": 3, "name": "a"}},
                    {"repeat": 2, "layers": [{"add": {"inputs": ["prev", "a"]}}]},
                ],
            }
        ],
    }
    assert graph(doc) == [
        ("a_0", ("input",), (3,)),
        ("add", ("a_0", "a_0"), (3,)),
        ("add_1", ("add", "a_0"), (3,)),
        ("a_1", ("add_1",), (3,)),
        ("add_2", ("a_1", "a_1"), (3,)),
        ("add_3", ("add_2", "a_1"), (3,)),
    ]


def test_a_block_in_a_repeat_reads_prev_through_inputs():
    doc = {
        "input": [4],
        "blocks": {"half": {"layers": [{"dense": "${input.channels // 2}"}]}},
        "layers": [
            {"dense": 16},
            {
                "repeat": 2,
                "layers": [
                    {"dense": {"units": 3, "name": "side"}},
                    {"half": {"inputs": "prev", "name": "h"}},
                    {"concat": {"inputs": ["side", "h"]}},
                ],
            },
        ],
    }
    assert graph(doc) == [
        ("dense", ("input",), (16,)),
        ("side_0", ("dense",), (3,)),
        ("dense_1", ("dense",), (8,)),
        ("concatenate", ("side_0", "dense_1"), (11,)),
        ("side_1", ("concatenate",), (3,)),
        ("dense_2", ("concatenate",), (5,)),
        ("concatenate_1", ("side_1", "dense_2"), (8,)),
    ]


def test_prev_outside_a_repeat_names_nothing():
    assert refused(
        {"input": [4], "layers": [{"dense": {"units": 4, "name": "d"}}, {"add": {"inputs": ["prev", "d"]}}]}
    ) == (
        "<dict>: layers[1] (add): input `prev` names a repeat's pass input, and this layer is in no repeat. "
        "Names here: d, input."
    )
    assert refused({"input": [4], "layers": [{"dense": "${prev.channels}"}]}) == (
        "<dict>: layers[0] (dense): unknown parameter `prev` (parameters here: none)."
    )


def test_prev_is_reserved_inside_a_repeat():
    text = "input: [4]\nlayers:\n  - repeat: 2\n    layers:\n      - dense: {units: 2, name: prev}\n"
    assert refused(text) == (
        "<string>:5:9: layers[0].repeat[0].layers[0] (dense): name `prev` is reserved inside a repeat for the "
        "pass's input (the layer before the repeat on the first pass, the pass before's last layer on the "
        "others); choose another name."
    )
    assert [
        n.name
        for n in specdsl.check({"input": [4], "layers": [{"dense": {"units": 2, "name": "prev"}}]}).layers
    ] == ["prev"]

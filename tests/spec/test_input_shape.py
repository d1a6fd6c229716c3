"""Expressions that read a layer's shape: ``${input.channels}``, ``.height``, ``.width``, ``.length``, ``.size``,
``.rank``, resolved in the order of the model (the plan's rules over the layers expanded before), with located
errors; a spec that reads no shape infers nothing while it expands."""

from __future__ import annotations

import pytest

import specdsl
from specdsl import ShapeError, SpecError
from specdsl.spec import SHAPE_INFERENCE


def shapes_and_params(source):
    plan = specdsl.check(source)
    return [(n.name, n.shape, n.params) for n in plan.layers]


def refused(source, error=SpecError) -> str:
    with pytest.raises(error) as e:
        specdsl.check(source)
    return str(e.value)


INVERTED = {
    "params": {"expand": 6, "out": None},
    "layers": [
        {"conv2d": {"filters": "${input.channels * expand}", "kernel": 1, "use_bias": False}},
        {"depthwise_conv2d": {"kernel": 3, "padding": "same", "use_bias": False}},
        {"conv2d": {"filters": "$out", "kernel": 1, "use_bias": False}},
    ],
}


def test_a_block_reads_its_inputs_channels_at_each_use():
    doc = {
        "input": [16, 16, 3],
        "blocks": {"inverted": INVERTED},
        "layers": [
            {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "use_bias": False}},
            {"inverted": {"out": 16}},
            {"inverted": {"out": 24, "expand": 4}},
        ],
    }
    assert shapes_and_params(doc) == [
        ("conv2d", (16, 16, 8), 3 * 3 * 3 * 8),
        ("conv2d_1", (16, 16, 48), 8 * 48),  # 6 x its input's 8 channels
        ("depthwise_conv2d", (16, 16, 48), 9 * 48),
        ("conv2d_2", (16, 16, 16), 48 * 16),
        ("conv2d_3", (16, 16, 64), 16 * 64),  # 4 x its input's 16 channels
        ("depthwise_conv2d_1", (16, 16, 64), 9 * 64),
        ("conv2d_4", (16, 16, 24), 64 * 24),
    ]


def test_at_the_top_input_is_the_models_input():
    doc = {
        "input": [12, 10, 3],
        "layers": [
            {"conv2d": {"filters": "${input.channels * 4}", "kernel": "${input.height - input.width + 1}"}},
            {"flatten": {}},
            {"dense": "${input.size + input.rank}"},  # 12*10*3 + 3
        ],
    }
    assert shapes_and_params(doc) == [
        ("conv2d", (10, 8, 12), 3 * 3 * 3 * 12 + 12),
        ("flatten", (960,), 0),
        ("dense", (363,), 960 * 363 + 363),
    ]


def test_a_blocks_input_given_by_inputs_and_nested_blocks():
    doc = {
        "input": [8, 8, 4],
        "blocks": {
            "half": {"layers": [{"conv2d": {"filters": "${input.channels // 2}", "kernel": 1}}]},
            "twice": {"layers": [{"conv2d": {"filters": "${input.channels * 2}", "kernel": 1}}, "half"]},
        },
        "layers": [
            {"conv2d": {"filters": 6, "kernel": 1, "name": "stem"}},
            {"conv2d": {"filters": 10, "kernel": 1, "name": "c10"}},
            {"half": {"inputs": "stem", "name": "h"}},
            {"twice": {"name": "t"}},
            {"concat": {"inputs": ["h", "t", "c10"]}},
            {"dense": "${input.channels}"},  # at the top: the model's input, 4 channels
        ],
    }
    assert [(n.name, n.shape) for n in specdsl.check(doc).layers] == [
        ("stem", (8, 8, 6)),
        ("c10", (8, 8, 10)),
        ("conv2d", (8, 8, 3)),  # half of stem's 6
        ("conv2d_1", (8, 8, 6)),  # twice h's 3
        ("conv2d_2", (8, 8, 3)),  # half of the 6 before it
        ("concatenate", (8, 8, 16)),
        ("dense", (8, 8, 4)),
    ]


def test_a_repeat_inside_a_block_sees_the_blocks_input_and_its_own_index():
    doc = {
        "input": [8],
        "blocks": {
            "b": {"layers": [{"repeat": 3, "layers": [{"dense": "${input.channels * 10 + index}"}]}]},
        },
        "layers": [{"dense": 2}, "b"],
    }
    assert [n.shape for n in specdsl.check(doc).layers] == [(2,), (20,), (21,), (22,)]


def test_a_nested_repeats_index_is_its_own():
    doc = {
        "input": [4],
        "layers": [{"repeat": 2, "layers": [{"repeat": 3, "layers": [{"dense": "${index+1}"}]}]}],
    }
    assert [n.shape for n in specdsl.check(doc).layers] == [(1,), (2,), (3,), (1,), (2,), (3,)]


def test_sequences_and_vectors():
    seq = {
        "input": [20, 6],
        "layers": [{"conv1d": {"filters": "${input.length + input.channels}", "kernel": 3}}],
    }
    assert shapes_and_params(seq) == [("conv1d", (18, 26), 3 * 6 * 26 + 26)]
    vec = {"input": [5], "layers": [{"dense": "${input.channels * 3}"}]}
    assert shapes_and_params(vec) == [("dense", (15,), 5 * 15 + 15)]


def test_a_parameter_named_input_hides_the_layer():
    doc = {
        "input": [4],
        "blocks": {"b": {"params": {"input": 3}, "layers": [{"dense": "${input * 2}"}]}},
        "layers": ["b"],
    }
    assert [n.shape for n in specdsl.check(doc).layers] == [(6,)]


@pytest.mark.parametrize(
    "expr, message",
    [
        (
            "${input.height}",
            "`input.height` is not known: `input` (input) is 20x6, a sequence, which has `input.length`, "
            "`input.channels`, `.size` and `.rank`; in `input.height`.",
        ),
        (
            "${input.chanels}",
            "`input.chanels` is no part of a shape; a shape has height, width, length, channels, size, rank. "
            "Did you mean `input.channels`?",
        ),
        (
            "${input.depth_}",
            "`input.depth_` is no part of a shape; a shape has height, width, length, channels, size, rank.",
        ),
        (
            "${input + 1}",
            "`input` is a layer (input), not a value, in `input + 1`; an expression reads its shape: "
            "`${input.channels}`, `.height`, `.width`, `.length`, `.size` or `.rank`.",
        ),
        (
            "$input",
            "`input` is a layer (input), not a value, in `$input`; an expression reads its shape: "
            "`${input.channels}`, `.height`, `.width`, `.length`, `.size` or `.rank`.",
        ),
        (
            "${k.channels}",
            "`k.channels` reads a shape, but `k` is 3, not a layer, in `k.channels`; shapes are read of `input` "
            "(and of `prev` in a repeat).",
        ),
        ("${stem.channels}", "unknown parameter `stem` (parameters here: k)."),
        ("${input.channels.x}", f"`input.channels.x`: {specdsl.spec._expr.ALLOWED}."),
    ],
)
def test_refusals_are_located_at_the_expression(expr, message):
    text = f'input: [20, 6]\nparams: {{k: 3}}\nlayers:\n  - conv1d: {{filters: "{expr}", kernel: 3, name: stem}}\n'
    assert refused(text) == f"<string>:4:23: layers[0] (conv1d): {message}"


def test_a_layer_before_that_does_not_plan_is_the_error():
    text = (
        "input: [4, 4, 1]\nlayers:\n  - conv2d: {filters: 8, kernel: 5}\n"
        '  - conv2d: {filters: "${input.channels}", kernel: 1}\n'
    )
    message = refused(text, ShapeError)
    assert message == (
        "<string>:3:5: layers[0] (conv2d): kernel 5x5 does not fit its 4x4x1 input with padding=valid (output "
        "would be 0x0). Use padding: same or a smaller kernel, or give the model a larger input."
    )
    blocked = (
        "input: [4, 4, 1]\nblocks:\n  b: {layers: [{dense: '${input.channels}'}]}\n"
        "layers:\n  - conv2d: {filters: 8, kernel: 5}\n  - b\n"
    )
    assert refused(blocked, ShapeError) == message.replace(":3:5:", ":5:5:")


def test_shapes_are_inferred_only_when_read_and_each_layer_once(monkeypatch):
    made, added = [], []
    factory = SHAPE_INFERENCE["plan"]

    def counting(name, shape, loc):
        inference = factory(name, shape, loc)
        made.append(name)

        class Counting:
            def add(self, entry):
                added.append(entry.name)
                return inference.add(entry)

        return Counting()

    monkeypatch.setitem(SHAPE_INFERENCE, "plan", counting)
    specdsl.check({"input": [8], "layers": [{"repeat": 50, "layers": [{"dense": 4}]}]})
    assert made == [] and added == []
    doc = {
        "input": [8],
        "blocks": {"b": {"layers": [{"dense": "${input.channels + 1}"}]}},
        "layers": [{"repeat": 50, "layers": ["b"]}],
    }
    plan = specdsl.check(doc)
    assert [n.shape for n in plan.layers] == [(9 + i,) for i in range(50)]
    assert made == ["input"]  # the model's input is known without it
    assert added == [n.name for n in plan.layers[:49]]  # the last layer's shape is never read

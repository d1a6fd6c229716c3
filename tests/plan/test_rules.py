"""Every layer kind, every case of the shared table: the plan's shape and counts equal the hand-worked values."""

from __future__ import annotations

import math

import pytest
from layer_cases import CASES, EXPECTED, all_cases

import specdsl
from specdsl.plan import RULES, same_padding, transpose_length, window_length
from specdsl.spec import LAYERS


def test_every_kind_has_a_rule_cases_and_expectations():
    assert set(RULES) == set(LAYERS)
    assert set(CASES) == set(LAYERS), (
        f"add cases for {sorted(set(LAYERS) - set(CASES))} to tests/layer_cases.py"
    )
    for kind, cases in CASES.items():
        assert len(EXPECTED[kind]) == len(cases), kind


@pytest.mark.parametrize("case_id,kind,spec", list(all_cases()), ids=[c[0] for c in all_cases()])
def test_case_shape_and_params(case_id, kind, spec):
    plan = specdsl.check(spec)
    last = plan.nodes[-1]
    assert last.kind == kind
    index = int(case_id.rsplit("-", 1)[1])
    shape, trainable, non_trainable = EXPECTED[kind][index]
    assert (last.shape, last.trainable, last.non_trainable) == (shape, trainable, non_trainable)
    # the weights the rule declares (what specdsl.weights reads as the layout) are the node's parameters
    for node in plan.layers:
        assert sum(math.prod(s) for _, s in node.resolved.weights) == node.params, node.kind


@pytest.mark.parametrize(
    "n,k,s,d,expected",
    [
        (5, 3, 2, 1, (1, 1)),  # out 3: total (3-1)*2+3-5 = 2
        (6, 3, 2, 1, (0, 1)),  # out 3: total 1, the extra pixel after (as Keras/TF)
        (7, 1, 2, 1, (0, 0)),
        (10, 3, 1, 2, (2, 2)),  # dilation 2: k_eff 5
        (224, 7, 2, 1, (2, 3)),
    ],
)
def test_same_padding_matches_keras(n, k, s, d, expected):
    assert same_padding(n, k, s, d) == expected


def test_window_length_reports_floor_remainder():
    assert window_length(61, 2, 2, 1, "valid") == (30, 1)
    assert window_length(62, 2, 2, 1, "valid") == (31, 0)
    assert window_length(2, 3, 1, 1, "valid") == (0, 0)
    assert window_length(19, 5, 1, 1, (2, 2)) == (19, 0)
    assert window_length(7, 3, 2, 1, "same") == (4, 0)


def test_transpose_length_as_keras():
    assert transpose_length(5, 3, 2, 1, "valid", None) == 11
    assert transpose_length(5, 3, 2, 1, "same", None) == 10
    assert transpose_length(5, 3, 2, 1, "same", 1) == 10
    assert transpose_length(5, 4, 2, 1, "valid", 0) == 12


def test_flops_of_a_conv_and_dense():
    plan = specdsl.check(
        {
            "input": [8, 8, 3],
            "layers": [
                {"conv2d": {"filters": 4, "kernel": 3, "activation": "relu"}},
                "flatten",
                {"dense": 2},
            ],
        }
    )
    conv, flat, dense = plan.layers
    # 6x6x4 outputs, each 27 multiply-adds (2 FLOPs) + bias + relu
    assert conv.flops == 6 * 6 * 4 * (2 * 27 + 1 + 1)
    assert flat.flops == 0
    assert dense.flops == 2 * 144 * 2 + 2
    assert plan.flops == conv.flops + dense.flops
    assert plan.activation_bytes == 4 * (8 * 8 * 3 + 6 * 6 * 4 + 144 + 2)


def test_floor_warnings_only_where_rows_are_really_lost():
    def warnings(layer, shape=(8, 8, 2)):
        return [w.message for w in specdsl.check({"input": list(shape), "layers": [layer]}).warnings]

    assert warnings({"conv2d": {"filters": 2, "kernel": 3, "strides": 2}}) == [
        "stride 2x2 over 8x8 leaves out the last 1 row and the last 1 column of the input (floor in the output "
        "size). Use padding: same to keep them, or `silence: [drops-rows]` on the layer where the floor is meant."
    ]
    assert warnings({"conv2d": {"filters": 2, "kernel": 3, "strides": 2}}, (9, 9, 2)) == []
    assert (
        warnings({"conv2d": {"filters": 2, "kernel": 1, "strides": 2}}) == []
    )  # strided 1x1: skipping is the point
    assert warnings({"maxpool2d": {"pool": 2}}, (9, 8, 1)) == [
        "stride 2x2 over 9x8 leaves out the last 1 row of the input (floor in the output size). "
        "Use padding: same to keep them, or `silence: [drops-rows]` on the layer where the floor is meant."
    ]
    assert warnings({"conv2d": {"filters": 2, "kernel": 3, "strides": 2, "padding": "same"}}) == []


def _shape_error(spec) -> str:
    from specdsl import ShapeError

    with pytest.raises(ShapeError) as e:
        specdsl.check(spec)
    return str(e.value)


def test_a_dilated_1d_kernel_that_does_not_fit_shows_its_effective_size():
    spec = {"input": [6, 4], "layers": [{"conv1d": {"filters": 2, "kernel": 4, "dilation": 2}}]}
    assert _shape_error(spec) == (
        "<dict>: layers[0] (conv1d): kernel 4 (dilation 2: effective 7) does not fit its 6x4 input with padding=valid "
        "(output would be 0). Use padding: same or a smaller kernel, or give the model a larger input."
    )
    spec = {"input": [6, 6, 1], "layers": [{"conv2d": {"filters": 2, "kernel": 4, "dilation": 2}}]}
    assert _shape_error(spec).startswith(
        "<dict>: layers[0] (conv2d): kernel 4x4 (dilation 2x2: effective 7x7) does not fit its 6x6x1 input"
    )


@pytest.mark.parametrize(
    "before, hint",
    [
        ([], "Use padding: same or a smaller kernel, or give the model a larger input."),
        (
            [{"conv2d": {"filters": 2, "kernel": 3}}],
            "Use padding: same or a smaller kernel, or give the model a larger input.",
        ),
        (
            [{"conv2d": {"filters": 2, "kernel": 3, "strides": 2}}],
            "Use padding: same, or lower the strides of a layer before it.",
        ),
        ([{"maxpool2d": 2}], "Use padding: same, or drop a pooling layer before it."),
        (
            [{"conv2d": {"filters": 2, "kernel": 1, "strides": 2}}, {"avgpool2d": 2}],
            "Use padding: same, or drop a pooling layer before it.",
        ),
        (
            [
                {"conv2d_transpose": {"filters": 2, "kernel": 1, "strides": 2}},
                {"conv2d": {"filters": 2, "kernel": 7}},
            ],
            "Use padding: same or a smaller kernel, or give the model a larger input.",
        ),
    ],
)
def test_the_way_out_of_a_window_too_large_names_what_shrank_its_input(before, hint):
    spec = {"input": [5, 5, 1], "layers": [*before, {"conv2d": {"filters": 2, "kernel": 6, "name": "late"}}]}
    assert _shape_error(spec).endswith(hint)


def test_pooling_on_another_branch_is_not_blamed():
    spec = {
        "input": [4, 4, 1],
        "layers": [
            {"maxpool2d": {"pool": 2, "name": "side"}},
            {"conv2d": {"filters": 2, "kernel": 5, "inputs": "input", "name": "c"}},
            {"flatten": {"inputs": "side", "name": "f1"}},
        ],
        "outputs": ["c", "f1"],
    }
    assert _shape_error(spec).endswith(
        "Use padding: same or a smaller kernel, or give the model a larger input."
    )


def test_a_1d_pooling_before_a_1d_conv_is_named():
    spec = {"input": [8, 2], "layers": [{"maxpool1d": 2}, {"conv1d": {"filters": 2, "kernel": 5}}]}
    assert _shape_error(spec).endswith("Use padding: same, or drop a pooling layer before it.")

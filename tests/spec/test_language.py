"""The spec language: both layer forms, graphs, blocks, parameters, repeat, distributions, JSON, locations."""

from __future__ import annotations

import json

import pytest
import yaml
from support import EXAMPLES

import specdsl
from specdsl import SearchError, ShapeError, SpecError
from specdsl.spec import RandomSampler, load


def names_and_shapes(plan):
    return [(n.name, n.kind, n.shape) for n in plan.nodes]


def test_single_key_tagged_and_bare_forms_are_the_same_model():
    a = specdsl.check(
        "input: [8, 8, 1]\nlayers:\n  - conv2d: {filters: 4, kernel: 3}\n  - flatten\n  - dense: 2\n"
    )
    b = specdsl.check(
        "input: [8, 8, 1]\nlayers:\n  - {kind: conv2d, filters: 4, kernel_size: 3}\n  - flatten: null\n"
        "  - dense: {units: 2}\n"
    )
    assert names_and_shapes(a) == names_and_shapes(b)
    assert [n.name for n in a.nodes] == ["input", "conv2d", "flatten", "dense"]


def test_keras_names_are_aliases_and_auto_names_count_like_keras():
    plan = specdsl.check(
        {
            "input": [8, 8, 2],
            "layers": [
                {"max_pooling2d": {"pool_size": 2}},
                {"batch_normalization": None},
                {"maxpool2d": 1},
                "bn",
            ],
        }
    )
    assert [(n.name, n.keras_class) for n in plan.layers] == [
        ("max_pooling2d", "MaxPooling2D"),
        ("batch_normalization", "BatchNormalization"),
        ("max_pooling2d_1", "MaxPooling2D"),
        ("batch_normalization_1", "BatchNormalization"),
    ]


def test_json_is_the_same_language(tmp_path):
    src = (EXAMPLES / "inceptionv3.yaml").read_text()
    doc = yaml.safe_load(src)
    path = tmp_path / "inception.json"
    path.write_text(json.dumps(doc, indent=1))
    from_yaml = specdsl.check(src)
    from_json = specdsl.check(path)
    assert names_and_shapes(from_json) == names_and_shapes(from_yaml)
    assert from_json.params == 23_851_784


def test_json_errors_are_located(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '{\n  "input": [8, 8, 1],\n  "layers": [\n    {"conv2d": {"filters": 4, "kernl": 3}}\n  ]\n}\n'
    )
    with pytest.raises(SpecError) as e:
        specdsl.check(path)
    assert str(e.value) == (
        f"{path}:4:31: layers[0] (conv2d): unknown argument `kernl`; did you mean `kernel`? Valid: filters, kernel, "
        "strides, dilation, groups, padding, use_bias, activation, kernel_initializer, name, inputs, silence, "
        "trainable."
    )


def test_graph_inputs_and_outputs():
    plan = specdsl.check(
        {
            "input": [16, 16, 3],
            "layers": [
                {"conv2d": {"filters": 8, "kernel": 3, "padding": "same", "name": "a"}},
                {"conv2d": {"filters": 8, "kernel": 1, "inputs": "input", "name": "b"}},
                {"add": {"inputs": ["a", "b"], "name": "sum"}},
                {"global_avgpool2d": {"name": "gap"}},
                {"dense": {"units": 3, "inputs": "gap", "name": "head1"}},
                {"dense": {"units": 2, "inputs": "gap", "name": "head2"}},
            ],
            "outputs": ["head1", "head2"],
        }
    )
    assert plan["sum"].inputs == ("a", "b")
    assert plan.output_shapes == [(3,), (2,)]


def test_block_parameters_defaults_expressions_and_names():
    plan = specdsl.check(
        {
            "input": [32, 32, 3],
            "params": {"width": 8},
            "blocks": {
                "res": {
                    "params": {"filters": None, "expand": 2},
                    "layers": [
                        {
                            "conv2d": {
                                "filters": "${filters * expand}",
                                "kernel": 1,
                                "name": "proj",
                                "inputs": "input",
                            }
                        },
                        {
                            "conv2d": {
                                "filters": "$filters",
                                "kernel": 3,
                                "padding": "same",
                                "inputs": "input",
                            }
                        },
                        {"conv2d": {"filters": "${filters * expand}", "kernel": 1, "name": "out"}},
                        {"add": {"inputs": ["proj", "out"]}},
                    ],
                }
            },
            "layers": [
                {"res": {"filters": "$width", "name": "r1"}},
                {"res": {"filters": "${width * 2}", "expand": 4}},
            ],
        }
    )
    assert plan["r1_proj"].shape == (32, 32, 16)
    assert plan["r1_out"].inputs == ("conv2d",)  # the first unnamed conv of the model
    assert plan["res_proj"].shape == (32, 32, 64)  # the unnamed instance is auto-named like a layer
    assert plan.output_shape == (32, 32, 64)


def test_repeat_with_index_and_named_layers_inside():
    plan = specdsl.check(
        {
            "input": [16],
            "layers": [
                {"repeat": 3, "layers": [{"dense": {"units": "${8 * (index + 1)}", "name": "fc"}}]},
                {"dense": 2},
            ],
        }
    )
    assert [(n.name, n.shape) for n in plan.layers] == [
        ("fc_0", (8,)),
        ("fc_1", (16,)),
        ("fc_2", (24,)),
        ("dense", (2,)),
    ]


def test_repeat_zero_times_is_nothing():
    plan = specdsl.check({"input": [4], "layers": [{"repeat": 0, "layers": [{"dense": 3}]}, {"dense": 2}]})
    assert [n.kind for n in plan.layers] == ["dense"]


def test_block_that_uses_itself():
    with pytest.raises(SpecError, match=r"block `b` uses itself \(b -> b\)"):
        specdsl.check({"input": [4], "blocks": {"b": {"layers": ["b"]}}, "layers": ["b"]})


def test_expressions_are_not_python():
    with pytest.raises(SpecError, match="only numbers, .strings., true/false, parameter names"):
        specdsl.check(
            {"input": [4], "params": {"n": 2}, "layers": [{"dense": "${__import__('os').getcwd()}"}]}
        )


def test_distributions_draw_top_down_and_name_by_path():
    space = {
        "input": [16, 16, 3],
        "params": {"width": {"choice": [8, 16]}},
        "layers": [
            {
                "choice": [
                    {"conv2d": {"filters": "$width", "kernel": 3}},
                    {
                        "repeat": {"int": [1, 3]},
                        "layers": [
                            {"conv2d": {"filters": {"choice": [4, 8], "name": "deep_filters"}, "kernel": 3}}
                        ],
                    },
                ],
                "name": "stem",
            },
            "flatten",
            {"dropout": {"float": [0.0, 0.5]}},
            {"dense": 2},
        ],
    }
    seen_keys = set()
    for seed in range(40):
        spec = load(space, sampler=RandomSampler(seed))
        specdsl.plan(spec)
        keys = set(spec.params)
        seen_keys |= keys
        assert {"params.width", "stem", "layers[2].dropout"} <= keys
        if spec.params["stem"] == "option 0":
            assert "deep_filters" not in keys and "layers[0][1].repeat" not in keys
        else:
            assert {"deep_filters", "layers[0][1].repeat"} <= keys
        assert 0.0 <= spec.params["layers[2].dropout"] <= 0.5
    assert {"deep_filters", "layers[0][1].repeat"} <= seen_keys


def test_malformed_distributions():
    with pytest.raises(SearchError, match=r"`low <= high` must hold, but got \(low=5, high=1\)"):
        load({"input": [4], "layers": [{"dense": {"int": [5, 1]}}]}, sampler=RandomSampler())
    with pytest.raises(SearchError, match=r"`low > 0` must hold for log=true"):
        load(
            {"input": [4], "layers": [{"dropout": {"float": [0.0, 0.5], "log": True}}]},
            sampler=RandomSampler(),
        )
    with pytest.raises(
        SearchError, match=r"unknown key `lg` in a `float` distribution; did you mean `log`\?"
    ):
        load(
            {"input": [4], "layers": [{"dropout": {"float": [0.1, 0.5], "lg": True}}]},
            sampler=RandomSampler(),
        )


def test_round_trip_yaml_json_same_plan():
    for name in ("cifar10_cnn", "resnet50", "alphago_policy"):
        src = (EXAMPLES / f"{name}.yaml").read_text()
        doc = yaml.safe_load(src)
        original = specdsl.check(src)
        again = specdsl.check(yaml.safe_dump(doc))
        via_json = specdsl.check(json.dumps(doc))
        assert names_and_shapes(again) == names_and_shapes(original) == names_and_shapes(via_json)
        assert again.totals() == original.totals() == via_json.totals()


def test_limits_refuse_before_anything_is_allocated():
    with pytest.raises(ShapeError) as e:
        specdsl.check(
            {
                "input": [64, 64, 3],
                "limits": {"max_params": 1_000_000},
                "layers": ["flatten", {"dense": 1000}],
            }
        )
    assert e.value.message.startswith("dense on an input of 12,288 values brings the model to 12,289,000")


def test_sections_are_validated_with_locations():
    with pytest.raises(SpecError) as e:
        specdsl.check("input: [4]\nlayers: [flatten]\ntrain:\n  optimizer: {name: adamm}\n")
    assert str(e.value) == (
        "<string>:4:21: train: `optimizer.name`: input should be 'adam', 'adamw', 'sgd' or 'rmsprop' (got 'adamm'); "
        "did you mean `adam`?"
    )


def test_a_distribution_over_the_whole_document_must_draw_a_mapping():
    with pytest.raises(SpecError) as e:
        load("choice: [null]\n", sampler=RandomSampler(0), file="space.yaml")
    assert str(e.value) == (
        "space.yaml:1:1: holds a null value, not a mapping; a spec is a mapping with `input:` and `layers:`."
    )

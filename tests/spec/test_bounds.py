"""The bounds on what a spec may make the loader do: expanded nodes, nesting, expressions, integers, YAML merges.

Each hostile form is refused before the work it asks for is done, with one located message that gives the numbers.
"""

from __future__ import annotations

import pytest
from support import EXAMPLES

import specdsl
from specdsl import SpecError
from specdsl.spec import (  # the expander's counts, an expression's operations
    MAX_EXPR_OPERATIONS,
    MAX_INT_DIGITS,
    MAX_LAYERS,
    MAX_NESTING,
    _expand,
    _expr,
    from_tree,
    load_text,
)


def refused(source) -> str:
    with pytest.raises(SpecError) as e:
        specdsl.check(source)
    return str(e.value)


@pytest.fixture
def nodes_built(monkeypatch):
    """The most nodes the expander counted in the test (each layer, block use and repeat pass)."""
    seen = [0]
    count = _expand.Expander.count

    def counting(self, loc, path, n=1):
        try:
            count(self, loc, path, n)
        finally:
            seen[0] = max(seen[0], self.nodes)

    monkeypatch.setattr(_expand.Expander, "count", counting)
    return seen


def test_the_bounds_are_the_documented_numbers():
    assert (MAX_LAYERS, MAX_EXPR_OPERATIONS, MAX_NESTING, MAX_INT_DIGITS) == (100_000, 1_000_000, 100, 4_300)
    assert (_expr.MAX_EXPR_CHARS, _expr.MAX_EXPR_DEPTH, _expr.MAX_INT_BITS) == (1_000, 50, 63)


# ------------------------------------------------------------------------------------------------------------
# expanded size


def test_a_huge_repeat_is_refused_before_one_pass(nodes_built):
    text = "input: [8]\nlayers:\n  - repeat: 1000000000\n    layers: [{dense: 4}]\n"
    assert refused(text) == (
        "<string>:3:5: layers[0]: repeat of 1,000,000,000 expands to at least 1,000,000,000 layers; a spec expands "
        "to at most 100,000. Lower the repeat counts, or use fewer blocks."
    )
    assert nodes_built[0] == 0


def test_nested_repeats_multiply_and_are_refused_from_their_counts(nodes_built):
    text = (
        "input: [8]\nlayers:\n  - repeat: 1000\n    layers:\n      - repeat: 1000\n        layers:\n"
        "          - repeat: 1000\n            layers: [{dense: 4}]\n"
    )
    assert refused(text).startswith(
        "<string>:3:5: layers[0]: repeat of 1,000 expands to at least 1,000,000,000 layers; a spec expands to at "
        "most 100,000."
    )
    assert nodes_built[0] == 0


def test_a_count_given_by_a_parameter_is_checked_when_it_is_known(nodes_built):
    doc = {
        "input": [8],
        "params": {"n": 300},
        "layers": [
            {
                "repeat": "$n",
                "layers": [{"repeat": "$n", "layers": [{"repeat": "$n", "layers": ["batchnorm"]}]}],
            },
        ],
    }
    message = refused(doc)
    # each count is known at its repeat's first pass (a body is substituted at its own passes)
    assert message == (
        "<dict>: layers[0].repeat[0].layers[0].repeat[0].layers[0]: repeat of 300 expands to at least 300 layers, "
        "and the repeats around it run it 90,000 times; a spec expands to at most 100,000. Lower the repeat counts, "
        "or use fewer blocks."
    )
    assert nodes_built[0] == 0


def test_blocks_that_double_forty_times_are_refused_from_their_text(nodes_built):
    blocks = {f"b{i}": {"layers": [{"repeat": 2, "layers": [f"b{i + 1}"]}]} for i in range(40)}
    blocks["b40"] = {"layers": [{"dense": 4}]}
    message = refused({"input": [8], "blocks": blocks, "layers": ["b0"]})
    assert message.startswith("<dict>: layers[0]: block `b0` expands to at least 1,099,511,627,776 layers;")
    assert nodes_built[0] == 0


def test_blocks_that_use_the_next_one_twice_without_repeat(nodes_built):
    blocks = {f"b{i}": {"layers": [f"b{i + 1}", f"b{i + 1}"]} for i in range(40)}
    blocks["b40"] = {"layers": ["batchnorm"]}
    assert refused({"input": [8], "blocks": blocks, "layers": ["b0"]}).startswith(
        "<dict>: layers[0]: block `b0` expands to at least 1,099,511,627,776 layers;"
    )
    assert nodes_built[0] == 0


def test_many_layers_in_a_row_are_refused_where_they_pass_the_bound():
    layers = [{"repeat": 1000, "layers": [{"dense": 4}]} for _ in range(120)]
    assert refused({"input": [8], "layers": layers}) == (
        "<dict>: layers: the layers up to here expand to at least 101,000 layers; a spec expands to at most 100,000. "
        "Lower the repeat counts, or use fewer blocks."
    )


def test_empty_passes_count_too(nodes_built):
    doc = {
        "input": [8],
        "layers": [{"repeat": 300_000, "layers": [{"repeat": 0, "layers": ["batchnorm"]}]}, "flatten"],
    }
    assert refused(doc).startswith("<dict>: layers[0]: repeat of 300,000 expands to at least 300,000 layers;")
    assert nodes_built[0] == 0


def test_a_body_whose_size_the_text_does_not_tell_is_stopped_by_the_count(nodes_built):
    # the inner count depends on the pass: only counting sees the total
    doc = {
        "input": [8],
        "layers": [
            {"repeat": 1000, "layers": [{"repeat": "${index * 2}", "layers": ["batchnorm"]}]},
        ],
    }
    assert refused(doc) == (
        "<dict>: layers[0].repeat[316].layers[0]: repeat of 632 expands to at least 632 layers, after the 99,541 "
        "before it; a spec expands to at most 100,000. Lower the repeat counts, or use fewer blocks."
    )
    assert nodes_built[0] == 99_541


@pytest.mark.parametrize("count", [0, "$n"])
def test_the_body_of_a_repeat_of_zero_is_not_read_for_every_pass(monkeypatch, count):
    calls = [0]
    subst = _expand.Expander.subst

    def counting(self, value, *args):
        calls[0] += 1
        return subst(self, value, *args)

    monkeypatch.setattr(_expand.Expander, "subst", counting)
    body = [{"dense": {"units": 4, "name": "x"}}] * 10_000
    doc = {
        "input": [8],
        "params": {"n": 0},
        "layers": [
            {"repeat": 1000, "layers": ["batchnorm", {"repeat": count, "layers": body}]},
            {"dense": 2},
        ],
    }
    assert len(specdsl.check(doc).layers) == 1001
    assert calls[0] < 10_000  # a few per pass, not the 10,000 items of the body each time


def test_each_input_a_layer_reads_counts(nodes_built):
    wide = {"concat": {"inputs": ["input"] * 1000, "name": "c"}}
    doc = {
        "input": [8],
        "layers": [{"repeat": 300, "layers": [wide]}, {"dense": 2, "inputs": "input"}],
        "outputs": ["c_0", "dense"],
    }
    assert refused(doc) == (
        "<dict>: layers[0].repeat[100].layers[0] (concat): the spec expands to more than 100,000 layers by here. "
        "Lower the repeat counts, or use fewer blocks."
    )
    assert (
        nodes_built[0] == 100_001
    )  # 100 passes of 1,000 (the layer and its 999 more inputs), then one layer


def test_each_20_parameters_of_a_block_count_at_each_use(nodes_built):
    params = {f"p{i}": i for i in range(5000)}
    doc = {
        "input": [8],
        "blocks": {"b": {"params": params, "layers": ["batchnorm"]}},
        "layers": [{"repeat": 1000, "layers": [{"b": dict(params)}]}],
    }
    assert refused(doc) == (
        "<dict>: layers[0].repeat[398].layers[0]: the spec expands to more than 100,000 layers by here. Lower the "
        "repeat counts, or use fewer blocks."
    )
    assert nodes_built[0] == 398 * 251 + 250  # 250 for the parameters of each use, 1 for its layer


def test_each_1000_characters_of_a_name_and_path_count(nodes_built):
    blocks = {f"b{i}": {"layers": [{f"b{i + 1}": {"name": "n" * 120 + str(i)}}]} for i in range(97)}
    blocks["b97"] = {"layers": [{"repeat": 49_000, "layers": [{"dense": {"units": 4, "name": "d"}}]}]}
    message = refused({"input": [8], "blocks": blocks, "layers": [{"b0": {"name": "top"}}]})
    assert message == (
        "<dict>: layers[0].b0.layers[0].b1.layers[0].b2.l...repeat[7142].layers[0] (dense): the spec expands to more "
        "than 100,000 layers by here. Lower the repeat counts, or use fewer blocks."
    )


def test_fifty_thousand_layers_by_repeat_and_by_hand_are_far_inside_the_bound(nodes_built):
    plan = specdsl.check(
        {"input": [8], "layers": [{"repeat": 25_000, "layers": [{"dense": 8}, "batchnorm"]}]}
    )
    assert len(plan.layers) == 50_000
    assert nodes_built[0] == 50_000
    assert (
        len(specdsl.check({"input": [8], "layers": [{"repeat": 50_000, "layers": ["batchnorm"]}]}).layers)
        == 50_000
    )
    plan = specdsl.check({"input": [8], "layers": [{"dense": 8}, "batchnorm"] * 25_000})
    assert len(plan.layers) == 50_000
    assert plan.params == 25_000 * (72 + 32)


def test_resnet50_expands_to_a_few_hundred_nodes(nodes_built):
    specdsl.check(EXAMPLES / "resnet50.yaml")
    assert nodes_built[0] < 400


def test_a_search_rejects_a_sample_with_a_huge_repeat_like_any_invalid_sample():
    space = {"input": [8], "layers": [{"repeat": {"int": [500_000, 1_000_000]}, "layers": [{"dense": 4}]}]}

    class Low:
        def int(self, name, low, high, step, log):
            return low

    with pytest.raises(SpecError) as e:
        from_tree(space, "space.yaml", sampler=Low())
    assert type(e.value) is SpecError  # not a SearchError: the sample is invalid, the space is not
    assert e.value.message.startswith("repeat of 500,000 expands to at least 500,000 layers;")


# ------------------------------------------------------------------------------------------------------------
# nesting


def test_a_chain_of_a_thousand_blocks_is_refused_at_the_nesting_bound():
    blocks = {f"b{i}": {"layers": [f"b{i + 1}"]} for i in range(1000)}
    blocks["b1000"] = {"layers": [{"dense": 4}]}
    message = refused({"input": [8], "blocks": blocks, "layers": ["b0"]})
    assert message.endswith(
        "blocks and repeats nest more than 100 levels deep here (blocks b0 -> b1 -> b2 -> ... -> b99 -> b100). Write "
        "the inner blocks' layers out, or repeat them instead of nesting."
    )
    assert message.startswith("<dict>: layers[0].b0.layers[0].b1.layers[0].b2.l...")


def test_a_hundred_levels_of_blocks_are_allowed():
    blocks = {f"b{i}": {"layers": [f"b{i + 1}"]} for i in range(99)}
    blocks["b99"] = {"layers": [{"dense": 4}]}
    assert specdsl.check({"input": [8], "blocks": blocks, "layers": ["b0"]}).output_shape == (4,)


def test_a_block_that_uses_itself_through_others_names_the_cycle():
    blocks = {"a": {"layers": ["b"]}, "b": {"layers": ["c"]}, "c": {"layers": ["b"]}}
    assert refused({"input": [8], "blocks": blocks, "layers": ["a"]}).endswith(
        "block `b` uses itself (b -> c -> b)."
    )


# ------------------------------------------------------------------------------------------------------------
# expressions in specs


@pytest.mark.parametrize(
    "expr, message",
    [
        ("${min(5)}", "`min()` takes two or more numbers, but got one, in `min(5)`."),
        ("${1000000.0**64}", "`1000000.0**64` overflows: its result is too large for a number."),
        (
            "${9 ** 10 ** 18}",
            "`9 ** 10 ** 18` would give an integer of 954,242,509,439,324,929 digits, beyond the bound "
            "of 2**63 on integers in expressions.",
        ),
        (
            "${2 ** 63}",
            "`2 ** 63` gives 9,223,372,036,854,775,808, beyond the bound of 2**63 on integers in expressions.",
        ),
        ("${1e308 * 10}", "`1e308 * 10` gives inf, not a finite number."),
        ("${(-8) ** 0.5}", "`(-8) ** 0.5` has no real value (a negative number to a fractional power)."),
        ("${4 // 0}", "`4 // 0` divides by zero."),
        (
            "${" + "+".join(["1"] * 200_000) + "}",
            "an expression of 399,999 characters is too long; expressions are limited to 1,000 characters.",
        ),
        (
            "${" + "-" * 100_000 + "1}",
            "an expression of 100,001 characters is too long; expressions are limited to 1,000 characters.",
        ),
        (
            "${" + "-" * 60 + "1}",
            "`" + "-" * 57 + "...` nests 60 operations deep; expressions are limited to 50.",
        ),
        (
            "${" + "9" * 999 + "}",
            "`999999999999999999999999999999999999999999999999999999999...` gives an integer of 999 "
            "digits, beyond the bound of 2**63 on integers in expressions.",
        ),
    ],
)
def test_expressions_are_bounded(expr, message):
    assert refused({"input": [8], "layers": [{"dense": expr}]}) == f"<dict>: layers[0] (dense): {message}"


def test_an_expression_repeated_past_the_operations_bound_is_refused_at_its_first_pass():
    wide = "${min(" + ",".join(["index"] * 160) + ") * 0 + 0.5}"
    assert _expr.operations(wide) == 166  # 160 names, min, the product and its 0, the sum and its 0.5
    doc = {"input": [8], "layers": [{"repeat": 6024, "layers": [{"dropout": wide}]}]}  # 999,984 operations
    assert len(specdsl.check(doc).layers) == 6024
    doc["layers"][0]["repeat"] = 6025
    assert refused(doc) == (
        "<dict>: layers[0]: `${min(index,index,index,index,index,index,index,index,ind...` takes 166 operations to "
        "evaluate, and the repeats around it run it 6,025 times; a spec's expressions take at most 1,000,000. "
        "Compute fewer values, or use fewer repeat passes."
    )


def test_a_parameter_squared_through_nested_blocks_stops_at_the_integer_bound():
    blocks = {
        f"s{i}": {"params": {"x": None}, "layers": [{f"s{i + 1}": {"x": "${x * x}"}}]} for i in range(30)
    }
    blocks["s30"] = {"params": {"x": None}, "layers": [{"dense": 4}]}
    assert refused({"input": [8], "blocks": blocks, "layers": [{"s0": {"x": 3}}]}) == (
        "<dict>: layers[0].s0.layers[0].s1.layers[0].s2.layers[0].s3.layers[0].s4.layers[0].s5: `x * x` gives an "
        "integer of 31 digits, beyond the bound of 2**63 on integers in expressions."
    )


def test_a_repeat_count_of_eleven_thousand_digits_is_refused_by_its_length():
    text = 'input: [8]\nlayers:\n  - repeat: "${' + "9" * 11_000 + '}"\n    layers: [{dense: 4}]\n'
    assert refused(text) == (
        "<string>:3:13: layers[0]: an expression of 11,000 characters is too long; expressions are limited to 1,000 "
        "characters."
    )


def test_an_unknown_parameter_lists_twenty_names_at_most():
    params = {f"p{i:04d}": 1 for i in range(5000)}
    message = refused({"input": [8], "params": params, "layers": [{"dense": "${q + 1}"}]})
    assert message == (
        "<dict>: layers[0] (dense): unknown parameter `q` (parameters here: p0000, p0001, p0002, p0003, p0004, "
        "p0005, p0006, p0007, p0008, p0009, p0010, p0011, p0012, p0013, p0014, p0015, p0016, p0017, p0018, p0019 "
        "and 4,980 more)."
    )


def test_thousands_of_parameters_are_not_copied_for_every_pass(nodes_built):
    params = {f"p{i}": i + 1 for i in range(5000)}
    doc = {
        "input": [8],
        "params": params,
        "layers": [{"repeat": 5000, "layers": [{"dense": "${p4999 // 1000 + index % 2}"}]}],
    }
    plan = specdsl.check(doc)
    assert [n.shape for n in plan.layers[:3]] == [(5,), (6,), (5,)]


# ------------------------------------------------------------------------------------------------------------
# integers and merges in the YAML text


def test_an_integer_literal_beyond_python_s_conversion_limit_is_refused_by_its_length():
    assert refused("input: [8]\nlayers:\n  - dense: " + "9" * 5000 + "\n") == (
        "<string>:3:12: an integer of 5,000 digits; integers in a spec have at most 4,300 digits."
    )
    assert refused("input: [8]\nlayers:\n  - dense: 1" + ":0" * 3000 + "\n").startswith(
        "<string>:3:12: an integer of 6,001 digits;"
    )


def test_an_integer_of_4300_digits_reaches_the_field_bound():
    assert refused("input: [8]\nlayers:\n  - dense: " + "9" * 4300 + "\n").startswith(
        "<string>:3:5: layers[0] (dense): `units`: input should be less than or equal to 2147483647 (got 9999"
    )


def test_a_repeat_count_beyond_its_type_is_quoted_by_its_digits():
    assert refused({"input": [8], "layers": [{"repeat": -(10**40), "layers": ["batchnorm"]}]}) == (
        "<dict>: layers[0]: `repeat` takes a count >= 0, but got an integer of 41 digits."
    )


def test_merge_keys_are_overridden_by_the_keys_written_beside_them():
    doc = load_text(
        "base: &base {units: 4, activation: relu}\n"
        "one: {<<: *base, units: 8}\n"
        "two: {<<: [*base, {units: 9, use_bias: false}], name: x}\n",
        "m.yaml",
    )
    assert doc["one"] == {"units": 8, "activation": "relu"}
    assert (doc["one"].key_locs["units"].line, doc["one"].key_locs["activation"].line) == (2, 1)
    assert doc["two"] == {"name": "x", "units": 4, "activation": "relu", "use_bias": False}


def test_a_spec_using_merge_and_override_plans():
    text = (
        "input: [8, 8, 1]\nlayers:\n  - conv2d: &conv {filters: 8, kernel: 3, padding: same}\n"
        "  - conv2d: {<<: *conv, filters: 16}\n  - conv2d: {<<: *conv, kernel: 1}\n"
    )
    plan = specdsl.check(text)
    assert [(n.shape, n.params) for n in plan.layers] == [
        ((8, 8, 8), 80),
        ((8, 8, 16), 1168),
        ((8, 8, 8), 136),
    ]


def test_a_real_duplicate_beside_a_merge_is_still_refused():
    assert (
        refused("a: &a {x: 1}\nb: {<<: *a, y: 2, y: 3}\n")
        == "<string>:2:19: duplicate key `y` (first at line 2)."
    )


@pytest.mark.parametrize(
    "value, got", [("5", "`5`"), ("[1, 2]", "`1`"), ("[[1]]", "a list"), ("hello", "`hello`")]
)
def test_a_merge_key_takes_mappings(value, got):
    message = refused(f"input: [8]\nlayers:\n  - dense: {{<<: {value}, units: 4}}\n")
    assert message.endswith(
        f"a merge key `<<` takes a mapping (such as `*base`) or a list of mappings, but got {got}."
    )


# ------------------------------------------------------------------------------------------------------------
# names, shapes and sizes


@pytest.mark.parametrize(
    "layer",
    [
        {"dense": {"units": 2, "name": "input"}},
        {"repeat": 2, "name": "input", "layers": [{"dense": 2}]},
    ],
)
def test_input_is_a_reserved_name(layer):
    assert refused({"input": [8], "layers": [layer]}).endswith(
        "name `input` is reserved for the model's input (inside a block, for the block's input); choose another name."
    )


def test_a_reshape_has_at_most_eight_axes():
    text = "input: [8]\nlayers:\n  - reshape: [" + ", ".join(["2147483647"] * 600) + "]\n"
    assert refused(text) == (
        "<string>:3:5: layers[0] (reshape): `shape`: list should have at most 8 items after validation, not 600."
    )


def test_layers_written_alike_share_one_validated_model_and_stay_apart_by_type():
    plan = specdsl.check(
        {
            "input": [8],
            "layers": [
                {"dense": 4},
                {"dense": 4},
                {"dropout": 0.0},
                {"dropout": -0.0},
                {"dense": {"units": 4, "use_bias": False}},
            ],
        }
    )
    a, b, c, d, e = (n.layer for n in plan.layers)
    assert a is b and a.units == 4
    assert c is not d
    assert e.use_bias is False and e is not a
    with pytest.raises(SpecError, match=r"`units`: input should be a valid integer \(got True\)"):
        specdsl.check({"input": [8], "layers": [{"dense": 1}, {"dense": True}]})

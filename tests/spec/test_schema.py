"""The JSON Schema (``specdsl schema``) against what ``validate`` takes and refuses: every example, search space,
layer case and document example is valid under it; every bad input refused for its structure is refused by it
too, and the ones it cannot refuse are listed with the reason; every kind and alias of the registry is in it,
with its description and examples."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from layer_cases import CASES
from support import ROOT, SEARCH_SPACES, example_files

from specdsl.errors import SpecdslError
from specdsl.spec import LAYERS, SECTIONS, json_schema, load_file, load_text

SCHEMA = json_schema()
KEYS = {*LAYERS, *(alias for info in LAYERS.values() for alias in info.aliases)}  # what may name a kind
VALIDATOR = Draft202012Validator(SCHEMA)
BAD = ROOT / "tests" / "bad_inputs"
DOC = ROOT / "docs" / "language.md"

# Files the YAML reader refuses before any schema could apply (an editor's YAML parser flags them itself).
NOT_A_TREE = {
    "alias_bomb.yaml": "more than 200,000 values once aliases are expanded",
    "binary.yaml": "not text",
    "deep_nesting.yaml": "nests deeper than 64 levels",
    "duplicate_key.yaml": "a duplicate key (a JSON Schema sees one mapping, its last value)",
    "empty.yaml": "no document",
    "invalid_yaml.yaml": "not YAML",
    "merge_duplicate_key.yaml": "a duplicate key through a merge",
    "not_utf8.yaml": "not UTF-8",
    "python_tag.yaml": "a Python tag",
    "two_documents.yaml": "two documents",
    "utf16.yaml": "not UTF-8",
}
# Files refused for what a JSON Schema cannot state: shapes and sizes, names and what they refer to, what an
# expression gives, a relation between two values, the bounds on what a spec expands to.
SEMANTIC = {
    "add_mismatch.yaml": "shapes: the inputs of add differ",
    "all_invalid_space.yaml": "shapes: every sampled architecture fails to plan",
    "bad_distribution.yaml": "a relation between two values: low <= high",
    "batchnorm_axis.yaml": "shapes: batchnorm's axis against its input's rank (3 is an image's channels)",
    "catsdogs_winning_64.yaml": "shapes: a kernel larger than its input",
    "concat_mismatch.yaml": "shapes: the inputs of concat differ",
    "conditional_compares_string_with_number.yaml": "an expression's value",
    "conv1d_dilation.yaml": "shapes: a kernel larger than its input",
    "cropping_too_large.yaml": "shapes: a crop that leaves nothing of its input",
    "cycle.yaml": "names: an input names a layer below",
    "dangling_name.yaml": "names: an input names no layer",
    "duplicate_name.yaml": "names: two layers of one name",
    "expression_too_large.yaml": "an expression's value",
    "group_norm_groups.yaml": "shapes: groups that do not divide the input's channels",
    "grid_too_large.yaml": "the grid's size, a product over every distribution",
    "grid_without_step.yaml": "a rule between `search.sampler` and the distributions",
    "huge_dense.yaml": "sizes: the parameter count",
    "input_height_of_a_vector.yaml": "shapes: an expression reads the height of a vector",
    "keras_strided_dilation.yaml": "a rule between strides, dilation and `train.backend`: the backend's limits",
    "kernel_too_large.yaml": "shapes: a kernel larger than its input",
    "kernel_too_large_no_pooling.yaml": "shapes: a kernel larger than its input",
    "multiply_no_broadcast.yaml": "shapes: inputs of multiply that do not broadcast",
    "prev_outside_a_repeat.yaml": "names: `prev` outside a repeat",
    "repeat_too_large.yaml": "the bound on what a spec expands to",
    "unknown_block_param.yaml": "names: a block's use against the block's parameters",
    "unknown_param_ref.yaml": "names: a reference to no parameter",
    "unused_branch.yaml": "the graph: a layer nobody reads",
}


def one_key_form(name: str = "layer") -> dict:
    """The form ``{kind: {arguments}}`` of a layer item."""
    (form,) = [f for f in SCHEMA["$defs"][name]["anyOf"][0]["anyOf"] if f.get("maxProperties") == 1]
    return form


def errors(tree) -> list:
    return list(VALIDATOR.iter_errors(tree))


def leaves(found) -> set[tuple[str, str]]:
    """(path, message) of every error at the bottom of the tree of errors (inside each `anyOf`)."""
    out: set[tuple[str, str]] = set()
    for e in found:
        out |= leaves(e.context) if e.context else {(e.json_path, e.message)}
    return out


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    "path",
    [*example_files(), *sorted(SEARCH_SPACES.glob("*.yaml"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_example_and_search_space_is_valid(path):
    assert errors(load_file(path)) == []


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_layer_case_is_valid(kind):
    for case in CASES[kind]:
        assert errors(case) == [], case


def test_every_example_of_the_language_document_that_plans_is_valid():
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(
        r"^```yaml\n(.*?)^```\n\n*\*\*(Plan|Plan at the lowest draw|Refused|Warns):\*\*", text, re.S | re.M
    )
    planned = [body for body, claim in found if claim != "Refused"]  # one that warns validates
    assert len(planned) >= 13  # of 22 examples today
    for body in planned:
        assert errors(load_text(body, "example.yaml")) == [], body


def test_the_bad_inputs_are_classified():
    files = {p.name for p in BAD.iterdir() if p.name != "expected.yaml"}
    assert set(NOT_A_TREE) <= files and set(SEMANTIC) <= files
    for name in sorted(NOT_A_TREE):
        with pytest.raises(SpecdslError):
            load_file(BAD / name)


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.iterdir() if p.name != "expected.yaml"))
def test_every_bad_input_refused_for_its_structure_is_refused_by_the_schema(name):
    if name in NOT_A_TREE:
        pytest.skip(f"the YAML reader refuses it: {NOT_A_TREE[name]}")
    tree = load_file(BAD / name)
    if name in SEMANTIC:  # listed so that a schema that learns to refuse one moves it out of the list
        assert errors(tree) == [], f"{name} is refused now: take it out of SEMANTIC"
    else:
        assert errors(tree) != [], f"{name}: the schema takes it; refuse it, or list it in SEMANTIC with why"


SPEC = "input: [8, 8, 3]\nlayers:\n  - {layer}\n"


def test_an_unknown_kind_is_refused_where_the_spec_has_no_blocks():
    found = errors(load_text(SPEC.format(layer="conv3d: {filters: 8}"), "x.yaml"))
    assert ("$.layers[0]", "Additional properties are not allowed ('conv3d' was unexpected)") in leaves(found)
    # with blocks, a one-key item may be a block's use: whether the block exists, validate says
    with_blocks = SPEC.format(layer="conv3d: {filters: 8}") + "blocks: {stage: {layers: [flatten]}}\n"
    assert errors(load_text(with_blocks, "x.yaml")) == []
    refused = (
        SPEC.format(layer="conv2d: {filters: 8, kernel: 3, padding: full}")
        + "blocks: {b: {layers: [flatten]}}\n"
    )
    assert (
        best_match(errors(load_text(refused, "x.yaml"))).message == "'full' is not one of ['valid', 'same']"
    )


def test_an_unknown_argument_is_refused():
    found = errors(load_text(SPEC.format(layer="conv2d: {filters: 8, kernel: 3, colour: red}"), "x.yaml"))
    assert (
        "$.layers[0].conv2d",
        "Additional properties are not allowed ('colour' was unexpected)",
    ) in leaves(found)
    tagged = errors(
        load_text(SPEC.format(layer="{kind: conv2d, filters: 8, kernel: 3, colour: red}"), "x.yaml")
    )
    assert ("$.layers[0]", "Additional properties are not allowed ('colour' was unexpected)") in leaves(
        tagged
    )


def test_a_value_not_among_the_choices_is_refused():
    e = best_match(
        errors(load_text(SPEC.format(layer="conv2d: {filters: 8, kernel: 3, padding: full}"), "x.yaml"))
    )
    assert (e.json_path, e.message) == (
        "$.layers[0].conv2d.padding",
        "'full' is not one of ['valid', 'same']",
    )


def test_a_number_out_of_range_is_refused():
    e = best_match(errors(load_text(SPEC.format(layer="conv2d: {filters: -1, kernel: 3}"), "x.yaml")))
    assert (e.json_path, e.message) == ("$.layers[0].conv2d.filters", "-1 is less than the minimum of 1")


@pytest.mark.parametrize(
    "layer, valid",
    [
        (
            "{kind: max_pooling2d, pool_size: 2}",
            True,
        ),  # an alias, in the tagged form, with Keras' argument name
        ("conv2d: {filters: 8, kernel_size: 3, stride: 2}", True),
        ("conv2d: {filters: 8, kernel: 3, kernel_size: 3}", False),  # one argument under two names
        ("conv2d", False),  # a kind with required arguments does not stand alone
        ("add", False),  # nor one that reads two inputs
        ("add: {inputs: [input]}", False),
        ("conv2d: {filters: '${8 * 2}', kernel: $k, padding: \"${'same' if k == 3 else 'valid'}\"}", True),
        ("conv2d: {filters: 8, kernel: 3, name: 'c_${k}'}", True),
        ("conv2d: {filters: 8, kernel: 3, name: input}", False),  # reserved
        ("conv2d: {filters: {choice: [8, 16]}, kernel: [{int: [1, 3]}, 3]}", True),
        ("conv2d: {filters: {choice: [8, many]}, kernel: 3}", False),  # each option a value of the place
        ("conv2d: {filters: {float: [8, 16]}, kernel: 3}", False),  # a float where an integer stands
        ("conv2d: {filters: 8, kernel: 3, padding: {int: [0, 2]}}", True),
        ("dense: {units: {choice: [8, 16], log: true}}", False),  # log applies to ranges only
        ("{choice: [flatten, global_avgpool2d], name: head}", True),
        ("repeat: {int: [1, 3]}\n    layers: [{dense: 4}]", True),
        ("repeat: -1\n    layers: [{dense: 4}]", False),
    ],
)
def test_references_distributions_and_forms(layer, valid):
    tree = load_text(
        SPEC.format(layer=layer).replace("input: [8, 8, 3]\n", "input: [8, 8, 3]\nparams: {k: 3}\n")
    )
    assert (errors(tree) == []) is valid


def test_sections_take_distributions_and_no_references():
    def train(section: str) -> list:
        return errors(load_text(f"input: [8]\nlayers: [{{dense: 2}}]\ntrain: {section}\n"))

    assert (
        train("{optimizer: {name: adam, lr: {float: [0.001, 0.1], log: true}}, epochs: {int: [1, 3]}}") == []
    )
    assert ("$.train.epochs", "'$e' is not of type 'integer'") in leaves(train("{epochs: $e}"))
    e = best_match(train("{optimizer: {name: adam, lrr: 0.1}}"))
    assert e.message == "Additional properties are not allowed ('lrr' was unexpected)"


def test_every_kind_and_alias_is_described_with_examples():
    defs = SCHEMA["$defs"]
    one_key = one_key_form()["properties"]
    assert set(one_key) == KEYS
    tagged = {k for form in defs["layer.tagged"]["anyOf"] for k in form["properties"]["kind"]["enum"]}
    assert tagged == KEYS
    for name, info in LAYERS.items():
        kind = defs[f"kind.{name}"]
        assert kind["description"].splitlines()[0] == info.model.__doc__.strip().splitlines()[0]
        assert kind["examples"], name
        for example in kind["examples"]:  # each example a valid layer in the schema and for the model
            assert errors({"input": [8, 8, 3], "layers": [{name: example}]}) == [], (name, example)
            args = {info.primary: example} if not isinstance(example, dict) else example
            info.model.model_validate(args)
    assert defs["kind.conv2d"]["examples"] == [
        {"filters": 64, "kernel": 3, "strides": 2, "padding": "same", "activation": "relu"}
    ]
    assert one_key["max_pooling2d"]["description"] == "Another name of `maxpool2d`."
    assert (
        defs["kind.conv2d"]["anyOf"][0]["anyOf"][0]["properties"]["kernel_size"]["description"]
        == "Keras' spelling of `kernel`."
    )


def test_every_top_key_and_section_is_described_with_an_example():
    for key, prop in SCHEMA["properties"].items():
        assert prop.get("description"), key
    for key in ("input", "params", "blocks", "layers", "outputs", *SECTIONS):
        (example,) = SCHEMA["properties"][key]["examples"][:1]
        assert errors({"input": [8], "layers": [{"dense": 2}], key: example}) == [], key
    for name in ("repeat", "block", "repeat.with_blocks"):
        assert SCHEMA["$defs"][name]["description"] and SCHEMA["$defs"][name]["examples"]


def test_a_kind_registered_later_is_in_the_schema():
    code = (
        "from typing import Literal\n"
        "from specdsl.spec import LayerSpec, register_layer, json_schema\n"
        "@register_layer('swirl', keras_class='Swirl', aliases=('swirl2d',), primary='turns')\n"
        "class Swirl(LayerSpec):\n"
        "    '''Swirls the image.\n\n    - swirl: 3\n    '''\n"
        "    kind: Literal['swirl'] = 'swirl'\n"
        "    turns: int = 1\n"
        "s = json_schema()\n"
        "print(sorted(k for k in s['$defs']['layer']['anyOf'][0]['anyOf'][1]['properties'] if k.startswith('swirl')),"
        " s['$defs']['kind.swirl']['examples'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "['swirl', 'swirl2d'] [3]"


def test_the_schema_is_deterministic_and_sorted():
    runs = [
        subprocess.run(
            [sys.executable, "-m", "specdsl", "schema"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0] == json.dumps(json.loads(runs[0]), indent=2, sort_keys=True) + "\n"
    assert json.loads(runs[0]) == json.loads(json.dumps(SCHEMA))

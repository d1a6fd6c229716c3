"""Property tests of the spec language and the plan (no framework needed).

Anything at all, as a document or as bytes, gives a plan or one of the project's own located errors, never
another exception. Long runs: `pytest tests/fuzz --hypothesis-profile=long`.
"""

from __future__ import annotations

import json

import yaml
from hypothesis import given
from hypothesis import strategies as st
from strategies import documents, graph_spec, sequential_spec

import specdsl
from specdsl import ShapeError, SpecdslError
from specdsl.spec import load_text


def _check_or_located_error(source, file=None):
    try:
        return specdsl.check(source)
    except SpecdslError as e:
        assert e.loc is not None, e
        text = str(e)
        assert "\n" not in text and text.strip() == text
        return None


@given(documents)
def test_any_document_gives_a_plan_or_a_located_error(doc):
    _check_or_located_error({"input": [8, 8, 2], "layers": doc} if not isinstance(doc, dict) else doc)


@given(documents)
def test_any_document_as_yaml_text(doc):
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    _check_or_located_error(text + "\n")


@given(st.binary(max_size=300))
def test_any_bytes(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        load_text(text, "fuzz.yaml")
    except SpecdslError as e:
        assert e.loc is not None and e.loc.file == "fuzz.yaml"


@given(sequential_spec())
def test_sequential_specs_plan_or_fail_with_shape_errors(spec):
    try:
        plan = specdsl.check(spec)
    except ShapeError as e:
        assert e.loc is not None and e.path.startswith("layers[")
        return
    assert plan.params == plan.trainable + plan.non_trainable
    assert all(d > 0 for n in plan.nodes for d in n.shape)
    # round trips: YAML text and JSON text plan identically
    assert specdsl.check(yaml.safe_dump(spec)).totals() == plan.totals()
    assert specdsl.check(json.dumps(spec)).totals() == plan.totals()


@given(graph_spec())
def test_graph_specs(spec):
    plan = specdsl.check(spec)
    merge = plan.nodes[5]
    a, b = plan["a"].shape, plan["b_bn"].shape
    assert a == b
    assert merge.shape == (a if merge.kind != "concat" else (*a[:2], a[2] * 2))

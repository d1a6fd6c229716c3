"""Warnings by code: a layer silences the ones it means, an unknown code is a located error, --strict names the
warnings that fail a file, and `validate examples/` prints nothing but its results."""

from __future__ import annotations

import json

import pytest
from support import EXAMPLES, example_files
from typer.testing import CliRunner

import specdsl
from specdsl import SpecError
from specdsl.cli import app
from specdsl.spec import WARNINGS

runner = CliRunner()
FLOOR = (
    "stride 2x2 over 8x8 leaves out the last 1 row and the last 1 column of the input (floor in the output size). "
    "Use padding: same to keep them, or `silence: [drops-rows]` on the layer where the floor is meant."
)


def _spec(**conv) -> dict:
    return {"input": [8, 8, 2], "layers": [{"conv2d": {"filters": 2, "kernel": 3, "strides": 2, **conv}}]}


def test_a_warning_has_its_code_and_a_layer_silences_it():
    (w,) = specdsl.check(_spec()).warnings
    assert (w.code, w.message, w.path) == ("drops-rows", FLOOR, "layers[0] (conv2d)")
    assert str(w) == f"<dict>: layers[0] (conv2d): warning [drops-rows]: {FLOOR}"
    assert specdsl.check(_spec(silence=["drops-rows"])).warnings == []
    # silencing another code leaves this one
    assert [w.code for w in specdsl.check(_spec(silence=["keras-strided-dilation"])).warnings] == [
        "drops-rows"
    ]


def test_every_code_is_documented():
    assert WARNINGS == {
        "drops-rows": "a stride leaves out the input's last rows, columns or values (floor in the output size)",
        "keras-strided-dilation": (
            "Keras' Conv1D, Conv2D and Conv2DTranspose refuse strides > 1 with dilation > 1"
        ),
    }


def test_an_unknown_code_is_a_located_error(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("input: [8, 8, 2]\nlayers:\n  - conv2d: {filters: 2, kernel: 3, silence: [drop-rows]}\n")
    with pytest.raises(SpecError) as e:
        specdsl.check(f)
    assert str(e.value) == (
        f"{f}:3:47: layers[0] (conv2d): `silence[0]`: unknown warning code `drop-rows`; did you mean "
        "`drops-rows`? Codes: drops-rows, keras-strided-dilation."
    )


def test_strict_names_the_warnings_that_fail_it(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(
        "input: [8, 8, 2]\nlayers:\n  - conv2d: {filters: 2, kernel: 3, strides: 2}\n  - maxpool2d: 2\n"
    )
    ok = runner.invoke(app, ["validate", str(f)])
    assert ok.exit_code == 0
    strict = runner.invoke(app, ["validate", "--strict", str(f)])
    assert strict.exit_code == 2
    assert strict.stdout == ""
    assert strict.stderr.splitlines()[-1] == (
        f"error: {f}: --strict fails it for 2 warnings: [drops-rows] at 3:5 layers[0] (conv2d); "
        "[drops-rows] at 4:5 layers[1] (maxpool2d). Fix them, or write `silence: [drops-rows]` on each layer "
        "that means it."
    )
    doc = json.loads(runner.invoke(app, ["validate", "--strict", "--format", "json", str(f)]).stdout)
    assert doc["invalid"] == 1 and doc["files"][0]["ok"] is False
    assert [(w["code"], w["line"], w["col"]) for w in doc["files"][0]["warnings"]] == [
        ("drops-rows", 3, 5),
        ("drops-rows", 4, 5),
    ]
    github = runner.invoke(app, ["validate", "--strict", "--format", "github", str(f)])
    assert github.stdout.splitlines()[0].startswith(
        f"::error file={f},line=3,col=5::layers[0] (conv2d): [drops-rows]"
    )


def test_validate_examples_prints_only_its_results():
    result = runner.invoke(app, ["validate", str(EXAMPLES), "--strict"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(example_files()) + 1
    assert all(line.startswith("ok ") for line in lines[:-1])
    assert lines[-1] == f"{len(example_files())} valid, 0 invalid"


POOLS = "input: [9, 9, 1]\nlayers:\n  - maxpool2d: 2\n  - maxpool2d: {pool: 2, silence: [keras-strided-dilation]}\n"


def _codes(plan) -> list[tuple[str, str]]:
    return [(w.path, w.code) for w in plan.warnings]


def _silenced(use: dict) -> dict:
    """The use with ``silence: [drops-rows]`` (a repeat's beside its keys, a block's or backbone's in its mapping)."""
    (head,) = [k for k in use if k != "layers"]
    if head == "repeat":
        return {**use, "silence": ["drops-rows"]}
    return {head: {**(use[head] or {}), "silence": ["drops-rows"]}}


@pytest.mark.parametrize(
    ("use", "path"),
    [
        ({"pools": None}, "layers[0].pools.layers[0] (maxpool2d)"),
        ({"repeat": 2, "layers": [{"maxpool2d": 2}]}, "layers[0].repeat[0].layers[0] (maxpool2d)"),
        ({"backbone": {"spec": "pools.yaml"}}, "layers[0].pools.layers[0] (maxpool2d)"),
    ],
    ids=["block", "repeat", "backbone"],
)
def test_a_block_use_a_repeat_and_a_backbone_use_silence_every_layer_inside_them(tmp_path, use, path):
    """``silence:`` on a use passes on to each layer inside it, besides the codes a layer silences itself."""
    (tmp_path / "pools.yaml").write_text(POOLS)
    block = {"pools": {"layers": [{"maxpool2d": 2}, {"conv2d": {"filters": 1, "kernel": 2, "strides": 2}}]}}
    spec = tmp_path / "uses.yaml"
    spec.write_text(json.dumps({"input": [9, 9, 1], "blocks": block, "layers": [use]}))
    assert _codes(specdsl.check(spec)) == [(path, "drops-rows")]
    spec.write_text(json.dumps({"input": [9, 9, 1], "blocks": block, "layers": [_silenced(use)]}))
    plan = specdsl.check(spec)
    assert _codes(plan) == []
    silenced = [sorted(n.layer.silence or ()) for n in plan.nodes if n.kind == "maxpool2d"]
    assert silenced[0] == ["drops-rows"]
    if "backbone" in use:  # the backbone's own layer keeps its code beside the one passed on
        assert silenced[1] == ["drops-rows", "keras-strided-dilation"]


@pytest.mark.parametrize(
    ("silence", "col", "message"),
    [
        (
            "[drop-rows]",
            22,
            "`silence[0]` of a block use: unknown warning code `drop-rows`; did you mean `drops-rows`? Codes: "
            "drops-rows, keras-strided-dilation.",
        ),
        (
            "drops-rows",
            21,
            "`silence` of a block use takes a list of warning codes, but got 'drops-rows'. Write e.g. "
            "`silence: [drops-rows]`. Codes: drops-rows, keras-strided-dilation.",
        ),
    ],
)
def test_a_bad_silence_on_a_use_is_a_located_error(tmp_path, silence, col, message):
    f = tmp_path / "m.yaml"
    f.write_text(
        "input: [9, 9, 1]\nblocks:\n  pool: {layers: [maxpool2d: 2]}\nlayers:\n"
        f"  - pool: {{silence: {silence}}}\n  - flatten\n"
    )
    with pytest.raises(SpecError) as e:
        specdsl.check(f)
    assert str(e.value) == f"{f}:5:{col}: layers[0]: {message}"

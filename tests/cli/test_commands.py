"""validate / summary / schema as a user runs them: exit codes, exact output, stored summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import EXAMPLES, example_files
from typer.testing import CliRunner

import specdsl
from specdsl.cli import app

SUMMARIES = Path(__file__).resolve().parent / "summaries"
REGEN = os.environ.get("SPECDSL_REGEN") == "1"
runner = CliRunner()


def test_validate_examples_folder():
    result = runner.invoke(app, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    n = len(example_files())
    assert f"{n} valid, 0 invalid" in result.stdout
    assert (
        "ok " in result.stdout
        and "cifar10_cnn, 1,345,066 params (1,343,146 trainable), output (10)" in result.stdout
    )


def test_validate_mixed_json(tmp_path):
    good = EXAMPLES / "mnist_cnn.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [8, 8, 1]\nlayers:\n  - maxpool2d: 4\n  - conv2d: {filters: 2, kernel: 3}\n")
    result = runner.invoke(app, ["validate", str(good), str(bad), "--format", "json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["invalid"] == 1
    ok, err = doc["files"]
    assert ok["ok"] and ok["params"] == 203_434 and ok["output_shape"] == [10]
    assert err["error"] == {
        "kind": "ShapeError",
        "file": str(bad),
        "line": 4,
        "col": 5,
        "path": "layers[1] (conv2d)",
        "message": "kernel 3x3 does not fit its 2x2x1 input with padding=valid (output would be 0x0).",
        "hint": "Use padding: same, or drop a pooling layer before it.",
    }


def test_validate_github_annotations(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [9, 9, 1]\nlayers:\n  - maxpool2d: 2\n  - conv2d: {filters: 2, kernel: 5}\n")
    result = runner.invoke(app, ["validate", str(bad), "--format", "github"])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"::error file={bad},line=4,col=5::{bad}:4:5: layers[1] (conv2d): kernel 5x5 does not fit its 4x4x1 input "
        "with padding=valid (output would be 0x0). Use padding: same, or drop a pooling layer before it."
    ]


def test_validate_warns_on_floor_and_strict_fails(tmp_path):
    spec = tmp_path / "odd.yaml"
    spec.write_text("input: [9, 9, 1]\nlayers:\n  - maxpool2d: 2\n  - flatten\n")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0
    assert result.stderr.strip() == (
        f"{spec}:3:5: layers[0] (maxpool2d): warning [drops-rows]: stride 2x2 over 9x9 leaves out the last 1 row "
        "and the last 1 column of the input (floor in the output size). Use padding: same to keep them, or "
        "`silence: [drops-rows]` on the layer where the floor is meant."
    )
    assert runner.invoke(app, ["validate", str(spec), "--strict"]).exit_code == 2


def test_validate_nothing_to_check(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "no spec files" in result.stderr


def test_validate_missing_file(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file."


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_summary_text_matches_stored(path):
    result = runner.invoke(app, ["summary", str(path), "--format", "text"])
    assert result.exit_code == 0, result.output
    stored = SUMMARIES / f"{path.stem}.txt"
    if REGEN or not stored.exists():
        stored.write_text(result.stdout)
        if not REGEN:
            pytest.fail(f"wrote {stored}; check it and commit it")
    assert result.stdout == stored.read_text()


def test_summary_table_has_keras_rows_and_totals():
    result = runner.invoke(app, ["summary", str(EXAMPLES / "cifar10_cnn.yaml")])
    assert result.exit_code == 0
    text = result.stdout
    assert "conv2d (Conv2D)" in text and "(None, 32, 32, 32)" in text and "896" in text
    assert "Total params: 1,345,066 (5.1 MiB)" in text
    assert "Trainable params: 1,343,146" in text
    assert "Non-trainable params: 1,920" in text


def test_summary_json_totals():
    result = runner.invoke(app, ["summary", str(EXAMPLES / "resnet50.yaml"), "--format", "json"])
    doc = json.loads(result.stdout)
    assert doc["totals"]["params"] == 25_636_712
    assert doc["totals"]["non_trainable"] == 53_120
    assert doc["layers"][0]["type"] == "InputLayer"
    assert sum(r["params"] for r in doc["layers"]) == 25_636_712


def test_summary_of_a_search_space_says_so(tmp_path):
    spec = tmp_path / "space.yaml"
    spec.write_text("input: [8, 8, 1]\nlayers:\n  - conv2d: {filters: {choice: [4, 8]}, kernel: 3}\n")
    result = runner.invoke(app, ["summary", str(spec)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {spec}:3:23: layers[0].conv2d.filters: a search distribution (`choice`) stands where a value is "
        "needed. This file is a search space: run it with `specdsl search`, or give a single value."
    )


def test_schema_lists_every_kind_and_section(tmp_path):
    out = tmp_path / "schema.json"
    result = runner.invoke(app, ["schema", "-o", str(out)])
    assert result.exit_code == 0
    schema = json.loads(out.read_text())
    (one_key,) = [f for f in schema["$defs"]["layer"]["anyOf"][0]["anyOf"] if f.get("maxProperties") == 1]
    aliases = {a for info in specdsl.spec.LAYERS.values() for a in info.aliases}
    assert set(one_key["properties"]) == set(specdsl.spec.LAYERS) | aliases
    assert {"data", "train", "search", "limits", "layers", "blocks"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_schema_kinds_prints_the_reference_of_every_kind():
    result = runner.invoke(app, ["schema", "--kinds"])
    assert result.exit_code == 0
    assert result.stdout == specdsl.spec.kinds_reference()
    headings = [line[4:-1] for line in result.stdout.splitlines() if line.startswith("## `")]
    assert headings == list(specdsl.spec.LAYERS)
    assert (
        "## `conv2d`\n\nKeras `Conv2D`; aliases `convolution2d`, `Conv2D`; main argument `filters`.\n\n2-D convolution."
        in (result.stdout)
    )
    assert "| `rate` | required |  |" in result.stdout


def test_every_layer_kind_has_a_docstring():
    """The reference is made from the registry: each kind's model says what the kind computes."""
    assert [
        name for name, info in specdsl.spec.LAYERS.items() if not (info.model.__doc__ or "").strip()
    ] == []


def test_schema_validates_examples_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    for path in example_files():
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_light_commands_import_no_framework(tmp_path):
    code = (
        "import sys\n"
        "from specdsl.cli import app\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(app, ['validate', {str(EXAMPLES)!r}]); assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['summary', {str(EXAMPLES / 'resnet50.yaml')!r}]); assert r.exit_code == 0\n"
        "r = CliRunner().invoke(app, ['schema']); assert r.exit_code == 0\n"
        "heavy = sorted(m for m in ('torch', 'keras', 'optuna', 'mlflow', 'numpy') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"

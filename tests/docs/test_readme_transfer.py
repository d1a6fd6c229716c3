"""The README's transfer-learning walk-through: its spec validates (the stages' unfreeze included) and plans to the
counts the README states beside it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from specdsl.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_walk_through_spec_plans_to_the_counts_the_readme_states(tmp_path):
    text = README.read_text(encoding="utf-8")
    spec = text.split("# catsdogs_vgg16.yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "catsdogs_vgg16.yaml").write_text(spec, encoding="utf-8")
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "catsdogs_vgg16.yaml")])
    assert r.exit_code == 0, r.output
    assert "catsdogs_vgg16, 16,812,353 params (2,097,665 trainable), output (1)" in r.output
    assert "16,812,353 params, 14,714,688 of them non-trainable (the frozen base)" in text

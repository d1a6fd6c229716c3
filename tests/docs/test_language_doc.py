"""docs/language.md, as its readers use it: every YAML example in it is a whole spec that validates and plans to
the numbers the line under it states (``**Plan:**``), or, for a search space, does so at its lowest draw
(``**Plan at the lowest draw:**``), or is refused with the message stated (``**Refused:**``), or validates with
the warnings stated (``**Warns:**``), as ``specdsl validate example.yaml`` prints them. The kinds the document
names exist, and it names every section and distribution the language has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import specdsl
from specdsl.cli import app
from specdsl.plan import fmt
from specdsl.spec import DIST_KINDS, LAYERS, SECTIONS, canonical_kind

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
TEXT = DOC.read_text(encoding="utf-8")
FENCE = re.compile(r"^```yaml\n(.*?)^```\n", re.S | re.M)
CLAIM = re.compile(r"\n*\*\*(Plan|Plan at the lowest draw|Refused|Warns):\*\* (.*)\n")
PLAN = re.compile(
    r"([\d,]+) parameters \(([\d,]+) non-trainable\), output ([\dx]+), (\d+) layers(?:; (\d+) distributions drawn)?\.\Z"
)


class Lowest:
    """Draws the first option of every choice and the low end of every range."""

    def choice(self, name, options):
        return 0

    def int(self, name, low, high, step, log):
        return low

    def float(self, name, low, high, step, log):
        return low


def examples():
    found = []
    for m in FENCE.finditer(TEXT):
        line = TEXT.count("\n", 0, m.start()) + 1
        claim = CLAIM.match(TEXT, m.end())
        found.append(
            pytest.param(m.group(1), claim and claim.group(1), claim and claim.group(2), id=f"line{line}")
        )
    return found


def test_the_document_has_examples():
    assert len(examples()) == 37


@pytest.mark.parametrize("text, kind, claim", examples())
def test_every_example_plans_to_what_the_text_says(text, kind, claim, tmp_path, monkeypatch):
    assert kind is not None, (
        "state what the example plans to on the line under it (see the top of the document)"
    )
    if kind in ("Refused", "Warns"):  # as `specdsl validate example.yaml` prints it
        monkeypatch.chdir(tmp_path)
        Path("example.yaml").write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["validate", "example.yaml"])
        assert result.exit_code == (2 if kind == "Refused" else 0)
        printed = result.stderr.strip()
        assert f"`{printed.removeprefix('error: ')}`" == claim
        return
    m = PLAN.match(claim)
    assert m, f"unreadable claim: {claim}"
    spec = specdsl.load(text, file="example.yaml", sampler=Lowest() if kind != "Plan" else None)
    plan = specdsl.plan(spec)
    got = f"{plan.params:,} parameters ({plan.non_trainable:,} non-trainable), output {fmt(plan.output_shape)}, "
    got += f"{len(plan.layers)} layers"
    if kind != "Plan":
        got += f"; {len(spec.params)} distributions drawn"
    assert got + "." == claim
    assert (kind == "Plan") == (not spec.params)


def test_the_kinds_the_document_names_exist_and_every_section_and_distribution_is_documented():
    """The per-kind reference is generated from the registry (``specdsl schema --kinds``); what the hand-written
    table of kinds claims holds: every kind it names is registered, under that name or an alias."""
    table = TEXT[TEXT.index("### Layer kinds") :].split("\n\n")[1]
    named = {
        name for row in table.splitlines()[2:] for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])
    }
    assert named and {canonical_kind(name) for name in named} <= set(LAYERS), named
    assert "`specdsl schema --kinds`" in TEXT
    code = set(re.findall(r"`([a-z0-9_]+)", TEXT))
    assert set(SECTIONS) - code == set()
    assert set(DIST_KINDS) - code == set()
    for construct in (
        "repeat",
        "index",
        "prev",
        "input",
        "output",
        "outputs",
        "inputs",
        "params",
        "blocks",
        "name",
    ):
        assert construct in code, construct

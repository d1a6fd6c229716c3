"""The corpus of bad inputs: each gives exit code 2 and exactly its one located message, never a traceback.

Regenerate the expected messages after a deliberate wording change: SPECDSL_REGEN=1 pytest tests/cli.
A message listing every layer kind is stored with ``{layer_kinds}`` in its place: the list is the registry's, so
adding a kind changes no stored message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from specdsl.cli import app
from specdsl.spec import LAYERS

BAD = Path(__file__).resolve().parent.parent / "bad_inputs"
EXPECTED_FILE = BAD / "expected.yaml"
EXPECTED = yaml.safe_load(EXPECTED_FILE.read_text())
FILES = sorted(p.name for p in BAD.iterdir() if p.name != "expected.yaml")
REGEN = os.environ.get("SPECDSL_REGEN") == "1"
GENERATED = {"{layer_kinds}": ", ".join(sorted(LAYERS))}  # what a stored message holds -> what it stands for


def expected(name: str) -> str:
    """The stored message of a bad input, the generated parts filled in."""
    message = EXPECTED[name]
    for key, value in GENERATED.items():
        message = message.replace(key, value)
    return message


def stored(message: str) -> str:
    """A message as it is stored: the generated parts replaced by their keys."""
    for key, value in GENERATED.items():
        message = message.replace(value, key)
    return message


def test_every_bad_input_has_an_expected_message():
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES)
def test_bad_input(name, monkeypatch):
    monkeypatch.chdir(BAD)
    result = CliRunner().invoke(app, ["validate", name])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    message = lines[0].removeprefix("error: ")
    if REGEN:
        EXPECTED[name] = stored(message)
        header = EXPECTED_FILE.read_text().splitlines()[0]
        EXPECTED_FILE.write_text(
            header + "\n" + yaml.safe_dump(EXPECTED, width=10000, sort_keys=True, allow_unicode=True)
        )
    assert message == expected(name)
    assert message.startswith(f"{name}:")


@pytest.mark.parametrize(
    "name", ["catsdogs_winning_64.yaml", "alias_bomb.yaml", "python_tag.yaml", "not_utf8.yaml"]
)
def test_bad_input_as_a_process(name):
    """The installed command, as CI runs it: exit 2, one line on stderr, fast."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "specdsl", "validate", name],
        cwd=BAD,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == "error: " + expected(name)
    assert elapsed < 5  # well under a second on an idle machine; generous for loaded CI


def test_python_tag_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        "input: [4]\nlayers:\n"
        f"  - !!python/object/apply:os.system ['touch {marker}']\n"
        f"  - !!python/object/new:pathlib.Path ['{marker}']\n"
    )
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert not marker.exists()

"""The hostile files of classes 1 (code through generated source) and 7 (terminal escapes) in tests/security/hostile:
`validate`, `summary` and `compile` (torch and Keras source) end in 0 or 2 with no raw control character of theirs in
the output, and what compiles runs nothing when imported and keeps the spec's name and description exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from user_text import invoke, no_color, run_module, unsafe

import specdsl
from specdsl.spec import load_text

HOSTILE = Path(__file__).resolve().parent / "hostile"
FILES = sorted(HOSTILE.glob("*.yaml"))
CLASS = re.compile(r"# class (\d+): \S")


def _classes(path: Path) -> set[int]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = CLASS.match(first)
    assert match, f"{path.name} starts with `# class N: what it tests`"
    return {int(match.group(1))}


MINE = [p for p in FILES if _classes(p) & {1, 7}]


def test_every_hostile_file_names_its_class():
    assert len(MINE) >= 16
    for path in FILES:
        _classes(path)


@pytest.mark.parametrize("path", MINE, ids=[p.name for p in MINE])
def test_hostile_text_stays_data(path, monkeypatch):
    no_color(monkeypatch)
    outputs = {
        "validate": invoke(["validate", str(path)]),
        "validate github": invoke(["validate", "--format", "github", str(path)]),
        "summary": invoke(["summary", str(path)]),
        "summary text": invoke(["summary", "--format", "text", str(path)]),
    }
    for what, (_, text) in outputs.items():
        assert unsafe(text) == [], what
    if outputs["validate"][0] != 0:
        return
    raw = load_text(path.read_text(encoding="utf-8"), str(path))
    plan = specdsl.check(path)
    for backend in ("torch", "keras"):
        code, text = invoke(["compile", "--backend", backend, str(path)])
        assert code == 0
        namespace, events = run_module(text)
        assert events == ["exec"], backend
        assert namespace["MODEL_NAME"] == plan.name == str(raw.get("name") or path.stem)
        assert namespace["DESCRIPTION"] == raw.get("description")

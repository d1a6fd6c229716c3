"""Paths shared by the tests (a module of its own: several test folders have a conftest.py)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
SEARCH_SPACES = ROOT / "search_spaces"


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))

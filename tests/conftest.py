"""Shared test setup: the tests folder is importable (for the layer case table), paths to examples."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
SEARCH_SPACES = ROOT / "search_spaces"

if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

os.environ.setdefault("KERAS_BACKEND", "torch")


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES

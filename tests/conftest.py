"""Shared test setup: the tests folder is importable (for the layer case table), paths to examples."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support import EXAMPLES  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")
# `--workers auto` (the search's default) means one process: the tests that spawn workers ask for them by count, and
# tests/search/test_search_workers.py checks the rule without this
os.environ["SPECDSL_WORKERS"] = "1"

# the digits data and one-thread torch for the train, tracking and report tests (tests/train_fixtures.py)
pytest_plugins = ["train_fixtures"]


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


# Hypothesis profiles: the default keeps CI quick; `pytest tests/fuzz --hypothesis-profile=long` runs 10,000
# examples per property (see README, "Fuzzing").
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "long", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:  # hypothesis is a dev dependency
    pass

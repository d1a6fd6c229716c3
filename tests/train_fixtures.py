"""Shared helpers for the specdsl.train and specdsl.tracking tests: a small CNN for sklearn's 8x8 digits, written
as a spec file, and the digits dataset loaded once.

Its fixtures reach every test through ``pytest_plugins`` in tests/conftest.py; test modules import the other names
(it is not a conftest.py: other folders import `tests/conftest.py` by name).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import specdsl

__all__ = ["DIGITS_SPEC", "digits", "digits_plan", "single_thread", "write_spec"]

# 8x8x1 -> conv 16 same -> 4x4x16 -> dense 32 -> 10 classes: 8,714 parameters, trains in about a second an epoch.
DIGITS_SPEC = {
    "name": "digits_cnn",
    "input": [8, 8, 1],
    "layers": [
        {"conv2d": {"filters": 16, "kernel": 3, "padding": "same", "activation": "relu"}},
        {"maxpool2d": 2},
        "flatten",
        {"dense": {"units": 32, "activation": "relu"}},
        {"dense": {"units": 10, "activation": "softmax"}},
    ],
    "data": {"dataset": "digits"},
    "train": {"optimizer": {"name": "adam", "lr": 0.003}, "epochs": 2, "batch_size": 32},
}


def write_spec(folder: Path, spec: dict | None = None, *, name: str = "digits.yaml", **sections) -> Path:
    """Write a spec (default DIGITS_SPEC) with top-level sections replaced or merged: ``train={...}`` updates the
    train section (``None`` values remove keys), ``layers=[...]`` replaces the layers."""
    doc = dict(spec or DIGITS_SPEC)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            merged = {**doc[key], **value}
            doc[key] = {k: v for k, v in merged.items() if v is not None}
        elif value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def digits_plan(folder: Path, **sections) -> specdsl.Plan:
    return specdsl.check(write_spec(folder, **sections))


@pytest.fixture(scope="session")
def digits():
    from specdsl.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture
def single_thread():
    """Run torch on one thread (tiny models step faster so, and timings do not depend on other processes)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

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

__all__ = [
    "DIGITS_SPEC",
    "digits",
    "digits_plan",
    "mlflow_as_it_was",
    "single_thread",
    "train_tracked",
    "write_spec",
]

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


def train_tracked(folder: Path) -> tuple[Path, str, str]:
    """`specdsl train` of the digits CNN in ``folder``: one epoch on 400 images, one thread, the checkpoint in
    ``folder / "ckpt"``, tracked in SQLite there. (The spec, the tracking URI, the run's id.)"""
    import io

    import torch
    from mlflow import MlflowClient
    from rich.console import Console

    from specdsl.cli._train import run_train

    spec = write_spec(folder)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = run_train(
            spec,
            data=None,
            epochs=1,
            batch_size=None,
            backend=None,
            limit=400,
            seed=None,
            output=folder / "ckpt",
            tracking_uri=uri,
            experiment=None,
            track=True,
            console=Console(file=io.StringIO()),
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("digits_cnn").experiment_id])
    return spec, uri, run.info.run_id


@pytest.fixture(scope="module")
def mlflow_as_it_was():
    """MLflow's tracking URI back as it was after a module's tests: train, compile --run and explain point MLflow
    at the store they are given, which sets MLFLOW_TRACKING_URI in the environment later tests' subprocesses
    inherit."""
    import os

    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(before)


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

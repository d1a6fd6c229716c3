"""The train:, data:, search: and limits: sections are checked in full by `validate`, at the field: what `train` or
`search` would refuse when they start is refused statically, with the same located message."""

from __future__ import annotations

from pathlib import Path

import pytest

from specdsl import SpecdslError
from specdsl.cli._validate import validate_file
from specdsl.search._space import parse_duration
from specdsl.spec import duration_seconds, memory_bytes

MODEL = "input: [8, 8, 1]\nlayers:\n  - flatten\n  - dense: {units: 10, activation: softmax}\ndata: {dataset: digits}\n"
NINES = "9" * 400

CASES = [
    (
        "search: {timeout: forever}",
        "6:19: search: `timeout`: a timeout is seconds or a duration like 90s, 15m, 2h or "
        "1h30m, but got 'forever'.",
    ),
    (
        "search: {timeout: -5m}",
        "6:19: search: `timeout`: a timeout is seconds or a duration like 90s, 15m, 2h or "
        "1h30m, but got '-5m'.",
    ),
    ("search: {timeout: -5}", "6:19: search: `timeout`: a timeout must be positive, but got -5."),
    (
        "search: {timeout: 99999999999999h}",
        "6:19: search: `timeout`: a timeout is at most 2,147,483,647 seconds (68 "
        "years), but got '99999999999999h'.",
    ),
    (
        "train: {optimizer: {lr: .inf}}",
        "6:25: train: `optimizer.lr`: input should be a finite number (got inf).",
    ),
    (
        "train: {optimizer: {lr: .nan}}",
        "6:25: train: `optimizer.lr`: input should be a finite number (got nan).",
    ),
    (
        "train: {optimizer: {name: adamw, weight_decay: .inf}}",
        "6:48: train: `optimizer.weight_decay`: input should be a finite number (got inf).",
    ),
    (
        "train: {early_stopping: {min_delta: .inf}}",
        "6:37: train: `early_stopping.min_delta`: input should be a finite number (got inf).",
    ),
    (
        "train: {batch_size: 2147483647}",
        "6:21: train: `batch_size`: input should be less than or equal to 1048576 (got 2147483647).",
    ),
    ("train: {seed: -1}", "6:15: train: `seed`: input should be greater than or equal to 0 (got -1)."),
    (
        "search: {seed: 4294967296}",
        "6:16: search: `seed`: input should be less than or equal to 4294967295 (got 4294967296).",
    ),
    (
        f"search: {{trial_memory: {NINES}}}",
        "6:24: search: `trial_memory`: a memory size is at most 1 PiB "
        "(1,125,899,906,842,624 bytes), but got 99999999999999999999...9999999999 (400 characters).",
    ),
    (
        f"search: {{trial_memory: {NINES}GiB}}",
        "6:24: search: `trial_memory`: a memory size is at most 1 PiB "
        "(1,125,899,906,842,624 bytes), but got '9999999999999999999...999999GiB' (403 characters).",
    ),
    (
        "search: {storage: nonsense}",
        "6:19: search: `storage`: a study storage is a URL such as sqlite:///optuna.db or "
        "postgresql://user@host/db (SCHEME://...), or journal:PATH.",
    ),
    (
        "search: {storage: 'postgres:user:hunter2@host'}",
        "6:19: search: `storage`: a study storage is a URL such as "
        "sqlite:///optuna.db or postgresql://user@host/db (SCHEME://...), or journal:PATH.",
    ),
]


def write(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(MODEL + section + "\n")
    return path


@pytest.mark.parametrize("section, message", CASES, ids=[c[0][:40] for c in CASES])
def test_validate_search_and_train_refuse_alike(tmp_path, monkeypatch, section, message):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, section)
    expected = f"{path}:{message}"
    result = validate_file(path)
    assert result.error is not None and result.error.format() == expected
    assert result.error.exit_code == 2

    from specdsl.search import run_search

    with pytest.raises(SpecdslError) as e:  # refused before any study or MLflow run exists
        run_search(
            path,
            trials=1,
            storage=f"sqlite:///{tmp_path}/optuna.db",
            tracking_uri=f"sqlite:///{tmp_path}/m.db",
        )
    assert str(e.value) == expected
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "m.db").exists()

    if section.startswith("train"):
        from rich.console import Console

        from specdsl.cli._train import run_train

        with pytest.raises(SpecdslError) as e:
            run_train(
                path,
                data=None,
                epochs=None,
                batch_size=None,
                backend=None,
                limit=None,
                seed=None,
                output=tmp_path / "out",
                tracking_uri=None,
                experiment=None,
                track=False,
                console=Console(),
            )
        assert str(e.value) == expected


def test_a_section_error_in_a_search_space_is_said_once(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(MODEL.replace("units: 10", "units: {choice: [10]}") + "train: {optimizer: {lr: .inf}}\n")
    assert validate_file(path).error.format() == (
        f"{path}:6:25: train: `optimizer.lr`: input should be a finite number (got inf)."
    )


def test_command_line_values_are_checked_as_the_sections_are(tmp_path):
    from specdsl.search import run_search

    path = write(tmp_path, "search: {trials: 1}")
    for option, message in [
        ({"seed": -1}, "--seed: input should be greater than or equal to 0."),
        ({"seed": 2**32}, "--seed: input should be less than or equal to 4294967295."),
        (
            {"storage": "optuna.db"},
            "--storage: a study storage is a URL such as sqlite:///optuna.db "
            "or postgresql://user@host/db (SCHEME://...), or journal:PATH.",
        ),
    ]:
        with pytest.raises(SpecdslError) as e:
            run_search(path, tracking_uri=f"sqlite:///{tmp_path}/m.db", **option)
        assert str(e.value) == f"{path}: search.{next(iter(option))}: {message}"


@pytest.mark.parametrize(
    "value, seconds", [(90, 90.0), ("1h30m", 5400.0), ("0.5s", 0.5), (2**31 - 1, 2**31 - 1.0)]
)
def test_durations_in_range(value, seconds):
    assert duration_seconds(value) == seconds == parse_duration(value)


@pytest.mark.parametrize(
    "value, size",
    [(1, 1), ("2GiB", 2 * 1024**3), ("1.5 GB", 1_500_000_000), ("1024TiB", 2**50), (None, None)],
)
def test_memory_sizes_in_range(value, size):
    assert memory_bytes(value) == size


@pytest.mark.parametrize("value", [0, "0GiB", 2**50 + 1, "1025TiB", "2XB", 2.5, True, "1e400"])
def test_memory_sizes_out_of_range(value):
    with pytest.raises(ValueError, match="a memory size is"):
        memory_bytes(value)

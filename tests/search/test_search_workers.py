"""How many workers a study runs: one by default; ``--workers auto`` resolved by ``$SPECDSL_WORKERS`` or the machine's
devices and cores, a count as given, bad values refused; the re-evaluation's torch threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from specdsl.errors import SearchError
from specdsl.search import SearchOptions
from specdsl.search._config import StudyConfig
from specdsl.search._select import worker_threads
from specdsl.search._workers import WORKERS_ENV, resolve_workers, workers_line
from specdsl.train import workers_here

SPACES = Path(__file__).resolve().parent / "spaces"


def test_auto_is_the_default():
    assert SearchOptions().workers == "auto"


def test_a_count_is_kept_as_given(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert resolve_workers(1) == (1, None)
    assert resolve_workers(5, "cpu") == (5, None)
    assert resolve_workers(" 2 ") == (2, None)  # the command line's text


def test_auto_takes_the_environment_variable_where_set(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert resolve_workers("auto") == (3, "SPECDSL_WORKERS=3")
    assert workers_line(3, "SPECDSL_WORKERS=3") == "3 workers (SPECDSL_WORKERS=3: --workers N sets them)"


@pytest.mark.parametrize("env", [None, "", "auto", "AUTO"])
def test_auto_without_a_count_follows_the_table_on_this_machine(monkeypatch, env):
    if env is None:
        monkeypatch.delenv(WORKERS_ENV, raising=False)
    else:
        monkeypatch.setenv(WORKERS_ENV, env)
    assert resolve_workers("auto") == workers_here("auto")
    assert resolve_workers("auto", "cpu") == workers_here("cpu")


@pytest.mark.parametrize("bad", [0, -2, "0", "two", "1.5", ""])
def test_a_bad_count_is_one_error_with_the_way_out(bad):
    with pytest.raises(SearchError) as info:
        resolve_workers(bad)
    assert (
        info.value.message
        == f"`workers` (--workers) must be auto or a whole number at least 1, but got {bad!r}."
    )
    assert info.value.hint == "Pass --workers auto, or a count such as --workers 2."


def test_a_bad_environment_variable_is_one_error(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(SearchError) as info:
        resolve_workers("auto")
    assert info.value.message == "$SPECDSL_WORKERS must be auto or a whole number at least 1, but got 'many'."
    assert info.value.hint == "Set SPECDSL_WORKERS to auto or a count such as 2, or unset it."
    assert resolve_workers(2) == (2, None)  # a count asked for does not read it


def test_the_reevaluation_trains_with_worker_0s_threads_and_puts_them_back():
    import torch

    from specdsl.train import device_for_worker

    cfg = StudyConfig(space_file="s.yaml", space_text="", study_name="s", storage="sqlite://", search={})
    before = torch.get_num_threads()
    with worker_threads(cfg) as threads:
        assert threads is None and torch.get_num_threads() == before  # one worker: torch's own
    two = StudyConfig(
        space_file="s.yaml", space_text="", study_name="s", storage="sqlite://", search={}, workers=2
    )
    with worker_threads(two) as threads:
        assert threads == device_for_worker(0, 2).threads == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_the_command_refuses_a_bad_count_before_any_study(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from specdsl.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["search", str(SPACES / "many_invalid_corners.yaml"), "--workers", "two"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: `workers` (--workers) must be auto or a whole number at least 1, but got 'two'. "
        "Pass --workers auto, or a count such as --workers 2."
    )
    assert not (tmp_path / "optuna.db").exists()

"""User text in MLflow is data: a model's name reaches tags exactly (cut to MLflow's length), names artifact files
only through its safe stem (never a path out of the run's folder), and a study's name, whatever quotes it holds,
finds its own runs again (MLflow's filter language has no escapes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import specdsl
from specdsl._text import file_stem

mlflow = pytest.importorskip("mlflow")

from specdsl.tracking import (
    TrackedRun,  # noqa: E402
    Tracker,  # noqa: E402
)
from specdsl.tracking._study import _quote  # noqa: E402
from specdsl.tracking._tags import TAG_MAX  # noqa: E402
from specdsl.tracking._tags import tag_values as _tags  # noqa: E402

HOSTILE = "../../x\x1b]0;t\x07\"'\\" + "n" * 20


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    folder = tmp_path_factory.mktemp("mlflow")
    yield f"sqlite:///{folder}/mlflow.db", folder
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def test_a_hostile_model_name_is_a_tag_and_a_safe_artifact_name(store, tmp_path, monkeypatch):
    uri, folder = store
    monkeypatch.chdir(tmp_path)
    plan = specdsl.check({"name": HOSTILE + "z" * 9000, "input": [4], "layers": [{"dense": 2}]})
    with TrackedRun(plan, backend="torch", tracking_uri=uri, experiment="hostile") as run:
        pass
    client = mlflow.MlflowClient(uri)
    info = client.get_run(run.run_id)
    assert info.info.status == "FINISHED"
    assert info.data.tags["specdsl.spec"] == (HOSTILE + "z" * 9000)[:TAG_MAX]
    stem = file_stem(plan.name)
    assert stem == "x_0_t_" + "n" * 20 + "z" * 74
    assert sorted(a.path for a in client.list_artifacts(run.run_id, "spec")) == [f"spec/{stem}.concrete.yaml"]
    # every file written is in the run's own artifact folder (./mlruns here), nothing beside or above it
    artifacts = Path(info.info.artifact_uri.removeprefix("file://"))
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(
        str((artifacts / name).relative_to(tmp_path))
        for name in (f"spec/{stem}.concrete.yaml", "summary.txt")
    )
    assert not list(folder.parent.glob("x*")) and not list(tmp_path.parent.glob("x*"))


@pytest.mark.parametrize("study", ["plain", "it's", 'say "hi"', "both ' and \"", "back\\slash'", "pct%_"])
def test_a_study_finds_its_trial_runs_whatever_quotes_its_name_holds(store, study):
    uri, _ = store
    tracker = Tracker(uri, "studies", study)
    tracker.ensure_experiment()
    tracker.ensure_parent(None, {}, {})
    ours = tracker.start_trial(0, {"lr": 0.1})
    other = Tracker(uri, "studies", study + "-other")
    other.ensure_experiment()
    other.ensure_parent(None, {}, {})
    other.start_trial(0, {"lr": 0.2})
    runs = tracker.trial_runs()
    assert {n: [r.info.run_id for r in rs] for n, rs in runs.items()} == {0: [ours]}


def test_filter_strings_and_tags():
    assert _quote("it's") == '"it\'s"'
    assert _quote('say "hi"') == "'say \"hi\"'"
    assert _quote("both ' and \"") is None
    assert _tags({"a": 1, "b": "x" * 9000}) == {"a": "1", "b": "x" * TAG_MAX}


@pytest.mark.parametrize(
    "name, folder",
    [
        ("../../etc", "checkpoints/etc"),
        ("/tmp/x", "checkpoints/tmp_x"),
        ("cnn", "checkpoints/cnn"),
        ("..", "checkpoints/model"),
    ],
)
def test_the_default_checkpoint_folder_stays_under_checkpoints(name, folder):
    from specdsl.cli._train import checkpoint_folder

    plan = specdsl.check({"name": name, "input": [4], "layers": [{"dense": 2}]})
    assert checkpoint_folder(plan, None) == Path(folder)
    assert checkpoint_folder(plan, Path("mine")) == Path("mine")


def test_a_search_parameter_name_longer_than_mlflow_holds_is_refused_with_its_place():
    from specdsl.errors import SearchError
    from specdsl.search._space import PARAM_NAME_LIMIT, distributions
    from specdsl.spec import load_text

    text = f"input: [4]\nlayers:\n  - dense: {{units: {{int: [2, 4], name: {'n' * 300}}}}}\n"
    with pytest.raises(SearchError) as e:
        distributions(load_text(text, "space.yaml"), "space.yaml")
    assert e.value.format() == (
        f"space.yaml:3:40: layers[0].dense.units: a parameter name has at most {PARAM_NAME_LIMIT} characters "
        f"(MLflow's limit), but {'n' * 79}\u2026 has 300. Give the distribution a shorter `name:`."
    )

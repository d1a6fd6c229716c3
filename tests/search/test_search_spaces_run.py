"""Every ready-made search space in search_spaces/ runs: a tiny budget (2 trials, 1 epoch, 64 examples a split)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from search_helpers import mlflow_runs, optuna_trials

pytest.importorskip("optuna")
pytest.importorskip("mlflow")
pytest.importorskip("torch")

from specdsl.search import run_search

ROOT = Path(__file__).resolve().parents[2]
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))


def _cifar10_missing() -> str | None:
    """CIFAR-10 comes from its authors' site (163 MiB), which a machine without that network cannot reach; the
    other spaces' datasets come from the package registries and must load."""
    from specdsl.data import list_datasets

    info = {d.name: d for d in list_datasets()}["cifar10"]
    return (
        None
        if info.ready
        else f"the cifar10 dataset is not here ({info.status}): `specdsl data prepare cifar10`"
    )


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_each_ready_made_space_runs_with_a_tiny_budget(path, stores):
    from specdsl.search._space import read_space

    tree, _, _ = read_space(path)
    if tree["data"]["dataset"] == "cifar10" and _cifar10_missing():
        pytest.skip(_cifar10_missing())
    study = f"space-{path.stem}"
    result = run_search(path, trials=2, epochs=1, limit=64, study_name=study, plots=False, **stores)
    assert (result.trials, result.complete, result.failed, result.running) == (2, 2, 0, 0)
    trials = [t for t in optuna_trials(stores["storage"], study) if not t.user_attrs.get("specdsl.rejected")]
    runs = {int(r.data.tags["specdsl.trial"]): r for r in mlflow_runs(stores["tracking_uri"], study)["trial"]}
    from mlflow import MlflowClient

    client = MlflowClient(stores["tracking_uri"])
    for t in trials:
        assert 0.0 <= t.values[0] <= 1.0  # val_accuracy
        if len(t.values) == 2:  # fashion_mnist: and the parameter count
            assert t.values[1] == t.user_attrs["specdsl.result"]["params"]
        run = runs[t.number]
        assert run.info.status == "FINISHED"
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
        drawn = {"model.svg"} if shutil.which("dot") else set()  # the architecture, when Graphviz is here
        assert {f.path for f in client.list_artifacts(run.info.run_id)} == {
            "spec.yaml",
            "summary.txt",
            *drawn,
        }
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [0]
        assert run.data.metrics["params"] == t.user_attrs["specdsl.result"]["params"]


def test_the_cifar10_space_trains_on_stand_in_data(stores, tmp_path):
    """Its architectures and optimizer choice, trained on MNIST digits resized to 32x32 RGB (10 classes too), so
    that the space is exercised where CIFAR-10 cannot be downloaded."""
    text = (ROOT / "search_spaces" / "cifar10.yaml").read_text().replace("dataset: cifar10", "dataset: mnist")
    path = tmp_path / "cifar10_standin.yaml"
    path.write_text(text)
    result = run_search(
        path, trials=2, epochs=1, limit=64, study_name="space-cifar10-standin", plots=False, **stores
    )
    assert (result.trials, result.complete, result.failed) == (2, 2, 0)
    for t in optuna_trials(stores["storage"], "space-cifar10-standin"):
        lr = {"adam_lr", "sgd_lr"} & set(t.params)
        assert lr == ({"adam_lr"} if t.params["optimizer"] == 0 else {"sgd_lr"})  # never both

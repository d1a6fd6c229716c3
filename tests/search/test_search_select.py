"""The final model chosen by re-evaluation on fresh splits (search.select): the rules by hand, then a real study on
digits, SQLite and MLflow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from search_helpers import mlflow_runs, optuna_trials, searched

from specdsl.data import Dataset
from specdsl.search._select import curve_score, estimate, resplit, select_top
from specdsl.spec import SearchSpec

SPACE = """
input: [8, 8, 1]
layers:
  - conv2d: {filters: {choice: [2, 4, 8], name: filters}, kernel: 3, activation: relu}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: {float: [0.001, 0.03], log: true, name: lr}}, epochs: 2, batch_size: 128}
search: {sampler: random, pruner: none, seed: 3, select: {top: 2, repeats: 2}}
"""


def test_a_trial_is_ranked_by_its_best_epoch_averaged_with_its_neighbours():
    assert curve_score({0: 0.6, 1: 0.8, 2: 0.7, 3: 0.2}, True) == pytest.approx(0.7)
    assert curve_score({0: 0.9, 1: 0.5}, True) == pytest.approx(0.7)  # the best epoch first: one neighbour
    assert curve_score({0: 2.0, 1: 1.0, 2: 1.5}, False) == pytest.approx(1.5)  # a loss: the least
    assert curve_score({}, True) is None


def test_the_estimate_is_the_fresh_mean_with_its_standard_deviation_or_a_binomial_error():
    mean, spread = estimate([0.70, 0.76, 0.73], 300, True)
    assert (mean, spread) == (pytest.approx(0.73), pytest.approx(0.03))
    mean, spread = estimate([0.8], 400, True)
    assert (mean, spread) == (0.8, pytest.approx(0.02))  # sqrt(0.8 * 0.2 / 400)
    mean, spread = estimate([1.5], 400, False)
    assert mean == 1.5 and math.isnan(spread)


def test_by_default_a_timed_search_re_evaluates_its_top_three_and_a_counted_one_none():
    default = SearchSpec().select
    assert (select_top(default, 900.0), select_top(default, None)) == (3, 0)
    assert select_top(SearchSpec.model_validate({"select": {"top": 5}}).select, None) == 5
    assert (default.repeats, default.confirm, default.share) == (2, 2, 0.3)


def test_a_fresh_split_pools_train_and_validation_keeps_sizes_and_classes_and_never_touches_test():
    y_train = np.array([0] * 30 + [1] * 10)
    y_val = np.array([0] * 6 + [1] * 4)
    x_train = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
    x_val = np.arange(40, 50, dtype=np.uint8).reshape(10, 1, 1, 1)
    x_test = np.full((5, 1, 1, 1), 99, np.uint8)
    ds = Dataset("toy", x_train, y_train, x_val, y_val, x_test, np.zeros(5, np.int64), ["a", "b"])
    a, b = resplit(ds, seed=1), resplit(ds, seed=2)
    for r in (a, b):
        assert (len(r.y_train), len(r.y_val)) == (40, 10)
        assert sorted(np.concatenate([r.x_train, r.x_val]).ravel().tolist()) == list(range(50))
        assert (r.x_test is ds.x_test) and (r.y_test is ds.y_test)
        # each example keeps its label; stratified: the pool's 36 / 14 split as 0.2 of each class
        pool = dict(zip(np.concatenate([x_train, x_val]).ravel().tolist(), np.concatenate([y_train, y_val])))
        assert all(pool[int(x)] == y for x, y in zip(r.x_val.ravel(), r.y_val))
        assert sorted(r.y_val.tolist()) == [0] * 7 + [1] * 3
    assert sorted(a.x_val.ravel().tolist()) != sorted(b.x_val.ravel().tolist())


def test_a_fresh_split_apart_halves_validation_and_scores_on_the_other_half_never_on_test():
    y = np.array([0] * 30 + [1] * 10)
    x = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1)
    y_val = np.array([0] * 6 + [1] * 4)
    x_val = np.arange(40, 50, dtype=np.uint8).reshape(10, 1, 1, 1)
    ds = Dataset(
        "toy", x, y, x_val, y_val, np.full((5, 1, 1, 1), 99, np.uint8), np.zeros(5, np.int64), ["a", "b"]
    )
    r = resplit(ds, seed=1, apart=True)
    # training keeps its 40 of the pool of 50; validation's 0.2 is halved, per class: 0.1 of 36 and of 14
    assert (len(r.y_train), len(r.y_val), len(r.y_test)) == (40, 5, 5)
    assert sorted(r.y_val.tolist()) == sorted(r.y_test.tolist()) == [0] * 4 + [1]
    parts = [r.x_train.ravel().tolist(), r.x_val.ravel().tolist(), r.x_test.ravel().tolist()]
    assert sorted(sum(parts, [])) == list(
        range(50)
    )  # the pool, each example once; the true test's 99 in none
    # the same draw as the split that is not apart, for the training examples' count
    assert len(resplit(ds, seed=1).y_train) == len(r.y_train)


def test_a_fresh_split_of_images_on_disk_keeps_them_there():
    from specdsl.data import MappedImages, load_dataset

    ds = load_dataset("digits", storage="disk")
    assert isinstance(ds.x_train, MappedImages)
    r = resplit(ds, seed=4)
    assert isinstance(r.x_train, MappedImages) and isinstance(r.x_val, MappedImages)
    n = len(ds.y_train) + len(ds.y_val)
    pooled_y = np.concatenate([ds.y_train, ds.y_val])
    # each class's share of validation rounded on its own, as every split of the data package is drawn
    share = len(ds.y_val) / n
    n_val = sum(math.floor(np.sum(pooled_y == c) * share + 0.5 + 1e-9) for c in np.unique(pooled_y))
    assert (len(r.y_train), len(r.y_val), r.x_test is ds.x_test) == (n - n_val, n_val, True)
    pool = np.concatenate([np.asarray(ds.x_train), np.asarray(ds.x_val)]).reshape(n, -1)
    mine = np.concatenate([np.asarray(r.x_train), np.asarray(r.x_val)]).reshape(n, -1)
    assert sorted(map(bytes, pool)) == sorted(map(bytes, mine))  # the same images, split otherwise
    assert not np.array_equal(np.asarray(r.x_val), np.asarray(ds.x_val))


@pytest.fixture
def search(stores, tmp_path):
    pytest.importorskip("optuna")
    pytest.importorskip("mlflow")
    pytest.importorskip("torch")
    path = tmp_path / "select.yaml"
    path.write_text(SPACE, encoding="utf-8")
    return lambda study, **kwargs: searched(path, stores, study, **kwargs)


def test_the_top_trials_are_trained_again_on_fresh_splits_and_the_best_mean_is_the_best_trial(search, stores):
    """The choice by the fresh means of the top two; the estimate by two more splits of the chosen one only."""
    import optuna

    from specdsl.search import best_trial, freeze_best

    result = search("select", trials=4)
    trials = optuna_trials(stores["storage"], "select")
    assert result.complete == 4
    for (
        t
    ) in trials:  # each trial kept the weights of its best epoch by the objective, the one it is ranked by
        values = dict(t.intermediate_values)
        assert t.user_attrs["specdsl.result"]["best_epoch"] == max(values, key=lambda s: (values[s], -s))
    ranked = sorted(trials, key=lambda t: (-curve_score(dict(t.intermediate_values), True), t.number))
    top = [t.number for t in ranked[:2]]
    c = result.chosen
    assert sorted(c.candidates) == sorted(top)
    assert all(n == 2 for _, _, n in c.candidates.values())  # two fresh splits each
    study = optuna.load_study(study_name="select", storage=stores["storage"])
    kept = study.user_attrs["specdsl.reevaluated"]
    assert sorted(kept) == sorted(str(n) for n in top) and all(len(v) == 2 for v in kept.values())
    means = {int(n): sum(v) / 2 for n, v in kept.items()}
    assert c.trial == max(means, key=lambda n: (means[n], -n))
    assert {n: mean for n, (_, mean, _) in c.candidates.items()} == pytest.approx(means)
    # the estimate: two more fresh splits of the chosen trial, which took no part in choosing it
    confirmed = study.user_attrs["specdsl.confirmed"]
    assert list(confirmed) == [str(c.trial)] and len(confirmed[str(c.trial)]) == 2
    assert (c.n, c.held_out) == (2, True)
    assert c.mean == pytest.approx(sum(confirmed[str(c.trial)]) / 2)
    assert c.spread == pytest.approx(float(np.std(confirmed[str(c.trial)], ddof=1)))
    estimated = [
        x for x in result.output.splitlines() if x.startswith("re-") and x.endswith("for its estimate")
    ]
    assert [x.split(":")[0] for x in estimated] == [
        f"re-evaluated trial {c.trial} on split 3",
        f"re-evaluated trial {c.trial} on split 4",
    ]
    assert c.search_value == next(t.value for t in trials if t.number == c.trial)
    # the chosen trial is the study's best everywhere: the result, best_trial, `specdsl best`
    assert result.best_number == c.trial == best_trial(study).number
    number, text = freeze_best("select", storage=stores["storage"])
    assert number == c.trial
    assert "monitor: val_accuracy" in text  # so `specdsl train` keeps the same epoch
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[2] == (
        f"# Chosen by re-evaluation: val_accuracy {c.mean:.4f} +- {c.spread:.4f} over 2 fresh train/validation "
        "splits that took no part in choosing it, the estimate to trust (the value above is its search value, on "
        "one split)."
    )
    line = next(x for x in result.output.splitlines() if x.startswith("best: trial"))
    assert line.startswith(
        f"best: trial {c.trial}, chosen by re-evaluation: val_accuracy {c.mean:.3f} +- {c.spread:.3f} over 2 fresh "
        "splits that took no part in choosing it, the estimate to trust (its value in the search, on one split: "
        f"{c.search_value:.3f})"
    )
    runs = mlflow_runs(stores["tracking_uri"], "select")
    (parent,) = runs["study"]
    assert parent.data.metrics["chosen.val_accuracy"] == pytest.approx(c.mean)
    assert parent.data.metrics["chosen.splits"] == 2
    by_trial = {int(r.data.tags["specdsl.trial"]): r for r in runs["trial"]}
    for n in top:
        assert by_trial[n].data.metrics["reevaluated.val_accuracy"] == pytest.approx(means[n])
    assert all("reevaluated.val_accuracy" not in r.data.metrics for n, r in by_trial.items() if n not in top)

    # resumed with nothing new to run: the kept values are reused, nothing is trained again
    again = search("select", trials=4)
    assert again.chosen.as_attr() == c.as_attr()
    assert "re-evaluated trial" not in again.output


def test_several_workers_re_evaluate_in_as_many_processes_and_measure_what_one_does(search, stores):
    import re

    import optuna

    first = search("pool", trials=4)  # one worker: the re-evaluations in this process
    study = optuna.load_study(study_name="pool", storage=stores["storage"])
    alone = study.user_attrs["specdsl.reevaluated"]
    assert "(worker " not in first.output
    estimated = study.user_attrs["specdsl.confirmed"]
    for attr in ("specdsl.reevaluated", "specdsl.confirmed"):  # measured again, now by two processes
        study.set_user_attr(attr, {})
    again = search("pool", trials=4, workers=2)
    lines = [x for x in again.output.splitlines() if x.startswith("re-evaluated trial")]
    assert len(lines) == 6, again.output
    for line in lines[:4]:
        assert re.fullmatch(
            r"re-evaluated trial \d+ on split [12] \(worker [01]\): val_accuracy \d\.\d{4} \(its search value "
            r"\d\.\d{4}\)",
            line,
        ), line
    for line in lines[4:]:
        assert re.fullmatch(
            rf"re-evaluated trial {first.chosen.trial} on split [34] \(worker [01]\): val_accuracy \d\.\d{{4}} "
            "for its estimate",
            line,
        ), line
    shared = optuna.load_study(study_name="pool", storage=stores["storage"]).user_attrs["specdsl.reevaluated"]
    # the same fresh splits and seeds, each trained on one thread: the same values, in whichever order they came
    assert {n: sorted(v) for n, v in shared.items()} == {n: sorted(v) for n, v in alone.items()}
    confirmed = optuna.load_study(study_name="pool", storage=stores["storage"]).user_attrs[
        "specdsl.confirmed"
    ]
    assert {n: sorted(v) for n, v in confirmed.items()} == {n: sorted(v) for n, v in estimated.items()}
    assert again.chosen.trial == first.chosen.trial and again.chosen.mean == pytest.approx(first.chosen.mean)


def test_a_fresh_value_is_read_at_the_epoch_whose_weights_the_trial_kept():
    import optuna

    from specdsl.search._select import kept_epoch

    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def trial(values: dict[int, float], result: dict | None = None):
        attrs = {} if result is None else {"specdsl.result": result}
        return optuna.trial.create_trial(
            params={"x": 0.5}, distributions=dist, value=0.0, intermediate_values=values, user_attrs=attrs
        )

    curve = {0: 0.5, 1: 0.8, 2: 0.7}
    assert kept_epoch(trial(curve, {"best_epoch": 2.0}), True) == 2  # the trial's own word first
    assert kept_epoch(trial(curve), True) == 1  # else its best reported epoch
    assert kept_epoch(trial({0: 2.0, 1: 1.0, 2: 1.5}), False) == 1  # a loss: the least
    assert kept_epoch(trial({}), True) is None


def test_without_estimate_splits_the_estimate_is_the_mean_that_chose_the_trial(tmp_path, stores):
    pytest.importorskip("optuna")
    pytest.importorskip("torch")
    path = tmp_path / "select.yaml"
    path.write_text(SPACE.replace("repeats: 2}", "repeats: 2, confirm: 0}"), encoding="utf-8")
    result = searched(path, stores, "unconfirmed", trials=3)
    c = result.chosen
    assert (c.n, c.held_out, c.mean) == (2, False, pytest.approx(c.candidates[c.trial][1]))
    assert "for its estimate" not in result.output and "then the one chosen" not in result.output

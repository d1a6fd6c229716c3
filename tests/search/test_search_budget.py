"""A result within the budget: the first epoch is timed and every trial's epochs fitted to the time left; a trial
cut at the time limit stands in as the best when none completed, said in one message with the numbers and the way
out; the command exits 0 when the search ran as asked. Tiny budgets (seconds) on scikit-learn's 8x8 digits."""

from __future__ import annotations

import re

import pytest
from search_helpers import mlflow_runs, optuna_trials
from test_search_study import DEEP, console

import specdsl
from specdsl.cli._search import run_best_command, run_search_command
from specdsl.search import run_search
from specdsl.search._budget import FULL_TRIALS, fitted_epochs

# one 3x3 convolution: tens of milliseconds an epoch, so 2,000 epochs outlast any of these budgets
LONG = DEEP.replace("{int: [1, 5], name: convs}", "1").replace("epochs: 1,", "epochs: 2000,")


@pytest.mark.parametrize(
    ("epoch_s", "left_s", "planned", "warmup", "workers", "fitted"),
    [
        (30.0, 800.0, 50, 0, 1, 3),  # a busy 2-core machine: 8 trials of 3 epochs in 800 s
        (2.0, 800.0, 50, 0, 1, 50),  # a quiet one: the spec's epochs fit
        (5.0, 800.0, 50, 0, 1, 20),
        (100.0, 800.0, 50, 0, 1, 2),  # never fewer than 2 ...
        (100.0, 800.0, 50, 3, 1, 4),  # ... nor than the warm-up before pruning, plus one
        (100.0, 800.0, 1, 0, 1, 1),  # nor more than the spec asks
        (0.0, 800.0, 12, 0, 1, 12),
        (30.0, 800.0, 50, 0, 2, 6),  # two workers in parallel: 16 trials of 6 epochs in 800 s
        (30.0, 800.0, 50, 0, 4, 13),  # four: 800 * 4 // (8 * 30)
        (5.0, 800.0, 50, 0, 4, 50),  # capped at the spec's epochs still
        (100.0, 800.0, 50, 0, 2, 2),  # and 2 at least
    ],
)
def test_epochs_are_fitted_to_the_time_left_and_the_workers(
    epoch_s, left_s, planned, warmup, workers, fitted
):
    assert FULL_TRIALS == 8
    assert fitted_epochs(epoch_s, left_s, planned, warmup, workers) == fitted


def _run(path, tmp_path, **kwargs):
    out, buf = console()
    kwargs.setdefault("plots", False)
    result = run_search(
        path,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        console=out,
        **kwargs,
    )
    result.output = buf.getvalue()
    return result


def test_the_first_epoch_sets_every_trial_epochs_and_the_first_trial_completes_at_them(tmp_path, monkeypatch):
    path = tmp_path / "fitted.yaml"
    path.write_text(LONG)
    # a first epoch said to take 1000 s: the minute left holds no trial of 2000 epochs; the least, 2, it is
    real = specdsl.search._budget.EpochBudget.after_epoch

    def slow_first_epoch(self, study, epoch, logs, epochs):
        return real(self, study, epoch, {**logs, "epoch_seconds": 1000.0}, epochs)

    monkeypatch.setattr(specdsl.search._budget.EpochBudget, "after_epoch", slow_first_epoch)
    result = _run(path, tmp_path, trials=3, timeout=60, study_name="fitted")
    trials = optuna_trials(f"sqlite:///{tmp_path / 'optuna.db'}", "fitted")
    assert [(t.state.name, len(t.intermediate_values)) for t in trials] == [("COMPLETE", 2)] * 3
    assert result.complete == 3 and result.best_cut is None
    import optuna

    from specdsl.search._storage import sqlalchemy_url

    study = optuna.load_study(
        study_name="fitted", storage=sqlalchemy_url(f"sqlite:///{tmp_path / 'optuna.db'}")
    )
    assert study.user_attrs["specdsl.fitted_epochs"] == 2
    note = re.search(
        r"budget: the first epoch took 1000\.0 s and (\d+) s are left, so every trial trains 2 of its 2000 epochs "
        r"\(about 8 trials' worth; --epochs N sets them\)",
        result.output,
    )
    assert note and 0 < int(note.group(1)) < 60, result.output
    runs = mlflow_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "fitted")["trial"]
    assert [(r.info.status, r.data.metrics["epochs"]) for r in runs] == [("FINISHED", 2.0)] * 3
    # the first trial, stopped at the epochs it fitted, is evaluated on the test split as every trial is
    assert all(0 <= r.data.metrics["test_accuracy"] <= 1 for r in runs)
    (best,) = [line for line in result.output.splitlines() if line.startswith("specdsl best")]
    assert best.startswith("specdsl best fitted --storage") and "--trial " not in best
    # 3 trials of 2 epochs end long before the minute: the summary says the cap, not the budget, ended it
    assert re.search(
        r"the 3-trial cap was reached with \d+ s of the 60 s budget left: raise --trials", result.output
    )


def test_a_cut_trial_stands_in_as_the_best_when_none_completed_and_the_command_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default stores: optuna.db and mlflow.db here, as a user runs it
    path = tmp_path / "cut.yaml"
    path.write_text(LONG)
    out, buf = console()
    code = run_search_command(path, trials=3, timeout="12s", fit_epochs=False, console=out)
    text = buf.getvalue()
    assert code == 0, text
    trials = optuna_trials("sqlite:///optuna.db", "cut")
    # none completed; under load a second trial can start in the time no re-evaluation needs, so more than one
    # may be cut at the time limit
    assert trials and all(t.state.name == "PRUNED" for t in trials)
    cut_trials = [t for t in trials if "specdsl.cut" in t.user_attrs]
    assert cut_trials and cut_trials[0].number == 0
    for t in cut_trials:
        cut = t.user_attrs["specdsl.cut"]
        assert cut["of"] == 2000 and cut["epochs"] == len(t.intermediate_values)
        assert cut["values"] == [max(t.intermediate_values.values())]
    # the best cut trial stands in: the highest best epoch, the earlier trial on a tie
    trial = max(cut_trials, key=lambda t: (t.user_attrs["specdsl.cut"]["values"][0], -t.number))
    cut = trial.user_attrs["specdsl.cut"]
    whole = cut["epoch_s"] * 2000
    fit = max(1, int(12 * 0.8 // cut["epoch_s"]))
    message = (
        f"no trial completed in the 12 s budget: {len(trials)} trained. Best so far: trial {trial.number}, cut at "
        f"the time limit after {cut['epochs']} of 2000 epochs, val_accuracy={cut['values'][0]:.4g} (its best epoch). "
        f"An epoch took {cut['epoch_s']:.1f} s, so its 2000 epochs need about {whole:.0f} s: raise --timeout (above "
        f"{whole:.0f} s) or lower --epochs (to {fit} or fewer)."
    )
    assert message in text.splitlines(), text
    assert "best: trial" not in text
    suggestion = f"specdsl best cut --trial {trial.number} -o best.yaml    # the best trial so far"
    suggestion += " (cut at the time limit) as a concrete spec"
    assert suggestion in text.splitlines()
    # and the suggestion works
    assert run_best_command("cut", trial=trial.number, output=tmp_path / "best.yaml") == 0
    assert (tmp_path / "best.yaml").read_text().startswith(f"# Trial {trial.number} of study cut")


def test_the_command_fails_only_when_every_trained_trial_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "broken.yaml"
    path.write_text(DEEP.replace("{int: [1, 5], name: convs}", "1"))

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(specdsl.train, "fit", broken)
    out, buf = console()
    assert run_search_command(path, trials=2, console=out) == 1
    text = buf.getvalue()
    assert "2 trials trained (0 complete, 0 pruned, 2 failed)" in text
    assert "specdsl best" not in text  # no trial to freeze

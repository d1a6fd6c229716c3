"""The pieces: the Optuna sampler adapter, replaying a trial, the frozen spec text, the progress display."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import specdsl
from specdsl.search import OptunaSampler, ReplaySampler, dump, freeze
from specdsl.search._progress import Progress, Row
from specdsl.search._space import read_space

optuna = pytest.importorskip("optuna")
ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "benchmarks" / "catsdogs_reference.yaml"  # the space of the KerasTuner comparison

SPACE = """
input: [28, 28, 1]
params:
  width: {choice: [8, 16], name: width}
layers:
  - repeat: {int: [1, 2], name: depth}
    layers:
      - conv2d: {filters: $width, kernel: {choice: [3, 5]}, padding: same, activation: relu}
  - name: head
    choice:
      - flatten
      - [global_avgpool2d]
      - {dense: {units: {int: [16, 64], step: 16}, activation: relu}}
  - flatten
  - dense: {units: 10, activation: softmax}
train:
  optimizer: {name: adam, lr: {float: [0.0001, 0.01], log: true, name: lr}}
"""


def study():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def test_optuna_sampler_uses_the_spec_names_values_for_scalars_and_indices_for_structures():
    s = study()
    seen_heads = set()
    for _ in range(30):
        trial = s.ask()
        try:
            spec = specdsl.load(SPACE, sampler=OptunaSampler(trial))
        except specdsl.SpecError:  # a head option that does not fit (e.g. a list as a layer)
            s.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        s.tell(trial, 0.0)
        dists = trial.distributions
        assert dists["width"] == optuna.distributions.CategoricalDistribution([8, 16])
        assert dists["depth"] == optuna.distributions.IntDistribution(1, 2)
        assert dists["layers.0.layers.0.conv2d.kernel"] == optuna.distributions.CategoricalDistribution(
            [3, 5]
        )
        assert dists["head"] == optuna.distributions.CategoricalDistribution(
            [0, 1, 2]
        )  # structures: by index
        assert dists["lr"] == optuna.distributions.FloatDistribution(0.0001, 0.01, log=True)
        head = trial.params["head"]
        seen_heads.add(head)
        # a parameter inside an option exists only when that option was drawn, under the option's index
        assert ("layers.1.2.dense.units" in trial.params) == (head == 2)
        if head == 2:
            assert dists["layers.1.2.dense.units"] == optuna.distributions.IntDistribution(16, 64, step=16)
        # the spec's own record of what was drawn has the same values under the spec's path names
        assert spec.params["width"] == trial.params["width"] and spec.params["lr"] == trial.params["lr"]
        assert spec.params["head"] == ("flatten" if head == 0 else "option 2")
    assert seen_heads == {0, 2}  # option 1, a list where a layer goes, never loads


def test_replaying_a_trial_gives_the_same_spec():
    s = study()
    tree, file, _ = read_space(REFERENCE)
    for _ in range(5):
        trial = s.ask()
        spec = specdsl.load(tree, sampler=OptunaSampler(trial), file=file)
        s.tell(trial, 0.0)
        doc, again = freeze(tree, file, trial.params)
        assert specdsl.plan(again).params == specdsl.plan(spec).params
        assert "search" not in doc
        assert specdsl.check(dump(doc)).params == specdsl.plan(spec).params


def test_replay_of_a_changed_space_says_so():
    from specdsl.errors import SearchError

    with pytest.raises(
        SearchError, match="the trial has no value for parameter `width`; was the search space changed"
    ):
        specdsl.load(SPACE, sampler=ReplaySampler({"depth": 1}))


def test_a_frozen_spec_reads_as_written_by_hand():
    doc, _ = freeze(
        *read_space(REFERENCE)[:2],
        {"filters": 32, "batch_norm": 1, "conv_blocks": 2, "dropout": 0.25, "dense_units": 128, "lr": 0.001},
        name="catsdogs_trial_7",
    )
    assert (
        dump(doc, ["Trial 7 of study catsdogs"])
        == """\
# Trial 7 of study catsdogs
name: catsdogs_trial_7
input: [32, 32, 3]
params: {filters: 32}
blocks:
  conv_block:
    params: {filters: null}
    layers:
      - conv2d: {filters: $filters, kernel: 3, padding: same, use_bias: false}
      - batchnorm
      - activation: relu
      - maxpool2d: 2
layers:
  - repeat: 2
    layers:
      - conv_block: {filters: '${min(filters * 2 ** index, 64)}'}
  - flatten
  - dropout: 0.25
  - dense: {units: 128, activation: relu}
  - dense: {units: 1, activation: sigmoid}
data: {dataset: catsdogs}
train:
  optimizer: {name: adam, lr: 0.001}
  loss: binary_crossentropy
  epochs: 20
  batch_size: 64
"""
    )


def test_progress_shows_counts_best_and_the_top_trials():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=160, force_terminal=True, color_system=None)
    p = Progress(
        console,
        study_name="catsdogs",
        metrics=["val_accuracy"],
        directions=["maximize"],
        budget=10,
        timeout=900,
    )
    p.finished(Row(0, "COMPLETE", (0.61,), {"lr": 0.001, "filters": 16}, seconds=12.0))
    p.finished(Row(1, "COMPLETE", (0.72,), {"lr": 0.003, "filters": 32}, seconds=14.0))
    p.finished(Row(2, "PRUNED", None, {"lr": 0.01}, reason="invalid: too deep", rejected=True))
    p.finished(Row(3, "PRUNED", None, {"lr": 0.0001}, reason="pruned by the median pruner after epoch 2"))
    p.finished(Row(4, "FAIL", None, {}, reason="NonFiniteLoss: the training loss became NaN"))
    p.started(5)
    p.epoch(5, 2, 20)
    status = p.status()
    assert status == (
        "catsdogs: trials 4/10 | 0:00 of 15:00 elapsed | running 1 | complete 2 | pruned 1 | failed 1 | invalid 1 | "
        "best val_accuracy 0.72 (#1)"
    )
    console.print(p._render())
    screen = buf.getvalue()
    assert "running #5: epoch 3/20" in screen.splitlines()
    assert (
        "trial 4 FAIL: NonFiniteLoss: the training loss became NaN" in screen
    )  # the latest troubles, and why
    assert "trial 2 INVALID: invalid: too deep" in screen
    lines = [[cell for cell in line.split() if cell != "│"] for line in screen.splitlines()]
    rows = [line for line in lines if line and line[0] in ("0", "1")]
    assert rows == [["1", "0.72", "32", "0.003", "14"], ["0", "0.61", "16", "0.001", "12"]]


def test_progress_lines_when_not_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    p = Progress(
        Console(file=buf, width=200),
        study_name="s",
        metrics=["val_accuracy"],
        directions=["maximize"],
        budget=None,
        timeout=None,
    )
    with p:
        p.finished(Row(0, "COMPLETE", (0.5,), {}, seconds=3.25))
        p.finished(
            Row(
                1,
                "PRUNED",
                None,
                {},
                reason="a.yaml:3:5: layers[2]: kernel 3x3 does not fit",
                rejected=True,
                seconds=0.04,
            )
        )
    assert buf.getvalue().splitlines() == [
        "trial 0 COMPLETE val_accuracy=0.5 in 3.2s (best 0.5 #0)",
        "trial 1 INVALID in 40ms: a.yaml:3:5: layers[2]: kernel 3x3 does not fit",
    ]


@pytest.mark.parametrize("kind", ["tpe", "random", "cmaes", "nsga2", "grid", "qmc"])
def test_every_sampler_draws_the_reference_space(kind):
    from specdsl.search._setup import make_sampler
    from specdsl.search._space import distributions, read_search

    if kind == "cmaes":
        pytest.importorskip("cmaes")
    text = (REFERENCE).read_text()
    if kind == "grid":  # the grid needs steps on floats
        text = text.replace(
            "dropout: {float: [0.0, 0.5], name: dropout}",
            "dropout: {float: [0.0, 0.5], step: 0.25, name: dropout}",
        )
        text = text.replace(
            "lr: {float: [0.0001, 0.01], log: true, name: lr}", "lr: {choice: [0.001, 0.003], name: lr}"
        )
    tree = specdsl.spec.load_text(text, "catsdogs.yaml")
    dists = distributions(tree, "catsdogs.yaml")
    search = read_search(tree, "catsdogs.yaml").model_copy(update={"sampler": kind, "startup_trials": 2})
    s = optuna.create_study(sampler=make_sampler(search, dists, seed=0, workers=1), direction="maximize")
    for _ in range(6):
        trial = s.ask()
        spec = specdsl.load(tree, sampler=OptunaSampler(trial), file="catsdogs.yaml")
        s.tell(trial, specdsl.plan(spec).params / 1e7)
    assert len(s.trials) == 6 and all(t.state.name == "COMPLETE" for t in s.trials)
    assert {"filters", "batch_norm", "conv_blocks", "dropout", "dense_units", "lr"} == set(
        s.trials[-1].params
    )


@pytest.mark.parametrize(
    "kind, objectives, expected",
    [
        ("median", 1, "MedianPruner"),
        ("hyperband", 1, "HyperbandPruner"),
        ("successive_halving", 1, "SuccessiveHalvingPruner"),
        ("none", 1, "NopPruner"),
        ("median", 2, "NopPruner"),  # Optuna prunes single-objective studies only
    ],
)
def test_pruners(kind, objectives, expected):
    from specdsl.search._setup import make_pruner
    from specdsl.spec import SearchSpec

    search = SearchSpec(
        pruner=kind,
        objectives=[{"metric": "val_accuracy"}, {"metric": "params", "direction": "minimize"}][:objectives],
    )
    assert type(make_pruner(search, epochs=20)).__name__ == expected


def test_warmup_epochs_hold_the_pruner_off_for_that_many_epochs():
    import optuna

    from specdsl.search._setup import make_pruner
    from specdsl.spec import SearchSpec

    search = SearchSpec(pruner="median", startup_trials=1, warmup_epochs=4)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(search, epochs=10))
    good = study.ask()
    for epoch in range(10):
        good.report(0.9, epoch)
    study.tell(good, 0.9)
    bad = study.ask()
    verdicts = []
    for epoch in range(6):
        bad.report(0.1, epoch)
        verdicts.append(bad.should_prune())
    assert verdicts == [False, False, False, False, True, True]


@pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval`` is an experimental feature")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
@pytest.mark.parametrize("kind", ["median", "successive_halving", "hyperband"])
def test_the_pruners_see_the_study_as_asked_and_decide_as_optuna_does(tmp_path, kind):
    """With one worker, a pruner fed the study as the trial began decides at every epoch what Optuna's own
    should_prune decides (two identical studies, one asked each way); the median pruner then reads nothing from the
    storage."""
    import random

    import optuna
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from specdsl.search._pruning import StudyAsAsked
    from specdsl.search._setup import make_pruner
    from specdsl.search._storage import open_storage
    from specdsl.spec import SearchSpec

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    search = SearchSpec(pruner=kind, startup_trials=2, warmup_epochs=1)

    def verdicts(name: str, as_asked: bool) -> tuple[list[bool], list[str]]:
        study = optuna.create_study(
            storage=open_storage(f"sqlite:///{tmp_path / name}.db"),
            direction="maximize",
            study_name="same",  # Hyperband draws a trial's bracket from the name
            pruner=make_pruner(search, epochs=9),
            sampler=optuna.samplers.TPESampler(seed=0),
        )
        rng = random.Random(0)
        out, statements = [], []

        def listener(*args: object) -> None:
            statements.append(args[2])

        for number in range(14):
            trial = study.ask()
            trial.suggest_float(
                "x", 0, 1
            )  # TPE reads the trials: Optuna keeps that copy for the rest of the trial
            view = StudyAsAsked(study)
            pruned = False
            for epoch in range(9):
                trial.report(rng.random(), epoch)
                if epoch < 1:
                    continue
                if as_asked:
                    event.listen(Engine, "before_cursor_execute", listener)
                    try:
                        verdict = study.pruner.prune(view, trial._get_latest_trial())
                    finally:
                        event.remove(Engine, "before_cursor_execute", listener)
                else:
                    verdict = trial.should_prune()
                out.append(verdict)
                if verdict and number >= 8:
                    pruned = True
                    break
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, rng.random())
        return out, statements

    theirs, _ = verdicts("theirs", as_asked=False)
    ours, statements = verdicts("ours", as_asked=True)
    assert ours == theirs
    assert True in ours and False in ours  # both answers were compared
    if kind == "median":
        assert statements == []

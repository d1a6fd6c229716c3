"""Search spaces without Optuna: distributions and their names, forms, grouped reasons of invalid samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from specdsl.errors import SearchError, SpecError
from specdsl.search import check_space, distributions, param_name, parse_duration
from specdsl.search._grid import grid_space
from specdsl.search._space import read_search, read_space

ROOT = Path(__file__).resolve().parents[2]
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))


def test_the_four_ready_made_spaces_exist():
    assert [p.name for p in SPACES] == ["catsdogs.yaml", "cifar10.yaml", "fashion_mnist.yaml", "mnist.yaml"]


@pytest.mark.parametrize(
    "name, invalid, n_dists",
    [("catsdogs", 0, 8), ("cifar10", 2, 10), ("fashion_mnist", 0, 8), ("mnist", 116, 8)],
)
def test_ready_made_spaces_pass_check_space(name, invalid, n_dists):
    report = check_space(ROOT / "search_spaces" / f"{name}.yaml", samples=200, seed=0)
    assert report.ok
    assert (report.samples, report.invalid, len(report.distributions)) == (200, invalid, n_dists)
    assert sum(report.reasons.values()) == invalid
    assert report.first_plan is not None


def test_the_benchmark_space_is_the_reference_protocol():
    tree, file, _ = read_space(ROOT / "benchmarks" / "catsdogs_reference.yaml")
    got = {d.name: d.describe() for d in distributions(tree, file)}
    assert got == {
        "filters": "choice of 16, 32, 64",
        "batch_norm": "choice of 2 structures",
        "conv_blocks": "int in [1, 3]",
        "dropout": "float in [0.0, 0.5]",
        "dense_units": "choice of 64, 128, 256",
        "lr": "float in [0.0001, 0.01] (log)",
    }
    search = read_search(tree, file)
    assert (search.sampler, search.pruner, search.trials, search.timeout) == ("tpe", "median", 100, "15m")
    assert [(o.metric, o.direction) for o in search.objectives] == [("val_accuracy", "maximize")]
    assert tree["data"]["dataset"] == "catsdogs" and tree["train"]["batch_size"] == 64


def test_the_catsdogs_space_searches_vgg_style_stages_with_augmentation():
    tree, file, _ = read_space(ROOT / "search_spaces" / "catsdogs.yaml")
    got = {d.name: d.describe() for d in distributions(tree, file)}
    assert got == {
        "filters": "choice of 24, 32, 48",
        "convs_per_stage": "int in [1, 2]",
        "stage_dropout": "float in [0.0, 0.3] step 0.05",
        "stages": "int in [2, 4]",
        "head": "choice of 'global_avgpool2d', 'flatten'",
        "dropout": "float in [0.0, 0.5] step 0.05",
        "dense_units": "choice of 64, 128, 256",
        "lr": "float in [0.0005, 0.005] (log)",
    }
    assert tree["data"]["augment"] == {"flip": "horizontal", "rotation": 15, "shift": 0.1, "zoom": 0.1}
    search = read_search(tree, file)
    assert (search.pruner, search.timeout, search.startup_trials) == ("median", "15m", 2)


def test_the_mnist_space_rejects_its_corners_that_do_not_plan():
    space = ROOT / "search_spaces" / "mnist.yaml"
    report = check_space(space, samples=200, seed=0)
    # three stages of 5x5 'valid' convolutions: the third stage's first one finds a 4x4 image; and the larger
    # corners need more than the 12 MFLOPs of the constraint (the reasons group numbers, and show the first)
    assert dict(report.reasons) == {
        f"{space}:25:13: layers[0].repeat[2].layers[0].stage.layers[0].repeat[0].layers[0] (conv2d): kernel 5x5 does "
        "not fit its 4x4x48 input with padding=valid (output would be 0x0).": 38,
        "constraint max_flops: the model needs 91,710,868 FLOPs per example, more than the 12,000,000 allowed.": 78,
    }


def test_invalid_samples_are_grouped_by_place_and_rule():
    space = ROOT / "tests" / "search" / "spaces" / "many_invalid_corners.yaml"
    report = check_space(space, samples=200, seed=0)
    assert report.reasons.most_common(1)[0] == (
        f"{space}:29:13: layers[0].repeat[2].layers[0].stage.layers[3] (conv2d): kernel 3x3 "
        "does not fit its 2x2x128 input with padding=valid (output would be 0x0).",
        10,
    )
    # four places where a 'valid' convolution runs out of image; numbers aside, each is one reason
    assert sorted(report.reasons.values()) == [6, 7, 10, 10]
    assert f"{report.invalid_fraction:.3f}" == "0.165"
    assert report.format().splitlines()[0] == (
        f"{report.file}: 10 distributions; 167 of 200 sampled architectures plan (33 invalid, 16%)"
    )


def test_constraints_count_as_invalid_with_their_reason(space):
    path = space(
        "tight",
        """
input: [8, 8, 1]
layers:
  - conv2d: {filters: {choice: [4, 64]}, kernel: 3}
  - flatten
  - dense: {units: 2, activation: softmax}
search: {constraints: {max_params: 1000}}
""",
    )
    report = check_space(path, samples=40, seed=1)
    assert report.invalid == sum(report.reasons.values()) > 0
    [(reason, n)] = report.reasons.items()
    assert reason == "constraint max_params: the model has 5,250 parameters, more than the 1,000 allowed."
    assert n == report.invalid


def test_an_all_invalid_space_is_reported():
    report = check_space(ROOT / "tests" / "bad_inputs" / "all_invalid_space.yaml", samples=20)
    assert report.all_invalid and not report.ok
    assert dict(report.reasons) == {
        f"{ROOT}/tests/bad_inputs/all_invalid_space.yaml:5:9: layers[0].repeat[3].layers[0] (conv2d): kernel 3x3 "
        "does not fit its 2x2x8 input with padding=valid (output would be 0x0).": 20
    }


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "{int: [64, 16]}",
            "3:23: layers[0].conv2d.filters: `low <= high` must hold, but got (low=64, high=16).",
        ),
        ("{int: [8, 16], step: 0}", "3:44: `step` must be a positive number, but got 0."),
        (
            "{int: [8, 16], log: true, step: 2}",
            "3:23: layers[0].conv2d.filters: `step` and `log: true` cannot be combined.",
        ),
        (
            "{int: [0, 16], log: true}",
            "3:23: layers[0].conv2d.filters: `low > 0` must hold for log=true, but got (low=0, high=16).",
        ),
        ("{choice: []}", "3:23: layers[0].conv2d.filters: `choice` takes a non-empty list of options."),
        (
            "{int: [8, 16], stpe: 2}",
            "3:38: unknown key `stpe` in a `int` distribution; did you mean `step`? "
            "Valid keys: choice, int, float, log, step, name.",
        ),
        (
            "{int: [8, 16], name: 'f[0]'}",
            "3:44: layers[0].conv2d.filters: a parameter `name` may hold letters, digits, "
            "`_`, `-`, `.` and `:` (it names an Optuna and an MLflow parameter), but got 'f[0]'.",
        ),
    ],
)
def test_malformed_distributions_are_located_search_errors(space, value, message):
    path = space("bad", f"input: [28, 28, 1]\nlayers:\n  - conv2d: {{filters: {value}, kernel: 3}}\n")
    with pytest.raises(SearchError) as e:
        check_space(path, samples=5)
    assert str(e.value) == f"{path}:{message}"


def test_a_distribution_inside_an_unchosen_option_is_checked_too(space):
    path = space(
        "nested",
        """
input: [28, 28, 1]
layers:
  - choice:
      - conv2d: {filters: 8, kernel: 3}
      - conv2d: {filters: {int: [9, 2]}, kernel: 3}
  - flatten
""",
    )
    with pytest.raises(
        SearchError, match=r"nested.yaml:6:27: layers\[0\]\[1\].conv2d.filters: `low <= high` must hold"
    ):
        check_space(path, samples=5)


def test_two_different_distributions_may_not_share_a_name(space):
    path = space(
        "twice",
        """
input: [28, 28, 1]
layers:
  - conv2d: {filters: {choice: [8, 16], name: width}, kernel: 3}
  - conv2d: {filters: {choice: [8, 32], name: width}, kernel: 3}
  - flatten
""",
    )
    with pytest.raises(SearchError) as e:
        check_space(path, samples=5)
    assert "two different distributions are named `width`" in str(e.value)
    assert str(e.value).startswith(f"{path}:5:23: ")


def test_one_name_twice_draws_one_value(space):
    path = space(
        "tied",
        """
input: [28, 28, 1]
layers:
  - conv2d: {filters: {choice: [8, 16], name: width}, kernel: 3}
  - conv2d: {filters: {choice: [8, 16], name: width}, kernel: 3}
  - flatten
""",
    )
    from specdsl.search._space import MemoSampler
    from specdsl.spec import RandomSampler, load

    for seed in range(10):
        spec = load(path, sampler=MemoSampler(RandomSampler(seed)))
        assert spec.layers[0].layer.filters == spec.layers[1].layer.filters


def test_parameter_names_are_spec_paths_mlflow_can_hold():
    tree, file, _ = read_space(ROOT / "search_spaces" / "cifar10.yaml")
    names = [d.name for d in distributions(tree, file)]
    assert names == [
        "filters",
        "convs_per_stage",
        "stage_dropout",
        "stages",
        "head",
        "dense_units",
        "dropout",
        "optimizer",
        "adam_lr",
        "sgd_lr",
    ]
    assert param_name("layers[2].conv2d.filters") == "layers.2.conv2d.filters"
    assert param_name("layers[0].repeat") == "layers.0.repeat"


def test_search_section_errors(space):
    path = space("obj", "input: [8, 8, 1]\nlayers: [flatten]\nsearch: {objectives: {metric: val_acc}}\n")
    with pytest.raises(SearchError, match="unknown objective metric `val_acc`; did you mean `val_accuracy`?"):
        check_space(path, samples=1)
    path = space("dist", "input: [8, 8, 1]\nlayers: [flatten]\nsearch: {trials: {int: [1, 5]}}\n")
    with pytest.raises(SearchError, match="the `search:` section holds settings, not distributions."):
        check_space(path, samples=1)


def test_grid_needs_steps_on_floats():
    tree, file, _ = read_space(ROOT / "benchmarks" / "catsdogs_reference.yaml")
    dists = distributions(tree, file)
    with pytest.raises(
        SearchError, match="the grid sampler needs a `step` on every float distribution, but `dropout`"
    ):
        grid_space(dists)
    ints = [d for d in dists if d.kind != "float"]
    assert grid_space(ints) == {
        "filters": [16, 32, 64],
        "batch_norm": [0, 1],
        "conv_blocks": [1, 2, 3],
        "dense_units": [64, 128, 256],
    }


@pytest.mark.parametrize(
    "text, seconds",
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        (None, None),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15 minutes", "m", "-5", "0", "2d"])
def test_bad_durations(text):
    with pytest.raises(SearchError, match="timeout"):
        parse_duration(text)


def test_check_space_imports_no_framework():
    code = (
        "import sys; from specdsl.search import check_space; "
        "r = check_space('search_spaces/mnist.yaml', samples=20); "
        "print(sorted(m for m in ('optuna', 'mlflow', 'torch', 'keras', 'sqlalchemy') if m in sys.modules), r.samples)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] 20"


@pytest.mark.parametrize(
    "value, size",
    [
        (2048, 2048),
        ("2048", 2048),
        ("64KiB", 65_536),
        ("64 KB", 64_000),
        ("1.5GB", 1_500_000_000),
        ("512MiB", 536_870_912),
        ("2 gib", 2_147_483_648),
        ("1TiB", 1024**4),
    ],
)
def test_trial_memory_is_bytes_or_a_size_with_its_unit(value, size):
    from specdsl.spec import SearchSpec

    assert SearchSpec(trial_memory=value).trial_memory == size
    assert (
        SearchSpec.model_validate(SearchSpec(trial_memory=value).model_dump()).trial_memory == size
    )  # to workers


@pytest.mark.parametrize("value", ["2 gigs", "0", "-1GiB", "GiB", "true", "1.5"])
def test_a_bad_trial_memory_is_a_located_error(space, value):
    path = space("mem", f"input: [8, 8, 1]\nlayers: [flatten]\nsearch: {{trial_memory: {value}}}\n")
    with pytest.raises(SpecError) as e:
        check_space(path, samples=1)
    shown = {"true": "True", "1.5": "1.5", "0": "0"}.get(value, repr(value))
    assert str(e.value) == (
        f"{path}:3:24: search: `trial_memory`: a memory size is a positive number of bytes, or a number with a unit "
        f"(KiB, MiB, GiB, TiB, KB, MB, GB, TB) such as 2GiB, but got {shown}."
    )


def test_trial_memory_counts_as_invalid_with_its_estimate(space):
    path = space(
        "memory",
        """
input: [8, 8, 1]
layers:
  - flatten
  - dense: {units: {choice: [16, 100000]}, activation: relu}
  - dense: {units: 10, activation: softmax}
train: {optimizer: sgd, batch_size: 64}
search: {trial_memory: 100MB}
""",
    )
    report = check_space(path, samples=40, seed=1)
    [(reason, n)] = report.reasons.items()
    # sgd without momentum: the weights, their best-epoch copy and the gradients (12 bytes a parameter)
    assert reason == (
        "trial_memory: training would take about 159.2 MiB (85.8 MiB for 7,500,010 parameters with their "
        "gradients and sgd state, 73.3 MiB of activations for batches of 64), more than the 95.4 MiB "
        "allowed."
    )
    assert n == report.invalid > 0

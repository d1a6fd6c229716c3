"""The grid sampler's size, counted from the distributions before any grid value is listed, and refused by
`specdsl validate` (as by `specdsl search`) at the distribution that makes it large."""

from __future__ import annotations

import tracemalloc

import pytest
from typer.testing import CliRunner

from specdsl.cli import app
from specdsl.errors import SearchError
from specdsl.search._grid import MAX_GRID_POINTS, grid_size, grid_space
from specdsl.search._space import CHECK_LAYERS, check_space, distributions
from specdsl.spec import load_text

HEAD = "input: [8, 8, 1]\nlayers:\n  - flatten\n"
TAIL = "  - dense: {units: 10, activation: softmax}\nsearch: {sampler: grid}\n"


def dists(layers: str):
    tree = load_text(HEAD + layers + TAIL, "grid.yaml")
    return distributions(tree, "grid.yaml")


def refused(layers: str) -> str:
    with pytest.raises(SearchError) as e:
        grid_size(dists(layers))
    return e.value.format()


def test_the_bounds_are_the_documented_numbers():
    assert (MAX_GRID_POINTS, CHECK_LAYERS) == (100_000, 50_000)


def test_a_large_space_is_checked_on_fewer_samples(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(
        HEAD + "  - dense: {units: {int: [4, 16]}}\n" * 499 + TAIL.replace("search: {sampler: grid}\n", "")
    )
    report = check_space(path)  # 500 dense layers and the flatten: 502 nodes with the input, per sample
    assert (report.samples, report.invalid) == (100, 0)


def test_the_size_is_the_product_of_every_parameters_values():
    d = dists(
        "  - dense: {units: {int: [8, 64], step: 8}}\n  - dropout: {float: [0.0, 0.5], step: 0.1}\n"
        "  - activation: {choice: [relu, tanh, gelu]}\n"
        "  - dense: {units: {int: [8, 64], step: 8, name: layers.1.dense.units}}\n"
    )
    assert grid_size(d) == 8 * 6 * 3
    grid = grid_space(d)
    assert {name: len(values) for name, values in grid.items()} == {
        "layers.1.dense.units": 8,
        "layers.2.dropout": 6,
        "layers.3.activation": 3,
    }


def test_a_two_billion_value_int_is_refused_without_listing_it():
    d = dists("  - dense: {units: {int: [1, 2000000000]}}\n")
    tracemalloc.start()
    with pytest.raises(SearchError) as e:
        grid_space(d)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000
    assert e.value.format() == (
        "grid.yaml:4:20: layers[1].dense.units: the grid would hold 2,000,000,000 combinations, more than the 100,000 "
        "a grid search may have; this distribution (int in [1, 2000000000]) has 2,000,000,000 values. Give it a "
        "coarser `step` or fewer options, or use another sampler (tpe, random, qmc)."
    )


def test_a_tiny_float_step_is_refused_at_its_distribution():
    assert refused("  - dense: 4\n  - dropout: {float: [0.0, 0.5], step: 1.0e-9}\n") == (
        "grid.yaml:5:14: layers[2].dropout: the grid would hold 500,000,001 combinations, more than the 100,000 a "
        "grid search may have; this distribution (float in [0.0, 0.5] step 1e-09) has 500,000,001 values. Give it a "
        "coarser `step` or fewer options, or use another sampler (tpe, random, qmc)."
    )


def test_many_small_distributions_multiply_past_the_bound_at_the_largest():
    def ints(*highs: int) -> str:
        return "".join(f"  - dense: {{units: {{int: [1, {n}]}}}}\n" for n in highs)

    assert grid_size(dists(ints(10, 100, 10, 10))) == MAX_GRID_POINTS  # the bound itself is allowed
    assert refused(ints(10, 100, 10, 11)) == (
        "grid.yaml:5:20: layers[2].dense.units: the grid would hold 110,000 combinations, more than the 100,000 a "
        "grid search may have; this distribution (int in [1, 100]) has 100 values, and 3 more distributions "
        "multiply them. Give it a coarser `step` or fewer options, or use another sampler (tpe, random, qmc)."
    )


def test_an_unbounded_float_range_is_counted_without_overflow():
    message = refused("  - dense: 4\n  - rescaling: {float: [-1.0e308, 1.0e308], step: 1.0e-300}\n")
    assert "the grid would hold more than 1,000,000,000,000,000,000 combinations" in message


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            "  - dense: {units: {int: [1, 2000000000]}}\n",
            "grid.yaml:4:20: layers[1].dense.units: the grid would hold 2,000,000,000 combinations",
        ),
        (
            "  - dense: 4\n  - dropout: {float: [0.0, 0.5]}\n",
            "grid.yaml:5:14: layers[2].dropout: the grid sampler needs a `step` on every float distribution, but "
            "`layers.2.dropout` has none. Add e.g. `step: 0.1`, or use another sampler (tpe, random, qmc).",
        ),
    ],
)
def test_validate_refuses_the_grid_located(tmp_path, monkeypatch, layers, message):
    (tmp_path / "grid.yaml").write_text(HEAD + layers + TAIL)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "grid.yaml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: " + message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_space_leaves_other_samplers_alone(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(HEAD + "  - dense: {units: {int: [1, 2000000000]}}\n" + TAIL.replace("grid", "random"))
    assert check_space(path, samples=3).distributions[0].high == 2_000_000_000

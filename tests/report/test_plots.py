"""Optuna's plots of a study (specdsl.report.study_plots): HTML that shows offline, PNGs of an exact size that are
real pictures, objectives named after their metrics; the HTML and a diagram rendered in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from support import EXAMPLES

from specdsl.report import study_plots

optuna = pytest.importorskip("optuna")
pytest.importorskip("plotly")
pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

TRIALS = 12


def make_study(objectives: int) -> object:
    """A study as `specdsl search` leaves it (its metrics in a user attribute), of a quick function."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize", "minimize"][:objectives]
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("specdsl.metrics", ["val_accuracy", "params"][:objectives])

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        filters = trial.suggest_int("filters", 4, 64)
        head = trial.suggest_categorical("head", ["global_avgpool2d", "flatten"])
        accuracy = 0.5 + 0.4 * (filters / 64) - abs(lr - 0.01) + (0.05 if head == "flatten" else 0.0)
        return (accuracy, filters * 100) if objectives == 2 else accuracy

    study.optimize(objective, n_trials=TRIALS)
    return study


def assert_real_png(path: Path, size: tuple[int, int], background: float = 0.9) -> None:
    """An image of ``size`` with many colours, of which the commonest (white, or ggplot's grey) covers less than
    ``background`` of it."""
    image = Image.open(path).convert("RGB")
    assert image.size == size
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 100  # lines, markers, text, anti-aliasing
    assert max(colours)[0] < background * size[0] * size[1]


def test_two_objectives_give_four_plots_in_both_forms_named_after_the_metrics(tmp_path):
    files, note = study_plots(make_study(2), tmp_path)
    assert note is None
    names = ("optimization_history", "param_importances", "parallel_coordinate", "pareto_front")
    assert sorted(Path(f).name for f in files) == sorted(f"{n}.{s}" for n in names for s in ("html", "png"))
    for name in names:
        page = (tmp_path / f"{name}.html").read_text()
        # plotly.js is inside (no script tag loads anything); booleans, as a diff of 4.8 MB pages takes minutes
        loads = '<script src="http' in page or bool(re.search(r"<script\b[^>]*\bsrc=", page))
        assert (loads, len(page) > 3_000_000) == (False, True), name
        assert_real_png(tmp_path / f"{name}.png", (800, 500))
    pareto = (tmp_path / "pareto_front.html").read_text()
    assert ('"title":{"text":"val_accuracy"}' in pareto, '"title":{"text":"params"}' in pareto) == (
        True,
        True,
    )
    history = (tmp_path / "optimization_history.html").read_text()
    assert ('"name":"val_accuracy"' in history) is True


def test_one_objective_has_no_pareto_front(tmp_path):
    files, note = study_plots(make_study(1), tmp_path)
    assert sorted(Path(f).name for f in files) == sorted(
        f"{n}.{s}"
        for n in ("optimization_history", "param_importances", "parallel_coordinate")
        for s in ("html", "png")
    )
    assert note is None
    assert_real_png(tmp_path / "parallel_coordinate.png", (800, 500))


def test_a_plot_that_cannot_be_drawn_is_named_in_the_note_and_the_others_are_kept(tmp_path, monkeypatch):
    import optuna.visualization.matplotlib as vis_mpl

    def fails(*args, **kwargs):
        raise ValueError("Cannot evaluate parameter importances with only a single trial.\nmore")

    monkeypatch.setattr(vis_mpl, "plot_param_importances", fails)
    files, note = study_plots(make_study(1), tmp_path, html=False)
    assert sorted(Path(f).name for f in files) == ["optimization_history.png", "parallel_coordinate.png"]
    assert note == (
        "plots skipped: param_importances.png (ValueError: Cannot evaluate parameter importances "
        "with only a single trial.)"
    )
    monkeypatch.setenv(
        "PATH", str(tmp_path)
    )  # no Graphviz: the trials' runs have no diagram, and the note says so
    files, note = study_plots(make_study(1), tmp_path, html=False, png=False)
    assert files == []
    assert note == (
        "plots skipped: the trials' model.svg (Graphviz's dot is not installed: apt-get install graphviz)"
    )


def _chromium() -> str | None:
    named = os.environ.get("SPECDSL_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_the_html_plots_and_a_diagram_render_offline_in_chromium(tmp_path):
    chromium = _chromium()
    if chromium is None or shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: no Chromium or no Graphviz")
        pytest.skip("no Chromium binary or no Graphviz's dot")
    sync_api = pytest.importorskip("playwright.sync_api")
    import specdsl
    from specdsl.report import write_diagram

    study_plots(make_study(2), tmp_path, png=False)
    write_diagram(specdsl.check(EXAMPLES / "resnet50.yaml"), tmp_path / "resnet50.svg")
    refused: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            timeout=60_000,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.route(
                re.compile(r"^https?://"), lambda route: (refused.append(route.request.url), route.abort())
            )
            page.goto((tmp_path / "pareto_front.html").as_uri(), wait_until="load")
            page.wait_for_selector(".plotly .scatterlayer .point", timeout=30_000)
            assert page.locator(".plotly .scatterlayer .point").count() == TRIALS  # every trial is a point
            assert page.locator(".xtitle").text_content() == "val_accuracy"
            assert page.locator(".ytitle").text_content() == "params"
            page.screenshot(path=str(tmp_path / "pareto_front_chromium.png"))
            page.goto((tmp_path / "param_importances.html").as_uri(), wait_until="load")
            page.wait_for_selector(".plotly .barlayer .point", timeout=30_000)
            assert page.locator(".plotly .barlayer .point").count() == 3  # lr, filters, head
            page.goto((tmp_path / "resnet50.svg").as_uri(), wait_until="load")
            assert page.locator("g.node").count() == 177 and page.locator("g.edge").count() == 192
            page.screenshot(path=str(tmp_path / "resnet50_chromium.png"))
            print(
                f"screenshots: {tmp_path / 'pareto_front_chromium.png'} {tmp_path / 'resnet50_chromium.png'}"
            )
        finally:
            browser.close()
    assert refused == []  # nothing was fetched from the network
    assert_real_png(tmp_path / "pareto_front_chromium.png", (1000, 700))
    assert_real_png(tmp_path / "resnet50_chromium.png", (1000, 700), background=0.97)  # thin boxes on white

"""Progress a person can follow: the data's preparation said, a running trial's last validation value, seconds an
epoch and an estimate of its end, and a status and top-trials table that fit 80 and 120 columns with every column
labelled: rendered by rich at both widths, and in a real terminal (tmux) at both widths when tmux is installed."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specdsl.search._progress import Progress, Row

ROOT = Path(__file__).resolve().parents[2]

# the catsdogs space's eight parameters, as its trials hold them
PARAMS = {
    "convs_per_stage": 2,
    "dense_units": 128,
    "dropout": 0.25,
    "filters": 32,
    "head": "global_avgpool2d",
    "lr": 0.0012345,
    "stage_dropout": 0.15,
    "stages": 3,
}
CUT = "stopped at the study's time limit after 3 of 12 epochs (its best epoch's val_accuracy 0.77)"


def _study(console) -> Progress:
    p = Progress(
        console,
        study_name="catsdogs",
        metrics=["val_accuracy"],
        directions=["maximize"],
        budget=100,
        timeout=900,
    )
    for i in range(6):
        p.finished(Row(i, "COMPLETE", (0.6 + i / 100,), dict(PARAMS), seconds=123.0))
    p.finished(Row(6, "PRUNED", (0.71,), dict(PARAMS), reason=CUT))
    p.started(7)
    p.epoch(7, 0, 12, {"val_accuracy": 0.69, "epoch_seconds": 20.0}, "val_accuracy")
    p.epoch(7, 1, 12, {"val_accuracy": 0.7133, "epoch_seconds": 23.0}, "val_accuracy")
    return p


def _screen(width: int, preparing: bool = False) -> tuple[str, str]:
    """(what was said, what the live display shows) at ``width`` columns."""
    from rich.console import Console

    said = io.StringIO()
    p = _study(Console(file=said, width=width, color_system=None))
    shown = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    p.console = shown
    if preparing:
        with p.preparing("catsdogs"):
            shown.print(p._render())
    else:
        shown.print(p._render())
    return said.getvalue(), shown.file.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_the_status_and_the_table_fit_the_width_and_every_column_is_labelled(width):
    _, screen = _screen(width)
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= width, screen
    assert "elapsed" in screen and "0:00 of 15:00 elapsed" in lines[0]  # the clock never falls off
    (header,) = [line for line in lines if line.lstrip().startswith("#")]
    titles = [t.strip() for t in header.split("┃")]
    assert titles[:2] == ["#", "val_accuracy"] and titles[-1] == "seconds"
    assert set(titles[2:-1]) <= set(PARAMS) and titles[2:-1] == sorted(
        titles[2:-1]
    )  # whole names: none wrapped
    assert "s" not in titles and "" not in titles
    title = next(line for line in lines if line.startswith("top 5 trials"))
    shown = len(titles) - 3
    assert title.rstrip() == ("top 5 trials" if shown == 8 else f"top 5 trials ({shown} of 8 parameters)")
    row = next(line for line in lines if line.lstrip().startswith("5 "))
    assert row.split("│")[0].strip() == "5" and row.split("│")[-1].strip() == "123"
    # the status: every part whole, in lines that fit
    status = lines[: next(i for i, line in enumerate(lines) if line.startswith("running #"))]
    parts = [p.strip() for line in status for p in line.split("|")]
    assert parts == [
        "catsdogs: trials 7/100",
        "0:00 of 15:00 elapsed",
        "running 1",
        "complete 6",
        "pruned 1",
        "failed 0",
        "invalid 0",
        "best val_accuracy 0.65 (#5)",
    ]
    assert len(status) == 2


@pytest.mark.parametrize(("width", "shown"), [(80, 4), (120, 7)])
def test_as_many_parameters_as_fit_are_shown(width, shown):
    _, screen = _screen(width)
    assert f"top 5 trials ({shown} of 8 parameters)" in screen


def test_a_running_trial_shows_its_last_value_seconds_an_epoch_and_its_end():
    _, screen = _screen(120)
    # two epochs of 20 and 23 s: 21.5 s an epoch, 10 epochs left of 12
    assert "running #7: epoch 2/12, val_accuracy 0.7133, 21.5 s/epoch, ends in ~3:35" in screen.splitlines()


def test_a_running_trial_that_the_time_limit_will_cut_says_so():
    from rich.console import Console

    p = _study(Console(file=io.StringIO(), width=120))
    p.epoch(7, 2, 200, {"val_accuracy": 0.72, "epoch_seconds": 21.5}, "val_accuracy")
    p.start -= 600  # 10 of the 15 minutes gone
    line = p.running_line(p.rows[7], "val_accuracy")
    assert line.startswith(
        "running #7: epoch 3/200, val_accuracy 0.72, 21.5 s/epoch, cut at the time limit in ~4:5"
    )


def test_data_preparation_is_said_and_shown_while_it_runs():
    _, screen = _screen(80, preparing=True)  # said on the console the display is on, then shown
    said = "preparing data: catsdogs (once per worker; the first time, decoded into a cache)"
    assert said in screen.splitlines()
    assert "preparing data: catsdogs (0:00)" in screen.splitlines()
    _, after = _screen(80)
    assert "preparing data" not in after


def test_a_trial_stopped_early_says_its_value_is_its_last_epoch_s():
    said, _ = _screen(200)
    assert f"trial 6 PRUNED (last epoch val_accuracy=0.71): {CUT}" in said.splitlines()


SCRIPT = """
import time
from rich.console import Console
import test_search_progress as t
console = Console()
p = t._study(console)
with p:
    time.sleep(1.5)
print("DONE")
"""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
@pytest.mark.parametrize("width", [80, 120])
def test_the_live_display_fits_a_real_terminal_of_80_and_120_columns(tmp_path, width):
    session = f"specdsl-progress-{os.getpid()}-{width}"
    script = tmp_path / "show.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{Path(__file__).parent}", TERM="xterm-256color")
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            "40",
            f"{sys.executable} {script}; sleep 30",
        ],
        check=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
            ).stdout
            if "DONE" in screen:
                break
            time.sleep(0.3)
        assert "DONE" in screen, screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= width
    (header,) = [line for line in lines if line.lstrip().startswith("#")]
    titles = [t.strip() for t in header.split("┃")]
    assert (
        titles[:2] == ["#", "val_accuracy"] and titles[-1] == "seconds" and set(titles[2:-1]) <= set(PARAMS)
    )
    assert any("0:0" in line and "of 15:00 elapsed" in line for line in lines), screen
    assert "running #7: epoch 2/12, val_accuracy 0.7133, 21.5 s/epoch, ends in ~3:35" in lines, screen

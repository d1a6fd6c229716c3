"""The learning-rate schedules and the best-epoch / early-stopping monitor (pure, shared by both backends)."""

from __future__ import annotations

import math

import pytest

from specdsl.spec import EarlyStopping, Schedule
from specdsl.train import LrSchedule, Monitor
from specdsl.train._schedule import monitor_mode


def lrs(schedule: Schedule, epochs: int = 6, lr: float = 0.1) -> list[float]:
    s = LrSchedule(schedule, lr, epochs)
    return [round(s.epoch_lr(e), 10) for e in range(epochs)]


def test_constant_step_exponential():
    assert lrs(Schedule()) == [0.1] * 6
    assert lrs(Schedule(name="step", step_size=2, gamma=0.5)) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert lrs(Schedule(name="exponential", gamma=0.5)) == [0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125]


def test_cosine_from_lr_towards_zero():
    got = lrs(Schedule(name="cosine"), epochs=4)
    want = [round(0.1 * 0.5 * (1 + math.cos(math.pi * k / 4)), 10) for k in range(4)]
    assert got == want
    assert got[0] == 0.1


def test_warmup_is_linear_per_step_then_the_schedule_starts():
    s = LrSchedule(Schedule(name="step", step_size=1, gamma=0.5, warmup_epochs=2), 0.1, 5)
    steps = 4
    warm = [s.step_lr(e, i, steps) for e in range(2) for i in range(steps)]
    assert warm == pytest.approx([0.1 * k / 8 for k in range(1, 9)])
    assert [s.step_lr(e, 0, steps) for e in range(2, 5)] == pytest.approx([0.1, 0.05, 0.025])
    assert (s.in_warmup(1), s.in_warmup(2)) == (True, False)


def test_plateau_decays_after_patience_epochs_without_improvement():
    s = LrSchedule(Schedule(name="plateau", patience=2, gamma=0.1), 1.0, 10)
    seen = []
    for value in [1.0, 0.9, 0.95, 0.92, 0.91, 0.8]:
        s.end_epoch(value, "min")
        seen.append(round(s.epoch_lr(0), 10))
    # no improvement after 0.9 at the 3rd and 4th values -> decay; then wait starts again
    assert seen == [1.0, 1.0, 1.0, 0.1, 0.1, 0.1]


def test_monitor_mode_as_keras_auto():
    assert [monitor_mode(m) for m in ("val_loss", "loss", "val_accuracy", "top5_accuracy")] == [
        "min",
        "min",
        "max",
        "max",
    ]


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    m = Monitor("val_loss", EarlyStopping(patience=2))
    got = [m.update(e, v) for e, v in enumerate([1.0, 0.9, 0.95, 0.91])]
    assert got == [(True, False), (True, False), (False, False), (False, True)]
    assert (m.best_epoch, m.best) == (1, 0.9)


def test_min_delta_counts_small_gains_as_no_improvement():
    m = Monitor("val_accuracy", EarlyStopping(patience=1, min_delta=0.05))
    assert [m.update(e, v) for e, v in enumerate([0.5, 0.54, 0.6])] == [
        (True, False),
        (False, True),
        (True, False),
    ]


def test_without_early_stopping_the_best_is_tracked_and_never_stops():
    m = Monitor("val_accuracy", None)
    results = [m.update(e, v) for e, v in enumerate([0.5, 0.7, 0.6, 0.6, 0.6, 0.6])]
    assert all(not stop for _, stop in results)
    assert (m.best_epoch, m.best) == (1, 0.7)


def test_a_nan_first_epoch_is_still_the_best_so_far():
    m = Monitor("val_loss", None)
    assert m.update(0, math.nan) == (True, False)
    assert m.update(1, 2.0) == (True, False)
    assert m.best_epoch == 1

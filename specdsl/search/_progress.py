"""What a running study shows: counts by state, the best value so far, a live table of the top trials.

On a terminal this is a rich ``Live`` display refreshed in place; elsewhere (CI logs, pipes, tests) one line per
finished trial. With ``--workers N`` the parent process polls the storage and renders the whole study.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._text import terminal
from ._config import REASON, REJECTED

TOP = 5
REJECTION_WARNING = 50  # consecutive invalid samples before the progress says so


@dataclass
class Row:
    number: int
    state: str  # RUNNING | COMPLETE | PRUNED | FAIL | WAITING
    values: tuple[float, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    rejected: bool = False
    epoch: int | None = None
    epochs: int | None = None
    seconds: float | None = None
    last: float | None = None  # a running trial: its last epoch's value of the metric the search watches
    epoch_s: float | None = None  # and its seconds an epoch, on average


def row_of(t: Any) -> Row:
    """A progress row for an Optuna FrozenTrial."""
    secs = None
    if t.datetime_start is not None and t.datetime_complete is not None:
        secs = (t.datetime_complete - t.datetime_start).total_seconds()
    return Row(
        number=t.number,
        state=t.state.name,
        values=tuple(t.values) if t.values else None,
        params=dict(t.params),
        reason=t.user_attrs.get(REASON),
        rejected=bool(t.user_attrs.get(REJECTED)),
        epoch=(max(t.intermediate_values) + 1) if t.intermediate_values else None,
        seconds=secs,
    )


class Progress:
    """Collects trial rows and shows them. ``console`` is a rich Console (None: stay silent)."""

    def __init__(
        self,
        console: Any,
        *,
        study_name: str,
        metrics: list[str],
        directions: list[str],
        budget: int | None,
        timeout: float | None,
        workers: int = 1,
    ):
        self.console = console
        self.study_name = study_name
        self.metrics = metrics
        self.directions = directions
        self.budget = budget
        self.timeout = timeout
        self.workers = workers
        self.rows: dict[int, Row] = {}
        self.start = time.monotonic()
        self.consecutive_rejected = 0
        self.warned_at = 0
        self.note: str | None = None
        self.live = None
        self.printed: set[int] = set()
        self.lock = threading.Lock()  # the Live display renders from its own thread
        self.events: deque[str] = deque(maxlen=3)  # the latest invalid, pruned and failed trials, with why
        self.prepare: tuple[str, float] | None = None  # data being prepared: what, since when

    # -- life cycle

    def __enter__(self) -> Progress:
        if self.console is not None and getattr(self.console, "is_terminal", False):
            from rich.live import Live

            self.live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=2,
                transient=False,
                get_renderable=self._render,
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def say(self, text: str) -> None:
        if self.console is None:
            return
        text = terminal(text, keep="\n")  # names, reasons and paths a user wrote
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # -- events

    @contextlib.contextmanager
    def preparing(self, what: str) -> Iterator[None]:
        """Data being prepared for the trials (read, decoded, cached): said when it starts and when it is done, and
        shown with its elapsed time on a terminal meanwhile."""
        self.say(f"preparing data: {what} (once per worker; the first time, decoded into a cache)")
        self.prepare = (what, time.monotonic())
        try:
            yield
        finally:
            self.prepare = None

    def started(self, number: int, epochs: int | None = None) -> None:
        with self.lock:
            self.rows[number] = Row(number=number, state="RUNNING", epochs=epochs)

    def epoch(
        self,
        number: int,
        epoch: int,
        epochs: int | None,
        logs: dict[str, Any] | None = None,
        metric: str | None = None,
    ) -> None:
        """Trial ``number`` finished ``epoch`` (from 0) of ``epochs``; ``logs`` its values (``metric``'s is shown,
        with the epoch's seconds and an estimate of the trial's end)."""
        logs = logs or {}
        with self.lock:
            row = self.rows.setdefault(number, Row(number=number, state="RUNNING"))
            row.epoch, row.epochs = epoch + 1, epochs
            value = logs.get(metric) if metric else None
            row.last = float(value) if isinstance(value, (int, float)) else row.last
            secs = logs.get("epoch_seconds")
            if isinstance(secs, (int, float)):
                row.epoch_s = secs if row.epoch_s is None else (row.epoch_s * epoch + secs) / (epoch + 1)

    def finished(self, row: Row) -> None:
        with self.lock:
            old = self.rows.get(row.number)
            if old is not None and row.epochs is None:
                row.epochs = old.epochs
            self.rows[row.number] = row
            if row.state in ("PRUNED", "FAIL") and (old is None or old.state == "RUNNING"):
                self.events.append(self.line(row, best=False))
        if row.rejected:
            self.consecutive_rejected += 1
            if (
                self.consecutive_rejected >= REJECTION_WARNING
                and self.consecutive_rejected >= 2 * self.warned_at
            ):
                self.warned_at = self.consecutive_rejected
                self.say(
                    f"warning: the last {self.consecutive_rejected} sampled architectures were all invalid "
                    f"(latest: {row.reason}); the sampler keeps going and learns to avoid them. "
                    f"`specdsl validate` shows how much of the space plans."
                )
        elif row.state != "RUNNING":
            self.consecutive_rejected = 0
        if self.live is None and row.number not in self.printed and row.state != "RUNNING":
            self.printed.add(row.number)
            self.say(self.line(row))

    def replace(self, rows: list[Row]) -> None:
        """The whole study as read from the storage (polling mode); prints lines for newly finished trials."""
        for row in sorted(rows, key=lambda r: r.number):
            old = self.rows.get(row.number)
            if old is not None and old.state == row.state == "RUNNING":
                row.epoch = row.epoch or old.epoch
                row.epochs = row.epochs or old.epochs
            if row.state != "RUNNING" and (old is None or old.state == "RUNNING"):
                self.finished(row)
            else:
                with self.lock:
                    self.rows[row.number] = row

    # -- text

    def counts(self) -> dict[str, int]:
        c = {"RUNNING": 0, "COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "invalid": 0}
        for row in self.rows.values():
            if row.rejected:
                c["invalid"] += 1
            elif row.state in c:
                c[row.state] += 1
        return c

    def trained(self) -> int:
        c = self.counts()
        return c["COMPLETE"] + c["PRUNED"] + c["FAIL"]

    def best(self) -> Row | None:
        done = [r for r in self.rows.values() if r.state == "COMPLETE" and r.values]
        if not done:
            return None
        sign = 1 if self.directions[0] == "maximize" else -1
        return max(done, key=lambda r: sign * r.values[0])

    def top(self, n: int = TOP) -> list[Row]:
        done = [r for r in self.rows.values() if r.state == "COMPLETE" and r.values]
        sign = 1 if self.directions[0] == "maximize" else -1
        return sorted(done, key=lambda r: -sign * r.values[0])[:n]

    def status(self) -> str:
        """The study at a glance, in one line (see :meth:`status_lines`)."""
        return " | ".join(self._status_parts())

    def status_lines(self, width: int) -> list[str]:
        """The status in lines of at most ``width`` columns, cut between its parts (the elapsed time and the
        budget come second, so that no width loses them)."""
        lines: list[str] = []
        for part in self._status_parts():
            if lines and len(lines[-1]) + 3 + len(part) <= width:
                lines[-1] += " | " + part
            else:
                lines.append(part)
        return lines

    def _status_parts(self) -> list[str]:
        c = self.counts()
        elapsed = time.monotonic() - self.start
        budget = f"/{self.budget}" if self.budget else ""
        clock = _clock(elapsed) + (f" of {_clock(self.timeout)}" if self.timeout else "") + " elapsed"
        parts = [
            f"{self.study_name}: trials {self.trained()}{budget}",
            clock,
            f"running {c['RUNNING']}",
            f"complete {c['COMPLETE']}",
            f"pruned {c['PRUNED']}",
            f"failed {c['FAIL']}",
            f"invalid {c['invalid']}",
        ]
        best = self.best()
        if best is not None:
            parts.append(f"best {self.metrics[0]} {_fmt(best.values[0])} (#{best.number})")
        return parts

    def running_line(self, row: Row, metric: str) -> str:
        """A running trial: its epoch, its last value of ``metric``, seconds an epoch, and when it should end."""
        text = f"running #{row.number}"
        if not row.epoch:
            return text + ": starting"
        text += f": epoch {row.epoch}" + (f"/{row.epochs}" if row.epochs else "")
        if row.last is not None:
            text += f", {metric} {_fmt(row.last)}"
        if row.epoch_s is not None:
            text += f", {row.epoch_s:.1f} s/epoch"
            if row.epochs:
                left = (row.epochs - row.epoch) * row.epoch_s
                limit = self.timeout - (time.monotonic() - self.start) if self.timeout else None
                if limit is not None and left > limit:
                    text += f", cut at the time limit in ~{_clock(max(limit, 0))}"
                else:
                    text += f", ends in ~{_clock(left)}"
        return text

    def line(self, row: Row, best: bool = True) -> str:
        label = "INVALID" if row.rejected else row.state
        text = f"trial {row.number} {label}"
        if row.values:
            values = ", ".join(f"{m}={_fmt(v)}" for m, v in zip(self.metrics, row.values))
            # Optuna's value of a trial stopped early is its last epoch's (its reason gives its best epoch's)
            text += f" {values}" if row.state == "COMPLETE" else f" (last epoch {values})"
        if row.seconds is not None:
            text += f" in {row.seconds:.1f}s" if row.seconds >= 0.1 else f" in {row.seconds * 1000:.0f}ms"
        if row.reason and row.state != "COMPLETE":
            text += f": {row.reason}"
        top = self.best() if best else None
        if top is not None and row.state == "COMPLETE":
            text += f" (best {_fmt(top.values[0])} #{top.number})"
        return text

    def _render(self) -> Any:
        with self.lock:
            return self._render_locked()

    def _render_locked(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        width = getattr(self.console, "width", None) or 80
        # rich reads markup in strings: parameter names and values (a choice may hold any text) go in as Text
        top = self.top()
        names = sorted({k for r in top for k in r.params})
        titles = _short_names(names)
        fixed = [("#", [str(r.number) for r in top])]
        fixed += [(m, [_fmt(r.values[i]) for r in top]) for i, m in enumerate(self.metrics)]
        fixed.append(("seconds", [f"{r.seconds:.0f}" if r.seconds is not None else "" for r in top]))
        used = sum(_column_width(title, cells) for title, cells in fixed)
        shown = []
        for name in names:  # the parameters whose columns fit the width, every header on one line
            cells = [_fmt(r.params.get(name, "")) for r in top]
            need = _column_width(titles[name], cells)
            if used + need > width:
                continue
            used += need
            shown.append(name)
        title = f"top {TOP} trials" + (
            f" ({len(shown)} of {len(names)} parameters)" if len(shown) < len(names) else ""
        )
        table = Table(title=title, title_justify="left", expand=False, show_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        for m in self.metrics:
            table.add_column(Text(terminal(m)), justify="right", no_wrap=True)
        for name in shown:
            table.add_column(Text(terminal(titles[name])), justify="right", no_wrap=True, overflow="ellipsis")
        table.add_column("seconds", justify="right", no_wrap=True)
        for r in top:
            table.add_row(
                str(r.number),
                *[_fmt(v) for v in r.values],
                *[Text(terminal(_fmt(r.params.get(k, "")))) for k in shown],
                f"{r.seconds:.0f}" if r.seconds is not None else "",
            )
        lines = [Text(terminal(line), style="bold", no_wrap=True) for line in self.status_lines(width)]
        if self.prepare is not None:
            what, since = self.prepare
            lines.append(Text(terminal(f"preparing data: {what} ({_clock(time.monotonic() - since)})")))
        metric = self.metrics[0]
        for r in [r for r in self.rows.values() if r.state == "RUNNING"][:8]:
            lines.append(Text(terminal(self.running_line(r, metric)), overflow="ellipsis", no_wrap=True))
        if self.note:
            lines.append(Text(terminal(self.note), style="yellow"))
        lines += [Text(terminal(e), style="dim", overflow="ellipsis", no_wrap=True) for e in self.events]
        return Group(*lines, table)


def _column_width(title: str, cells: list[str]) -> int:
    """The columns a table column takes: its widest text, a space either side and the separator."""
    return max([len(title), *(len(c) for c in cells)]) + 3


def _short_names(names: list[str]) -> dict[str, str]:
    """Column titles: long spec paths cut to their last two parts, unless that makes two alike."""
    short = {n: ".".join(n.split(".")[-2:]) if len(n) > 18 else n for n in names}
    values = list(short.values())
    return {n: s if values.count(s) == 1 else n for n, s in short.items()}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.3g}"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1 else f"{v:,.4g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000:
        return f"{v:,}"
    return str(v)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"

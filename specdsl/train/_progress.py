"""A rich progress bar as a Callback: epoch, batch, running loss and accuracy, images per second."""

from __future__ import annotations

import time
from typing import Any

from ._callbacks import Callback


def format_logs(logs: dict[str, float]) -> str:
    """'loss 0.1234  accuracy 0.9612  val_loss ...' (learning rate and timings left out)."""
    parts = []
    for key, value in logs.items():
        if key in ("lr", "epoch_seconds", "images_per_s"):
            continue
        parts.append(f"{key} {value:.4f}")
    return "  ".join(parts)


class ProgressCallback(Callback):
    """Shows one bar per epoch (batches done, running loss and accuracy, images/s) and prints a line after each
    epoch, as Keras' ``verbose=1`` does. ``console`` is a ``rich.console.Console`` (default: a new one)."""

    def __init__(self, console: Any = None, *, print_epochs: bool = True):
        from rich.console import Console

        self.console = console or Console()
        self.print_epochs = print_epochs
        self.progress = None
        self.task = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.epochs = info["epochs"]
        self.steps = info["steps_per_epoch"]
        self.batch_size = info["batch_size"]
        self.n_train = info["n_train"]
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            TextColumn("batch"),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}", markup=False),
            TextColumn("{task.fields[speed]}", markup=False),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()

    def on_epoch_begin(self, epoch: int) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.t0 = time.perf_counter()
        self.task = self.progress.add_task(
            "train", total=self.steps, epoch=f"{epoch + 1}/{self.epochs}", metrics="", speed=""
        )

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if self.progress is None or self.task is None:
            return
        elapsed = time.perf_counter() - self.t0
        seen = min((batch + 1) * self.batch_size, self.n_train)
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        self.progress.update(
            self.task,
            completed=batch + 1,
            metrics=metrics,
            speed=f"{seen / elapsed:,.0f} img/s" if elapsed > 0 else "",
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.print_epochs:
            self.console.print(
                f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs)}  lr {logs.get('lr', 0):.3g}  "
                f"{logs.get('epoch_seconds', 0):.1f}s  {logs.get('images_per_s', 0):,.0f} img/s",
                markup=False,
                highlight=False,
            )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_train_end(self, result: Any) -> None:
        self.close()

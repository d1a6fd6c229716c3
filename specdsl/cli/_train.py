"""``specdsl train``: one training run of a spec, with a progress bar, a result table and an MLflow run.

``_app`` wires ``run_train`` to the command line; torch, keras and mlflow are imported only inside it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._text import file_stem, markup, terminal

if TYPE_CHECKING:
    from rich.console import Console

INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


def checkpoint_folder(plan: Any, output: Path | None) -> Path:
    """Where the best checkpoint goes: ``output``, or ``checkpoints/<the spec's name as a safe file name>``."""
    return Path(output) if output is not None else Path("checkpoints") / file_stem(plan.name)


def result_table(result: Any) -> Any:
    """A rich table: each metric at the best epoch (train and validation) and on the test split."""
    from rich.table import Table

    best = result.best
    table = Table(
        title=f"best epoch {result.best_epoch + 1} of {len(result.history)} (by {markup(result.monitor)})",
        title_justify="left",
    )
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("validation", justify="right")
    table.add_column("test", justify="right")
    keys = [k for k in best if not k.startswith("val_") and k not in ("lr", "epoch_seconds", "images_per_s")]
    test = result.test or {}

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for key in keys:
        table.add_row(markup(key), cell(best.get(key)), cell(best.get(f"val_{key}")), cell(test.get(key)))
    return table


def run_train(
    spec: Path,
    *,
    data: Path | None,
    epochs: int | None,
    batch_size: int | None,
    backend: str | None,
    limit: int | None,
    seed: int | None,
    output: Path | None,
    tracking_uri: str | None,
    experiment: str | None,
    track: bool,
    console: Console,
    device: str | None = None,
) -> int:
    """Train the model of ``spec`` once and return the exit code (0; 130 when interrupted with Ctrl-C).

    ``data`` overrides ``data.path`` (a folder of images; with no ``data:`` section it is read as the ``folder``
    dataset) or, when it names a registered dataset and no such file exists, ``data.dataset``. ``epochs``,
    ``batch_size``, ``backend``, ``seed``, ``device`` override the ``train:`` section, ``limit`` caps the training
    examples.
    The best epoch's weights go to ``output`` (default ``checkpoints/<spec name>/``: ``best.pt`` or
    ``best.weights.h5``, plus ``best.json``). With ``track``, the run is recorded in MLflow (``tracking_uri``,
    default MLflow's own; ``experiment``, default the spec's name), ending FINISHED, FAILED or KILLED.

    SpecdslError subclasses propagate for the CLI to print. On Ctrl-C the best checkpoint so far is kept (and
    logged to the MLflow run, which ends KILLED) and 130 is returned.
    """
    from .. import check
    from ..data import data_warnings
    from ..spec import TrainSpec
    from ..train import (
        ProgressCallback,
        check_compatible,
        data_override,
        device_name,
        fit,
        load_for,
        section_override,
    )

    plan = check(spec)
    # with train.stages, --epochs is a budget over the stages (fit's epochs), not the section's sum
    budget = epochs if plan.spec.train is not None and plan.spec.train.stages else None
    train = section_override(
        plan.spec.train or TrainSpec(),
        "train",
        plan.spec.file,
        epochs=None if budget else epochs,
        batch_size=batch_size,
        backend=backend,
        seed=seed,
        device=device,
    )
    where = device_name(train.device)  # a device this machine lacks fails here, before the data is loaded
    data_spec = data_override(plan, data, limit)
    check_compatible(plan, train, data_spec)  # before loading anything
    folder = checkpoint_folder(plan, output)

    auto = " (auto)" if train.device == "auto" else ""
    precision = "" if train.precision == "fp32" else f" in {train.precision}"
    console.print(
        f"[bold]{markup(plan.name)}[/]: {plan.params:,} parameters, {plan.flops / 1e6:,.1f} MFLOPs per image; "
        f"{train.backend} on {where}{auto}{precision}, {budget or train.epochs} epochs, batch {train.batch_size}, "
        f"{train.optimizer.name} lr {train.optimizer.lr:g}",
        highlight=False,
    )
    t0 = time.perf_counter()
    with (
        console.status(f"loading {markup(data_spec.dataset) if data_spec else 'data'} ..."),
        data_warnings() as notes,
    ):
        dataset = load_for(plan, data_spec)
    for note in notes:
        console.print(f"[yellow]warning:[/] {markup(note)}", highlight=False)
    console.print(
        terminal(f"{dataset.summary()} ({time.perf_counter() - t0:.1f}s)"), markup=False, highlight=False
    )

    tracker = None
    if track:
        from ..tracking import TrackedRun

        tracker = TrackedRun(
            plan,
            train,
            data_spec,
            backend=train.backend,
            tracking_uri=tracking_uri,
            experiment=experiment,
            checkpoint_dir=folder,
        )
    progress = ProgressCallback(console)
    callbacks: list[Any] = [progress]
    result = None
    try:
        with tracker if tracker is not None else contextlib.nullcontext():
            if tracker is not None:
                callbacks.append(tracker.callback)
                console.print(
                    terminal(f"MLflow run {tracker.run_id} in experiment `{tracker.experiment}`"),
                    markup=False,
                    highlight=False,
                )
            result = fit(
                plan,
                dataset=dataset,
                train=train,
                data=data_spec,
                callbacks=callbacks,
                checkpoint_dir=folder,
                epochs=budget,
            )
            progress.close()
            if tracker is not None:
                with console.status("logging the model to MLflow ..."):
                    tracker.log_result(result, dataset)
    except KeyboardInterrupt:
        progress.close()
        kept = [p for p in (folder / "best.pt", folder / "best.weights.h5") if p.is_file()]
        where = (
            f"the best checkpoint so far is in {kept[0]}" if kept else "no epoch had finished, no checkpoint"
        )
        run = f"; MLflow run {tracker.run_id} marked KILLED" if tracker is not None and tracker.run_id else ""
        console.print(f"[yellow]interrupted[/]: {markup(where + run)}.", highlight=False)
        return INTERRUPTED
    finally:
        progress.close()

    console.print(result_table(result))
    stop = {"early_stopping": "stopped early (no improvement)", "max_seconds": "stopped at the time budget"}
    console.print(
        terminal(
            f"{len(result.history)} epochs in {result.seconds:.1f}s, {result.images_per_s:,.0f} images/s"
            + (f"; {stop[result.stop_reason]}" if result.stop_reason else "")
            + (f"; best weights in {result.checkpoint}" if result.checkpoint else "")
        ),
        markup=False,
        highlight=False,
    )
    if tracker is not None:
        import mlflow

        console.print(
            terminal(
                f"MLflow: run {tracker.run_id}, model {tracker.model_uri} ({mlflow.get_tracking_uri()}; "
                f"see it with `mlflow ui`)"
            ),
            markup=False,
            highlight=False,
        )
    return 0

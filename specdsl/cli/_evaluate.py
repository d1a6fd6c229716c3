"""``specdsl evaluate``: a trained classifier's accuracy, per-class scores and confusion matrix on its test (or
validation) split, as tables, with the files written (metrics.json and PNGs) and where MLflow logged them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from .._text import terminal
from ..errors import SpecdslError
from ._output import err, out
from ._trained import experiment_option, run_option, track_option, tracking_uri_option, weights_option

CONFUSION_TABLE = 20  # the most classes whose confusion matrix is printed (the PNG holds any number)


class Split(str, Enum):
    test = "test"
    val = "val"


def evaluate(
    spec: Path | None = typer.Argument(
        None, help="The spec the model was trained from (with --run: optional)."
    ),
    weights: Path | None = weights_option(),
    run: str | None = run_option(),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (overrides data.path)."),
    split: Split = typer.Option(Split.test, "--split", help="The split to evaluate on: test or val."),
    mistakes: int = typer.Option(
        16, "--mistakes", min=0, max=256, help="Most confident wrong predictions to show in mistakes.png."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Folder for metrics.json and the PNGs (default: evaluate/<name>)."
    ),
    track: bool | None = track_option("the scores and files"),
    tracking_uri: str | None = tracking_uri_option(),
    experiment: str | None = experiment_option(),
) -> None:
    """Score a trained classifier on its test split: accuracy, per-class precision, recall and F1, the confusion
    matrix (table and PNG) and its most confident mistakes (PNG), logged to MLflow when tracking."""
    from rich.table import Table
    from rich.text import Text

    from ..report import run_evaluate
    from ._app import fail

    try:
        done = run_evaluate(
            spec,
            weights=weights,
            run=run,
            data=data,
            split=split.value,
            mistakes=mistakes,
            output=output,
            track=track,
            tracking_uri=tracking_uri,
            experiment=experiment,
        )
    except SpecdslError as e:
        raise fail(e) from None
    s, names = done.scores, [Text(terminal(n)) for n in done.class_names]
    out.print(
        f"{terminal(done.model)} on the {done.split} split: accuracy {s.accuracy:.4f} "
        f"({s.correct:,} of {s.images:,} right)"
    )
    table = Table(title="per class")
    for name in ("class", "precision", "recall", "f1", "support"):
        table.add_column(name, justify="left" if name == "class" else "right")
    for i, name in enumerate(names):
        table.add_row(
            name, f"{s.precision[i]:.4f}", f"{s.recall[i]:.4f}", f"{s.f1[i]:.4f}", str(s.support[i])
        )
    macro = s.macro()
    table.add_row(
        "macro avg",
        f"{macro['precision']:.4f}",
        f"{macro['recall']:.4f}",
        f"{macro['f1']:.4f}",
        str(s.images),
    )
    out.rich.print(table)
    if len(names) <= CONFUSION_TABLE:
        matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
        matrix.add_column("true \\ predicted")
        for name in names:
            matrix.add_column(name, justify="right")
        for i, name in enumerate(names):
            matrix.add_row(name, *(str(int(v)) for v in s.confusion[i]))
        out.rich.print(matrix)
    folder = done.files[0].parent
    shown = f", the {done.mistakes} most confident mistakes" if done.mistakes else ", no mistakes"
    err.print(f"wrote {', '.join(f.name for f in done.files)} to {folder}/{shown}")
    if done.run_id:
        err.print(
            f"MLflow: run {done.run_id} in experiment `{done.experiment}`, metrics evaluate.{done.split}.*, "
            f"artifacts evaluate/ ({done.tracking_uri})"
        )

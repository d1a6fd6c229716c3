"""`specdsl data ...`: list the datasets, fetch and cache one."""

from __future__ import annotations

from pathlib import Path

import typer

from .._text import terminal
from ..errors import DataError

app = typer.Typer(
    help="Datasets: list them with their status, fetch and cache one before training or searching.",
    no_args_is_help=True,
)

_CACHE_HELP = "Cache folder (default: $SPECDSL_CACHE or ~/.cache/specdsl)."


def _fail(error: DataError) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True).print(Text("error: " + error.format(), style="red"), soft_wrap=True)
    raise typer.Exit(error.exit_code)


@app.command("list")
def list_command(cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_HELP)) -> None:
    """Show every registered dataset: classes, image shape, where it comes from, and whether it is ready."""
    from rich.console import Console
    from rich.table import Table

    from ..data import list_datasets

    table = Table("name", "classes", "shape", "source", "status")
    colors = {"cached": "green", "available": "green", "needs download": "yellow"}
    for info in list_datasets(cache_dir):
        shape = "x".join(str(n) for n in info.image_shape) if info.image_shape else "any"
        status = f"[{colors.get(info.status, 'red')}]{info.status}[/]"
        table.add_row(info.name, str(info.num_classes or "any"), shape, info.source, status)
    table.columns[0].no_wrap = table.columns[4].no_wrap = True
    Console().print(table)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    h, _, w = text.lower().partition("x")
    try:
        size = (int(h), int(w or h))
    except ValueError:
        raise DataError(f"--image-size must read HxW (64x64) or N (64), but got {text!r}.") from None
    return size


@app.command()
def prepare(
    name: str = typer.Argument(..., help="A dataset name from `specdsl data list`."),
    path: Path | None = typer.Option(None, "--path", help="Read from this folder or file instead."),
    image_size: str | None = typer.Option(
        None, "--image-size", help="Decode image folders at HxW (default 64x64); resize other datasets."
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_HELP),
) -> None:
    """Fetch a dataset, decode it and store the arrays in the cache, so that training and search load it in
    milliseconds."""
    from rich.console import Console
    from rich.text import Text

    from ..data import cache_root, data_warnings, load_dataset

    try:
        with data_warnings() as caught:
            ds = load_dataset(name, path=path, image_size=_parse_size(image_size), cache_dir=cache_dir)
    except DataError as e:
        _fail(e)
    for message in caught:
        Console(stderr=True).print(Text(terminal(f"warning: {message}"), style="yellow"), soft_wrap=True)
    typer.echo(terminal(ds.summary()))  # class names are folder names
    typer.echo(terminal(f"source: {ds.source}; cache: {cache_root(cache_dir)}"))

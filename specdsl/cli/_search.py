"""The ``specdsl search`` and ``specdsl best`` commands, as functions the typer commands call (exit code
returned).

optuna, mlflow and torch are imported by the search functions they call, so that importing this module costs
nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .._sqlite import store_error
from .._text import terminal
from ..errors import StoreError


def run_search_command(space: Path, options: Any = None, *, console: Any = None, **settings: Any) -> int:
    """``specdsl search SPACE`` with ``options`` (a ``specdsl.search.SearchOptions``; keyword arguments named
    as its fields win over it): 0 when the study ran as asked (even if no trial completed in its budget: the
    summary then says so, with the numbers and the way out), 130 when interrupted, 1 when every trial that trained
    failed. Errors in the space or the settings raise a SpecdslError."""
    from ..search import SearchOptions, parse_duration, run_search

    options = dataclasses.replace(options or SearchOptions(), **settings)
    options = dataclasses.replace(options, timeout=parse_duration(options.timeout))  # a bad --timeout first
    result = run_search(space, options, console=console)
    if result.interrupted:
        return 130
    if result.trials > 0 and result.failed == result.trials:
        return 1
    return 0


def run_best_command(
    study: str,
    *,
    storage: str | None = None,
    trial: int | None = None,
    output: Path | None = None,
    console: Any = None,
) -> int:
    """``specdsl best STUDY``: the best trial (or ``--trial N``) as a concrete spec, to ``output`` or the console."""
    from ..search import freeze_best

    number, text = freeze_best(study, storage=storage, trial=trial)
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            failure = store_error(e, "output file", str(output), "-o")
            raise failure or StoreError(
                f"cannot write {output} ({e.strerror or e}).", store=str(output), hint="Pass -o another path."
            ) from None
        if console is not None:
            console.print(
                terminal(f"wrote {output}: trial {number} of study {study}"), markup=False, highlight=False
            )
    elif console is not None:
        # the spec's text as YAML writes it (exact, for `> best.yaml`); on a terminal, with its control characters
        # escaped
        shown = terminal(text, keep="\n") if getattr(console, "is_terminal", False) else text
        console.print(shown, markup=False, highlight=False, soft_wrap=True, end="", emoji=False)
    else:
        print(text, end="")
    return 0

"""The ``specdsl search`` and ``specdsl best`` commands, as functions the CLI calls (exit code returned).

optuna, mlflow and torch are imported inside the functions, so that importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._sqlite import store_error
from .._text import terminal
from ..errors import SearchError, StoreError
from ._space import parse_duration


def run_search_command(
    space: Path,
    *,
    trials: int | None = None,
    timeout: str | float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    resume: bool = True,
    workers: int = 1,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    epochs: int | None = None,
    limit: int | None = None,
    seed: int | None = None,
    console: Any = None,
) -> int:
    """``specdsl search SPACE``: 0 when the study ran (whatever its trials did), 130 when interrupted,
    1 when no trial trained to completion. Errors in the space or the settings raise a SpecdslError."""
    from ._study import run_search

    result = run_search(
        space, trials=trials, timeout=parse_duration(timeout), storage=storage, study_name=study_name,
        resume=resume, workers=workers, tracking_uri=tracking_uri, experiment=experiment, epochs=epochs,
        limit=limit, seed=seed, console=console,
    )
    if result.interrupted:
        return 130
    if result.complete == 0 and result.trials > 0:
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
    import optuna

    from ._storage import DEFAULT_STORAGE, display_url, open_storage, study_store_errors
    from ._study import _quiet_optuna, best_trial, frozen_text

    _quiet_optuna()
    url = storage or DEFAULT_STORAGE
    if url == DEFAULT_STORAGE and not Path("optuna.db").exists():
        raise SearchError(f"no study storage here ({DEFAULT_STORAGE} does not exist).",
                          hint="Run `specdsl best` in the folder where `specdsl search` ran, or pass --storage.")
    with study_store_errors(url):  # reads only: a folder that cannot be written is fine
        store = open_storage(url, read_only=True)
        names = optuna.get_all_study_names(store)
        if study not in names:
            from ..spec._document import suggest

            hint = suggest(study, names)
            raise SearchError(
                f"no study `{study}` in {display_url(url)}; {hint + ' ' if hint else ''}"
                f"Studies: {', '.join(sorted(names)) or 'none'}."
            )
        s = optuna.load_study(study_name=study, storage=store)
        note = None
        if trial is not None:
            found = [t for t in s.get_trials(deepcopy=False) if t.number == trial]
            if not found:
                raise SearchError(f"study `{study}` has no trial {trial} (trials 0 .. {len(s.trials) - 1}).")
            chosen = found[0]
            if chosen.user_attrs.get("specdsl.rejected"):
                raise SearchError(f"trial {trial} of study `{study}` is an invalid sample: "
                                  f"{chosen.user_attrs.get('specdsl.reason')}")
        else:
            chosen = best_trial(s)
            if chosen is None:
                raise SearchError(f"study `{study}` has no complete trial yet.", hint="Pick one with --trial N.")
            if len(s.directions) > 1:
                metrics = s.user_attrs.get("specdsl.metrics") or ["the first objective"]
                note = (f"The study has {len(s.directions)} objectives: of the {len(s.best_trials)} trials on the "
                        f"Pareto front this is the best on {metrics[0]}; pick another with --trial N.")
        text = frozen_text(s, chosen, note)
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as e:
            failure = store_error(e, "output file", str(output), "-o")
            raise failure or StoreError(f"cannot write {output} ({e.strerror or e}).", store=str(output),
                                        hint="Pass -o another path.") from None
        if console is not None:
            console.print(terminal(f"wrote {output}: trial {chosen.number} of study {study}"), markup=False,
                          highlight=False)
    elif console is not None:
        # the spec's text as YAML writes it (exact, for `> best.yaml`); on a terminal, with its control characters
        # escaped
        shown = terminal(text, keep="\n") if getattr(console, "is_terminal", False) else text
        console.print(shown, markup=False, highlight=False, soft_wrap=True, end="", emoji=False)
    else:
        print(text, end="")
    return 0

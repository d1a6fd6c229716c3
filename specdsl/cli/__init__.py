"""The ``specdsl`` command line (typer + rich): every command's front end lives here, the last stage of the flow.

``specdsl validate`` is what pre-commit hooks and CI jobs run on every change, so its plain form skips typer:
typer builds a pydantic adapter for every parameter of a command, which costs a fifth of a validate run.
Everything else, and any validate call that is not plain (``--help``, a mistake), goes through typer.

The modules: ``_app`` (the typer app: each command's options, turning a SpecdslError into one message and its
exit code; ``summary``, ``schema`` and ``compile`` there in full), ``_validate`` (validate's files, results
and output as text, JSON or GitHub annotations), ``_render`` (the summary as a boxed table),
``_output`` (the consoles), and one module per command that runs a stage: ``_train``, ``_search`` (search and
best), ``_data`` (the ``data`` sub-commands), ``_import``, ``_diagram``, ``_explain``, ``_predict`` and
``_evaluate`` (``_trained``: the options of the commands on a trained model). Each imports the
packages it drives (train, search, importers, report, ...) only when its command runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    # pydantic looks for plugins in every installed package's entry points the first time it builds a validator
    # (~70 ms in an environment with mlflow's dependencies); the CLI's models use none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # a character the terminal's encoding lacks (a name in another script under a Latin-1 locale) is printed as an
    # escape rather than ending the command in a UnicodeEncodeError
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    from ._validate import plain_validate_args

    plain = plain_validate_args(sys.argv[1:])
    if plain is None:
        from ._app import main as typer_main

        typer_main()
        return
    from ._output import err
    from ._validate import run_validate

    paths, format, samples, strict = plain
    try:
        code = run_validate(paths, format, samples=samples, strict=strict)
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    sys.exit(code)


def __getattr__(name: str) -> Any:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

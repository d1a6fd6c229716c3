"""Where the CLI writes: rich's consoles, made on first use."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from .._text import terminal

if TYPE_CHECKING:
    from rich.console import Console


class _Console:
    """rich's Console, made on first use. Plain lines to a stream that is not a terminal are written as they are,
    so that `validate` in a CI job or a pre-commit hook does not import rich (about a tenth of its run)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True, emoji=False)
        return self._console

    def print(
        self, text: str = "", *, style: str | None = None, markup: bool = False, end: str = "\n"
    ) -> None:
        """Print a line (or lines): control characters other than line breaks are escaped (:func:`terminal`), so
        that no user text quoted in it reaches the terminal raw."""
        text = terminal(text, keep="\n")
        stream = sys.stderr if self._stderr else sys.stdout
        plain = self._console is None and not markup and "FORCE_COLOR" not in os.environ
        if plain and not getattr(stream, "isatty", lambda: False)():
            stream.write(text + end)
        else:
            self.rich.print(text, style=style, markup=markup, end=end)

    def print_json(self, doc: Any) -> None:
        """Print ``doc`` as indented JSON, written as it is (rich's highlighter takes 50 s on a 50,000-layer model),
        every character outside printable ASCII as its JSON escape: no control character, nor a bidirectional one,
        of a user's text reaches the terminal."""
        import json

        stream = sys.stderr if self._stderr else sys.stdout
        stream.write(json.dumps(doc, indent=2, ensure_ascii=True).replace("\x7f", "\\u007f") + "\n")

    def __getattr__(self, name: str) -> Any:  # status, ...: rich's
        return getattr(self.rich, name)


out = _Console()
err = _Console(stderr=True)

"""Text a user may write, for property tests: any Unicode, with what breaks generated source, terminals, rich markup
and GitHub workflow commands drawn often (quotes, triple quotes, backslashes, line breaks, ESC and BEL sequences,
C1 controls, bidirectional overrides, markup tags, ``%0A::error::``)."""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

INJECTION = 'x"""; import os; os.system(\'touch specdsl-pwned\'); """'  # a docstring's end, then code
PAYLOADS = [
    INJECTION,
    "x'''; import os; os.system('touch pwned'); '''",
    "\\",
    "\"'\\",
    "\x1b]0;title\x07",
    "\x1b[2J\x1b[H",
    "\x9b31m",
    "\u202e\u2066evil\u2069",
    "\r\n::error file=x.yaml::forged",
    "%0A::warning::x%25",
    "[/]",
    "[link=file:///etc/passwd]x[/link]",
    "\x00",
    "{0.__class__}",
    "${__import__('os')}",
    "# comment\nimport os",
    "\u2028\u2029\x85",
    ":smile:",
]
SPECIAL = "\"'\\\n\r\t\x00\x07\x08\x1b\x7f\x85\x9b\u2028\u2029\u202e\u2066%:,[]{}$#/.`"

# the characters terminal() escapes (its pattern, written out again so that a change there shows here)
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def user_text(*, surrogates: bool = False, max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text (lone surrogates too with ``surrogates``: JSON carries them, YAML does not), often made of the
    characters and sequences above."""
    chars = st.characters(exclude_categories=() if surrogates else ("Cs",))
    pieces = st.one_of(
        st.text(chars, max_size=max_size),
        st.text(st.sampled_from(SPECIAL), min_size=1, max_size=max_size),
        st.sampled_from(PAYLOADS),
    )
    return st.lists(pieces, min_size=1, max_size=3).map("".join)


def examples(n: int):
    """Hypothesis settings with ``n`` examples in the default profile (the long profile keeps its own count): each
    example here runs commands or builds models."""
    default = settings.get_profile("default").max_examples
    count = n if settings.default.max_examples <= default else settings.default.max_examples
    return settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck))


def no_color(monkeypatch) -> None:
    """Output without the colors rich adds (their escape sequences are ours, not a user's)."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")


def unsafe(text: str) -> list[str]:
    """The characters of ``text`` no terminal should get raw from a user (line breaks aside)."""
    return [ch for ch in UNSAFE.findall(text) if ch != "\n"]


def invoke(args: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from specdsl.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    return result.exit_code, result.stdout + result.stderr


WATCHED = (
    "exec",
    "compile",
    "open",
    "import",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.putenv",
    "subprocess.Popen",
    "socket.connect",
    "ctypes.dlopen",
)
_events: list[str] | None = None  # the audit events seen while a generated module runs


def _hook(event: str, args: tuple) -> None:
    if _events is not None and (event in WATCHED or event.startswith(("os.", "subprocess.", "socket."))):
        _events.append(event)


_hooked = False


def run_module(code: str) -> tuple[dict, list[str]]:
    """Execute generated source as an imported module; (its namespace, the audit events it raised)."""
    global _events, _hooked
    if not _hooked:  # an audit hook cannot be removed: one for the process, silent unless a module runs
        sys.addaudithook(_hook)
        _hooked = True
    compiled = compile(code, "generated.py", "exec")
    namespace: dict = {"__name__": "generated"}
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # were it to run a command, not here
        _events = []
        try:
            exec(compiled, namespace)
        finally:
            seen, _events = _events, None
    return namespace, seen

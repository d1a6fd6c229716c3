"""Text a user wrote, made safe for where it goes.

Names, descriptions, kinds, keys and file names come from specs, folders and the command line. They reach generated
Python source only as a literal (:func:`literal`) or a checked identifier (:func:`identifier`), a terminal only with
control characters escaped (:func:`terminal`), rich markup only escaped (:func:`markup`), GitHub workflow commands
escaped by GitHub's rules (:func:`github_data`, :func:`github_property`), a file name only as :func:`file_stem`,
and an error message cut to :data:`QUOTE_LIMIT` characters (:func:`shown`). Standard library only: ``validate``
uses it.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Collection

QUOTE_LIMIT = 80  # characters of a user's string quoted in a message
FILE_STEM_LIMIT = 100  # characters of a file name made from a user's name

# C0 and C1 controls and DEL, line and paragraph separators, the bidirectional controls that reorder what a
# terminal or an editor shows ("Trojan Source"), and lone surrogates (which no encoding writes)
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: object, *, keep: str = "") -> str:
    """``text`` with every control character, bidirectional control and lone surrogate written as its Python escape
    (``\\x1b``, ``\\n``, ``\\u202e``), so that it shows as text and cannot move the cursor, set a window title or
    reorder a line. Characters in ``keep`` (e.g. ``"\\n"`` for a message of several lines) stay as they are.

        >>> terminal("a\\x1b[2Jb\\n")
        'a\\\\x1b[2Jb\\\\n'
    """
    text = str(text)
    if not keep:
        return _UNSAFE.sub(_escape, text)
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)


def markup(text: object) -> str:
    """``text`` for a rich markup string: :func:`terminal`, then ``rich.markup.escape`` (``[bold]`` stays text)."""
    from rich.markup import escape

    return escape(terminal(text))


def shown(text: object, limit: int = QUOTE_LIMIT) -> str:
    """A user's string as an error message quotes it: cut to ``limit`` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def github_data(text: object) -> str:
    """The message of a GitHub workflow command (``::error ...::MESSAGE``): :func:`terminal`, then ``%``, CR and LF
    as GitHub's toolkit escapes them."""
    return terminal(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: object) -> str:
    """A property value of a GitHub workflow command (``file=VALUE``): as :func:`github_data`, and ``:`` and ``,``
    escaped too, so that it cannot end the properties."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def literal(text: str) -> str:
    """Python source for the string ``text``: ``repr`` (every control character, quote and backslash escaped, so
    ``eval(literal(t)) == t`` for any ``t``), in double quotes when the text holds none."""
    source = repr(text)
    if source[0] == "'" and '"' not in text:
        return f'"{source[1:-1]}"'
    return source


def identifier(name: str, taken: Collection[str] = ()) -> str:
    """A Python identifier for ``name``: ASCII letters, digits and ``_`` (anything else becomes ``_``), not
    starting with a digit, not a keyword, not name-mangled in a class (``__x``), and not in ``taken`` (trailing
    underscores are added until it is free). A name that is already such an identifier is kept as it is."""
    out = re.sub(r"[^0-9A-Za-z_]", "_", str(name), flags=re.ASCII) or "_"
    if out[0].isdigit():
        out = f"_{out}"
    if out.startswith("__") and not out.endswith("__"):
        out += "__"
    while keyword.iskeyword(out) or out in taken:
        out += "_"
    return out


def file_stem(name: str, default: str = "model") -> str:
    """A file name made from a user's ``name``: ASCII letters, digits, ``_``, ``-`` and ``.`` (each run of other
    characters becomes one ``_``), leading ``.``, ``-`` and ``_`` dropped (so never ``..``, a hidden file or an
    option), at most :data:`FILE_STEM_LIMIT` characters; ``default`` when nothing is left.

        >>> file_stem("../../etc/passwd"), file_stem("my model"), file_stem("\x1b[2J")
        ('etc_passwd', 'my_model', '2J')
    """
    stem = re.sub(r"[^0-9A-Za-z_.\-]+", "_", str(name), flags=re.ASCII).lstrip("._-")[:FILE_STEM_LIMIT]
    return stem or default

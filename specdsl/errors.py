"""The exceptions specdsl raises on purpose.

Every error a user can cause derives from :class:`SpecdslError`; the CLI prints it as one line
(``file:line:col: message``) and exits with its ``exit_code``. Anything else escaping the CLI is a bug.

Exit codes: 0 done; 1 a search in which no trial trained to completion; 2 an invalid spec, search space or setting
(:class:`SpecError` and its kinds, :class:`BackendError`); 3 a framework that is not installed
(:class:`BackendMissingError`); 4 data missing, unreadable or unfit (:class:`DataError`); 5 training cannot start or
go on (:class:`TrainError`); 6 a store cannot be opened, read or written (:class:`StoreError`); 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._text import terminal

__all__ = [
    "Loc",
    "SpecdslError",
    "SpecError",
    "ShapeError",
    "BackendMissingError",
    "BackendError",
    "DataError",
    "SearchError",
    "TrainError",
    "StoreError",
    "WeightsError",
    "SourceError",
]


MESSAGE_LIMIT = 1000  # characters of a formatted message


@dataclass(frozen=True, slots=True)
class Loc:
    """A place in a spec file: 1-based line and column, as editors count them."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class SpecdslError(Exception):
    """Root of every error specdsl raises on purpose.

    ``loc`` points at the text that caused it (when there is one), ``path`` names the node in the spec
    (``layers[6]``), ``hint`` says what to do about it.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, loc: Loc | None = None, path: str | None = None, hint: str | None = None
    ):
        self.message = message
        self.loc = loc
        self.path = path
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        text = self.message
        if self.path:
            text = f"{self.path}: {text}"
        if self.hint:
            text = f"{text} {self.hint}"
        if self.loc is not None:
            text = f"{self.loc}: {text}"
        # One line always, and no control character of a user's text reaches the terminal; a message grown long
        # with a user's text keeps its start (the place) and its end (the way out).
        text = terminal(text)
        if len(text) > MESSAGE_LIMIT:
            head = MESSAGE_LIMIT * 2 // 3
            text = f"{text[:head]} \u2026 {text[head - MESSAGE_LIMIT + 3 :]}"
        return text

    def as_dict(self) -> dict:
        return {
            "kind": type(self).__name__,
            "file": self.loc.file if self.loc else None,
            "line": self.loc.line if self.loc else None,
            "col": self.loc.col if self.loc else None,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class SpecError(SpecdslError):
    """The text is not a valid spec: syntax, unknown keys or kinds, wrong types, bad references."""

    exit_code = 2


class ShapeError(SpecError):
    """The spec is well-formed but its shapes do not work out (or it exceeds a size bound)."""


class SearchError(SpecError):
    """A search space or search section is invalid, or a study cannot proceed."""


class BackendMissingError(SpecdslError):
    """A framework (torch, keras, onnx, ...) needed for the request is not installed."""

    exit_code = 3

    def __init__(
        self,
        package: str,
        purpose: str,
        extra: str | None = None,
        *,
        install: str | None = None,
        what: str | None = None,
    ):
        """``install`` says how to install it (default: pip, with ``extra``); ``what`` names what is missing
        (default: the `package` package)."""
        install = install or (f"pip install 'specdsl[{extra}]'" if extra else f"pip install {package}")
        what = what or f"the `{package}` package"
        super().__init__(f"{purpose} needs {what}, which is not installed. Install it: {install}")
        self.package = package


class BackendError(SpecdslError):
    """A backend cannot express a spec (a kind or option it has no builder for)."""

    exit_code = 2


class DataError(SpecdslError):
    """A dataset is missing, unreadable or does not fit the model."""

    exit_code = 4


class TrainError(SpecdslError):
    """Training cannot start or cannot go on (e.g. an output folder is not writable)."""

    exit_code = 5


class StoreError(SpecdslError):
    """A store cannot be opened, read or written: the Optuna study storage, the MLflow tracking store or its
    artifact folder, an output file. A corrupt file, a read-only folder, a full disk, a server that does not answer
    or refuses the credentials. ``store`` names it (a path, or a URL with its password masked); ``kind`` is one of
    ``corrupt``, ``read-only``, ``full``, ``locked``, ``server``, ``io``, ``other``."""

    exit_code = 6

    def __init__(self, message: str, *, store: str, kind: str = "other", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.store = store
        self.kind = kind


class WeightsError(SpecdslError):
    """A weights file cannot be read, or does not fit the model it is loaded into."""

    exit_code = 2


class SourceError(SpecdslError):
    """A model to import cannot be read, or holds what the spec language cannot express."""

    exit_code = 2


class PluginError(SpecdslError):
    """A plug-in (a package's layer kinds, declared through entry points) fails to load or to register."""

    exit_code = 2

"""``specdsl validate``: one result per file, printed as text, JSON or GitHub annotations."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._text import github_data, github_property, terminal
from ..backends import check_backend_limits
from ..errors import Loc, SearchError, SpecdslError, SpecError
from ..plan import Plan, PlanWarning, plan
from ..spec import from_tree, gc_paused, has_distributions, load_file
from ._output import err, out

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
FORMATS = ("text", "json", "github")


@dataclass
class Result:
    path: Path
    plan: Plan | None = None
    error: SpecdslError | None = None
    warnings: list[PlanWarning] = field(default_factory=list)
    space: Any = None  # specdsl.search.SpaceReport
    strict: bool = False  # --strict: a warning fails the file

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def passed(self) -> bool:
        return self.ok and not (self.strict and self.warnings)

    def strict_failure(self) -> str:
        """Why --strict fails a file that planned: its warnings, by code and place."""
        n = len(self.warnings)
        which = "; ".join(
            f"[{w.code}] at {w.loc.line}:{w.loc.col} {w.path}"
            if w.loc and w.loc.line
            else f"[{w.code}] {w.path}"
            for w in self.warnings
        )
        codes = ", ".join(dict.fromkeys(w.code for w in self.warnings))
        return terminal(
            f"{self.path}: --strict fails it for {n} warning{'s' if n > 1 else ''}: {which}. Fix "
            f"{'them' if n > 1 else 'it'}, or write `silence: [{codes}]` on each layer that means it."
        )

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": str(self.path), "ok": self.passed}
        if self.plan is not None:
            d.update(name=self.plan.name, **self.plan.totals())
        if self.error is not None:
            d["error"] = self.error.as_dict()
        d["warnings"] = [
            {
                "code": w.code,
                "message": w.message,
                "path": w.path,
                "line": w.loc.line if w.loc else None,
                "col": w.loc.col if w.loc else None,
            }
            for w in self.warnings
        ]
        if self.space is not None:
            d["search_space"] = {
                "samples": self.space.samples,
                "invalid": self.space.invalid,
                "reasons": dict(self.space.reasons.most_common()),
            }
        return d

    def print(self, out: Any, err: Any, *, github: bool = False) -> None:
        if self.error is not None:
            if github:
                out.print(_annotation("error", self.error.loc, self.error.format()), markup=False)
            else:
                err.print("error: " + self.error.format(), style="red", markup=False)
        level = "error" if self.strict else "warning"
        for w in self.warnings:
            if github:
                out.print(_annotation(level, w.loc, f"{w.path}: [{w.code}] {w.message}"), markup=False)
            else:
                err.print(str(w), style="yellow", markup=False)
        if self.ok and not self.passed and not github:
            err.print("error: " + self.strict_failure(), style="red", markup=False)
        elif self.ok and not github:
            p = self.plan
            line = (
                f"ok {terminal(self.path)}: {terminal(p.name)}, {p.params:,} params ({p.trainable:,} trainable), "
                f"output {_shape(p.output_shape)}"
            )
            if self.space is not None:
                s = self.space
                line = (
                    f"ok {terminal(self.path)}: search space, {s.samples - s.invalid} of {s.samples} sampled "
                    f"architectures plan ({s.invalid} invalid)"
                )
                for reason, n in s.reasons.most_common(5):
                    line += f"\n    {n} x {reason}"
            out.print(line, markup=False)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _annotation(level: str, loc: Any, message: str) -> str:
    # GitHub workflow commands: properties are comma-separated `key=value`, escaped so that none ends early
    msg = github_data(message)
    if loc is None:
        return f"::{level}::{msg}"
    props = f"file={github_property(loc.file)}"
    if loc.line:
        props += f",line={loc.line},col={loc.col}"
    return f"::{level} {props}::{msg}"


def validate_file(path: Path, samples: int = 200) -> Result:
    """Check one file: a model spec is planned (and its train/data sections checked against the model); a search
    space has every distribution checked and ``samples`` random architectures planned."""
    try:
        raw = load_file(path)
        if isinstance(raw, dict) and (has_distributions(raw) or "search" in raw):
            from ..search import check_space

            report = check_space(path, samples=samples, tree=raw)
            if report.all_invalid:
                e = report.first_error
                raise SearchError(
                    f"every one of {report.samples} sampled architectures is invalid; the most common reason: "
                    f"{report.reasons.most_common(1)[0][0]}",
                    loc=e.loc if e else None,
                    hint="Narrow the distributions (fewer pooling stages, larger input) so some choices plan.",
                )
            return Result(path, plan=report.first_plan, space=report)
        spec = from_tree(raw, str(path))
        p = plan(spec)
        if spec.train is not None or spec.data is not None:
            from ..train import check_compatible

            check_compatible(p, spec.train, spec.data)
        return Result(path, plan=p, warnings=[*p.warnings, *check_backend_limits(p)])
    except SpecdslError as e:
        return Result(path, error=e)


def spec_files(paths: list[Path]) -> list[Path | Result]:
    """The spec files to check, in order: each path given, and the ``*.yaml``, ``*.yml`` and ``*.json`` files under
    each folder given. A folder is walked without following symbolic links out of it: a file whose link leads
    outside the folder, and a subfolder that cannot be read, come back as failed Results (their content is never
    read), so that a check in CI cannot pass while skipping them, nor quote a file it was not asked to read.
    Links to folders are not walked (their files are checked through the folder the link leads to, when it is
    inside)."""
    found: list[Path | Result] = []
    for p in paths:
        if os.path.isdir(p):
            found += _folder_specs(p)
        else:
            found.append(
                p
            )  # named by the user: read as it is (the reader refuses what is not a regular file)
    return found


def _folder_specs(top: Path) -> list[Path | Result]:
    """The spec files under one folder, sorted, with a failed Result for each link out of it and each unreadable
    subfolder."""
    root = os.path.realpath(top)
    entries: list[Path | Result] = []

    def unreadable(e: OSError) -> None:
        folder = Path(e.filename) if e.filename else top
        why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or type(e).__name__)
        error = SpecError(
            f"this folder cannot be read ({why}); the specs in it were not checked.", loc=Loc(str(folder))
        )
        entries.append(Result(folder, error=error))

    for folder, _, names in os.walk(top, onerror=unreadable):
        for name in names:
            if not name.endswith(SPEC_SUFFIXES):
                continue
            f = Path(folder) / name
            if os.path.islink(f) and not _inside(os.path.realpath(f), root):
                error = SpecError(
                    f"is a symbolic link that leads outside {top}; it is not followed.",
                    loc=Loc(str(f)),
                    hint="Validate the file it leads to where it lives, or name the link on the command line.",
                )
                entries.append(Result(f, error=error))
            else:
                entries.append(f)
    return sorted(entries, key=lambda e: e.path if isinstance(e, Result) else e)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def run_validate(paths: list[Path], format: str = "text", *, samples: int = 200, strict: bool = False) -> int:
    """``specdsl validate``: check every spec file under ``paths``, print the results; the exit code."""
    files = spec_files(paths)
    if not files:
        err.print(
            "error: no spec files (*.yaml, *.yml, *.json) under " + ", ".join(map(str, paths)), style="red"
        )
        return 2
    # a spec's objects are freed by their reference counts; the collector's passes cost time
    with gc_paused():
        results = [f if isinstance(f, Result) else validate_file(f, samples=samples) for f in files]
    for r in results:
        r.strict = strict
    failed = sum(1 for r in results if not r.passed)
    if format == "json":
        out.print_json({"files": [r.as_dict() for r in results], "invalid": failed})
    else:
        for r in results:
            r.print(out, err, github=format == "github")
        if format == "text" and len(results) > 1:
            out.print(f"{len(results) - failed} valid, {failed} invalid")
    return 2 if failed else 0


def plain_validate_args(argv: list[str]) -> tuple[list[Path], str, int, bool] | None:
    """``validate``'s arguments when ``argv`` (after the program name) is a plain ``validate`` call: paths and the
    long or short options with their values as separate words, or ``--name=value``. None for anything else (help,
    a mistake, forms such as ``-fjson``): typer takes those, and parses the plain ones to the same values (a test
    holds the two to each other)."""
    if not argv or argv[0] != "validate":
        return None
    paths: list[Path] = []
    format, samples, strict = "text", 200, False
    words = iter(argv[1:])
    only_paths = False
    for word in words:
        if only_paths or not word.startswith("-") or word == "-":
            paths.append(Path(word))
            continue
        name, eq, value = word.partition("=")
        if name in ("--format", "-f"):
            if eq and name == "-f":  # click reads `-f=json` as the value "=json"
                return None
            value = value if eq else next(words, None)
            if value not in FORMATS:
                return None
            format = value
        elif name == "--samples":
            value = value if eq else next(words, None)
            if value is None or not value.isdigit():
                return None
            samples = int(value)
        elif word == "--strict":
            strict = True
        elif word == "--no-strict":
            strict = False
        elif word == "--":
            only_paths = True
        else:
            return None
    return (paths, format, samples, strict) if paths else None

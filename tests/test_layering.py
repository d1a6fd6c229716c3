"""The house's layering, read from the source with ast (module-level and function-level imports alike).

The packages in the order of the flow; each imports only packages before it, and only their public names (those
in the package's ``__all__``), never their underscore modules. Imports within a package are free. The base is the
top-level modules (``errors`` and every underscore module or package: ``_text``, ``_version``, ``_registry``,
``_compat``, ...); the package root ``specdsl/__init__.py`` may import anything below ``cli``, and
``specdsl/__main__.py`` belongs to ``cli``. Every broken rule is printed as ``file:line: rule``.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "specdsl"
ORDER = [
    "base",
    "spec",
    "plan",
    "backends",
    "weights",
    "data",
    "train",
    "tracking",
    "report",
    "search",
    "importers",
]
ORDER += ["root", "cli"]  # the package root may import anything below cli
FLOW = " < ".join(name for name in ORDER if name != "root")
MAX_LINES = 500

# Known offenders, being fixed where they live. Each entry is a file and the imports it may still make, with the
# reason; an entry no longer needed fails the test, so the list only shrinks.
ALLOWED_IMPORTS: dict[str, dict[str, str]] = {}
ALLOWED_PRIVATE: dict[str, dict[str, str]] = {}
# Modules over MAX_LINES, being split where they live.
ALLOWED_LONG: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _layer_of(parts: tuple[str, ...]) -> str:
    """The layer of a module given as its dotted name's parts after ``specdsl``."""
    if not parts or parts == ("__init__",):
        return "root"
    if parts[0] == "__main__":
        return "cli"
    if parts[0] == "errors" or parts[0].startswith("_"):
        return "base"
    return parts[0]


def _module_parts(path: Path) -> tuple[str, ...]:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


@cache
def _exported(package: str) -> frozenset[str] | None:
    """The names in ``specdsl/<package>/__init__.py``'s ``__all__`` (None when it has none)."""
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return frozenset(ast.literal_eval(node.value))
    return None


def _is_module(parts: tuple[str, ...]) -> bool:
    path = PACKAGE.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[int, tuple[str, ...], str | None]]:
    """Every import of specdsl in a module: (line, the imported module's parts after ``specdsl``, the name
    imported from it or None)."""
    found = []
    is_init = path.name == "__init__.py"
    here = ("specdsl", *_module_parts(path))
    package = here if is_init else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = tuple(alias.name.split("."))
                if parts[0] == "specdsl":
                    found.append((node.lineno, parts[1:], None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                parts = (*base, *(node.module.split(".") if node.module else ()))
            else:
                parts = tuple((node.module or "").split("."))
            if parts[0] != "specdsl":
                continue
            for alias in node.names:
                # `from . import _modules` imports a module: judge it as one
                if _is_module((*parts[1:], alias.name)):
                    found.append((node.lineno, (*parts[1:], alias.name), None))
                else:
                    found.append((node.lineno, parts[1:], alias.name))
    return found


def _import_rule(source: str, target: tuple[str, ...], name: str | None) -> str | None:
    """The rule an import from ``source``'s layer breaks, or None."""
    layer = _layer_of(target)
    what = ".".join(("specdsl", *target)) + (f".{name}" if name else "")
    if layer == source:
        return None
    if ORDER.index(layer) >= ORDER.index(source):
        return f"{source} imports {what}, but {layer} comes after {source} in the flow ({FLOW})"
    if layer == "root":
        return None  # the root exports what __init__ imports; `specdsl.cli` reads them
    if layer == "base":
        if name and name.startswith("_") and not name.startswith("__"):
            return f"{source} imports {what}, a private name of the base"
        return None
    private = [part for part in target[1:] if part.startswith("_")]
    if private:
        return f"{source} imports {what} from {layer}'s private module {private[0]}; import it from specdsl.{layer}"
    exported = _exported(layer)
    if name is not None and exported is not None and name not in exported:
        return f"{source} imports {what}, which is not in specdsl.{layer}'s __all__"
    return None


def test_every_package_is_in_the_flow():
    packages = {_layer_of(_module_parts(path)) for path in _modules()}
    assert packages - set(ORDER) == set()


def test_each_package_imports_only_the_public_names_of_packages_before_it():
    broken, used = [], set()
    for path in _modules():
        rel, source = _rel(path), _layer_of(_module_parts(path))
        allowed = ALLOWED_IMPORTS.get(rel, {})
        for line, target, name in _imports(path):
            rule = _import_rule(source, target, name)
            what = ".".join(("specdsl", *target)) + (f".{name}" if name else "")
            if rule is None:
                continue
            if what in allowed:
                used.add((rel, what))
            else:
                broken.append(f"{rel}:{line}: {rule}")
    broken.sort(key=lambda text: (text.split(":")[0], int(text.split(":")[1])))
    stale = [
        f"{rel}: {what}"
        for rel, imports in ALLOWED_IMPORTS.items()
        for what in imports
        if (rel, what) not in used
    ]
    assert broken == [], "imports that break the layering:\n" + "\n".join(broken)
    assert stale == [], "ALLOWED_IMPORTS entries no longer needed (remove them):\n" + "\n".join(stale)


def test_no_module_is_over_500_lines():
    long = {_rel(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    broken = [f"{rel}:{n}: {n} lines, over {MAX_LINES}" for rel, n in long.items() if rel not in ALLOWED_LONG]
    stale = [rel for rel in ALLOWED_LONG if rel not in long]
    assert broken == [], "modules over the limit:\n" + "\n".join(broken)
    assert stale == [], "ALLOWED_LONG entries no longer needed (remove them):\n" + "\n".join(stale)


# A dependency's private module in a dotted name: `pydantic._internal`, `optuna.storages._heartbeat`, ...
_PRIVATE_PATH = re.compile(r"^(?!specdsl\b)\w+(\.\w+)*\._(?!_)\w*")


@cache
def _own_private_names() -> frozenset[str]:
    """Every underscore name specdsl itself defines outside _compat: functions, classes, attributes, slots, fields,
    keywords."""
    names = set()
    for path in _modules():
        if _rel(path).startswith("specdsl/_compat/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "__slots__" for t in node.targets
            ):
                names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    return frozenset(n for n in names if n.startswith("_"))


# Underscore names of other libraries that are theirs to offer: the standard library's documented `os._exit`,
# and torch's extension points (a subclass of its batch norm base and of its convolutions, its foreach ops).
PUBLIC_UNDERSCORE = {
    "_exit": "os._exit, documented: leave a forked worker without running the parent's exit handlers",
    "_BatchNorm": "torch.nn.modules.batchnorm._BatchNorm, the base torch's own batch norms subclass",
    "_conv_forward": "a torch convolution's forward on given weights, for subclasses of nn.Conv1d/nn.Conv2d",
    "_foreach_mul_": "torch._foreach_mul_, one of torch's documented foreach ops",
}


def _third_party_private(path: Path) -> list[tuple[int, str]]:
    found = []
    own = _own_private_names() | set(PUBLIC_UNDERSCORE)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _PRIVATE_PATH.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if _PRIVATE_PATH.match(node.module):
                found.append((node.lineno, node.module))
            elif node.module.split(".")[0] != "specdsl":
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                found += [(node.lineno, f"{node.module}.{n}") for n in names]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if node.attr not in own:
                found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2:
            name = node.args[1]
            if node.func.id in ("getattr", "hasattr", "setattr") and isinstance(name, ast.Constant):
                text = str(name.value)
                if text.startswith("_") and not text.startswith("__") and text not in own:
                    found.append((node.lineno, f".{text}"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _PRIVATE_PATH.fullmatch(node.value)
        ):
            found.append((node.lineno, node.value))  # importlib.import_module("pydantic._internal...")
    return found


def test_third_party_private_apis_only_in_compat():
    broken, used = [], set()
    for path in _modules():
        rel = _rel(path)
        if rel.startswith("specdsl/_compat/"):
            continue
        for line, what in sorted(_third_party_private(path)):
            if what in ALLOWED_PRIVATE.get(rel, {}):
                used.add((rel, what))
            else:
                broken.append(
                    f"{rel}:{line}: {what} is a private API of a dependency; reach it through specdsl/_compat/"
                )
    stale = [
        f"{rel}: {what}"
        for rel, names in ALLOWED_PRIVATE.items()
        for what in names
        if (rel, what) not in used
    ]
    assert broken == [], "private APIs of dependencies outside specdsl/_compat/:\n" + "\n".join(broken)
    assert stale == [], "ALLOWED_PRIVATE entries no longer needed (remove them):\n" + "\n".join(stale)


def test_the_rules_read_imports_as_written():
    # the checker itself: relative imports resolve, modules imported by name are judged as modules
    assert _import_rule("search", ("spec",), "Draw") is None
    assert _import_rule("search", ("spec", "_document"), "Draw") == (
        "search imports specdsl.spec._document.Draw from spec's private module _document; import it from specdsl.spec"
    )
    assert _import_rule("train", ("tracking",), "log_run") == (
        f"train imports specdsl.tracking.log_run, but tracking comes after train in the flow ({FLOW})"
    )
    assert _import_rule("backends", (), "__version__") == (
        f"backends imports specdsl.__version__, but root comes after backends in the flow ({FLOW})"
    )
    assert _import_rule("plan", ("_compat", "_pydantic"), None) is None
    assert _import_rule("plan", ("spec",), "no_such_name") == (
        "plan imports specdsl.spec.no_such_name, which is not in specdsl.spec's __all__"
    )
    assert _import_rule("root", ("cli",), "main").startswith(
        "root imports specdsl.cli.main, but cli comes after"
    )


def test_the_private_api_check_reads_imports_attributes_and_names_given_as_text(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n"
        "from pydantic._internal._config import ConfigWrapper\n"
        "from optuna.storages import _heartbeat\n"
        "def f(study, trial):\n"
        "    os._exit(0)\n"
        "    getattr(trial, '_trial_id')\n"
        "    return study._storage, importlib.import_module('mlflow.tracking._tracking_service')\n"
    )
    assert sorted(_third_party_private(module)) == [
        (2, "pydantic._internal._config"),
        (3, "optuna.storages._heartbeat"),
        (6, "._trial_id"),
        (7, "._storage"),
        (7, "mlflow.tracking._tracking_service"),
    ]

"""Specs are data: no YAML tag, string or key makes specdsl run code, start a process, or read a file other than
the spec itself. Checked with Python's audit hooks while `specdsl validate` / `summary` read hostile specs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import specdsl

HOSTILE = {
    "tags.yaml": (
        "input: [4]\nlayers:\n"
        "  - !!python/object/apply:os.system ['touch /tmp/specdsl-pwned']\n"
        "  - !!python/name:os.system\n"
    ),
    "module_tag.yaml": "input: [4]\nlayers: [!!python/module:subprocess]\n",
    "include_tag.yaml": "input: [4]\nlayers: !include /etc/passwd\n",
    "expression.yaml": "input: [4]\nparams: {n: 2}\nlayers:\n  - dense: \"${__import__('os').system('id')}\"\n",
    "attribute.yaml": 'input: [4]\nparams: {n: 2}\nlayers:\n  - dense: "${n.__class__}"\n',
    "format.yaml": 'input: [4]\nlayers:\n  - dense: "{0.__class__}"\n',
    "ref_key.yaml": "input: [4]\n$ref: /etc/passwd\nlayers: [flatten]\n",
    "path_name.yaml": "name: /etc/passwd\ninput: [4]\nlayers: [{dense: {units: 2, name: ../../etc/passwd}}]\n",
    "initializer.yaml": "input: [4]\nlayers:\n  - dense: {units: 2, kernel_initializer: os.system}\n",
}

PROBE = textwrap.dedent(
    """
    import json, os, sys
    events = []
    def hook(event, args):
        if event == "open":
            events.append(["open", str(args[0])])
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "exec", "compile"):
            events.append([event, str(args[0])[:80]])
    from specdsl.cli import app          # imports done before the hook: reading the package's own files is fine
    from typer.testing import CliRunner
    import specdsl.spec, specdsl.plan, specdsl.cli._validate, specdsl.cli._render
    runner = CliRunner()
    sys.addaudithook(hook)
    codes = []
    for path in sys.argv[1:]:
        codes.append(runner.invoke(app, ["validate", path]).exit_code)
        codes.append(runner.invoke(app, ["summary", path]).exit_code)
    print(json.dumps({"events": events, "codes": codes}))
    """
)


def test_hostile_specs_open_nothing_else_and_run_nothing(tmp_path):
    paths = []
    for name, text in HOSTILE.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    # the validators' cache, a file of specdsl's own in the user's cache folder that no spec names, stays out
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *paths],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "SPECDSL_NO_VALIDATOR_CACHE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    spec_files = set(paths)
    opened = {path for event, path in result["events"] if event == "open"}
    # Python's own files and installed packages' metadata (pydantic looks up its plugins' entry points) are fine
    installed = tuple({sys.prefix, sys.base_prefix, str(Path(specdsl.__file__).parent)})
    python_files = {
        p
        for p in opened
        if p.endswith((".py", ".pyc"))
        or "/__pycache__/" in p
        or p.startswith(installed)
        # an editable install's import hook, as a sys.path entry (the package maps specdsl.zoo to examples/)
        or p.startswith("__editable__.")
    }
    assert opened - python_files <= spec_files, sorted(opened - python_files - spec_files)
    ran = [
        e
        for e in result["events"]
        if e[0] in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")
    ]
    assert ran == []
    # `${...}` text is parsed to an AST (a `compile` audit event, AST only) and walked; nothing from a spec is ever
    # executed: `exec` events come only from Python's own machinery (pydantic builds validators lazily)
    parsed = [arg for event, arg in result["events"] if event == "compile" and "__import__" in arg]
    assert parsed, "the probe should see the expression being parsed"
    for event, arg in result["events"]:
        if event == "exec":
            assert "__import__" not in arg and "system" not in arg
    # every hostile spec is refused (exit 2) except the harmless name and initializer strings, which are plain data
    codes = dict(zip([p for p in paths for _ in (0, 1)], result["codes"]))
    assert all(
        code == 2
        for path, code in codes.items()
        if not path.endswith(("path_name.yaml", "initializer.yaml", "format.yaml"))
    )
    assert not (tmp_path.parent / "specdsl-pwned").exists()

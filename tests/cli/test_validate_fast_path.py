"""A plain `specdsl validate` skips typer (specdsl/cli/__init__.py); it must do exactly what typer's command does."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT
from typer.testing import CliRunner

from specdsl.cli import app, main
from specdsl.cli._validate import plain_validate_args

BAD = "tests/bad_inputs/typo_key.yaml"

PLAIN = [
    ["validate", "examples/mnist_cnn.yaml"],
    ["validate", "examples/"],
    ["validate", "-f", "json", "examples/mnist_cnn.yaml", BAD],
    ["validate", "--format", "github", BAD, "examples/catsdogs_winning.yaml"],
    ["validate", "--format=text", "examples/lenet5.yaml", "examples/mnist_mlp.yaml"],
    ["validate", "--strict", "examples/catsdogs_winning.yaml"],
    ["validate", "--no-strict", "--samples", "5", "search_spaces/mnist.yaml"],
    ["validate", "--samples=3", "search_spaces/catsdogs.yaml", "--", "examples/lenet5.yaml"],
    ["validate", "no/such/folder"],
    ["validate", "tests/bad_inputs"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=lambda a: " ".join(a[1:]))
def test_the_plain_form_prints_and_exits_as_typer_does(argv, monkeypatch, capsys):
    assert plain_validate_args(argv) is not None
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["specdsl", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    fast = capsys.readouterr()
    typer_run = CliRunner().invoke(app, argv)
    assert exit_.value.code == typer_run.exit_code
    assert fast.out == typer_run.stdout
    assert fast.err == typer_run.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["validate"],  # typer says a path is missing
        ["validate", "--help"],
        ["validate", "-fjson", BAD],  # click's attached short value
        ["validate", "-f=json", BAD],  # click reads "=json"
        ["validate", "--format", "yaml", BAD],  # typer lists the choices
        ["validate", "--format"],
        ["validate", "--samples", "many", BAD],
        ["validate", "--samples", "-3", BAD],
        ["validate", "--strict=yes", BAD],
        ["validate", "--verbose", BAD],
        ["summary", "examples/lenet5.yaml"],
        [],
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_anything_else_is_left_to_typer(argv):
    assert plain_validate_args(argv) is None


def test_the_plain_form_imports_neither_typer_nor_rich():
    code = (
        "import sys; sys.argv = ['specdsl', 'validate', 'examples/', '--format', 'github']\n"
        "from specdsl.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, sorted(m for m in ('typer', 'rich', 'click', 'torch') if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.stderr.splitlines()[-1] == "0 []"
    # the examples silence the floor warnings they mean (catsdogs_winning's and resnet50's)
    assert proc.stdout == ""

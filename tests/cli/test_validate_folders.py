"""`specdsl validate FOLDER`: links out of the folder are not followed, files that are not regular files and folders
that cannot be read are each one error line, and nothing outside the folder is ever read or quoted."""

from __future__ import annotations

import os
import shutil

from support import EXAMPLES
from typer.testing import CliRunner

from specdsl.cli import app
from specdsl.cli._validate import spec_files

runner = CliRunner()
SECRET = "s3cr3t-token-value"


def make_folder(tmp_path):
    specs = tmp_path / "specs"
    (specs / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLES / "mnist_cnn.yaml", specs / "model.yaml")
    (specs / "sub" / "same.yaml").symlink_to("../model.yaml")  # inside: followed
    secret = tmp_path / "token"
    secret.write_text(SECRET + "\n")
    (specs / "token.yaml").symlink_to(secret)  # outside: not followed
    (specs / "zero.yml").symlink_to("/dev/zero")
    os.mkfifo(specs / "pipe.yaml")
    (specs / "loop.yaml").symlink_to(specs / "loop.yaml")
    (specs / "linked").symlink_to(specs / "sub")  # a link to a folder is not walked
    (specs / "notes.txt").write_text(SECRET)
    return specs


def test_a_folder_with_links_out_devices_pipes_and_loops(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "specs"])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "ok specs/model.yaml: mnist_cnn, 203,434 params (203,434 trainable), output (10)",
        "ok specs/sub/same.yaml: mnist_cnn, 203,434 params (203,434 trainable), output (10)",
        "2 valid, 4 invalid",
    ]
    assert result.stderr.splitlines() == [
        "error: specs/loop.yaml: is a symbolic link that loops (too many levels of symbolic links).",
        "error: specs/pipe.yaml: is not a regular file (a named pipe); specs are plain files.",
        "error: specs/token.yaml: is a symbolic link that leads outside specs; it is not followed. Validate the file "
        "it leads to where it lives, or name the link on the command line.",
        "error: specs/zero.yml: is a symbolic link that leads outside specs; it is not followed. Validate the file it "
        "leads to where it lives, or name the link on the command line.",
    ]
    assert SECRET not in result.output
    # named on the command line, a link is followed; what it holds is described, not quoted
    named = runner.invoke(app, ["validate", "specs/token.yaml"])
    assert named.exit_code == 2
    assert named.stderr == (
        "error: specs/token.yaml:1:1: holds a string, not a mapping; a spec is a mapping with "
        "`input:` and `layers:`.\n"
    )


def test_github_annotations_name_each_refused_file(tmp_path, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "specs", "--format", "github"])
    assert result.exit_code == 2
    assert [line.split("::")[1] for line in result.stdout.splitlines()] == [
        "error file=specs/loop.yaml",
        "error file=specs/pipe.yaml",
        "error file=specs/token.yaml",
        "error file=specs/zero.yml",
    ]
    assert SECRET not in result.output


def test_a_folder_that_cannot_be_read_is_an_error(tmp_path, monkeypatch):
    specs = make_folder(tmp_path)
    locked = specs / "locked"
    locked.mkdir()
    shutil.copy(EXAMPLES / "mnist_cnn.yaml", locked / "hidden.yaml")
    scandir = os.scandir

    def denied(path="."):  # as a user without the folder's read permission sees it (root reads everything)
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    monkeypatch.chdir(tmp_path)
    found = spec_files([specs.relative_to(tmp_path)])
    errors = {str(r.path): r.error.format() for r in found if not isinstance(r, os.PathLike)}
    assert errors["specs/locked"] == (
        "specs/locked: this folder cannot be read (permission denied); the specs in it were not checked."
    )
    assert [str(p) for p in found if isinstance(p, os.PathLike)] == [
        "specs/loop.yaml",
        "specs/model.yaml",
        "specs/pipe.yaml",
        "specs/sub/same.yaml",
    ]

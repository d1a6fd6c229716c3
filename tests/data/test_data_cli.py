"""`specdsl data list` and `specdsl data prepare`, as a user runs them (typer's CliRunner)."""

from __future__ import annotations

import numpy as np
from data_fixtures import *  # noqa: F403  (the shared fixtures)
from PIL import Image
from typer.testing import CliRunner

from specdsl.cli._data import app
from specdsl.data import DATASETS

runner = CliRunner()


def test_list_shows_every_dataset(cache):
    result = runner.invoke(app, ["list", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert list(rows) == list(DATASETS)
    assert rows["digits"] == ["10", "8x8x1", "scikit-learn", "available"]
    assert rows["cifar10"] == ["10", "32x32x3", "download (163 MiB)", "needs download"]
    assert rows["folder"] == ["any", "any", "path", "needs path"]
    assert rows["mnist"][:2] == ["10", "28x28x1"]


def test_prepare_then_list_says_cached(cache):
    result = runner.invoke(app, ["prepare", "digits", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "digits: train 1,259 / val 269 / test 269, 8x8x1 uint8, 10 classes (0 .. 9)\n"
        f"source: scikit-learn load_digits; cache: {cache}\n"
    )
    result = runner.invoke(app, ["list", "--cache-dir", str(cache)])
    assert (
        [line for line in result.stdout.splitlines() if "│ digits" in line][0]
        .rstrip()
        .endswith("cached         │")
    )


def test_prepare_a_folder(tmp_path, cache):
    for cls in ("ants", "bees"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(7):
            Image.fromarray(np.full((10, 10, 3), 30 * i, np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    result = runner.invoke(
        app,
        [
            "prepare",
            "folder",
            "--path",
            str(tmp_path / "imgs"),
            "--image-size",
            "8x6",
            "--cache-dir",
            str(cache),
        ],
    )
    assert result.exit_code == 0, result.output
    # 7 per class: round_half_up(7 * 0.15) = 1 to test and 1 to validation
    assert (
        result.stdout.splitlines()[0]
        == "folder: train 10 / val 2 / test 2, 8x6x3 uint8, 2 classes (ants, bees)"
    )
    assert len(list((cache / "folders").glob("*.npz"))) == 1


def test_prepare_unknown_name_exits_4(cache):
    result = runner.invoke(app, ["prepare", "mnsit", "--cache-dir", str(cache)])
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == (
        "error: unknown dataset `mnsit`; the registered datasets are: catsdogs, cifar10, digits, "
        "fashion_mnist, folder, mnist, mnist_5k. Did you mean `mnist`?\n"
    )


def test_prepare_folder_without_path_exits_4(cache):
    result = runner.invoke(app, ["prepare", "folder", "--cache-dir", str(cache)])
    assert result.exit_code == 4
    assert result.stderr.startswith("error: the `folder` dataset needs a path:")


def test_bad_image_size_exits_4(tmp_path, cache):
    result = runner.invoke(app, ["prepare", "folder", "--path", str(tmp_path), "--image-size", "big"])
    assert result.exit_code == 4
    assert result.stderr == "error: --image-size must read HxW (64x64) or N (64), but got 'big'.\n"


def test_no_command_shows_help():
    result = runner.invoke(app, [])
    assert result.exit_code in (0, 2)
    assert "list" in result.output and "prepare" in result.output


def test_prepare_reports_skipped_files_as_a_warning(tmp_path, cache):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / cls / "a.png")
        (tmp_path / cls / "b.jpg").write_bytes(b"")
    result = runner.invoke(
        app, ["prepare", "catsdogs", "--path", str(tmp_path), "--image-size", "4", "--cache-dir", str(cache)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == f"warning: {tmp_path}: skipped 2 image files that could not be decoded.\n"
    assert result.stdout.splitlines()[0] == (
        "catsdogs: train 2 / val 0 / test 0, 4x4x3 uint8, 2 classes (cat, dog), 2 unreadable files skipped"
    )

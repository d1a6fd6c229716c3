"""A damaged decode cache: a truncated file and a file with one bit flipped are found when read (each array of the
.npz is checked against its CRC-32), named in one warning, and rebuilt from the source once; a rebuild that fails
is a DataError naming the file. Real cache files of the `digits` dataset, through load_dataset, `specdsl train`
and a one-trial search."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)

from specdsl.data import DataWarning, load_dataset
from specdsl.data._cache import memo
from specdsl.errors import DataError


@pytest.fixture(scope="module")
def good_cache(tmp_path_factory) -> Path:
    """A sound digits cache file, made once."""
    folder = tmp_path_factory.mktemp("good-cache")
    load_dataset("digits", cache_dir=folder)
    return folder / "digits" / "arrays.npz"


def truncated(good: Path, dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(good.read_bytes()[:50_000])
    return "BadZipFile: File is not a zip file"


def bit_flipped(good: Path, dest: Path) -> str:
    """One bit flipped in the middle of the training images' bytes."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("x_train.npy")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x08
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(bytes(data))
    return "BadZipFile: Bad CRC-32 for file 'x_train.npy'"


DAMAGES = [truncated, bit_flipped]


def loaded(cache: Path) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("digits", cache_dir=cache)
    return ds, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_a_damaged_cache_file_is_named_once_and_rebuilt(damage, good_cache, cache):
    file = cache / "digits" / "arrays.npz"
    why = damage(good_cache, file)
    ds, notes = loaded(cache)
    assert notes == [f"the cache file {file} was damaged ({why}); rebuilt it from the source data."]
    assert file.read_bytes() == good_cache.read_bytes()  # the same arrays written again
    expected, _ = loaded(good_cache.parents[1])
    assert all(np.array_equal(getattr(ds, k), getattr(expected, k)) for k in ("x_train", "y_train", "x_test"))
    assert loaded(cache)[1] == []  # sound from now on


def test_a_damaged_cache_file_whose_rebuild_fails_is_a_data_error_naming_it(good_cache, tmp_path):
    file = tmp_path / "arrays.npz"
    truncated(good_cache, file)

    def build():
        raise DataError(
            "`mnist` is not in the cache and could not be downloaded: no network.",
            hint="Run `specdsl data prepare mnist` where the network is reachable.",
        )

    with pytest.raises(DataError) as info:
        memo(file, build)
    assert info.value.format() == (
        f"the cache file {file} is damaged (BadZipFile: File is not a zip file), and rebuilding it from the source "
        "data failed: `mnist` is not in the cache and could not be downloaded: no network. Run `specdsl data "
        "prepare mnist` where the network is reachable."
    )
    assert info.value.exit_code == 4


SPEC = """
name: tiny_digits
input: [8, 8, 1]
layers:
  - flatten
  - dense: {units: 16, activation: relu}
  - dense: {units: 10, activation: softmax}
data: {dataset: digits}
train: {optimizer: {name: adam, lr: 0.01}, epochs: 1, batch_size: 128}
"""


def damaged_cache(damage, good: Path, tmp_path: Path, monkeypatch) -> tuple[str, object]:
    """SPECDSL_CACHE at a cache whose digits file is damaged; (the warning line expected, a console to print to)."""
    from rich.console import Console

    cache = tmp_path / "cache"
    monkeypatch.setenv("SPECDSL_CACHE", str(cache))
    file = cache / "digits" / "arrays.npz"
    why = damage(good, file)
    line = f"warning: the cache file {file} was damaged ({why}); rebuilt it from the source data."
    return line, Console(file=io.StringIO(), width=300, color_system=None)


def warnings_in(out) -> list[str]:
    return [line for line in out.file.getvalue().splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__)
def test_train_with_a_damaged_cache_warns_in_one_line_and_trains(damage, good_cache, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from specdsl.cli._train import run_train

    line, out = damaged_cache(damage, good_cache, tmp_path, monkeypatch)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    code = run_train(
        spec,
        data=None,
        epochs=None,
        batch_size=None,
        backend=None,
        limit=None,
        seed=None,
        output=tmp_path / "ckpt",
        tracking_uri=None,
        experiment=None,
        track=False,
        console=out,
    )
    assert (code, warnings_in(out)) == (0, [line])
    assert "best epoch 1 of 1" in out.file.getvalue()


def test_a_search_with_a_damaged_cache_warns_once_and_its_trials_train(good_cache, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    pytest.importorskip("mlflow")
    pytest.importorskip("torch")
    from specdsl.search import run_search

    line, out = damaged_cache(truncated, good_cache, tmp_path, monkeypatch)
    space = tmp_path / "damaged.yaml"
    space.write_text(
        SPEC.replace("units: 16", "units: {choice: [8, 16]}") + "search: {sampler: random, seed: 0}\n"
    )
    result = run_search(
        space,
        trials=2,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        plots=False,
        console=out,
    )
    assert warnings_in(out) == [line]  # one worker: the data is loaded once, for both trials
    assert (result.complete, result.failed) == (2, 0)

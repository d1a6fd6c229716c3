"""Paths shared by the tests (a module of its own: several test folders have a conftest.py)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples"
SEARCH_SPACES = ROOT / "search_spaces"


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@contextlib.contextmanager
def address_space_limit(headroom: int):
    """Within the block, this process may map at most ``headroom`` more bytes than it has mapped now
    (``RLIMIT_AS``), so that an oversized allocation fails at once, as on a machine without the memory, whatever
    the kernel's overcommit policy. The soft limit only: it is put back after."""
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    before = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + headroom, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, before)


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real file system of ``size`` (a tmpfs: ``"32m"``) mounted on ``folder`` for the block, to fill up or to
    make read-only (:func:`make_read_only`). Mounting needs root and a machine that permits it; elsewhere the test
    is skipped. Unmounted lazily after (SQLite and MLflow may still hold its files open)."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_folder(folder: Path):
    """A folder that nothing can write to once the function yielded is called (fill it first): as root, where
    permissions do not stop writes, a tmpfs remounted read-only (EROFS); as another user, mode 0555."""
    if os.geteuid() == 0:
        with small_disk(folder, "64m"):
            yield lambda: subprocess.run(
                ["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield lambda: folder.chmod(0o555)
    finally:
        folder.chmod(0o755)


def fill_disk(folder: Path) -> Path:
    """Write zeros to ``folder/filler`` until its file system is full; returns the file (delete it to free the
    space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:  # ENOSPC
            pass
    return filler


def __getattr__(name: str):
    # RaiseAt needs specdsl.train: made on first use, so that importing this module stays free of the package
    if name == "RaiseAt":
        from specdsl.train import Callback

        class RaiseAt(Callback):
            """Raises ``exc`` at the end of epoch ``epoch`` (a crash, or Ctrl-C, in the middle of training)."""

            def __init__(self, epoch: int, exc: BaseException):
                self.epoch, self.exc = epoch, exc

            def on_epoch_end(self, epoch, logs):
                if epoch == self.epoch:
                    raise self.exc

        globals()["RaiseAt"] = RaiseAt
        return RaiseAt
    raise AttributeError(name)

"""Paths shared by the tests (a module of its own: several test folders have a conftest.py)."""

from __future__ import annotations

import contextlib
import resource
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

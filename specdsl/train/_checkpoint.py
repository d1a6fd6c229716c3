"""The best epoch's checkpoint folder: checked writable before training, and a failed write turned into one
clear error. Shared by both loops; nothing here imports a framework."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ..errors import TrainError


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a probe file in it; a TrainError naming the folder when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".specdsl-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise TrainError(
            f"the checkpoint folder {folder} is not writable: {e.strerror or e}.",
            hint="Pass another folder (--output), or fix its permissions.",
        ) from None


def checkpoint_failure(e: BaseException, file: Path, size: int) -> BaseException:
    """What to raise when writing the checkpoint ``file`` (``size`` bytes) failed with ``e``: a StoreError
    when the disk is full or cannot be written (torch's writer says only "unexpected pos": the free space
    tells), else ``e``."""
    from .._sqlite import store_error

    if not isinstance(e, OSError):
        try:
            if shutil.disk_usage(file.parent).free >= size:
                return e
        except OSError:
            return e
        e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
    return store_error(e, "checkpoint", str(file), "--output") or e

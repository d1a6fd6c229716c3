"""Checksummed downloads: mirrors in order, retries, progress on stderr, atomic rename after the check.

Used by the datasets (``specdsl.data``) and by the pretrained backbones' weights (``specdsl.weights``); each says
which error a failed download is and how to get the file another way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import DataError, SpecdslError

MIRROR_ENV = "SPECDSL_DATA_MIRROR"
RETRIES = 3
TIMEOUT = 30.0
_CHUNK = 1 << 20


class _ChecksumMismatch(Exception):
    pass


def mirror_urls(dataset: str, filename: str, defaults: list[str], mirror: str | None = None) -> list[str]:
    """Where to fetch ``filename`` from.

    A mirror (the argument, else ``$SPECDSL_DATA_MIRROR``) replaces the built-in list and is laid out as
    ``MIRROR/<dataset>/<filename>``; the built-in bases are used as they are (``BASE/<filename>``).
    """
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        return [f"{mirror.rstrip('/')}/{dataset}/{filename}"]
    return [f"{base.rstrip('/')}/{filename}" for base in defaults]


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:HEX"`` or ``"md5:HEX"`` -> (algorithm, hex)."""
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("sha256", "md5") or not expected:
        raise ValueError(f"checksum must read 'sha256:HEX' or 'md5:HEX', but got {checksum!r}")
    return algorithm, expected.lower()


def atomic_write(dest: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``dest``, then rename it into place.

    A reader never sees a half-written file, and nothing is left behind if ``write`` fails.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is fine to share
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


DATA_HINT = (
    f"Set {MIRROR_ENV} to a mirror that serves it, or place the file yourself and pass its folder as path."
)


def download(
    urls: list[str],
    dest: Path,
    checksum: str,
    *,
    progress: bool = True,
    retries: int = RETRIES,
    error: type[SpecdslError] = DataError,
    hint: str = DATA_HINT,
) -> Path:
    """Fetch the first of ``urls`` that answers with the right checksum into ``dest``.

    Each URL is tried up to ``retries`` times on network errors and 5xx answers (not on 404 or a checksum
    mismatch). ``dest`` appears only once its checksum is right; no partial file is ever left behind.
    Raises ``error`` (DataError by default) naming every URL tried and what went wrong with it, with ``hint``.
    """
    import http.client
    import urllib.error

    algorithm, expected = parse_checksum(checksum)
    if dest.is_file() and file_digest(dest, algorithm) == expected:
        return dest
    failures = []
    for url in urls:
        for attempt in range(retries):
            try:
                atomic_write(dest, functools.partial(_fetch_to, url, algorithm, expected, progress))
                return dest
            except _ChecksumMismatch as e:
                failures.append(f"{url}: {e}")
                break
            except urllib.error.HTTPError as e:
                if e.code < 500 or attempt == retries - 1:
                    failures.append(f"{url}: HTTP {e.code} {e.reason}")
                    break
            except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
                if attempt == retries - 1:
                    reason = getattr(e, "reason", e)
                    failures.append(f"{url}: {reason}")
                    break
            time.sleep(0.5 * 2**attempt)
    raise error(f"could not download {dest.name}: " + "; ".join(failures) + ".", hint=hint)


def _fetch_to(url: str, algorithm: str, expected: str, progress: bool, tmp: Path) -> None:
    _fetch_checked(url, tmp, algorithm, expected, progress)


def _fetch_checked(url: str, tmp: Path, algorithm: str, expected: str, progress: bool) -> None:
    import urllib.request

    digest = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": "specdsl"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(tmp, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with _Progress(url.rsplit("/", 1)[-1], total, enabled=progress) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.advance(len(chunk))
    if total is not None and bar.done != total:
        raise ConnectionError(f"the connection closed after {bar.done} of {total} bytes")
    got = digest.hexdigest()
    if got != expected:
        raise _ChecksumMismatch(f"{algorithm} mismatch: expected {expected}, got {got}")


class _Progress:
    """A rich progress bar on stderr when it is a terminal; one line per file otherwise."""

    def __init__(self, label: str, total: int | None, *, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.done = 0
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            self._bar = Progress(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(f"downloading {self.label}", total=self.total)
        else:
            print(f"downloading {self.label} ...", file=sys.stderr, flush=True)
        return self

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

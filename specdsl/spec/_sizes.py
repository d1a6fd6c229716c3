"""Sizes, durations and seeds as a spec writes them: ``15m`` and ``1h30m``, ``2GiB`` and ``512MB``, and the bounds
every section holds them to."""

from __future__ import annotations

import math
import re
from typing import Any

from ._types import MAX_SIZE

MAX_BATCH = 2**20  # examples a batch: large-batch CNN training stops at tens of thousands; more is a typo
MAX_SEED = 2**32 - 1  # NumPy's (and so Keras' and Optuna's samplers') seeds are 32-bit
MAX_MEMORY = 2**50  # 1 PiB
MAX_SECONDS = MAX_SIZE  # 68 years
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def duration_seconds(value: Any) -> float | None:
    """Seconds from 90, "90", "90s", "15m", "2h", "1h30m" (None stays None); a ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value > 0:
            raise ValueError(f"a timeout must be positive, but got {value!r}.")
        if value > MAX_SECONDS:
            raise ValueError(f"a timeout is at most {MAX_SECONDS:,} seconds (68 years), but got {value!r}.")
        return float(value)
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return duration_seconds(float(text))
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|s)", text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"a timeout is seconds or a duration like 90s, 15m, 2h or 1h30m, but got {value!r}.")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not seconds > 0:
        raise ValueError(f"a timeout must be positive, but got {value!r}.")
    if seconds > MAX_SECONDS:
        raise ValueError(f"a timeout is at most {MAX_SECONDS:,} seconds (68 years), but got {value!r}.")
    return seconds


def memory_bytes(value: Any) -> int | None:
    """A size in bytes: an int, or a number with a unit ("2GiB", "1.5 GB", "512MiB"); a ValueError for anything
    else, and for sizes beyond 1 PiB."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        found = (
            re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", value.lower())
            if isinstance(value, str)
            else None
        )
        number = float(found.group(1)) * _UNITS[found.group(2)] if found and found.group(2) in _UNITS else 0.0
        size = round(number) if math.isfinite(number) and number < 2 * MAX_MEMORY else 2 * MAX_MEMORY
    if size < 1:
        raise ValueError(
            f"a memory size is a positive number of bytes, or a number with a unit (KiB, MiB, GiB, "
            f"TiB, KB, MB, GB, TB) such as 2GiB, but got {shortened(value)}"
        )
    if size > MAX_MEMORY:
        raise ValueError(f"a memory size is at most 1 PiB ({MAX_MEMORY:,} bytes), but got {shortened(value)}")
    return size


def shortened(value: Any) -> str:
    text = repr(value)
    n = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({n:,} characters)"

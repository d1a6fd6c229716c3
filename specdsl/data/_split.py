"""Stratified, seeded splits and training-set caps.

The rule, so that counts can be worked out by hand: for each class (in label order) the examples of that
class are shuffled; ``round_half_up(n_c * test)`` of them go to test, ``round_half_up(n_c * val)`` to
validation (at most what is left), the rest to train. Each split is then shuffled as a whole.
A cap (``limit``) keeps ``limit`` training examples, shared between classes by largest remainder.
All draws come from one ``numpy.random.default_rng(seed)`` in a fixed order.
"""

from __future__ import annotations

import math


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5 + 1e-9)  # the epsilon keeps 0.15 * 300 = 44.99999 from rounding down


def stratified_split(y, val: float, test: float, rng):
    """Index arrays (train, val, test) into ``y``."""
    import numpy as np

    parts: list[list] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = round_half_up(len(idx) * test)
        n_val = min(round_half_up(len(idx) * val), len(idx) - n_test)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(rng.permutation(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts)


def apportion(counts: list[int], total: int) -> list[int]:
    """Share ``total`` between groups in proportion to ``counts`` (largest remainder, ties to the first)."""
    n = sum(counts)
    quotas = [c * total / n for c in counts]
    shares = [math.floor(q) for q in quotas]
    order = sorted(range(len(counts)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def stratified_limit(y, limit: int, rng):
    """Indices of ``limit`` examples of ``y`` with the class proportions kept, in the original order."""
    import numpy as np

    if limit >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    keep = [rng.permutation(m)[:k] for m, k in zip(members, apportion([len(m) for m in members], limit))]
    return np.sort(np.concatenate(keep))

"""Small sampling helpers shared by several priors.

Each helper consumes the generator exactly as the code it replaced did, so moving a prior onto
these helpers does not change its output for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "uniform_int",
    "log_uniform",
    "choose_weighted",
    "standardise",
    "rank_bucket",
    "cover_classes",
]


def uniform_int(rng: np.random.Generator, bounds: tuple[int, int], low: int | None = None) -> int:
    """Integer uniform in the inclusive range ``bounds``; ``low`` raises the lower end (<= high)."""
    lo, hi = bounds
    lo = lo if low is None else min(max(lo, low), hi)
    return int(rng.integers(lo, hi + 1))


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Float log-uniform in ``bounds`` (both > 0): every order of magnitude equally likely."""
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def choose_weighted(rng: np.random.Generator, pairs: Sequence[tuple[str, float]]) -> str:
    """Pick a name from ``(name, weight)`` pairs with probability proportional to its weight."""
    names, weights = zip(*pairs)
    weights = np.asarray(weights, dtype=float)
    return str(rng.choice(names, p=weights / weights.sum()))


def standardise(a: np.ndarray) -> np.ndarray:
    """Column-wise z-score; constant columns become 0 (keeps float32 casting safe)."""
    std = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(std > 0, std, 1.0)


def rank_bucket(rng: np.random.Generator, v: np.ndarray, k: int) -> np.ndarray:
    """Bucket ``v`` into ``k`` ordered groups using the values of ``k-1`` random rows as edges."""
    edges = v[rng.choice(v.shape[0], size=k - 1, replace=False)]
    return (v[:, None] > edges[None, :]).sum(axis=1)


def cover_classes(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Random class ids for ``n`` slots (cells, rules) that use every class once ``n >= k``.

    Drawing each slot's class independently would often leave classes out of a small table; here
    the first ``k`` slots of a random order get distinct classes and the rest are iid.
    """
    if n <= k:
        return rng.choice(k, size=n, replace=False)
    return rng.permutation(np.concatenate([np.arange(k), rng.integers(k, size=n - k)]))

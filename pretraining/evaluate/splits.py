"""Repeated train/test splits of a real dataset, the same for every evaluated method.

A split depends only on (dataset name, row count, class labels, seed, repeat, split arguments),
so Mitra, its ablations and every baseline see exactly the same rows; `Split.split_id` is a
hash of the indices that each result row carries to check it.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from mitra_sklearn.config import Task
from mitra_sklearn.ensemble import MAX_SEED

from ..realdata import Dataset

__all__ = ["Split", "make_splits", "cached_splits"]


@dataclass(frozen=True)
class Split:
    """Row indices of one train/test split of a dataset.

    Attributes
    ----------
    repeat : int
        Repeat number (0-based).
    train, test : ndarray of int
        Row positions in the dataset.
    """

    repeat: int
    train: np.ndarray
    test: np.ndarray

    @property
    def split_id(self) -> str:
        """Short hash of the indices: equal ids mean the same rows in the same roles."""
        digest = hashlib.sha1(np.ascontiguousarray(self.train, dtype=np.int64).tobytes())
        digest.update(b"|")
        digest.update(np.ascontiguousarray(self.test, dtype=np.int64).tobytes())
        return digest.hexdigest()[:12]


def _subsample(indices: np.ndarray, size: int, y: np.ndarray | None, seed: int) -> np.ndarray:
    """At most ``size`` of ``indices``, stratified on ``y`` when it is given (sorted output)."""
    if len(indices) <= size:
        return np.sort(indices)
    if y is not None:
        try:
            kept, _ = train_test_split(indices, train_size=size, stratify=y[indices], random_state=seed)
            return np.sort(kept)
        except ValueError:  # a class with one row cannot be stratified; plain sampling is fine
            pass
    return np.sort(np.random.default_rng(seed).choice(indices, size=size, replace=False))


def make_splits(
    dataset: Dataset,
    *,
    n_repeats: int = 3,
    test_size: float = 0.2,
    max_train_rows: int = 2000,
    max_test_rows: int = 2000,
    seed: int = 0,
) -> list[Split]:
    """The repeated train/test splits of a dataset (deterministic).

    Parameters
    ----------
    dataset : Dataset
    n_repeats : int, default=3
        Number of random splits.
    test_size : float, default=0.2
        Share of rows held out before subsampling.
    max_train_rows, max_test_rows : int, default=2000
        Caps applied after the split (stratified subsample for classification).
    seed : int, default=0
        Base seed; each split's seed also depends on the dataset name and the repeat.

    Returns
    -------
    list of Split
    """
    n = dataset.n_rows
    stratify = dataset.y if dataset.task is Task.CLASSIFICATION else None
    name_key = zlib.crc32(dataset.name.encode())  # stable across processes (unlike hash())
    splits = []
    for repeat in range(n_repeats):
        split_seed = int(np.random.default_rng([seed, name_key, repeat]).integers(MAX_SEED))
        rows = np.arange(n)
        try:
            train, test = train_test_split(rows, test_size=test_size, stratify=stratify, random_state=split_seed)
        except ValueError:  # too few rows of a class to stratify
            train, test = train_test_split(rows, test_size=test_size, random_state=split_seed)
        train = _subsample(train, max_train_rows, stratify, split_seed + 1)
        test = _subsample(test, max_test_rows, stratify, split_seed + 2)
        splits.append(Split(repeat, train, test))
    return splits


# Splits would otherwise be recomputed per method; the key holds everything make_splits reads.
_SPLIT_CACHE: dict[tuple, list[Split]] = {}


def cached_splits(dataset: Dataset, **kwargs: Any) -> list[Split]:
    """`make_splits` with a per-process cache (every method of a run asks for the same splits).

    Parameters
    ----------
    dataset : Dataset
    **kwargs
        Arguments of `make_splits`.

    Returns
    -------
    list of Split
    """
    target = zlib.crc32(np.ascontiguousarray(dataset.y).tobytes()) if dataset.task is Task.CLASSIFICATION else 0
    key = (dataset.name, dataset.n_rows, dataset.task, target, tuple(sorted(kwargs.items())))
    if key not in _SPLIT_CACHE:
        if len(_SPLIT_CACHE) > 512:
            _SPLIT_CACHE.clear()
        _SPLIT_CACHE[key] = make_splits(dataset, **kwargs)
    return _SPLIT_CACHE[key]

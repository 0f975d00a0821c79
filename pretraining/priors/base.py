"""The `Table` container and the `Prior` interface shared by every synthetic-data generator."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from mitra_sklearn.config import Task

from ..config import PriorConfig
from .features import add_missing_mcar

__all__ = [
    "Table",
    "Prior",
    "PriorGenerationError",
    "Task",
    "SeedLike",
    "as_rng",
    "sample_n_classes",
]

SeedLike = int | np.integer | np.random.Generator | np.random.SeedSequence


class PriorGenerationError(RuntimeError):
    """A prior could not produce a valid table within `PriorConfig.max_attempts` re-draws."""


def as_rng(seed: SeedLike) -> np.random.Generator:
    """Return ``seed`` if it is a Generator, else ``np.random.default_rng(seed)``.

    Passing a Generator lets callers chain draws (its state advances); passing an int gives an
    independent, exactly reproducible stream.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, float)):  # bool/float seeds are almost always a bug
        raise TypeError(f"seed must be an int, SeedSequence or Generator, not {type(seed)}")
    return np.random.default_rng(seed)


def sample_n_classes(rng: np.random.Generator, config: PriorConfig) -> int:
    """Draw a class count: 2 with probability ``binary_prob``, else uniform in 2..max_classes."""
    if rng.random() < config.binary_prob:
        return 2
    return int(rng.integers(2, config.max_classes + 1))


@dataclass
class Table:
    """One synthetic dataset.

    Attributes
    ----------
    x : ndarray of shape (n_rows, n_features), float32
        Features. Categorical columns hold integer codes ``0..n_categories-1`` stored as floats.
        NaN appears only when missing values were requested (``PriorConfig.missing_prob > 0``).
    y : ndarray of shape (n_rows,)
        int64 class ids ``0..n_classes-1`` (classification, every id present) or float32 targets.
    task : {"classification", "regression"}
    n_classes : int
        Number of classes (all present in ``y``); 0 for regression.
    categorical : ndarray of shape (n_features,), bool
        True where the column is categorical.
    prior : str
        Name of the prior that generated the table (e.g. ``"scm"``).
    """

    x: np.ndarray
    y: np.ndarray
    task: Task
    n_classes: int
    categorical: np.ndarray
    prior: str

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.x.shape[1])

    def check(self, allow_nan: bool = False) -> None:
        """Raise ValueError if the table breaks any invariant documented above."""
        x, y = self.x, self.y
        if x.ndim != 2 or x.dtype != np.float32:
            raise ValueError(f"x must be 2-D float32, got {x.dtype} {x.shape}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"y shape {y.shape} does not match x {x.shape}")
        if self.categorical.shape != (x.shape[1],) or self.categorical.dtype != bool:
            raise ValueError("categorical must be a bool mask of length n_features")
        if not isinstance(self.task, Task):
            raise ValueError(f"task must be a Task, got {self.task!r}")
        finite = np.isfinite(x) | (np.isnan(x) if allow_nan else False)
        if not finite.all():
            raise ValueError("x has non-finite values" + ("" if allow_nan else " or NaN"))
        if self.task is Task.CLASSIFICATION:
            if y.dtype != np.int64:
                raise ValueError(f"classification y must be int64, got {y.dtype}")
            present = np.unique(y)
            if self.n_classes < 2 or not np.array_equal(present, np.arange(self.n_classes)):
                raise ValueError(f"labels {present} are not exactly 0..{self.n_classes - 1}")
        else:
            if y.dtype != np.float32 or not np.isfinite(y).all():
                raise ValueError("regression y must be finite float32")
            if self.n_classes != 0:
                raise ValueError("regression tables have n_classes == 0")


class Prior(ABC):
    """A generator of synthetic tables.

    Subclasses implement ``_generate``, one raw draw. `sample` adds what every prior shares:
    argument checks, the class-count draw, re-draws until the table is valid (every requested
    class present, finite, non-constant target, at least one non-constant feature), the fallback
    to fewer classes, and MCAR missing values.

    Parameters
    ----------
    config : PriorConfig, optional
        Hyper-parameter ranges; defaults to ``PriorConfig()``.
    """

    name: str = "prior"
    #: Re-draw until every requested class appears (SCM, DSRF). Tree priors set this to False:
    #: their classes are whatever the fitted model predicts, so any table with >= 2 classes is
    #: kept and its observed classes re-numbered 0..k-1.
    require_all_classes: bool = True

    def __init__(self, config: PriorConfig | None = None) -> None:
        self.config = config if config is not None else PriorConfig()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abstractmethod
    def _generate(
        self,
        rng: np.random.Generator,
        n_rows: int,
        n_features: int,
        task: Task,
        n_classes: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return raw ``(x, y, categorical)``: x float [n, d]; y labels in 0..n_classes-1 (any
        subset may be present) or float targets; categorical bool [d]."""

    def sample(
        self,
        rng_or_seed: SeedLike,
        n_rows: int,
        n_features: int,
        task: Task,
        n_classes: int | None = None,
    ) -> Table:
        """Generate one table, exactly reproducible from ``rng_or_seed``.

        Parameters
        ----------
        rng_or_seed : int, SeedSequence or numpy Generator
            Source of all randomness (a Generator is consumed in place).
        n_rows, n_features : int
            Table shape.
        task : {"classification", "regression"}
        n_classes : int, optional
            Requested class count (classification only); drawn from the config when None. If the
            prior cannot produce all of them in ``max_attempts`` draws, the best draw is kept and
            its classes re-numbered, so ``Table.n_classes`` may be smaller (but >= 2).

        Returns
        -------
        Table

        Raises
        ------
        PriorGenerationError
            If no valid table was produced in ``config.max_attempts`` draws.
        """
        rng = as_rng(rng_or_seed)
        task = Task.parse(task)
        if n_rows < 2 or n_features < 1:
            raise ValueError(f"need n_rows >= 2 and n_features >= 1, got {n_rows}, {n_features}")
        if task is Task.CLASSIFICATION:
            if n_classes is None:
                n_classes = sample_n_classes(rng, self.config)
            if not 2 <= n_classes <= n_rows:
                raise ValueError(f"n_classes must be in 2..n_rows, got {n_classes}")
        else:
            n_classes = 0

        best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        best_k = 1
        for _ in range(self.config.max_attempts):
            x, y, cat = self._generate(rng, n_rows, n_features, task, n_classes)
            x = np.asarray(x, dtype=np.float64)
            if not np.isfinite(x).all() or not np.ptp(x, axis=0).any():
                continue  # overflow, or every feature constant: useless table
            if task is Task.REGRESSION:
                y = np.asarray(y, dtype=np.float64)
                if np.isfinite(y).all() and np.ptp(y) > 1e-6 * max(1.0, np.abs(y).max()):
                    best = (x, y.astype(np.float32), cat)
                    break
                continue
            k = len(np.unique(y))
            if k > best_k:
                best, best_k = (x, y, cat), k
            if k == n_classes or (k >= 2 and not self.require_all_classes):
                break
        if best is None:
            raise PriorGenerationError(
                f"{self.name}: no valid {task} table of {n_rows}x{n_features} "
                f"in {self.config.max_attempts} attempts"
            )
        x, y, cat = best
        if task is Task.CLASSIFICATION:
            # Re-number observed classes to 0..k-1 (no-op when all requested classes appear).
            _, y = np.unique(y, return_inverse=True)
            y = y.astype(np.int64)
            n_classes = best_k
        x = self._add_missing(rng, x.astype(np.float32))
        return Table(x, y, task, int(n_classes), np.asarray(cat, dtype=bool), self.name)

    def _add_missing(self, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        """Blank cells completely at random (MCAR) with probability ``config.missing_prob``."""
        cfg = self.config
        if cfg.missing_prob <= 0.0 or rng.random() >= cfg.missing_prob:
            return x
        return add_missing_mcar(rng, x, rng.uniform(*cfg.missing_rate))

"""The paper's shared feature generator (Mitra App. A.2.1).

A `FeatureSpec` fixes, per table, which columns are categorical, how many categories each has
and their category probabilities; `FeatureSpec.draw` then samples any number of rows from that
fixed distribution. Tree priors need this split: the base set and the fresh rows must come from
the same feature distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PriorConfig

__all__ = ["FeatureSpec", "add_missing_mcar", "sample_n_categories"]


def sample_n_categories(rng: np.random.Generator, config: PriorConfig, size: int | None = None):
    """Number of categories: ``1 + Geometric(p)``, so at least 2, capped at ``max_categories``."""
    n = 1 + rng.geometric(config.categories_geometric_p, size=size)
    return np.minimum(n, config.max_categories)


@dataclass(frozen=True)
class FeatureSpec:
    """Per-table feature distribution.

    Attributes
    ----------
    categorical : ndarray of shape (n_features,), bool
    n_categories : ndarray of shape (n_features,), int
        Category count of each categorical column, 0 for continuous columns.
    cum_probs : tuple of ndarray
        Cumulative category probabilities, one array per categorical column (in column order).
    """

    categorical: np.ndarray
    n_categories: np.ndarray
    cum_probs: tuple[np.ndarray, ...]

    @property
    def n_features(self) -> int:
        return int(self.categorical.shape[0])

    @classmethod
    def sample(cls, rng: np.random.Generator, n_features: int, config: PriorConfig) -> FeatureSpec:
        """Draw the categorical layout of a table with ``n_features`` columns.

        ``floor(p_cat * (d + 1))`` columns (capped at d) are categorical, ``p_cat`` uniform in
        ``config.categorical_share``, chosen without replacement. Each gets ``1 + Geometric(p)``
        categories with probabilities from a Dirichlet(1) draw (paper: "direct multinomial").
        """
        p_cat = rng.uniform(*config.categorical_share)
        n_cat = min(int(np.floor(p_cat * (n_features + 1))), n_features)
        categorical = np.zeros(n_features, dtype=bool)
        categorical[rng.choice(n_features, size=n_cat, replace=False)] = True
        n_categories = np.zeros(n_features, dtype=np.int64)
        n_categories[categorical] = sample_n_categories(rng, config, size=n_cat)
        cum_probs = tuple(
            np.cumsum(rng.dirichlet(np.ones(k))) for k in n_categories[categorical]
        )
        return cls(categorical, n_categories, cum_probs)

    def draw(self, rng: np.random.Generator, n_rows: int) -> np.ndarray:
        """Sample ``n_rows`` rows (float64): continuous iid N(0, 1), categorical integer codes."""
        x = rng.standard_normal((n_rows, self.n_features))
        cat_cols = np.flatnonzero(self.categorical)
        if cat_cols.size:
            u = rng.random((n_rows, cat_cols.size))
            for j, (col, cum) in enumerate(zip(cat_cols, self.cum_probs)):
                # Inverse-CDF multinomial draw; min() guards against cum[-1] rounding below 1.
                x[:, col] = np.minimum(np.searchsorted(cum, u[:, j], side="right"), cum.size - 1)
        return x


def add_missing_mcar(rng: np.random.Generator, x: np.ndarray, rate: float) -> np.ndarray:
    """Return a copy of ``x`` with each cell set to NaN independently with probability ``rate``.

    Missing completely at random: applied after the target is computed, so the label depends on
    the true values, as when a real measurement is lost.
    """
    x = x.copy()
    x[rng.random(x.shape) < rate] = np.nan
    return x

"""The paper's shared feature generator (Mitra App. A.2.1), with two optional extensions.

A `FeatureSpec` fixes, per table, which columns are categorical, how many categories each has
and their category probabilities; `FeatureSpec.draw` then samples any number of rows from that
fixed distribution. Tree priors need this split: the base set and the fresh rows must come from
the same feature distribution.

Extensions (both off by default, and then no random number is drawn for them, so the v1 stream
is unchanged):

* quantised numeric columns (`Quantisation`, ``feature_quantize_*``): some continuous columns
  are snapped to a grid with a few values, giving the ties of integer / rating columns;
* a Gaussian copula (``feature_copula_*``): all columns come from one correlated normal vector
  (random factor model); categorical codes are read off its uniform marginals, so categorical
  and numeric columns are correlated too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..config import PriorConfig
from .helpers import uniform_int

__all__ = [
    "FeatureSpec",
    "Quantisation",
    "add_missing_mcar",
    "sample_n_categories",
    "sample_quantisation",
    "sample_copula_loadings",
]


def sample_n_categories(rng: np.random.Generator, config: PriorConfig, size: int | None = None):
    """Number of categories: ``1 + Geometric(p)``, so at least 2, capped at ``max_categories``."""
    n = 1 + rng.geometric(config.categories_geometric_p, size=size)
    return np.minimum(n, config.max_categories)


@dataclass(frozen=True)
class Quantisation:
    """Snap some numeric columns to a grid: ``step * (round(x / step - shift) + shift)``.

    On N(0, 1) columns a step of ``6 / levels`` leaves about ``levels`` distinct values (those
    within 3 sd), at the column's original scale, so thresholds drawn for N(0, 1) columns (DSRF)
    stay meaningful. The random ``shift`` in [0, 1) moves the grid off zero.

    Attributes
    ----------
    columns : ndarray of int
        Column indices to quantise.
    step, shift : ndarray of float, same length as ``columns``
    """

    columns: np.ndarray
    step: np.ndarray
    shift: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Quantise ``x[:, columns]`` in place and return ``x``."""
        cols = self.columns
        x[:, cols] = self.step * (np.round(x[:, cols] / self.step - self.shift) + self.shift)
        return x


def sample_quantisation(
    rng: np.random.Generator, numeric: np.ndarray, config: PriorConfig
) -> Quantisation | None:
    """Draw which numeric columns of a table are quantised, or None (no quantisation).

    With probability ``feature_quantize_prob`` a table quantises ``round(share * n_numeric)``
    of its numeric columns, ``share ~ U(feature_quantize_share)``, each to about
    ``U{feature_quantize_levels}`` values.

    Parameters
    ----------
    rng : numpy Generator
        Not touched when ``feature_quantize_prob`` is 0.
    numeric : ndarray of shape (n_features,), bool
        Columns that may be quantised (the non-categorical ones).
    config : PriorConfig
        Uses the ``feature_quantize_*`` fields.

    Returns
    -------
    Quantisation or None
    """
    prob = config.feature_quantize_prob
    if prob <= 0.0 or rng.random() >= prob:  # prob 0: draw nothing (keeps the v1 stream)
        return None
    cols = np.flatnonzero(numeric)
    n_quant = int(round(rng.uniform(*config.feature_quantize_share) * cols.size))
    if n_quant == 0:
        return None
    cols = np.sort(rng.choice(cols, size=n_quant, replace=False))
    lo, hi = config.feature_quantize_levels
    levels = rng.integers(lo, hi + 1, size=n_quant)
    return Quantisation(cols, 6.0 / levels, rng.random(n_quant))


def sample_copula_loadings(
    rng: np.random.Generator, n_features: int, config: PriorConfig
) -> np.ndarray | None:
    """Draw the factor loadings ``W`` (n_features x r) of a Gaussian copula, or None.

    With probability ``feature_copula_prob`` the columns are ``z = (W f + e) / sqrt(1 + |W_j|^2)``
    with ``f ~ N(0, I_r)``, ``e ~ N(0, I_d)``: unit-variance margins and correlation matrix
    ``D^-1/2 (W W^T + I) D^-1/2``, a random positive-definite matrix whose strength grows with
    the loading std ``~ U(feature_copula_strength)``.

    Parameters
    ----------
    rng : numpy Generator
        Not touched when ``feature_copula_prob`` is 0.
    n_features : int
    config : PriorConfig
        Uses the ``feature_copula_*`` fields.

    Returns
    -------
    ndarray of shape (n_features, r) or None
    """
    prob = config.feature_copula_prob
    if prob <= 0.0 or rng.random() >= prob:  # prob 0: draw nothing (keeps the v1 stream)
        return None
    rank = uniform_int(rng, config.feature_copula_factors)
    return rng.uniform(*config.feature_copula_strength) * rng.standard_normal((n_features, rank))


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
    quantisation : Quantisation or None
        Numeric columns snapped to a few values (``feature_quantize_prob``); None: none.
    loadings : ndarray of shape (n_features, r) or None
        Gaussian-copula factor loadings (``feature_copula_prob``); None: independent columns.
    """

    categorical: np.ndarray
    n_categories: np.ndarray
    cum_probs: tuple[np.ndarray, ...]
    quantisation: Quantisation | None = None
    loadings: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.categorical.shape[0])

    @classmethod
    def sample(cls, rng: np.random.Generator, n_features: int, config: PriorConfig) -> FeatureSpec:
        """Draw the categorical layout of a table with ``n_features`` columns.

        ``floor(p_cat * (d + 1))`` columns (capped at d) are categorical, ``p_cat`` uniform in
        ``config.categorical_share``, chosen without replacement. Each gets ``1 + Geometric(p)``
        categories with probabilities from a Dirichlet(1) draw (paper: "direct multinomial").
        Then the optional quantisation and copula are drawn (`sample_quantisation`,
        `sample_copula_loadings`); with their probabilities at 0 nothing more is drawn.
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
        quantisation = sample_quantisation(rng, ~categorical, config)
        loadings = sample_copula_loadings(rng, n_features, config)
        return cls(categorical, n_categories, cum_probs, quantisation, loadings)

    def draw(self, rng: np.random.Generator, n_rows: int) -> np.ndarray:
        """Sample ``n_rows`` rows (float64): continuous N(0, 1), categorical integer codes.

        Columns are independent unless the spec has copula ``loadings``; quantised columns (if
        any) are snapped to their grid last.
        """
        cat_cols = np.flatnonzero(self.categorical)
        if self.loadings is None:
            x = rng.standard_normal((n_rows, self.n_features))
            u = rng.random((n_rows, cat_cols.size)) if cat_cols.size else None
        else:
            w = self.loadings
            factors = rng.standard_normal((n_rows, w.shape[1]))
            x = factors @ w.T + rng.standard_normal((n_rows, self.n_features))
            x /= np.sqrt(1.0 + (w**2).sum(axis=1))  # unit-variance margins
            u = ndtr(x[:, cat_cols])  # copula: the categorical codes share the correlation
        for j, (col, cum) in enumerate(zip(cat_cols, self.cum_probs)):
            # Inverse-CDF multinomial draw; min() guards against cum[-1] rounding below 1.
            x[:, col] = np.minimum(np.searchsorted(cum, u[:, j], side="right"), cum.size - 1)
        if self.quantisation is not None:
            self.quantisation.apply(x)
        return x


def add_missing_mcar(rng: np.random.Generator, x: np.ndarray, rate: float) -> np.ndarray:
    """Return a copy of ``x`` with each cell set to NaN independently with probability ``rate``.

    Missing completely at random: applied after the target is computed, so the label depends on
    the true values, as when a real measurement is lost.
    """
    x = x.copy()
    x[rng.random(x.shape) < rate] = np.nan
    return x

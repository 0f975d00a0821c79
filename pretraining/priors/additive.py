"""Additive prior: a linear term, a few smooth univariate terms and a few pairwise interactions.

Covers what the v1 mixture lacks on the smooth side of real tables: low-noise regression targets
that are (nearly) a generalised additive model of the features, and linear class boundaries.
Per table:

1. Features come from the shared generator (`FeatureSpec`) with a lower categorical share
   (``additive_categorical_share``); the quantisation and copula options apply as for every
   generator prior.
2. A *score* is drawn: every column is encoded as a number (numeric columns as they are,
   categorical codes as one N(0, 1) effect per code) and z-scored; then

   ``score = sum_{j in L} w_j z_j + sum_t a_t f_t(z_{j_t}) + sum_s b_s z_{i_s} z_{j_s}``

   with a random share ``U(additive_linear_share)`` of the columns in the linear set L,
   ``U{additive_n_smooth}`` smooth terms ``f_t`` (kinds from ``additive_smooth_kinds``: a
   polynomial of degree 2-3, a sine, a soft step, a hinge, a random linear spline),
   ``U{additive_n_interactions}`` products of two columns, all weights N(0, 1) on z-scored
   terms. The score is z-scored.
3. Noise: Gaussian, std ``log-U(additive_noise)`` relative to the score's std (1e-3 .. 0.5).
4. Regression: the noisy score. Classification: with probability ``additive_softmax_prob`` the
   argmax of k independent noisy scores (a multinomial-logit-like boundary); otherwise the
   noisy score cut into k ordered classes at the values of k-1 random rows (quantile bins).
"""

from __future__ import annotations

import numpy as np

from mitra_sklearn.config import Task

from ..config import PriorConfig
from .base import Prior
from .features import FeatureSpec
from .helpers import log_uniform, rank_bucket, standardise, uniform_int

__all__ = ["AdditivePrior", "SMOOTH_KINDS", "smooth_function"]

SMOOTH_KINDS = ("poly", "sine", "step", "hinge", "spline")


def smooth_function(rng: np.random.Generator, v: np.ndarray, kind: str) -> np.ndarray:
    """A random smooth-ish function of kind ``kind`` applied to ``v`` (z-scored values).

    Parameters
    ----------
    kind : {"poly", "sine", "step", "hinge", "spline"}
        poly: sum of N(0, 1) coefficients times v^1..v^deg, deg 2 or 3; sine: sin(w v + phi),
        w ~ U(0.5, 3); step: tanh((v - t) / s), t ~ N(0, 1), s log-uniform in [0.02, 1] (from
        near-hard to gentle); hinge: max(0, +-(v - t)); spline: linear interpolation of 3-8
        N(0, 1) knot values on [-3, 3], flat outside.

    Raises
    ------
    ValueError
        For an unknown kind.
    """
    if kind == "poly":
        coef = rng.standard_normal(int(rng.integers(2, 4)))
        return np.polyval(np.append(coef[::-1], 0.0), v)
    if kind == "sine":
        return np.sin(rng.uniform(0.5, 3.0) * v + rng.uniform(0.0, 2.0 * np.pi))
    if kind == "step":
        return np.tanh((v - rng.standard_normal()) / log_uniform(rng, (0.02, 1.0)))
    if kind == "hinge":
        return np.maximum(0.0, rng.choice((-1.0, 1.0)) * (v - rng.standard_normal()))
    if kind == "spline":
        n_knots = int(rng.integers(3, 9))
        return np.interp(v, np.linspace(-3.0, 3.0, n_knots), rng.standard_normal(n_knots))
    raise ValueError(f"unknown smooth function kind {kind!r}; choose from {SMOOTH_KINDS}")


class AdditivePrior(Prior):
    """Linear + smooth univariate + pairwise-interaction targets (a random GAM with noise).

    Parameters
    ----------
    config : PriorConfig, optional
        Uses the ``additive_*`` fields, the class settings and the shared feature generator.

    Raises
    ------
    ValueError
        If ``config.additive_smooth_kinds`` is empty or names an unknown kind.
    """

    name = "additive"

    def __init__(self, config: PriorConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        if not c.additive_smooth_kinds or set(c.additive_smooth_kinds) - set(SMOOTH_KINDS):
            raise ValueError(
                f"PriorConfig.additive_smooth_kinds must be a non-empty subset of {SMOOTH_KINDS}, "
                f"got {c.additive_smooth_kinds}"
            )
        self.feature_config = c.replace(categorical_share=c.additive_categorical_share)

    def _generate(self, rng, n_rows, n_features, task, n_classes):
        c = self.config
        spec = FeatureSpec.sample(rng, n_features, self.feature_config)
        x = spec.draw(rng, n_rows)
        noise = log_uniform(rng, c.additive_noise)
        if task is Task.CLASSIFICATION and rng.random() < c.additive_softmax_prob:
            scores = np.column_stack([self.draw_score(rng, x, spec) for _ in range(n_classes)])
            y = (scores + noise * rng.standard_normal(scores.shape)).argmax(axis=1)
            return x, y, spec.categorical
        y = self.draw_score(rng, x, spec) + noise * rng.standard_normal(n_rows)
        if task is Task.CLASSIFICATION:
            y = rank_bucket(rng, y, n_classes)
        return x, y, spec.categorical

    def draw_score(self, rng: np.random.Generator, x: np.ndarray, spec: FeatureSpec) -> np.ndarray:
        """One noise-free, z-scored additive score of the rows ``x`` (drawn from ``spec``)."""
        c = self.config
        n_rows, d = x.shape
        z = x.copy()
        for col in np.flatnonzero(spec.categorical):
            # A categorical column enters through one random effect per code.
            effects = rng.standard_normal(int(spec.n_categories[col]))
            z[:, col] = effects[x[:, col].astype(np.int64)]
        z = standardise(z)

        n_linear = int(round(rng.uniform(*c.additive_linear_share) * d))
        n_smooth = uniform_int(rng, c.additive_n_smooth)
        n_inter = uniform_int(rng, c.additive_n_interactions) if d >= 2 else 0
        if n_linear + n_smooth + n_inter == 0:
            n_linear = 1  # the score must read at least one feature
        linear = rng.choice(d, size=n_linear, replace=False)
        score = z[:, linear] @ rng.standard_normal(n_linear)
        kinds = c.additive_smooth_kinds
        for _ in range(n_smooth):
            col, kind = int(rng.integers(d)), kinds[rng.integers(len(kinds))]
            score += rng.standard_normal() * standardise(smooth_function(rng, z[:, col], kind))
        for _ in range(n_inter):
            i, j = rng.choice(d, size=2, replace=False)
            score += rng.standard_normal() * standardise(z[:, i] * z[:, j])
        return standardise(score)

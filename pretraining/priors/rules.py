"""Rule prior: the target is a small random rule over a few mostly discrete features.

Real tables whose label follows a crisp rule over a few categorical / binary / small-integer
columns (e.g. "class A iff colour = red and size <= 2") are what tree ensembles solve and the
v1 mixture barely contains: its SCM targets are smooth, and its tree priors split continuous
columns of random-label fits. Per table:

1. Features come from the shared generator (`FeatureSpec`) with rule-specific settings: a high
   categorical share (``rules_categorical_share``), many binary columns
   (``rules_categories_geometric_p``) and a share of the numeric columns quantised to a few
   integer-like values (``rules_discrete_share``, ``rules_discrete_levels``). The copula option
   (``feature_copula_prob``) applies as for every generator prior.
2. A few features are chosen (``rules_n_vars``; for classification more are added until the
   table has at least k cells). Each is reduced to a few *levels* (``rules_levels``): a
   categorical column's codes are merged into random groups, a numeric column is cut at
   thresholds taken from the values of random rows.
3. The target is a function of the chosen features' joint level (the *cell*), tabulated over
   all cells (<= 256 with the defaults), one of (``rules_modes``):

   * ``table``: a random lookup table, one class (every class used when cells >= k) or one
     N(0, 1) value per cell;
   * ``list``: a first-match decision list: each rule is a conjunction of 1..``rules_max_literals``
     literals "level of feature f in S" with an output class / value, plus a default output;
     for binary targets this covers DNF boolean formulas;
   * ``score``: additive points, one N(0, 1) value per level of each feature, summed; the
     regression target is the sum, classes are ordered bins of it with edges at observed
     totals (a scorecard).
4. With probability ``rules_noise_prob``: classification labels are replaced by a uniform random
   class at a rate ``U(rules_flip_rate)``; regression targets get Gaussian noise of
   ``U(rules_noise_std)`` times their std.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..config import PriorConfig
from .base import Prior, Task
from .features import FeatureSpec
from .helpers import choose_weighted, cover_classes, uniform_int

__all__ = ["RulesPrior", "RuleTarget", "RULE_MODES"]

RULE_MODES = ("table", "list", "score")


@dataclass(frozen=True)
class RuleTarget:
    """A target that is a lookup over the joint level of a few features.

    Attributes
    ----------
    features : ndarray of int, shape (m,)
        The columns the target reads; it depends on nothing else.
    code_groups : tuple of (ndarray or None)
        Per chosen feature: level of each categorical code, or None for a numeric feature.
    thresholds : tuple of (ndarray or None)
        Per chosen feature: sorted cut points of a numeric feature (level = number of cut
        points below the value), or None for a categorical feature.
    n_levels : ndarray of int, shape (m,)
    values : ndarray, shape (prod(n_levels),)
        Class id (classification) or target value (regression) of every cell.
    mode : str
        One of `RULE_MODES`.
    """

    features: np.ndarray
    code_groups: tuple[np.ndarray | None, ...]
    thresholds: tuple[np.ndarray | None, ...]
    n_levels: np.ndarray
    values: np.ndarray
    mode: str

    def levels(self, x: np.ndarray) -> np.ndarray:
        """Level of every chosen feature in every row, shape (n_rows, m)."""
        out = np.empty((x.shape[0], self.features.size), dtype=np.int64)
        for i, (col, groups, thr) in enumerate(zip(self.features, self.code_groups, self.thresholds)):
            if groups is not None:
                codes = np.clip(x[:, col].astype(np.int64), 0, groups.size - 1)
                out[:, i] = groups[codes]
            else:
                out[:, i] = np.searchsorted(thr, x[:, col], side="left")
        return out

    def cells(self, x: np.ndarray) -> np.ndarray:
        """Cell id of every row (row-major index of its levels)."""
        return np.ravel_multi_index(tuple(self.levels(x).T), tuple(self.n_levels))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The noise-free target of every row of ``x``."""
        return self.values[self.cells(x)]


class RulesPrior(Prior):
    """Random lookup table / decision list / scorecard over a few discrete features.

    Parameters
    ----------
    config : PriorConfig, optional
        Uses the ``rules_*`` fields, the class settings and the shared feature generator.

    Raises
    ------
    ValueError
        If ``config.rules_modes`` names an unknown mode or has no positive weight.
    """

    name = "rules"

    def __init__(self, config: PriorConfig | None = None) -> None:
        super().__init__(config)
        c = self.config
        unknown = sorted({m for m, _ in c.rules_modes} - set(RULE_MODES))
        weights = [w for _, w in c.rules_modes]
        if unknown or min(weights, default=-1.0) < 0 or not any(w > 0 for w in weights):
            raise ValueError(
                f"PriorConfig.rules_modes must give modes of {RULE_MODES} weights >= 0, some > 0; "
                f"got {c.rules_modes}"
            )
        # The shared generator with this prior's feature mix (every table quantises a share).
        self.feature_config = c.replace(
            categorical_share=c.rules_categorical_share,
            categories_geometric_p=c.rules_categories_geometric_p,
            feature_quantize_prob=1.0,
            feature_quantize_share=c.rules_discrete_share,
            feature_quantize_levels=c.rules_discrete_levels,
        )

    def _generate(self, rng, n_rows, n_features, task, n_classes):
        c = self.config
        spec = FeatureSpec.sample(rng, n_features, self.feature_config)
        x = spec.draw(rng, n_rows)
        target = self.draw_target(rng, x, spec, task, n_classes)
        y = target(x)
        if rng.random() < c.rules_noise_prob:
            if task is Task.CLASSIFICATION:
                flip = rng.random(n_rows) < rng.uniform(*c.rules_flip_rate)
                y[flip] = rng.integers(n_classes, size=int(flip.sum()))
            else:
                y = y + rng.uniform(*c.rules_noise_std) * y.std() * rng.standard_normal(n_rows)
        return x, y, spec.categorical

    # ---- the rule ----
    def draw_target(
        self,
        rng: np.random.Generator,
        x: np.ndarray,
        spec: FeatureSpec,
        task: Task,
        n_classes: int,
    ) -> RuleTarget:
        """Draw a noise-free rule over a few columns of ``x`` (rows drawn from ``spec``).

        Parameters
        ----------
        x : ndarray of shape (n_rows, n_features)
            The table's rows; numeric thresholds are values of random rows.
        spec : FeatureSpec
            Which columns are categorical and their category counts.
        task : {"classification", "regression"}
        n_classes : int
            Classes to cover (ignored for regression).
        """
        c = self.config
        n_rows, d = x.shape
        task = Task.parse(task)
        k = n_classes if task is Task.CLASSIFICATION else 1
        n_vars = min(uniform_int(rng, c.rules_n_vars), d)
        features, groups, thresholds, n_levels = [], [], [], []
        for col in rng.permutation(d):
            # Enough features read, and (classification) enough cells for k classes.
            if len(features) >= n_vars and np.prod(n_levels) >= k:
                break
            g = uniform_int(rng, c.rules_levels)
            if spec.categorical[col]:
                n_cat = int(spec.n_categories[col])
                g = min(g, n_cat)
                # Surjective random merge of the codes into g levels.
                groups.append(rng.permutation(np.arange(n_cat) % g))
                thresholds.append(None)
            else:
                # Cut points at observed values, so they lie inside the range of the rows drawn;
                # ties on a discrete column collapse to fewer levels.
                thr = np.unique(x[rng.integers(n_rows, size=g - 1), col])
                g = thr.size + 1
                groups.append(None)
                thresholds.append(thr)
            features.append(int(col))
            n_levels.append(g)
        n_levels = np.asarray(n_levels, dtype=np.int64)
        grid = np.indices(n_levels).reshape(n_levels.size, -1).T  # level tuple of every cell

        mode = choose_weighted(rng, c.rules_modes)
        if mode == "table":
            values = self._outputs(rng, grid.shape[0], task, n_classes)
        elif mode == "list":
            values = self._decision_list(rng, grid, n_levels, task, n_classes)
        else:
            values = self._score(rng, grid, n_levels)
        target = RuleTarget(
            np.asarray(features, dtype=np.int64), tuple(groups), tuple(thresholds), n_levels,
            values, mode,
        )
        if mode == "score" and task is Task.CLASSIFICATION:
            target = self._bin_score(rng, target, x, n_classes)
        return target

    @staticmethod
    def _outputs(rng: np.random.Generator, n: int, task: Task, n_classes: int) -> np.ndarray:
        """``n`` outputs: class ids covering every class when ``n >= k``, or N(0, 1) values."""
        if task is Task.CLASSIFICATION:
            return cover_classes(rng, n, n_classes)
        return rng.standard_normal(n)

    def _decision_list(
        self,
        rng: np.random.Generator,
        grid: np.ndarray,
        n_levels: np.ndarray,
        task: Task,
        n_classes: int,
    ) -> np.ndarray:
        """Output of a random first-match decision list in every cell.

        ``grid`` holds the level tuple of every cell, shape (n_cells, m).
        """
        c = self.config
        n_rules = uniform_int(rng, c.rules_n_rules)
        if task is Task.CLASSIFICATION:
            n_rules = max(n_rules, n_classes - 1)  # one rule per class besides the default
        m = n_levels.size
        fired = np.zeros(grid.shape[0], dtype=bool)
        rule_of_cell = np.full(grid.shape[0], n_rules)  # default output
        for r in range(n_rules):
            match = np.ones(grid.shape[0], dtype=bool)
            for f in rng.choice(m, size=uniform_int(rng, (1, min(c.rules_max_literals, m))),
                                replace=False):
                allowed = rng.random(n_levels[f]) < 0.5
                if allowed.all() or not allowed.any():  # keep the literal non-trivial
                    allowed[rng.integers(n_levels[f])] ^= True
                match &= allowed[grid[:, f]]
            rule_of_cell[match & ~fired] = r
            fired |= match
        return self._outputs(rng, n_rules + 1, task, n_classes)[rule_of_cell]

    @staticmethod
    def _score(rng: np.random.Generator, grid: np.ndarray, n_levels: np.ndarray) -> np.ndarray:
        """Total points of every cell: one N(0, 1) value per level of each feature, summed."""
        total = np.zeros(grid.shape[0])
        for f, g in enumerate(n_levels):
            total += rng.standard_normal(g)[grid[:, f]]
        return total

    @staticmethod
    def _bin_score(
        rng: np.random.Generator, target: RuleTarget, x: np.ndarray, n_classes: int
    ) -> RuleTarget:
        """Turn a score rule into ``k`` ordered classes with edges at observed totals.

        Each edge is the total of some row, so every class is non-empty on ``x`` when there
        are at least k distinct totals.
        """
        distinct = np.unique(target(x))
        n_edges = min(n_classes - 1, distinct.size - 1)
        edges = np.sort(rng.choice(distinct[:-1], size=n_edges, replace=False))
        # Class = number of edges strictly below the total (a total equal to edge i is class i).
        classes = np.searchsorted(edges, target.values, side="left")
        return replace(target, values=classes)

"""Tree-based priors fitted on random labels (Mitra App. A.2.2, Algorithm 2).

Per table: draw a feature distribution (`FeatureSpec`), a base set of B rows with random labels
(classification: multinomial over the classes with Dirichlet(alpha) probabilities;
regression: N(0, 1)), fit a scikit-learn DecisionTree / ExtraTrees / RandomForest / GradientBoosting
classifier or regressor with sampled hyper-parameters, then label fresh rows from the same feature
distribution with the fitted model. Unlike TabForestPFN (regressor + quantile bucketing), Mitra
fits a classifier directly, so the classes are the model's predictions.

Defaults are cheaper than the costs measured in the reference notes (base 1024, up to 32 trees):
base 256-512 rows, <= 16 trees, GB <= 16 stages of depth <= 4 and <= 64 trees in total.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mitra_sklearn.ensemble import MAX_SEED

from .base import Prior, Task
from .features import FeatureSpec
from .helpers import uniform_int

__all__ = [
    "TreePrior",
    "DecisionTreePrior",
    "ExtraTreesPrior",
    "RandomForestPrior",
    "GradientBoostingPrior",
]



class TreePrior(Prior):
    """Base class of the four fitted-tree priors; subclasses only choose the model family."""

    name = "tree"
    require_all_classes = False  # classes = the model's predictions (see module docstring)

    def make_model(self, rng: np.random.Generator, task: Task, n_classes: int):
        """Return an unfitted scikit-learn estimator with sampled hyper-parameters."""
        raise NotImplementedError

    def _common(self, rng: np.random.Generator, n_classes: int) -> dict:
        """Depth / leaf size / max_features / seed shared by DT, ET and RF."""
        c = self.config
        # A depth-t tree has <= 2^t leaves, so ask for enough depth to express every class.
        min_depth = int(np.ceil(np.log2(max(n_classes, 2))))
        return {
            "max_depth": uniform_int(rng, c.tree_max_depth, low=min_depth),
            "min_samples_leaf": uniform_int(rng, c.tree_min_samples_leaf),
            "max_features": c.tree_max_features[rng.integers(len(c.tree_max_features))],
            "random_state": int(rng.integers(MAX_SEED)),
        }

    def _generate(self, rng, n_rows, n_features, task, n_classes):
        c = self.config
        spec = FeatureSpec.sample(rng, n_features, c)
        n_base = uniform_int(rng, c.tree_base_size)
        x_base = spec.draw(rng, n_base)
        if task is Task.CLASSIFICATION:
            probs = rng.dirichlet(np.full(n_classes, c.tree_label_alpha))
            y_base = rng.choice(n_classes, size=n_base, p=probs)
        else:
            y_base = rng.standard_normal(n_base)
        model = self.make_model(rng, task, n_classes)
        x = spec.draw(rng, n_rows)
        if task is Task.CLASSIFICATION and np.unique(y_base).size < 2:
            return x, np.zeros(n_rows, dtype=np.int64), spec.categorical  # base re-draws
        model.fit(x_base, y_base)
        return x, model.predict(x), spec.categorical


class DecisionTreePrior(TreePrior):
    """One decision tree fitted on random labels (Mitra weight 0.1)."""

    name = "dt"

    def make_model(self, rng, task, n_classes):
        cls = DecisionTreeClassifier if task is Task.CLASSIFICATION else DecisionTreeRegressor
        return cls(**self._common(rng, n_classes))


class ExtraTreesPrior(TreePrior):
    """Extremely randomised trees fitted on random labels (Mitra weight 0.1)."""

    name = "et"

    def make_model(self, rng, task, n_classes):
        cls = ExtraTreesClassifier if task is Task.CLASSIFICATION else ExtraTreesRegressor
        n_estimators = uniform_int(rng, self.config.forest_n_estimators)
        return cls(n_estimators=n_estimators, **self._common(rng, n_classes))


class RandomForestPrior(TreePrior):
    """Random forest (bootstrap) fitted on random labels (Mitra weight 0.1)."""

    name = "rf"

    def make_model(self, rng, task, n_classes):
        cls = RandomForestClassifier if task is Task.CLASSIFICATION else RandomForestRegressor
        n_estimators = uniform_int(rng, self.config.forest_n_estimators)
        return cls(n_estimators=n_estimators, **self._common(rng, n_classes))


class GradientBoostingPrior(TreePrior):
    """Gradient-boosted trees fitted on random labels (Mitra weight 0.1)."""

    name = "gb"

    def make_model(self, rng, task, n_classes):
        c = self.config
        # Multiclass GB fits one tree per class per stage: cap the total to bound the cost.
        trees_per_stage = n_classes if (task is Task.CLASSIFICATION and n_classes > 2) else 1
        n_estimators = min(
            uniform_int(rng, c.gb_n_estimators), max(1, c.gb_max_total_trees // trees_per_stage)
        )
        lr = float(np.exp(rng.uniform(*np.log(c.gb_learning_rate))))
        kwargs = dict(
            n_estimators=n_estimators,
            max_depth=uniform_int(rng, c.gb_max_depth),
            learning_rate=lr,
            min_samples_leaf=uniform_int(rng, c.tree_min_samples_leaf),
            random_state=int(rng.integers(MAX_SEED)),
        )
        if task is Task.CLASSIFICATION:
            return GradientBoostingClassifier(**kwargs)
        return GradientBoostingRegressor(**kwargs)

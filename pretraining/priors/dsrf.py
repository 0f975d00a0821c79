"""Directly Sampled Random Forest prior (Mitra App. A.2.2, Algorithms 3-5).

No model is fitted: a random forest is sampled and applied to rows from the shared feature
generator.

* Each node picks a split feature uniformly and a threshold uniformly inside the interval that
  is still open for that feature on the path to the node (the root interval is
  ``dsrf_thres_interval`` for continuous N(0, 1) columns). A split at ``thr`` narrows the
  feature's interval to ``[lo, thr]`` for the left child and ``[thr, hi]`` for the right child,
  so every threshold lies inside the region that actually reaches the node.
* Categorical columns hold integer codes ``0..K-1``, which a [-3, 3] interval would cover badly
  (every code >= 3 would be unreachable). Their root interval is ``[-0.5, K - 0.5]`` instead, so
  each threshold separates codes.
* A node at depth t is internal if ``t < d_min``, or if ``t < d_max`` and ``U >= p_nc``.
* Leaves, classification: a forest-wide counter starts at a random class and each new leaf, in
  depth-first order, gets ``counter mod n_classes`` (round robin). Regression: ``N(mu, sigma)``.
* Rows go left when ``x[feature] <= thr``; the label is the majority vote over trees (ties broken
  at random) or the mean of the leaf values.

Trees are grown level by level and rows are routed level by level, vectorised with numpy over
all nodes of a level and all (tree, row) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mitra_sklearn.config import Task

from .base import Prior
from .features import FeatureSpec
from .helpers import uniform_int

__all__ = ["DSRFPrior", "RandomForestArrays", "sample_forest", "apply_forest"]


@dataclass(frozen=True)
class RandomForestArrays:
    """A forest as flat node arrays (the first ``n_trees`` nodes are the roots).

    ``left``/``right`` are -1 at leaves; ``leaf_order`` lists leaf node ids in (tree, depth-first)
    order, the order in which Algorithm 3 would create them.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_order: np.ndarray
    n_trees: int
    max_depth: int

    @property
    def is_leaf(self) -> np.ndarray:
        return self.left < 0


def sample_forest(
    rng: np.random.Generator,
    n_trees: int,
    low: np.ndarray,
    high: np.ndarray,
    d_min: int,
    d_max: int,
    p_nc: float,
) -> RandomForestArrays:
    """Grow ``n_trees`` random trees level by level.

    Parameters
    ----------
    low, high : ndarray of shape (n_features,)
        Root threshold interval of each feature.
    d_min, d_max : int
        Nodes above depth ``d_min`` always split; nodes at depth ``d_max`` never split.
    p_nc : float
        Probability that a node with ``d_min <= depth < d_max`` becomes a leaf.
    """
    d = low.shape[0]
    ids = np.arange(n_trees)
    lo = np.tile(low, (n_trees, 1))
    hi = np.tile(high, (n_trees, 1))
    tree = ids.copy()
    # Position and width of each node's slot in [0, 1): sorting leaves by it gives DFS order.
    pos, width = np.zeros(n_trees), 1.0
    next_id = n_trees
    feature, threshold, left, right = [], [], [], []
    leaf_ids, leaf_key = [], []
    depth = 0
    while ids.size:
        m = ids.size
        split = (depth < d_min) | ((depth < d_max) & (rng.random(m) >= p_nc))
        f = rng.integers(d, size=m)
        rows = np.arange(m)
        thr = rng.uniform(lo[rows, f], hi[rows, f])
        n_split = int(split.sum())
        child = np.full(m, -1)
        child[split] = next_id + 2 * np.arange(n_split)
        feature.append(np.where(split, f, 0))
        threshold.append(np.where(split, thr, 0.0))
        left.append(child)
        right.append(np.where(split, child + 1, -1))
        leaf_ids.append(ids[~split])
        leaf_key.append(tree[~split] + pos[~split])  # tree index + DFS position in [0, 1)

        # Children, interleaved (left, right) to match the ids assigned above.
        s_rows, s_f, s_thr = rows[split], f[split], thr[split]
        lo_c = np.repeat(lo[s_rows], 2, axis=0)
        hi_c = np.repeat(hi[s_rows], 2, axis=0)
        hi_c[2 * np.arange(n_split), s_f] = s_thr  # left child: x <= thr
        lo_c[2 * np.arange(n_split) + 1, s_f] = s_thr  # right child: x > thr
        width /= 2.0
        pos = np.repeat(pos[split], 2) + np.tile([0.0, width], n_split)
        tree = np.repeat(tree[split], 2)
        lo, hi = lo_c, hi_c
        ids = next_id + np.arange(2 * n_split)
        next_id += 2 * n_split
        depth += 1

    leaf_ids = np.concatenate(leaf_ids)
    order = leaf_ids[np.argsort(np.concatenate(leaf_key), kind="stable")]
    return RandomForestArrays(
        feature=np.concatenate(feature),
        threshold=np.concatenate(threshold),
        left=np.concatenate(left),
        right=np.concatenate(right),
        leaf_order=order,
        n_trees=n_trees,
        max_depth=depth,
    )


def apply_forest(forest: RandomForestArrays, x: np.ndarray) -> np.ndarray:
    """Return the leaf node id reached by every row in every tree, shape (n_trees, n_rows)."""
    n = x.shape[0]
    rows = np.arange(n)[None, :]
    node = np.broadcast_to(np.arange(forest.n_trees)[:, None], (forest.n_trees, n)).copy()
    for _ in range(forest.max_depth):
        inner = forest.left[node] >= 0
        if not inner.any():
            break
        go_left = x[rows, forest.feature[node]] <= forest.threshold[node]
        child = np.where(go_left, forest.left[node], forest.right[node])
        node = np.where(inner, child, node)
    return node


class DSRFPrior(Prior):
    """Directly sampled random forest prior (Mitra weight 0.1).

    Per table ``N_e``, ``d_min``, ``d_max`` and ``p_nc`` are drawn uniformly from the
    ``dsrf_*`` ranges of the config. For classification ``d_min`` is raised to
    ``ceil(log2(n_classes))`` (capped at ``d_max``) so that a tree has room for every class.
    """

    name = "dsrf"

    def _generate(self, rng, n_rows, n_features, task, n_classes):
        c = self.config
        spec = FeatureSpec.sample(rng, n_features, c)
        x = spec.draw(rng, n_rows)

        low = np.full(n_features, float(c.dsrf_thres_interval[0]))
        high = np.full(n_features, float(c.dsrf_thres_interval[1]))
        low[spec.categorical] = -0.5
        high[spec.categorical] = spec.n_categories[spec.categorical] - 0.5

        n_trees = uniform_int(rng, c.dsrf_n_trees)
        d_min = uniform_int(rng, c.dsrf_min_depth)
        lo, hi = (max(v, d_min) for v in c.dsrf_max_depth)  # d_max >= d_min
        d_max = uniform_int(rng, (lo, hi))
        if task is Task.CLASSIFICATION:
            d_min = min(max(d_min, int(np.ceil(np.log2(n_classes)))), d_max)
        p_nc = float(rng.uniform(*c.dsrf_p_nc))
        forest = sample_forest(rng, n_trees, low, high, d_min, d_max, p_nc)

        value = np.zeros(forest.left.shape[0])
        if task is Task.CLASSIFICATION:
            start = int(rng.integers(n_classes))  # round-robin leaf classes from a random start
            value[forest.leaf_order] = (start + np.arange(forest.leaf_order.size)) % n_classes
        else:
            value[forest.leaf_order] = rng.normal(
                c.dsrf_leaf_mu, c.dsrf_leaf_sigma, size=forest.leaf_order.size
            )
        leaf_values = value[apply_forest(forest, x)]  # (n_trees, n_rows)

        if task is Task.REGRESSION:
            return x, leaf_values.mean(axis=0), spec.categorical
        votes = leaf_values.astype(np.int64) + n_classes * np.arange(n_rows)[None, :]
        counts = np.bincount(votes.ravel(), minlength=n_rows * n_classes).reshape(n_rows, n_classes)
        # Random tie-break: the jitter (< 1) never overturns a strict majority.
        y = (counts + 0.5 * rng.random(counts.shape)).argmax(axis=1)
        return x, y, spec.categorical

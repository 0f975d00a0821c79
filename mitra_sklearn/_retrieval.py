"""Local support sets for large training sets (``support_selection="nearest"``).

When the training set has more rows than one forward pass reads, the default draws a random
subsample per ensemble member. The alternative here reads, for every query row, training rows
near it, in the spirit of TabDPT and LoCalPFN. A support pass per query row would be too slow,
so the neighbourhoods are fixed at fit time: the training rows are clustered (k-means on
standardised features, about two clusters per ``max_support_rows`` rows), and each cluster's
support set is the ``max_support_rows`` training rows nearest its centre. A query row reads
the support set of its nearest centre.

Which support set a row gets depends only on the row and the fitted index, never on the other
rows of the same ``predict`` call, so predictions stay row-wise independent (as scikit-learn
expects) and reproducible from ``random_state``.

Cost: a support pass grows with the square of its rows (they attend to each other), and a
predict call runs one per neighbourhood its rows fall in and per member, against one per member
for random subsamples. With ``support_cache="fit"`` every neighbourhood's support set is encoded
once in ``fit``, and predict then costs per query row what a cached random subsample costs.
`mitra_sklearn._inference.cpu_time_warning` is what the estimators say when a call is estimated to take long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors

__all__ = ["LocalSupportIndex", "Neighbourhood", "build_local_support"]

# Clusters per max_support_rows training rows: each support ball then holds about twice the
# rows of its own cluster, so a query near a cluster's edge still has neighbours on both sides.
_CLUSTERS_PER_SUPPORT = 2


class Neighbourhood(tuple):
    """The query rows of one centre and its training rows: unpacks as that pair; ``cluster`` is
    the centre's index (what a support set encoded in fit is kept under)."""

    cluster: int

    def __new__(cls, query_rows: np.ndarray, support_rows: np.ndarray, cluster: int) -> Neighbourhood:
        pair = super().__new__(cls, (query_rows, support_rows))
        pair.cluster = int(cluster)
        return pair


@dataclass
class LocalSupportIndex:
    """Fitted neighbourhoods: cluster centres and each centre's support rows.

    Attributes
    ----------
    mean, std : ndarray of shape (n_features,)
        Standardisation of the training features (std 1 for constant columns).
    centres : ndarray of shape (n_clusters, n_features)
        Cluster centres in standardised units.
    support_rows : ndarray of shape (n_clusters, max_support_rows)
        Sorted training-row indices of each centre's support set.
    """

    mean: np.ndarray
    std: np.ndarray
    centres: np.ndarray
    support_rows: np.ndarray

    def assign(self, X_query: np.ndarray) -> list[Neighbourhood]:
        """Pairs (query rows, training rows), one per centre in use, covering every query row once."""
        query_z = (X_query - self.mean) / self.std
        # Squared distances to every centre; n_clusters is small (2 per max_support_rows rows).
        distances = (
            (query_z**2).sum(axis=1, keepdims=True) - 2 * query_z @ self.centres.T + (self.centres**2).sum(axis=1)
        )
        nearest = np.argmin(distances, axis=1)
        return [Neighbourhood(np.flatnonzero(nearest == c), self.support_rows[c], c) for c in np.unique(nearest)]

    def everywhere(self) -> list[Neighbourhood]:
        """Every neighbourhood with no query rows: the support passes of encoding them all (in fit)."""
        return [Neighbourhood(np.empty(0, dtype=np.int64), rows, c) for c, rows in enumerate(self.support_rows)]


def build_local_support(X_train: np.ndarray, max_support_rows: int, seed: int) -> LocalSupportIndex | None:
    """Cluster the training rows and pick each cluster's support set; None when all rows fit.

    Parameters
    ----------
    X_train : ndarray of shape (n_samples, n_features)
        Encoded training table (no NaN).
    max_support_rows : int
        Training rows per support set.
    seed : int
        Seed of the clustering.
    """
    n_train = len(X_train)
    if n_train <= max_support_rows:
        return None
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    train_z = (X_train - mean) / std
    n_clusters = min(n_train, int(np.ceil(_CLUSTERS_PER_SUPPORT * n_train / max_support_rows)))
    kmeans = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3).fit(train_z)
    centres = kmeans.cluster_centers_
    _, indices = NearestNeighbors().fit(train_z).kneighbors(centres, n_neighbors=max_support_rows)
    support_rows = np.sort(indices, axis=1).astype(np.int64)
    return LocalSupportIndex(mean=mean, std=std, centres=centres, support_rows=support_rows)

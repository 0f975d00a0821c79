"""Local support sets for large training sets (``support_selection="nearest"``).

When the training set has more rows than one forward pass can read, the default draws a random
subsample per ensemble member. The alternative here gives each group of similar query rows the
training rows nearest to them, as TabDPT and LoCalPFN do for single query rows: queries are
clustered (k-means on standardised features), and each cluster gets the union of its members'
nearest training rows, topped up with the rows nearest to the cluster centre, up to
``max_support_rows``. A cluster costs one support pass, so queries are grouped, not handled one
by one.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors

__all__ = ["local_support_sets"]


def local_support_sets(
    X_train: np.ndarray,
    X_query: np.ndarray,
    max_support_rows: int,
    chunk_rows: int,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (query rows, training rows) that cover every query row once.

    Parameters
    ----------
    X_train, X_query : ndarray
        Encoded training and query tables (same columns).
    max_support_rows : int
        Training rows per support set.
    chunk_rows : int
        Most query rows per group.
    seed : int, default=0
        Seed of the clustering.
    """
    n_train = len(X_train)
    if n_train <= max_support_rows:
        return [(np.arange(len(X_query)), np.arange(n_train))]
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    train_z = (X_train - mean) / std
    query_z = (X_query - mean) / std
    groups = _query_groups(query_z, chunk_rows, seed)
    neighbours = NearestNeighbors().fit(train_z)
    pairs = []
    for rows in groups:
        per_query = max(1, int(np.ceil(max_support_rows / len(rows))))
        distances, indices = neighbours.kneighbors(query_z[rows], n_neighbors=min(per_query, n_train))
        # Every query's 1st neighbour first, then every 2nd neighbour, ... (closest first within a
        # rank), each training row once: no query loses its nearest rows to a denser region.
        ranks = np.broadcast_to(np.arange(indices.shape[1]), indices.shape)
        order = np.lexsort((distances.ravel(), ranks.ravel()))
        flat = indices.ravel()[order]
        _, first = np.unique(flat, return_index=True)
        chosen = flat[np.sort(first)][:max_support_rows]
        if len(chosen) < max_support_rows:
            centre = query_z[rows].mean(axis=0, keepdims=True)
            _, extra = neighbours.kneighbors(centre, n_neighbors=min(n_train, 2 * max_support_rows))
            extra = extra[0][~np.isin(extra[0], chosen)]
            chosen = np.concatenate([chosen, extra[: max_support_rows - len(chosen)]])
        pairs.append((rows, np.sort(chosen)))
    return pairs


def _query_groups(query_z: np.ndarray, chunk_rows: int, seed: int) -> list[np.ndarray]:
    """Clusters of similar query rows, none larger than ``chunk_rows``."""
    n_query = len(query_z)
    n_clusters = int(np.ceil(n_query / chunk_rows))
    if n_clusters <= 1:
        return [np.arange(n_query)]
    labels = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3).fit_predict(query_z)
    groups = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        groups.extend(np.array_split(rows, int(np.ceil(len(rows) / chunk_rows))))
    return groups

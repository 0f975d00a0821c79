"""A torch stream of padded batches of synthetic support/query tables for pretraining.

Per table (Mitra §3.3 and the AutoGluon preprocessing the released model expects):

1. draw the sizes (support rows, query rows, features, class count) from the `PriorConfig`;
2. generate a table with the prior (default: the Mitra mixture);
3. split its rows at random into support and query; if a class is missing from the support set,
   re-split (up to 3 times) and otherwise drop the table and draw another one;
4. permute the feature columns at random and give the table's classes random head ids:
   ``PriorConfig.class_ids="random_subset"`` draws k distinct ids of ``0..max_classes-1`` (every
   id of the head is trained), ``"first"`` permutes ``0..k-1``;
5. replace missing values with the support column mean (the model must never see NaN);
6. regression: min-max scale the target with the support min/max (support targets in [0, 1]);
   tables with a constant support target are dropped.

Seeding: batch ``i`` of rank ``r`` (``world_size`` ranks) has the global index
``g = i * world_size + r`` and is generated from ``np.random.default_rng([seed, g])`` alone. So a
batch depends only on (seed, rank, batch index), ranks never share a batch, and the union over
ranks is the same data whatever the number of ranks. DataLoader workers split a rank's batches
round-robin (worker w of k makes local batches w, w + k, ...), which is exactly the order in
which `DataLoader` hands them out, so the output does not depend on ``num_workers`` either.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mitra_sklearn.tasks import IGNORE_INDEX, TargetScaling

from .config import PriorConfig
from .priors import Mixture, Prior, PriorGenerationError, Table, get_prior, sample_n_classes
from .priors.base import Task

__all__ = ["SyntheticTableStream", "IGNORE_INDEX", "split_support_query"]

_SPLIT_TRIES = 3  # re-splits of one table before it is dropped
_TABLE_TRIES = 50  # tables drawn for one batch slot before giving up


def split_support_query(
    rng: np.random.Generator,
    y: np.ndarray,
    n_support: int,
    task: Task,
    n_classes: int,
    tries: int = _SPLIT_TRIES,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Shuffle a table's rows into support and query until every class is in the support set.

    The one owner of this split: the pretraining stream and the generalizability tables both
    call it. Each try costs exactly one ``rng.permutation(len(y))``; regression accepts the
    first one. Pretraining runs resume on that determinism, so do not add rng calls here.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the permutations (advanced by one permutation per try).
    y : ndarray of shape (n_rows,)
        Targets: class codes ``0..n_classes-1`` (classification) or floats (regression).
    n_support : int
        Rows of the support set (``1 <= n_support <= n_rows``); the rest is the query set.
    task : {"classification", "regression"}
    n_classes : int
        Classes of the table (ignored for regression).
    tries : int, default=3
        Permutations tried before giving up.

    Returns
    -------
    (support, query) : tuple of ndarray of int, or None
        Row positions of the two sets, in shuffled order; None when no try put every class in
        the support set (the caller drops the table).

    Raises
    ------
    ValueError
        Unknown task, ``n_support`` outside ``1..n_rows`` or ``tries < 1``.
    """
    task = Task.parse(task)
    n_rows = len(y)
    if not 1 <= n_support <= n_rows:
        raise ValueError(f"need 1 <= n_support <= n_rows, got n_support={n_support}, n_rows={n_rows}")
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    for _ in range(tries):
        rows = rng.permutation(n_rows)
        support, query = rows[:n_support], rows[n_support:]
        if task is Task.REGRESSION or np.unique(y[support]).size == n_classes:
            return support, query
    return None


class SyntheticTableStream(IterableDataset):
    """Endless (or ``num_batches``-long) stream of synthetic training batches.

    Parameters
    ----------
    task : {"classification", "regression"}
        One task per stream (Mitra trains separate classifier and regressor checkpoints).
    batch_size : int
        Tables per batch.
    config : PriorConfig, optional
        Size ranges and generator settings; defaults to ``PriorConfig()``.
    prior : Prior or str, optional
        Generator; a registry name (``"scm"``) or mixture spec (``"scm=0.5,et=0.5"``) is also
        accepted. Defaults to ``Mixture(config.mixture)``.
    seed : int, default=0
        Base seed of the whole stream.
    rank, world_size : int, optional
        DDP position; default to ``torch.distributed`` when initialised, else 0 and 1.
    same_shape_per_batch : bool, default=True
        Draw one (support, query, features) shape per batch so nothing is padded (the Mitra
        model's SDPA path does not mask padding). If False every table draws its own shape and
        the batch is padded to the largest one.
    num_batches : int, optional
        Batches per rank; None streams forever.
    start_batch : int, default=0
        First local batch index, to resume after a checkpoint without replaying data.

    Notes
    -----
    Each yielded batch is a dict:

    ==========================  ==========  ==============================================
    key                         shape       content
    ==========================  ==========  ==============================================
    ``x_support``               [B, S, F]   float32, padded with 0
    ``y_support``               [B, S]      int64 class ids (pad -100) / float32 in [0, 1] (pad 0)
    ``x_query``                 [B, Q, F]   float32, padded with 0
    ``y_query``                 [B, Q]      as ``y_support``; regression scaled with support min/max
    ``padding_features``        [B, F]      bool, True = padded column
    ``padding_obs_support``     [B, S]      bool, True = padded row
    ``padding_obs_query``       [B, Q]      bool, True = padded row
    ``n_classes``               [B]         int64, classes in the table (0 for regression)
    ``classes_used``            [B, K]      bool, head ids the table's classes use (K = max_classes;
                                            K = 0 for regression)
    ``prior``                   list[str]   name of the prior of each table
    ==========================  ==========  ==============================================

    Use it with ``DataLoader(stream, batch_size=None, num_workers=k)``.
    """

    def __init__(
        self,
        task: Task,
        batch_size: int,
        config: PriorConfig | None = None,
        *,
        prior: Prior | str | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        same_shape_per_batch: bool = True,
        num_batches: int | None = None,
        start_batch: int = 0,
    ) -> None:
        super().__init__()
        task = Task.parse(task)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.task = task
        self.batch_size = int(batch_size)
        self.config = config if config is not None else PriorConfig()
        if prior is None:
            prior = Mixture(config=self.config)
        elif isinstance(prior, str):
            prior = get_prior(prior, self.config)
        self.prior = prior
        self.seed = int(seed)
        if rank is None or world_size is None:
            dist = torch.distributed
            initialised = dist.is_available() and dist.is_initialized()
            rank = rank if rank is not None else (dist.get_rank() if initialised else 0)
            world_size = world_size if world_size is not None else (
                dist.get_world_size() if initialised else 1
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {rank=}, {world_size=}")
        self.rank, self.world_size = int(rank), int(world_size)
        self.same_shape_per_batch = bool(same_shape_per_batch)
        self.num_batches = num_batches
        self.start_batch = int(start_batch)

    # ---- iteration ----
    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        index = self.start_batch + worker
        while self.num_batches is None or index < self.num_batches:
            yield self.make_batch(index)
            index += n_workers

    def make_batch(self, batch_index: int) -> dict[str, Any]:
        """Build this rank's batch number ``batch_index`` (deterministic, see module docstring)."""
        global_index = batch_index * self.world_size + self.rank
        rng = np.random.default_rng([self.seed, global_index])
        shape = self._draw_shape(rng) if self.same_shape_per_batch else None
        tables = [
            self._make_table(rng, shape or self._draw_shape(rng)) for _ in range(self.batch_size)
        ]
        return self._collate(tables)

    # ---- one table ----
    def _draw_shape(self, rng: np.random.Generator) -> tuple[int, int, int]:
        c = self.config
        low, high = c.n_support
        if c.support_size_sampling == "log_uniform":  # as many 32-64 row tables as 512-1024 row ones
            n_support = min(high, int(np.exp(rng.uniform(np.log(low), np.log(high + 1)))))
        else:
            n_support = int(rng.integers(low, high + 1))
        return (
            n_support,
            int(rng.integers(c.n_query[0], c.n_query[1] + 1)),
            int(rng.integers(c.n_features[0], c.n_features[1] + 1)),
        )

    def _make_table(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> dict[str, Any]:
        n_support, n_query, n_features = shape
        for _ in range(_TABLE_TRIES):
            n_classes = None
            if self.task is Task.CLASSIFICATION:
                n_classes = min(sample_n_classes(rng, self.config), n_support)
            try:
                table = self.prior.sample(
                    rng, n_support + n_query, n_features, self.task, n_classes
                )
            except PriorGenerationError:
                continue
            prepared = self._prepare(rng, table, n_support)
            if prepared is not None:
                return prepared
        raise RuntimeError(
            f"no usable {self.task} table of shape {shape} after {_TABLE_TRIES} draws"
        )

    def _prepare(
        self, rng: np.random.Generator, table: Table, n_support: int
    ) -> dict[str, Any] | None:
        """Split, permute, impute and scale one table; None if it is degenerate."""
        y = table.y
        rows = split_support_query(rng, y, n_support, table.task, table.n_classes)
        if rows is None:
            return None  # a class never made it into the support set
        sup, qry = rows

        cols = rng.permutation(table.n_features)
        x = table.x[:, cols]
        xs, xq = x[sup], x[qry]
        if np.isnan(x).any():
            # Support column means; an all-missing support column becomes 0.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
                mean = np.nan_to_num(np.nanmean(xs, axis=0), nan=0.0)
            xs = np.where(np.isnan(xs), mean, xs)
            xq = np.where(np.isnan(xq), mean, xq)

        if table.task is Task.CLASSIFICATION:
            if self.config.class_ids == "random_subset":
                relabel = rng.choice(self.config.max_classes, table.n_classes, replace=False)
            else:
                relabel = rng.permutation(table.n_classes)
            ys, yq = relabel[y[sup]], relabel[y[qry]]
        else:
            # Plain min-max (the official rule; no outlier clipping in pretraining).
            scaling = TargetScaling(float(y[sup].min()), float(y[sup].max()))
            if not scaling.high - scaling.low > 1e-6 * max(1.0, abs(scaling.low), abs(scaling.high)):
                return None  # constant support target
            ys, yq = scaling.scale(y[sup]).astype(np.float32), scaling.scale(y[qry]).astype(np.float32)
        return {
            "x_support": xs.astype(np.float32, copy=False),
            "y_support": ys,
            "x_query": xq.astype(np.float32, copy=False),
            "y_query": yq,
            "n_classes": table.n_classes,
            "class_ids": relabel if table.task is Task.CLASSIFICATION else None,
            "prior": table.prior,
        }

    # ---- batching ----
    def _collate(self, tables: list[dict[str, Any]]) -> dict[str, Any]:
        """Pad tables to the largest shape in the batch and build the masks."""
        b = len(tables)
        s = max(t["x_support"].shape[0] for t in tables)
        q = max(t["x_query"].shape[0] for t in tables)
        f = max(t["x_support"].shape[1] for t in tables)
        classification = self.task is Task.CLASSIFICATION
        y_dtype, y_pad = (np.int64, IGNORE_INDEX) if classification else (np.float32, 0.0)

        out = {
            "x_support": np.zeros((b, s, f), np.float32),
            "y_support": np.full((b, s), y_pad, y_dtype),
            "x_query": np.zeros((b, q, f), np.float32),
            "y_query": np.full((b, q), y_pad, y_dtype),
            "padding_features": np.ones((b, f), bool),
            "padding_obs_support": np.ones((b, s), bool),
            "padding_obs_query": np.ones((b, q), bool),
            "n_classes": np.array([t["n_classes"] for t in tables], np.int64),
            "classes_used": np.zeros((b, self.config.max_classes if classification else 0), bool),
        }
        for i, t in enumerate(tables):
            ns, nf = t["x_support"].shape
            nq = t["x_query"].shape[0]
            out["x_support"][i, :ns, :nf] = t["x_support"]
            out["y_support"][i, :ns] = t["y_support"]
            out["x_query"][i, :nq, :nf] = t["x_query"]
            out["y_query"][i, :nq] = t["y_query"]
            out["padding_features"][i, :nf] = False
            out["padding_obs_support"][i, :ns] = False
            out["padding_obs_query"][i, :nq] = False
            if classification:
                out["classes_used"][i, t["class_ids"]] = True
        batch: dict[str, Any] = {k: torch.from_numpy(v) for k, v in out.items()}
        batch["prior"] = [t["prior"] for t in tables]
        return batch

"""The synthetic evaluation tables of G: the same tables for every model (seeded per prior and index)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..config import PriorConfig
from ..data import split_support_query
from ..evaluate.metrics import Task
from ..priors import PriorGenerationError, get_prior

_SPLIT_TRIES = 10  # re-shuffles so the support set holds every class of the table
_TABLE_TRIES = 10  # re-draws of a table that fails to generate or to split


@dataclass(frozen=True)
class EvalTable:
    """One synthetic evaluation task: a support set and a query set.

    Attributes
    ----------
    prior : str
        Prior that generated it.
    index : int
        Table number within its prior.
    x_support, y_support, x_query, y_query : ndarray
        Features (float32, categorical columns as integer codes) and targets (int64 class codes
        ``0..n_classes-1`` or float32).
    n_classes : int
        Classes of the table (0 for regression). Every query class is in the support set.
    """

    prior: str
    index: int
    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    n_classes: int


def _table_seed(seed: int, prior: str, index: int, attempt: int) -> list[int]:
    # crc32 (not hash()) so the tables are the same in every process and Python version.
    return [seed, zlib.crc32(prior.encode()), index, attempt]


def _draw(rng: np.random.Generator, value: int | tuple[int, int] | None, default: tuple[int, int]) -> int:
    if value is None:
        value = default
    if isinstance(value, (tuple, list)):
        return int(rng.integers(value[0], value[1] + 1))
    return int(value)


def make_eval_tables(
    prior: str,
    *,
    n_tables: int = 100,
    n_support: int = 800,
    n_query: int = 200,
    n_features: int | tuple[int, int] | None = None,
    n_classes: int | tuple[int, int] | None = None,
    task: Task | str = Task.CLASSIFICATION,
    seed: int = 0,
    config: PriorConfig | None = None,
) -> list[EvalTable]:
    """Draw the evaluation tables of one prior (deterministic in ``seed`` and the prior name).

    Parameters
    ----------
    prior : str
        Registry name (``"scm"``, ``"et"``, ...) or mixture spec (``"scm=0.5,et=0.5"``).
    n_tables : int, default=100
    n_support, n_query : int, default=800, 200
        Rows of each table's support and query sets.
    n_features : int, (low, high) or None
        Feature count, fixed or drawn uniformly per table; None draws from ``config.n_features``.
    n_classes : int, (low, high) or None
        Class count (classification), fixed or uniform; None lets the prior draw it
        (``config.binary_prob`` / ``max_classes``), as during pretraining.
    task : {"classification", "regression"}, default="classification"
    seed : int, default=0
    config : PriorConfig, optional
        Generator settings; default ``PriorConfig()``.

    Returns
    -------
    list of EvalTable
    """
    config = config if config is not None else PriorConfig()
    generator = get_prior(prior, config)
    tables = []
    for index in range(n_tables):
        for attempt in range(_TABLE_TRIES):
            rng = np.random.default_rng(_table_seed(seed, prior, index, attempt))
            d = _draw(rng, n_features, config.n_features)
            k = None if task is Task.REGRESSION or n_classes is None else min(_draw(rng, n_classes, (2, 2)), n_support)
            try:
                table = generator.sample(rng, n_support + n_query, d, task, k)
            except PriorGenerationError:
                continue
            rows = split_support_query(rng, table.y, n_support, task, table.n_classes, tries=_SPLIT_TRIES)
            if rows is None:
                continue  # a class never made it into the support set: draw another table
            support, query = rows
            if task is Task.REGRESSION and np.ptp(table.y[support]) == 0:
                continue  # a constant support target says nothing about a model
            tables.append(EvalTable(prior, index, table.x[support], table.y[support], table.x[query],
                                    table.y[query], table.n_classes))
            break
        else:
            raise RuntimeError(f"prior {prior!r}: no usable {task} table #{index} in {_TABLE_TRIES} draws")
    return tables



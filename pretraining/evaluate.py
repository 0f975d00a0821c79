"""Real-data evaluation of Mitra checkpoints next to classic baselines (library and CLI).

Protocol (``docs/evaluation.md`` explains the choices):

* every dataset gets ``n_repeats`` random splits, stratified for classification, with
  ``test_size`` of the rows held out; the training part is then subsampled (stratified) to at
  most ``max_train_rows`` rows and the test part to ``max_test_rows``. The splits depend only on
  (dataset name, row count, class labels, seed, repeat, split arguments), so Mitra, its
  ablations and every baseline see exactly the same rows; each result row carries a ``split_id`` hash to check it;
* metrics: ROC-AUC (binary, or one-vs-rest macro over the classes present in the test part),
  accuracy and log-loss for classification; RMSE of targets standardised with the training
  part's mean and standard deviation, and R2, for regression; fit and predict seconds;
* summaries: the mean of each metric over datasets (each dataset first averaged over its
  repeats) and the average rank of each method across datasets (rank 1 = best AUC / lowest
  RMSE).

Library:

* `quick_validation` -- a few-second check on the scikit-learn suite, for the pretraining loop;
* `evaluate_checkpoint` -- Mitra on a suite; `evaluate_baselines` -- the baselines on the same
  splits; `summarize`, `per_dataset_table`, `plot_results` -- tables and a figure.

CLI::

    python -m pretraining.evaluate --classifier runs/mix/final --regressor runs/mix-reg/final \\
        --suite benchmark --ablation scm=runs/scm/final --ablation trees=runs/trees/final \\
        --n-estimators 1 8 --fine-tune both --out docs/results

writes ``results.csv`` (one row per dataset, split and method), ``results.md`` (the tables to
paste into the docs) and ``results.png`` (needs matplotlib), and prints the markdown.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from .realdata import Dataset, load_suite, markdown_table

__all__ = [
    "Split",
    "make_splits",
    "roc_auc",
    "classification_metrics",
    "regression_metrics",
    "baseline_factories",
    "evaluate_checkpoint",
    "evaluate_baselines",
    "quick_validation",
    "summarize",
    "per_dataset_table",
    "plot_results",
    "checkpoint_task",
    "markdown_report",
    "main",
    "run",
]

Task = Literal["classification", "regression"]
PRIMARY_METRIC = {"classification": "roc_auc", "regression": "rmse"}
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "log_loss": False, "rmse": False, "r2": True}
_PROBA_EPS = 1e-7


# ============================================================================ splits
@dataclass(frozen=True)
class Split:
    """Row indices of one train/test split of a dataset.

    Attributes
    ----------
    repeat : int
        Repeat number (0-based).
    train, test : ndarray of int
        Row positions in the dataset.
    """

    repeat: int
    train: np.ndarray
    test: np.ndarray

    @property
    def split_id(self) -> str:
        """Short hash of the indices: equal ids mean the same rows in the same roles."""
        digest = hashlib.sha1(np.ascontiguousarray(self.train, dtype=np.int64).tobytes())
        digest.update(b"|")
        digest.update(np.ascontiguousarray(self.test, dtype=np.int64).tobytes())
        return digest.hexdigest()[:12]


def _subsample(indices: np.ndarray, size: int, y: np.ndarray | None, seed: int) -> np.ndarray:
    """At most ``size`` of ``indices``, stratified on ``y`` when it is given (sorted output)."""
    if len(indices) <= size:
        return np.sort(indices)
    if y is not None:
        try:
            kept, _ = train_test_split(indices, train_size=size, stratify=y[indices], random_state=seed)
            return np.sort(kept)
        except ValueError:  # a class with one row cannot be stratified; plain sampling is fine
            pass
    return np.sort(np.random.default_rng(seed).choice(indices, size=size, replace=False))


def make_splits(
    dataset: Dataset,
    *,
    n_repeats: int = 3,
    test_size: float = 0.2,
    max_train_rows: int = 2000,
    max_test_rows: int = 2000,
    seed: int = 0,
) -> list[Split]:
    """The repeated train/test splits of a dataset (deterministic).

    Parameters
    ----------
    dataset : Dataset
    n_repeats : int, default=3
        Number of random splits.
    test_size : float, default=0.2
        Share of rows held out before subsampling.
    max_train_rows, max_test_rows : int, default=2000
        Caps applied after the split (stratified subsample for classification).
    seed : int, default=0
        Base seed; each split's seed also depends on the dataset name and the repeat.

    Returns
    -------
    list of Split
    """
    n = dataset.n_rows
    stratify = dataset.y if dataset.task == "classification" else None
    name_key = zlib.crc32(dataset.name.encode())  # stable across processes (unlike hash())
    splits = []
    for repeat in range(n_repeats):
        split_seed = int(np.random.default_rng([seed, name_key, repeat]).integers(2**31 - 1))
        rows = np.arange(n)
        try:
            train, test = train_test_split(rows, test_size=test_size, stratify=stratify, random_state=split_seed)
        except ValueError:  # too few rows of a class to stratify
            train, test = train_test_split(rows, test_size=test_size, random_state=split_seed)
        train = _subsample(train, max_train_rows, stratify, split_seed + 1)
        test = _subsample(test, max_test_rows, stratify, split_seed + 2)
        splits.append(Split(repeat, train, test))
    return splits


# ============================================================================ metrics
def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(positive, score))


def roc_auc(y_true: np.ndarray, proba: np.ndarray, multi_class: Literal["ovr", "ovo"] = "ovr") -> float:
    """ROC-AUC that tolerates classes absent from ``y_true``.

    Parameters
    ----------
    y_true : ndarray of int, shape (n,)
        Class codes ``0..K-1``.
    proba : ndarray of shape (n, K)
        Predicted probabilities.
    multi_class : {"ovr", "ovo"}, default="ovr"
        With more than two classes present: one-vs-rest macro average over present classes, or
        the one-vs-one macro average over pairs of present classes (Hand & Till, as in
        scikit-learn and the Mitra paper's synthetic evaluation).

    Returns
    -------
    float
        NaN when fewer than two classes are present.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    present = np.unique(y_true)
    if present.size < 2:
        return float("nan")
    if proba.shape[1] == 2:
        return _binary_auc(y_true == 1, proba[:, 1])
    if multi_class == "ovr":
        return float(np.mean([_binary_auc(y_true == c, proba[:, c]) for c in present]))
    scores = []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            pair = (y_true == a) | (y_true == b)
            is_a = y_true[pair] == a
            scores.append(0.5 * (_binary_auc(is_a, proba[pair, a]) + _binary_auc(~is_a, proba[pair, b])))
    return float(np.mean(scores))


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, multi_class: Literal["ovr", "ovo"] = "ovr"
) -> dict[str, float]:
    """ROC-AUC, accuracy and log-loss of class probabilities.

    Parameters
    ----------
    y_true : ndarray of int, shape (n,)
        Class codes ``0..K-1``.
    proba : ndarray of shape (n, K)
        Probabilities (clipped to ``[1e-7, 1]`` and renormalised for the log-loss).
    multi_class : {"ovr", "ovo"}, default="ovr"
        Multiclass AUC average (see `roc_auc`).

    Returns
    -------
    dict
        ``roc_auc``, ``accuracy``, ``log_loss``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    clipped = np.clip(proba, _PROBA_EPS, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return {
        "roc_auc": roc_auc(y_true, proba, multi_class),
        "accuracy": float(np.mean(np.argmax(proba, axis=1) == y_true)),
        "log_loss": float(log_loss(y_true, clipped, labels=np.arange(proba.shape[1]))),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """RMSE on targets standardised with the training mean/std, and R2.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        Test targets and predictions, in the dataset's units.
    y_train : ndarray
        Training targets (their standard deviation makes RMSE comparable across datasets).

    Returns
    -------
    dict
        ``rmse`` and ``r2``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    scale = float(np.std(y_train)) or 1.0
    return {
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2)) / scale),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


# ============================================================================ baselines
def _column_transformer(kind: Literal["onehot", "ordinal"]) -> Any:
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = make_column_selector(dtype_exclude="category")
    categorical = make_column_selector(dtype_include="category")
    if kind == "onehot":
        # Linear models need imputed, scaled numbers; OneHotEncoder keeps NaN as its own level.
        num = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
        cat = OneHotEncoder(handle_unknown="ignore")
    else:
        # Forests split on NaN natively (scikit-learn >= 1.4); categories become codes, missing -1.
        num = "passthrough"
        cat = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    return ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)], sparse_threshold=0.0)


def baseline_factories(task: Task, *, seed: int = 0, n_jobs: int | None = -1) -> dict[str, Callable[[], Any]]:
    """Constructors of the baseline estimators available in this environment.

    Parameters
    ----------
    task : {"classification", "regression"}
    seed : int, default=0
        ``random_state`` of the randomised baselines.
    n_jobs : int or None, default=-1
        Threads of the forests and boosters.

    Returns
    -------
    dict of str to callable
        ``LogReg``/``Ridge``, ``RF``, ``HGB``, and ``XGB``/``LGBM`` when xgboost/lightgbm are
        installed. Each callable returns a fresh unfitted estimator that accepts a DataFrame
        with ``category`` columns and NaN.
    """
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    clf = task == "classification"
    out: dict[str, Callable[[], Any]] = {}
    if clf:
        out["LogReg"] = lambda: make_pipeline(_column_transformer("onehot"), LogisticRegression(max_iter=2000))
        out["RF"] = lambda: make_pipeline(
            _column_transformer("ordinal"), RandomForestClassifier(n_estimators=300, n_jobs=n_jobs, random_state=seed)
        )
        out["HGB"] = lambda: HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    else:
        out["Ridge"] = lambda: make_pipeline(_column_transformer("onehot"), Ridge(alpha=1.0))
        out["RF"] = lambda: make_pipeline(
            _column_transformer("ordinal"), RandomForestRegressor(n_estimators=300, n_jobs=n_jobs, random_state=seed)
        )
        out["HGB"] = lambda: HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
    try:
        import xgboost

        cls = xgboost.XGBClassifier if clf else xgboost.XGBRegressor
        out["XGB"] = lambda: cls(
            n_estimators=300, learning_rate=0.05, tree_method="hist", enable_categorical=True,
            n_jobs=n_jobs, random_state=seed, verbosity=0,
        )
    except ImportError:
        pass
    try:
        import lightgbm

        cls_l = lightgbm.LGBMClassifier if clf else lightgbm.LGBMRegressor
        out["LGBM"] = lambda: cls_l(n_estimators=300, learning_rate=0.05, n_jobs=n_jobs, random_state=seed, verbose=-1)
    except ImportError:
        pass
    return out


# ============================================================================ one fit
def _fit_predict(
    make_estimator: Callable[[], Any], dataset: Dataset, split: Split, multi_class: Literal["ovr", "ovo"] = "ovr"
) -> tuple[dict[str, float], float, float]:
    """Fit on the split's training rows, score its test rows; returns metrics and seconds."""
    X_train, X_test = dataset.X.iloc[split.train], dataset.X.iloc[split.test]
    y_train, y_test = dataset.y[split.train], dataset.y[split.test]
    estimator = make_estimator()
    if dataset.task == "classification":
        # Re-code the classes present in training as 0..k-1 (XGBoost insists), then put the
        # probabilities back in the dataset's full class order so every method is scored alike.
        present, codes = np.unique(y_train, return_inverse=True)
        start = time.perf_counter()
        estimator.fit(X_train, codes)
        fitted = time.perf_counter()
        partial = np.asarray(estimator.predict_proba(X_test), dtype=np.float64)
        done = time.perf_counter()
        proba = np.zeros((len(y_test), dataset.n_classes))
        proba[:, present] = partial
        metrics = classification_metrics(y_test, proba, multi_class)
    else:
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fitted = time.perf_counter()
        prediction = estimator.predict(X_test)
        done = time.perf_counter()
        metrics = regression_metrics(y_test, prediction, y_train)
    return metrics, fitted - start, done - fitted


_METRIC_COLUMNS = ("roc_auc", "accuracy", "log_loss", "rmse", "r2")


def _evaluate_method(
    method: str,
    make_estimator: Callable[[], Any],
    datasets: Sequence[Dataset],
    split_kwargs: dict[str, Any],
    info: dict[str, Any],
    verbose: bool,
    multi_class: Literal["ovr", "ovo"] = "ovr",
) -> list[dict[str, Any]]:
    rows = []
    for dataset in datasets:
        for split in _cached_splits(dataset, **split_kwargs):
            row: dict[str, Any] = {
                "dataset": dataset.name,
                "task": dataset.task,
                "method": method,
                **info,
                "repeat": split.repeat,
                "split_id": split.split_id,
                "n_train": len(split.train),
                "n_test": len(split.test),
                "n_features": dataset.n_features,
                "n_classes": dataset.n_classes,
                **{m: float("nan") for m in _METRIC_COLUMNS},
                "fit_seconds": float("nan"),
                "predict_seconds": float("nan"),
                "seconds": float("nan"),
                "error": "",
            }
            try:
                metrics, fit_s, predict_s = _fit_predict(make_estimator, dataset, split, multi_class)
                row.update(metrics, fit_seconds=fit_s, predict_seconds=predict_s, seconds=fit_s + predict_s)
            except Exception as err:  # one failing dataset (e.g. too many classes) must not end a run
                row["error"] = f"{type(err).__name__}: {err}"[:300]
                warnings.warn(f"{method} failed on {dataset.name} (repeat {split.repeat}): {row['error']}",
                              RuntimeWarning, stacklevel=2)
            if verbose:
                primary = PRIMARY_METRIC[dataset.task]
                print(f"  {method:<24} {dataset.name:<18} r{split.repeat} {primary}={row[primary]:.4f} "
                      f"({row['seconds']:.2f}s)", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def _split_kwargs(n_repeats: int, test_size: float, max_train_rows: int, max_test_rows: int, seed: int) -> dict:
    return dict(n_repeats=n_repeats, test_size=test_size, max_train_rows=max_train_rows,
                max_test_rows=max_test_rows, seed=seed)


# Splits would otherwise be recomputed per method; the key holds everything make_splits reads.
_SPLIT_CACHE: dict[tuple, list[Split]] = {}


def _cached_splits(dataset: Dataset, **kwargs: Any) -> list[Split]:
    target = zlib.crc32(np.ascontiguousarray(dataset.y).tobytes()) if dataset.task == "classification" else 0
    key = (dataset.name, dataset.n_rows, dataset.task, target, tuple(sorted(kwargs.items())))
    if key not in _SPLIT_CACHE:
        if len(_SPLIT_CACHE) > 512:
            _SPLIT_CACHE.clear()
        _SPLIT_CACHE[key] = make_splits(dataset, **kwargs)
    return _SPLIT_CACHE[key]


def _resolve_datasets(datasets: Sequence[Dataset] | str, task: Task) -> list[Dataset]:
    if isinstance(datasets, str):
        return load_suite(datasets, task=task)
    return [d for d in datasets if d.task == task]


def _check_task(task: str) -> Task:
    task = str(task).lower().rsplit(".", 1)[-1]
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return task  # type: ignore[return-value]


# ============================================================================ Mitra
def checkpoint_task(checkpoint: str | os.PathLike) -> Task:
    """The task (``"classification"``/``"regression"``) a checkpoint's head was trained for.

    Parameters
    ----------
    checkpoint : str or path-like
        Folder, shipped name or Hub id (anything ``MitraClassifier(checkpoint=...)`` accepts).

    Returns
    -------
    str
    """
    from mitra_sklearn.hub import load_config, resolve_checkpoint

    return _check_task(load_config(resolve_checkpoint(os.fspath(checkpoint))).task)


def _mitra_factory(
    checkpoint: str | os.PathLike, task: Task, *, n_estimators: int, fine_tune: bool, seed: int,
    device: str, batch_size: int, fine_tune_steps: int,
) -> Callable[[], Any]:
    from mitra_sklearn import MitraClassifier, MitraRegressor

    cls = MitraClassifier if task == "classification" else MitraRegressor
    return lambda: cls(
        checkpoint=os.fspath(checkpoint), n_estimators=n_estimators, fine_tune=fine_tune,
        fine_tune_steps=fine_tune_steps, random_state=seed, device=device, batch_size=batch_size,
    )


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    task: Task,
    datasets: Sequence[Dataset] | str,
    *,
    n_estimators: int = 4,
    max_train_rows: int = 2000,
    max_test_rows: int = 2000,
    n_repeats: int = 3,
    test_size: float = 0.2,
    seed: int = 0,
    fine_tune: bool = False,
    fine_tune_steps: int = 50,
    method: str | None = None,
    device: str = "auto",
    batch_size: int = 1024,
    multi_class: Literal["ovr", "ovo"] = "ovr",
    verbose: bool = False,
) -> pd.DataFrame:
    """Score a Mitra checkpoint on real datasets, one row per dataset and split.

    Parameters
    ----------
    checkpoint : str or path-like
        Checkpoint folder (``config.json`` + ``model.safetensors``), shipped name or Hub id.
    task : {"classification", "regression"}
        Datasets of the other task are skipped.
    datasets : sequence of Dataset or str
        Datasets, or a suite name for `pretraining.realdata.load_suite`.
    n_estimators : int, default=4
        Mitra ensemble members.
    max_train_rows, max_test_rows : int, default=2000
        Caps on the training (support) and test rows of each split.
    n_repeats : int, default=3
        Random splits per dataset.
    test_size : float, default=0.2
        Held-out share before the caps.
    seed : int, default=0
        Seed of the splits and of the estimator's ``random_state``.
    fine_tune : bool, default=False
        Fine-tune on each training part (``MitraClassifier(fine_tune=True)``).
    fine_tune_steps : int, default=50
        Fine-tuning steps when ``fine_tune``.
    method : str, optional
        Label in the ``method`` column; default ``"Mitra"``.
    device : str, default="auto"
        Estimator device.
    batch_size : int, default=1024
        Query rows per forward pass.
    multi_class : {"ovr", "ovo"}, default="ovr"
        Multiclass ROC-AUC average (see `roc_auc`).
    verbose : bool, default=False
        Print one line per dataset and split to stderr.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, task, method, checkpoint, n_estimators, fine_tune, repeat, split_id,
        n_train, n_test, n_features, n_classes, roc_auc, accuracy, log_loss, rmse, r2,
        fit_seconds, predict_seconds, seconds, error`` (metrics of the other task are NaN; a
        failed fit leaves NaN metrics and the message in ``error``).
    """
    task = _check_task(task)
    factory = _mitra_factory(checkpoint, task, n_estimators=n_estimators, fine_tune=fine_tune, seed=seed,
                             device=device, batch_size=batch_size, fine_tune_steps=fine_tune_steps)
    info = {"checkpoint": os.fspath(checkpoint), "n_estimators": n_estimators, "fine_tune": bool(fine_tune)}
    rows = _evaluate_method(
        method or "Mitra", factory, _resolve_datasets(datasets, task),
        _split_kwargs(n_repeats, test_size, max_train_rows, max_test_rows, seed), info, verbose, multi_class,
    )
    return pd.DataFrame(rows)


def evaluate_baselines(
    task: Task,
    datasets: Sequence[Dataset] | str,
    *,
    baselines: Iterable[str] | None = None,
    max_train_rows: int = 2000,
    max_test_rows: int = 2000,
    n_repeats: int = 3,
    test_size: float = 0.2,
    seed: int = 0,
    n_jobs: int | None = -1,
    verbose: bool = False,
) -> pd.DataFrame:
    """Score the baselines on exactly the splits `evaluate_checkpoint` uses.

    Parameters
    ----------
    task : {"classification", "regression"}
    datasets : sequence of Dataset or str
        Datasets or a suite name.
    baselines : iterable of str, optional
        Names from `baseline_factories` (``LogReg``/``Ridge``, ``RF``, ``HGB``, ``XGB``,
        ``LGBM``); default all that are installed. Unknown or unavailable names are skipped with
        a warning naming the package to install.
    max_train_rows, max_test_rows, n_repeats, test_size, seed
        As in `evaluate_checkpoint` (pass the same values to get the same splits).
    n_jobs : int or None, default=-1
        Threads of the forests and boosters; a positive value also caps OpenMP pools
        (HistGradientBoosting) while the baselines run.
    verbose : bool, default=False
        Print one line per dataset and split to stderr.

    Returns
    -------
    pandas.DataFrame
        Same columns as `evaluate_checkpoint`.
    """
    task = _check_task(task)
    factories = baseline_factories(task, seed=seed, n_jobs=n_jobs)
    names = list(factories) if baselines is None else list(baselines)
    for name in names:
        if name not in factories:
            hint = {"XGB": " (pip install xgboost)", "LGBM": " (pip install lightgbm)"}.get(name, "")
            warnings.warn(f"baseline {name!r} is not available for {task}{hint}; skipped", UserWarning, stacklevel=2)
    data = _resolve_datasets(datasets, task)
    kwargs = _split_kwargs(n_repeats, test_size, max_train_rows, max_test_rows, seed)
    rows: list[dict[str, Any]] = []
    # HistGradientBoosting and the boosters use OpenMP with every core by default; capping the
    # pools keeps n_jobs honest (and avoids huge stalls when the cores are shared).
    limit = n_jobs if n_jobs is not None and n_jobs > 0 else None
    with threadpool_limits(limits=limit, user_api="openmp"):
        for name in (n for n in names if n in factories):
            info = {"checkpoint": "", "n_estimators": 0, "fine_tune": False}
            rows += _evaluate_method(name, factories[name], data, kwargs, info, verbose)
    return pd.DataFrame(rows)


# ============================================================================ quick validation
@functools.lru_cache(maxsize=4)
def _quick_suite(task: Task) -> tuple[Dataset, ...]:
    # Loaded once per process: the pretraining loop calls quick_validation many times.
    return tuple(load_suite("sklearn", task=task))


def quick_validation(
    checkpoint_folder: str | os.PathLike,
    task: Task | None = None,
    *,
    n_estimators: int = 1,
    max_train_rows: int = 512,
    max_test_rows: int = 512,
    seed: int = 0,
    device: str = "auto",
    multi_class: Literal["ovr", "ovo"] = "ovr",
) -> dict[str, float]:
    """Fast real-data check of a checkpoint on the scikit-learn suite (one split per dataset).

    Meant to run every N pretraining steps: a few seconds on a CPU for a small model, well
    under a second per dataset on a GPU. Classification: iris, wine, breast_cancer, digits;
    regression: diabetes, wine_alcohol, iris_petal_width.

    Parameters
    ----------
    checkpoint_folder : str or path-like
        Checkpoint folder (or any reference ``MitraClassifier`` accepts).
    task : {"classification", "regression"}, optional
        Default: read from the checkpoint's ``config.json``.
    n_estimators : int, default=1
        Ensemble members (1 measures the raw model and is fastest).
    max_train_rows, max_test_rows : int, default=512
        Caps on support and query rows (digits has 1,797 rows).
    seed : int, default=0
        Split seed (keep it fixed across steps so the numbers are comparable).
    device : str, default="auto"
        Estimator device.
    multi_class : {"ovr", "ovo"}, default="ovr"
        Multiclass ROC-AUC average (``"ovo"`` matches `pretraining.generalizability`).

    Returns
    -------
    dict of str to float
        Classification: ``roc_auc`` (one-vs-rest macro for multiclass), ``accuracy``,
        ``log_loss``; regression: ``rmse`` (standardised targets) and ``r2``. Means over the
        datasets, plus ``<metric>/<dataset>`` per dataset, ``n_failed`` (datasets that raised,
        e.g. more classes than the head supports; left out of the means) and ``seconds``.
    """
    start = time.perf_counter()
    task = _check_task(task) if task is not None else checkpoint_task(checkpoint_folder)
    frame = evaluate_checkpoint(
        checkpoint_folder, task, _quick_suite(task), n_estimators=n_estimators, n_repeats=1,
        max_train_rows=max_train_rows, max_test_rows=max_test_rows, seed=seed, device=device,
        multi_class=multi_class,
    )
    metrics = ("roc_auc", "accuracy", "log_loss") if task == "classification" else ("rmse", "r2")
    ok = frame[frame["error"] == ""]
    out: dict[str, float] = {m: float(ok[m].mean()) if len(ok) else float("nan") for m in metrics}
    for _, row in frame.iterrows():
        for m in metrics:
            out[f"{m}/{row['dataset']}"] = float(row[m])
    out["n_failed"] = float((frame["error"] != "").sum())
    out["seconds"] = time.perf_counter() - start
    return out


# ============================================================================ summaries
def _dataset_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over repeats of every metric, per (task, dataset, method)."""
    columns = [c for c in (*_METRIC_COLUMNS, "seconds") if c in results]
    return results.groupby(["task", "dataset", "method"], sort=False)[columns].mean().reset_index()


def _ranks(means: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rank of each method within each dataset (1 = best; a failed method ranks last)."""
    ascending = not HIGHER_IS_BETTER[metric]
    ranked = means.copy()
    ranked["rank"] = ranked.groupby("dataset")[metric].rank(ascending=ascending, na_option="bottom")
    return ranked


def summarize(results: pd.DataFrame, task: Task) -> pd.DataFrame:
    """One row per method: mean metrics over datasets, average rank and time.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows from `evaluate_checkpoint` / `evaluate_baselines` (both tasks may be mixed).
    task : {"classification", "regression"}

    Returns
    -------
    pandas.DataFrame
        Sorted by average rank. Rank uses ROC-AUC (classification) or RMSE (regression), per
        dataset after averaging its repeats.
    """
    task = _check_task(task)
    means = _dataset_means(results[results["task"] == task])
    if means.empty:
        return pd.DataFrame()
    metric = PRIMARY_METRIC[task]
    ranked = _ranks(means, metric)
    metrics = ["roc_auc", "accuracy", "log_loss"] if task == "classification" else ["rmse", "r2"]
    table = ranked.groupby("method", sort=False).agg(
        datasets=("dataset", "nunique"),
        **{m: (m, "mean") for m in metrics},
        avg_rank=("rank", "mean"),
        seconds=("seconds", "mean"),
    )
    failed = results[(results["task"] == task) & (results["error"] != "")].groupby("method")["dataset"].nunique()
    table["failed"] = failed.reindex(table.index).fillna(0).astype(int)
    return table.sort_values("avg_rank").reset_index()


def per_dataset_table(results: pd.DataFrame, task: Task, metric: str | None = None) -> pd.DataFrame:
    """Datasets x methods table of one metric (mean over repeats).

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}
    metric : str, optional
        Default: ROC-AUC or RMSE.

    Returns
    -------
    pandas.DataFrame
    """
    task = _check_task(task)
    metric = metric or PRIMARY_METRIC[task]
    means = _dataset_means(results[results["task"] == task])
    if means.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(means["method"]))
    table = means.pivot(index="dataset", columns="method", values=metric)
    return table.reindex(columns=order, index=list(dict.fromkeys(means["dataset"]))).reset_index()


def markdown_report(results: pd.DataFrame, title: str = "Real-data evaluation") -> str:
    """Markdown tables (summary and per dataset) for each task present in ``results``.

    Parameters
    ----------
    results : pandas.DataFrame
    title : str

    Returns
    -------
    str
    """
    parts = [f"## {title}", ""]
    for task in ("classification", "regression"):
        if not (results["task"] == task).any():
            continue
        sub = results[results["task"] == task]
        n_datasets = sub["dataset"].nunique()
        repeats = int(sub["repeat"].max()) + 1
        metric = PRIMARY_METRIC[task]
        parts += [
            f"### {task.capitalize()} ({n_datasets} datasets, {repeats} split(s) each)",
            "",
            (f"Average rank by {'ROC-AUC' if metric == 'roc_auc' else 'RMSE'} (1 = best); metrics are means "
             "over datasets; seconds = fit + predict per split."),
            "",
            markdown_table(summarize(results, task)),
            "",
            f"Per-dataset {metric} (mean over splits):",
            "",
            markdown_table(per_dataset_table(results, task)),
            "",
        ]
    return "\n".join(parts)


def plot_results(results: pd.DataFrame, path: str | os.PathLike) -> Path | None:
    """Draw, per task, the average rank and the per-dataset primary metric of each method.

    Parameters
    ----------
    results : pandas.DataFrame
    path : str or path-like
        PNG file to write.

    Returns
    -------
    Path or None
        None (with a warning) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed (pip install matplotlib); no plot written", UserWarning,
                      stacklevel=2)
        return None
    tasks = [t for t in ("classification", "regression") if (results["task"] == t).any()]
    if not tasks:
        return None
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 4.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        summary = summarize(results, task)
        metric = PRIMARY_METRIC[task]
        ax = axes[row, 0]
        ax.barh(summary["method"][::-1], summary["avg_rank"][::-1], color="tab:blue")
        for y, (rank, value) in enumerate(zip(summary["avg_rank"][::-1], summary[metric][::-1], strict=True)):
            ax.text(rank, y, f" {rank:.2f}  ({metric} {value:.3f})", va="center", fontsize=8)
        ax.set_xlabel("average rank (1 = best)")
        ax.set_title(f"{task}: average rank over {results[results['task'] == task]['dataset'].nunique()} datasets")
        ax.set_xlim(0, summary["avg_rank"].max() * 1.6 if len(summary) else 1)

        ax = axes[row, 1]
        table = per_dataset_table(results, task)
        x = np.arange(len(table))
        for method in table.columns[1:]:
            ax.plot(x, table[method], marker="o", linestyle="", label=method, alpha=0.8)
        ax.set_xticks(x, table["dataset"], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"{task}: {metric} per dataset ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)")
        ax.legend(fontsize=7, ncols=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ============================================================================ CLI
def _parse_named(values: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        if "=" not in value:
            raise SystemExit(f"expected NAME=VALUE, got {value!r}")
        name, _, checkpoint = value.partition("=")
        out.append((name.strip(), checkpoint.strip()))
    return out


def _variant_label(name: str, n_estimators: int, fine_tune: bool, several_n: bool) -> str:
    label = name
    if several_n:
        label += f" n={n_estimators}"
    if fine_tune:
        label += " +ft"
    return label


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m pretraining.evaluate``."""
    parser = argparse.ArgumentParser(
        prog="python -m pretraining.evaluate",
        description="Evaluate Mitra checkpoints and baselines on real datasets (same splits for all).",
    )
    parser.add_argument("--classifier", help="classification checkpoint (method name 'Mitra')")
    parser.add_argument("--regressor", help="regression checkpoint (method name 'Mitra')")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="extra named checkpoint (task read from its config.json); repeatable")
    parser.add_argument("--suite", default="benchmark", choices=["sklearn", "benchmark"])
    parser.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    parser.add_argument("--n-estimators", type=int, nargs="+", default=[4],
                        help="Mitra ensemble sizes to compare, e.g. 1 8 (default 4)")
    parser.add_argument("--fine-tune", choices=["off", "on", "both"], default="off")
    parser.add_argument("--fine-tune-steps", type=int, default=50)
    parser.add_argument("--baselines", default="all",
                        help="comma-separated baselines (LogReg,Ridge,RF,HGB,XGB,LGBM), 'all' or 'none'")
    parser.add_argument("--n-repeats", type=int, default=3)
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--max-train-rows", type=int, default=2000)
    parser.add_argument("--max-test-rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--n-jobs", type=int, default=-1, help="threads of the tree baselines")
    parser.add_argument("--out", default="docs/results", help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no per-split progress lines")
    parser.add_argument("--from-csv", nargs="+", metavar="CSV",
                        help="evaluate nothing: merge earlier results.csv files (later files win on the "
                             "same method, dataset and split) and write the report to --out")
    parser.add_argument("--rename", action="append", nargs=2, default=[], metavar=("OLD", "NEW"),
                        help="with --from-csv: rename a method (repeatable)")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="with --from-csv: keep only the first N repeats (to compare runs made with fewer)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m pretraining.evaluate`` / ``python -m pretraining evaluate``).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0).
    """
    run(argv)
    return 0


def run(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Run the CLI and return the raw results (one row per dataset, split and method).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    pandas.DataFrame
    """
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if args.from_csv:
        results = merge_results([pd.read_csv(path, keep_default_na=False, na_values=[""])
                                 for path in args.from_csv])
        results["error"] = ["" if pd.isna(e) else str(e) for e in results["error"]]  # all-NaN reads as float
        results["method"] = results["method"].replace(dict(args.rename))
        if args.max_repeats is not None:
            results = results[results["repeat"] < args.max_repeats].reset_index(drop=True)
        return _write_report(results, out, args.suite)
    checkpoints: list[tuple[str, str, Task]] = []
    if args.classifier:
        checkpoints.append(("Mitra", args.classifier, "classification"))
    if args.regressor:
        checkpoints.append(("Mitra", args.regressor, "regression"))
    for name, checkpoint in _parse_named(args.ablation):
        checkpoints.append((name, checkpoint, checkpoint_task(checkpoint)))
    if not checkpoints and args.baselines == "none":
        raise SystemExit("nothing to evaluate: give --classifier/--regressor/--ablation or baselines")
    tasks = sorted({t for _, _, t in checkpoints}) or ["classification", "regression"]
    names = [n.strip() for n in args.datasets.split(",")] if args.datasets else None
    fine_tunes = {"off": [False], "on": [True], "both": [False, True]}[args.fine_tune]
    split = dict(max_train_rows=args.max_train_rows, max_test_rows=args.max_test_rows,
                 n_repeats=args.n_repeats, test_size=args.test_size, seed=args.seed)
    verbose = not args.quiet

    frames = []
    for task in tasks:
        wanted = None
        if names is not None:
            from .realdata import dataset_names

            wanted = [n for n in names if n in dataset_names(args.suite, task)]
        datasets = load_suite(args.suite, task=task, names=wanted)
        if not datasets:
            warnings.warn(f"no {task} dataset to evaluate", UserWarning, stacklevel=2)
            continue
        for name, checkpoint, checkpoint_task_ in checkpoints:
            if checkpoint_task_ != task:
                continue
            for n_estimators in args.n_estimators:
                for fine_tune in fine_tunes:
                    label = _variant_label(name, n_estimators, fine_tune, len(args.n_estimators) > 1)
                    print(f"[{task}] {label}: {checkpoint}", file=sys.stderr, flush=True)
                    frames.append(evaluate_checkpoint(
                        checkpoint, task, datasets, n_estimators=n_estimators, fine_tune=fine_tune,
                        fine_tune_steps=args.fine_tune_steps, method=label, device=args.device,
                        batch_size=args.batch_size, verbose=verbose, **split,
                    ))
                    _write_partial(frames, out)
        if args.baselines != "none":
            chosen = None if args.baselines == "all" else [b.strip() for b in args.baselines.split(",")]
            if chosen is not None:  # LogReg/Ridge are one baseline under two task names
                swap = {"LogReg": "Ridge"} if task == "regression" else {"Ridge": "LogReg"}
                chosen = list(dict.fromkeys(swap.get(b, b) for b in chosen))
            print(f"[{task}] baselines", file=sys.stderr, flush=True)
            frames.append(evaluate_baselines(task, datasets, baselines=chosen, n_jobs=args.n_jobs,
                                             verbose=verbose, **split))
            _write_partial(frames, out)
    if not frames:
        raise SystemExit("nothing was evaluated")
    results = pd.concat(frames, ignore_index=True)
    results = _write_report(results, out, args.suite)
    (out / "results.partial.csv").unlink(missing_ok=True)
    return results


def merge_results(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate result tables; a later row replaces an earlier one of the same method and split.

    Parameters
    ----------
    frames : sequence of DataFrame
        Tables as written to ``results.csv`` (by separate runs, e.g. the main run and an ablation).

    Returns
    -------
    pandas.DataFrame
    """
    merged = pd.concat(list(frames), ignore_index=True)
    keys = ["task", "method", "dataset", "split_id"]
    return merged.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


def _write_partial(frames: list[pd.DataFrame], out: Path) -> None:
    # Long runs: what has finished survives a kill (results.csv is only written at the end).
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(out / "results.partial.csv", index=False)


def _write_report(results: pd.DataFrame, out: Path, suite: str) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    report = markdown_report(results, title=f"Real-data evaluation ({suite} suite)")
    (out / "results.md").write_text(report + "\n", encoding="utf-8")
    png = plot_results(results, out / "results.png")
    print(report)
    print(f"\nwrote {out / 'results.csv'}, {out / 'results.md'}" + (f", {png}" if png else ""), file=sys.stderr)
    return results


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

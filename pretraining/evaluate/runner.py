"""Fit Mitra checkpoints and baselines on the splits of real datasets; one result row per fit.

Every method goes through `_evaluate_method`, so all of them are scored on the same splits
(`pretraining.evaluate.splits`) with the same metrics (`pretraining.evaluate.metrics`), and a
method that fails on a dataset leaves a row with NaN metrics and the message in ``error``
instead of ending the run.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mitra_sklearn.progress import progress_bar

from ..realdata import Dataset, load_suite
from .baselines import BASELINE_PACKAGES, OPT_IN_BASELINES, baseline_factories
from .metrics import (
    METRIC_COLUMNS,
    PRIMARY_METRIC,
    TASK_METRICS,
    MultiClass,
    Task,
    expand_proba,
    score_predictions,
)
from .splits import Split, cached_splits

__all__ = ["RESULT_COLUMNS", "checkpoint_task", "evaluate_checkpoint", "evaluate_baselines", "quick_validation"]

#: Columns of a results table, in order (`pretraining.evaluate.evaluate_checkpoint`,
#: `pretraining.evaluate.evaluate_baselines`, results.csv).
RESULT_COLUMNS: tuple[str, ...] = (
    "dataset", "task", "method", "checkpoint", "n_estimators", "fine_tune", "repeat", "split_id",
    "n_train", "n_test", "n_rows", "n_features", "n_categorical", "n_classes", *METRIC_COLUMNS,
    "fit_seconds", "predict_seconds", "seconds", "error",
)


def _fit_predict(
    make_estimator: Callable[[], Any], dataset: Dataset, split: Split, multi_class: MultiClass = "ovr"
) -> tuple[dict[str, float], float, float]:
    """Fit on the split's training rows, score its test rows; returns metrics and seconds."""
    X_train, X_test = dataset.X.iloc[split.train], dataset.X.iloc[split.test]
    y_train, y_test = dataset.y[split.train], dataset.y[split.test]
    estimator = make_estimator()
    if dataset.task is Task.CLASSIFICATION:
        # Re-code the classes present in training as 0..k-1 (XGBoost insists), then put the
        # probabilities back in the dataset's full class order so every method is scored alike.
        present, codes = np.unique(y_train, return_inverse=True)
        start = time.perf_counter()
        estimator.fit(X_train, codes)
        fitted = time.perf_counter()
        prediction = expand_proba(estimator.predict_proba(X_test), present, dataset.n_classes)
    else:
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fitted = time.perf_counter()
        prediction = estimator.predict(X_test)
    done = time.perf_counter()
    metrics = score_predictions(dataset.task, y_test, prediction, y_train, multi_class)
    return metrics, fitted - start, done - fitted


def _evaluate_method(
    method: str,
    make_estimator: Callable[[], Any],
    datasets: Sequence[Dataset],
    split_kwargs: dict[str, Any],
    info: dict[str, Any],
    verbose: bool,
    multi_class: MultiClass = "ovr",
) -> list[dict[str, Any]]:
    rows = []
    splits = [(dataset, split) for dataset in datasets for split in cached_splits(dataset, **split_kwargs)]
    bar = progress_bar(len(splits), method, "split", enabled=verbose)
    for dataset, split in splits:
        row: dict[str, Any] = {
            "dataset": dataset.name,
            "task": dataset.task,
            "method": method,
            **info,
            "repeat": split.repeat,
            "split_id": split.split_id,
            "n_train": len(split.train),
            "n_test": len(split.test),
            # The whole dataset's shape: the report groups (realdata.dataset_groups) read it.
            "n_rows": dataset.n_rows,
            "n_features": dataset.n_features,
            "n_categorical": int(dataset.categorical_mask.sum()),
            "n_classes": dataset.n_classes,
            **{m: float("nan") for m in METRIC_COLUMNS},
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
        if bar is not None:
            primary = PRIMARY_METRIC[dataset.task]
            # Above the bar, which stays at the bottom.
            bar.write(f"  {method:<24} {dataset.name:<18} r{split.repeat} {primary}={row[primary]:.4f} "
                      f"({row['seconds']:.2f}s)", file=sys.stderr)
            bar.update(1)
        rows.append(row)
    if bar is not None:
        bar.close()
    return rows


def _split_kwargs(n_repeats: int, test_size: float, max_train_rows: int, max_test_rows: int, seed: int) -> dict:
    return dict(n_repeats=n_repeats, test_size=test_size, max_train_rows=max_train_rows,
                max_test_rows=max_test_rows, seed=seed)


def _resolve_datasets(datasets: Sequence[Dataset] | str, task: Task) -> list[Dataset]:
    if isinstance(datasets, str):
        return load_suite(datasets, task=task)
    return [d for d in datasets if d.task == task]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


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
    from mitra_sklearn.checkpoint import load_config, resolve_checkpoint

    return Task.parse(load_config(resolve_checkpoint(os.fspath(checkpoint))).task)


def _mitra_factory(
    checkpoint: str | os.PathLike | Sequence[str | os.PathLike], task: Task, *, n_estimators: int | str,
    fine_tune: bool, seed: int, device: str, batch_size: int, fine_tune_steps: int,
) -> Callable[[], Any]:
    from mitra_sklearn import MitraClassifier, MitraRegressor

    if _is_mix(checkpoint) and fine_tune:
        raise ValueError("A checkpoint mix is evaluated without fine-tuning.")
    reference = [os.fspath(c) for c in checkpoint] if _is_mix(checkpoint) else os.fspath(checkpoint)
    cls = MitraClassifier if task is Task.CLASSIFICATION else MitraRegressor
    return lambda: cls(
        checkpoint=reference, n_estimators=n_estimators, fine_tune=fine_tune,
        fine_tune_steps=fine_tune_steps, random_state=seed, device=device, batch_size=batch_size,
    )


def _is_mix(checkpoint: Any) -> bool:
    return isinstance(checkpoint, (list, tuple))


def checkpoint_label(checkpoint: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """A checkpoint as the ``checkpoint`` column names it (a mix's parts joined by '+')."""
    return "+".join(map(os.fspath, checkpoint)) if _is_mix(checkpoint) else os.fspath(checkpoint)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike | Sequence[str | os.PathLike],
    task: Task,
    datasets: Sequence[Dataset] | str,
    *,
    n_estimators: int | str = "auto",
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
    multi_class: MultiClass = "ovr",
    verbose: bool = False,
) -> pd.DataFrame:
    """Score a Mitra checkpoint on real datasets, one row per dataset and split.

    Parameters
    ----------
    checkpoint : str, path-like or list of them
        Checkpoint folder (``config.json`` + ``model.safetensors``), shipped name or Hub id; a
        list or tuple of two or more: one estimator whose members take them in turn (the
        estimators' ``checkpoint`` list).
    task : {"classification", "regression"}
        Datasets of the other task are skipped.
    datasets : sequence of Dataset or str
        Datasets, or a suite name for `pretraining.realdata.load_suite`.
    n_estimators : int or "auto", default="auto"
        Mitra ensemble members ("auto": the checkpoint's own recipe, as the estimators' default).
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
        Multiclass ROC-AUC average (see ``pretraining.evaluate.roc_auc``).
    verbose : bool, default=False
        Print one line per dataset and split to stderr.

    Returns
    -------
    pandas.DataFrame
        Columns ``RESULT_COLUMNS``: ``dataset, task, method, checkpoint, n_estimators, fine_tune,
        repeat, split_id, n_train, n_test, n_rows, n_features, n_categorical, n_classes,
        roc_auc, accuracy, log_loss, rmse, r2, fit_seconds, predict_seconds, seconds, error``
        (metrics of the other task are NaN; a failed fit leaves NaN metrics and the message in
        ``error``).
    """
    task = Task.parse(task)
    factory = _mitra_factory(checkpoint, task, n_estimators=n_estimators, fine_tune=fine_tune, seed=seed,
                             device=device, batch_size=batch_size, fine_tune_steps=fine_tune_steps)
    info = {"checkpoint": checkpoint_label(checkpoint), "n_estimators": n_estimators, "fine_tune": bool(fine_tune)}
    rows = _evaluate_method(
        method or "Mitra", factory, _resolve_datasets(datasets, task),
        _split_kwargs(n_repeats, test_size, max_train_rows, max_test_rows, seed), info, verbose, multi_class,
    )
    return _frame(rows)


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
    """Score the baselines on exactly the splits `pretraining.evaluate.evaluate_checkpoint` uses.

    Parameters
    ----------
    task : {"classification", "regression"}
    datasets : sequence of Dataset or str
        Datasets or a suite name.
    baselines : iterable of str, optional
        Names from ``pretraining.evaluate.baseline_factories`` (``LogReg``/``Ridge``,
        ``RF``, ``HGB``, ``XGB``, ``LGBM``, ``CatBoost``, ``Prior``); default all that are installed
        except the opt-in ``Prior``.
        Unknown or unavailable names are skipped with a warning naming the package to install.
    max_train_rows, max_test_rows, n_repeats, test_size, seed
        As in `pretraining.evaluate.evaluate_checkpoint` (pass the same values to get the same splits).
    n_jobs : int or None, default=-1
        Threads of the forests and boosters; a positive value also caps OpenMP pools
        (HistGradientBoosting) while the baselines run.
    verbose : bool, default=False
        Print one line per dataset and split to stderr.

    Returns
    -------
    pandas.DataFrame
        Same columns as `pretraining.evaluate.evaluate_checkpoint`.
    """
    task = Task.parse(task)
    factories = baseline_factories(task, seed=seed, n_jobs=n_jobs)
    names = [n for n in factories if n not in OPT_IN_BASELINES] if baselines is None else list(baselines)
    for name in names:
        if name not in factories:
            package = BASELINE_PACKAGES.get(name)
            hint = f" (pip install {package})" if package else ""
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
    return _frame(rows)


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
    multi_class: MultiClass = "ovr",
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
        Multiclass ROC-AUC average (``"ovo"`` matches ``pretraining.generalizability``).

    Returns
    -------
    dict of str to float
        Classification: ``roc_auc`` (one-vs-rest macro for multiclass), ``accuracy``,
        ``log_loss``; regression: ``rmse`` (standardised targets) and ``r2``. Means over the
        datasets, plus ``<metric>/<dataset>`` per dataset, ``n_failed`` (datasets that raised,
        e.g. more classes than the head supports; left out of the means) and ``seconds``.
    """
    start = time.perf_counter()
    task = Task.parse(task) if task is not None else checkpoint_task(checkpoint_folder)
    frame = evaluate_checkpoint(
        checkpoint_folder, task, _quick_suite(task), n_estimators=n_estimators, n_repeats=1,
        max_train_rows=max_train_rows, max_test_rows=max_test_rows, seed=seed, device=device,
        multi_class=multi_class,
    )
    metrics = TASK_METRICS[task]
    ok = frame[frame["error"] == ""]
    out: dict[str, float] = {m: float(ok[m].mean()) if len(ok) else float("nan") for m in metrics}
    for _, row in frame.iterrows():
        for m in metrics:
            out[f"{m}/{row['dataset']}"] = float(row[m])
    out["n_failed"] = float((frame["error"] != "").sum())
    out["seconds"] = time.perf_counter() - start
    return out

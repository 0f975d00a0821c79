"""The metrics of every evaluation in this project (real data and the generalizability matrix).

One owner for what a metric is, how it is computed and which direction is better:
`pretraining.evaluate.runner` (real data) and ``pretraining.generalizability`` (synthetic tables)
both score predictions with `score_predictions`.

Classification: ROC-AUC (binary, or a macro average over the classes present), accuracy and
log-loss of class probabilities. Regression: RMSE of targets standardised with the training
targets' standard deviation (comparable across datasets; 1.0 = predicting the mean) and R2.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import log_loss, r2_score, roc_auc_score

from mitra_sklearn.config import Task

__all__ = [
    "Task",
    "MultiClass",
    "TASK_METRICS",
    "PRIMARY_METRIC",
    "HIGHER_IS_BETTER",
    "METRIC_LABELS",
    "METRIC_COLUMNS",
    "roc_auc",
    "classification_metrics",
    "regression_metrics",
    "expand_proba",
    "score_predictions",
]

MultiClass = Literal["ovr", "ovo"]

#: Metrics computed for each task, in report order.
TASK_METRICS: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("roc_auc", "accuracy", "log_loss"),
    Task.REGRESSION: ("rmse", "r2"),
}
#: The metric that ranks methods (average rank, win rate) for each task.
PRIMARY_METRIC: dict[Task, str] = {Task.CLASSIFICATION: "roc_auc", Task.REGRESSION: "rmse"}
#: Direction of every metric.
HIGHER_IS_BETTER: dict[str, bool] = {"roc_auc": True, "accuracy": True, "log_loss": False, "rmse": False, "r2": True}
#: Human-readable names (report headers).
METRIC_LABELS: dict[str, str] = {"roc_auc": "ROC-AUC", "accuracy": "accuracy", "log_loss": "log-loss",
                                 "rmse": "RMSE", "r2": "R2"}
#: Every metric column of a results table (both tasks).
METRIC_COLUMNS: tuple[str, ...] = (*TASK_METRICS[Task.CLASSIFICATION], *TASK_METRICS[Task.REGRESSION])

_PROBA_EPS = 1e-7


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(positive, score))


def roc_auc(y_true: np.ndarray, proba: np.ndarray, multi_class: MultiClass = "ovr") -> float:
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


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, multi_class: MultiClass = "ovr") -> dict[str, float]:
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


def expand_proba(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Put probabilities over a fitted estimator's classes into the full class order.

    An estimator fitted on a subset of the classes returns one column per class it saw; every
    method must be scored on the same ``n_classes`` columns (absent classes get probability 0).

    Parameters
    ----------
    proba : ndarray of shape (n, len(classes))
        ``predict_proba`` output.
    classes : ndarray of int
        Class code of each column of ``proba``.
    n_classes : int
        Classes of the dataset.

    Returns
    -------
    ndarray of shape (n, n_classes)

    Raises
    ------
    ValueError
        ``proba`` and ``classes`` disagree, or a class code is outside ``0..n_classes-1``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.asarray(classes, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[1] != classes.size:
        raise ValueError(f"proba has shape {proba.shape} but there are {classes.size} classes")
    if classes.size and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError(f"class codes {classes.tolist()} are not all in 0..{n_classes - 1}")
    full = np.zeros((proba.shape[0], n_classes))
    full[:, classes] = proba
    return full


def score_predictions(
    task: Task,
    y_true: np.ndarray,
    prediction: np.ndarray,
    y_train: np.ndarray | None = None,
    multi_class: MultiClass = "ovr",
) -> dict[str, float]:
    """Every metric of ``task`` for one set of predictions.

    Parameters
    ----------
    task : {"classification", "regression"}
    y_true : ndarray of shape (n,)
        Class codes or targets of the scored rows.
    prediction : ndarray
        Class probabilities of shape (n, n_classes) (see `expand_proba`) or predicted targets.
    y_train : ndarray, optional
        Training targets; required for regression (they scale the RMSE).
    multi_class : {"ovr", "ovo"}, default="ovr"
        Multiclass AUC average.

    Returns
    -------
    dict
        The metrics of `TASK_METRICS` for the task.
    """
    if Task.parse(task) is Task.CLASSIFICATION:
        return classification_metrics(y_true, prediction, multi_class)
    if y_train is None:
        raise ValueError("regression metrics need y_train (its standard deviation scales the RMSE)")
    return regression_metrics(y_true, prediction, y_train)

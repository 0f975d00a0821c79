"""What fine-tuning costs on the CPU, and what it changes, with the shipped small checkpoints.

Fits ``fine_tune=False``, ``fine_tune=True`` (this package's recipe, 50 steps) and
``fine_tune="mitra-v2"`` (the Mitra-v2 authors' recipe) in this process on three tables bundled
with scikit-learn (binary, multiclass, regression; one 70/30 split), and prints the fit + predict
time, its ratio to ``fine_tune=False`` and the test score (ROC-AUC / accuracy / R2).

    python benchmarks/fine_tune_cost.py [--n-estimators 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn.checkpoint import shipped_default

SETTINGS = (False, True, "mitra-v2")
TABLES = {
    "breast_cancer (binary)": (load_breast_cancer, MitraClassifier,
                               lambda m, X, y: roc_auc_score(y, m.predict_proba(X)[:, 1])),
    "wine (3 classes)": (load_wine, MitraClassifier, lambda m, X, y: accuracy_score(y, m.predict(X))),
    "diabetes (regression)": (load_diabetes, MitraRegressor, lambda m, X, y: r2_score(y, m.predict(X))),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-estimators", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{_cpu_name()}, torch {torch.__version__}, {args.threads} threads, "
          f"{args.n_estimators} members")
    print(f"{'table':<24} {'fine_tune':<10} {'seconds':>8} {'ratio':>6} {'score':>7} {'best step':>9}")
    for name, (load, estimator, score) in TABLES.items():
        X, y = load(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
        baseline = None
        for setting in SETTINGS:
            checkpoint = shipped_default(estimator._task)  # pinned: checkpoint=None may be the official model
            model = estimator(checkpoint, fine_tune=setting, n_estimators=args.n_estimators, random_state=0)
            start = time.perf_counter()
            model.fit(X_train, y_train)
            value = score(model, X_test, y_test)
            seconds = time.perf_counter() - start
            baseline = baseline or seconds
            losses = model.fine_tune_losses_
            best = "-" if losses is None else str(int(np.argmin(losses)))
            print(f"{name:<24} {setting!s:<10} {seconds:8.2f} {seconds / baseline:6.1f} {value:7.4f} {best:>9}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()

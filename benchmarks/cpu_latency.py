"""Default fit + predict time on the CPU: 1,000 training x 1,000 test rows x 20 features.

Times ``MitraClassifier`` / ``MitraRegressor`` with the shipped checkpoints (not ``checkpoint=None``,
which is the official model where it can be had) for several ensemble
sizes, next to RandomForest and HistGradientBoosting fitted in the same process.

    python benchmarks/cpu_latency.py [--rows 1000] [--features 20] [--n-estimators 1 2 4]
    python benchmarks/cpu_latency.py --n-estimators 4 --checkpoints mitra-small-classifier-v1 mitra-small-classifier

With several ``--checkpoints`` every one is timed in this process and its ratio to the first
is printed (the v2 target: default latency no more than 1.25x v1's; v4's: 1.5x v3's).
``--n-estimators auto`` times each checkpoint with its own default member count (a checkpoint
may declare one, and partners whose members it mixes with its own):

    python benchmarks/cpu_latency.py --n-estimators auto \\
        --checkpoints mitra-small-classifier campaign/mitra-small-v4-muon-stage2/candidate-step-0001050
"""

from __future__ import annotations

import argparse
import functools
import platform
import time

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from mitra_sklearn import MitraClassifier
from mitra_sklearn.checkpoint import shipped_default


def timed(make, X_train, y_train, X_test, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        make().fit(X_train, y_train).predict_proba(X_test)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--n-estimators", type=lambda text: text if text == "auto" else int(text), nargs="+",
                        default=[1, 2, 4], help="ensemble sizes, or 'auto' (each checkpoint's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoints", nargs="+", default=[shipped_default("classification")],
                        help="classifier checkpoints to time (default: the shipped classifier)")
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    X = rng.randn(2 * args.rows, args.features).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * rng.randn(len(X)) > 0).astype(int)
    X_train, y_train, X_test = X[: args.rows], y[: args.rows], X[args.rows :]
    print(f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.rows} train x {args.rows} test rows x {args.features} features; best of {args.repeats}")
    MitraClassifier(args.checkpoints[0], n_estimators=1).fit(X_train[:50], y_train[:50]).predict(X_test[:5])  # warm-up
    for n in args.n_estimators:
        first = None
        for checkpoint in args.checkpoints:
            seconds = timed(functools.partial(MitraClassifier, checkpoint, n_estimators=n, random_state=0),
                            X_train, y_train, X_test, args.repeats)
            first = first or seconds
            ratio = f"  ({seconds / first:.2f}x {args.checkpoints[0]})" if len(args.checkpoints) > 1 else ""
            print(f"MitraClassifier({checkpoint or 'default'}, n_estimators={n!r}): {seconds:6.2f} s "
                  f"fit+predict{ratio}")
    for name, make in (("RandomForest(300 trees)", lambda: RandomForestClassifier(300, n_jobs=-1, random_state=0)),
                       ("HistGradientBoosting", lambda: HistGradientBoostingClassifier(random_state=0))):
        print(f"{name}: {timed(make, X_train, y_train, X_test, args.repeats):6.2f} s fit+predict")


if __name__ == "__main__":
    main()

"""bfloat16 autocast against float32 on this CPU: speed of the default estimator and output drift.

What ``inference_precision="auto"`` should be on a CPU is decided from these numbers
(docs/benchmarks.md, "bf16 on the CPU"):

* speed: default ``MitraClassifier`` (shipped checkpoint, 4 members) fit + predict_proba of
  1,000 training x 1,000 test rows x 20 features in float32 and in bfloat16, next to
  ``RandomForestClassifier(300, n_jobs=2)`` in the same process, repeats interleaved so that
  background load hits all three alike; best and median of the repeats;
* drift: the largest difference of bf16 from float32 outputs on a few tables (class
  probabilities; regression predictions over the target's standard deviation), and whether
  accuracy / log-loss / R2 move.

    python benchmarks/bf16_cpu.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn.devices import cpu_bf16_kind

PRECISIONS = ("float32", "bfloat16")


def cpu_line() -> str:
    """The CPU's model name, its bf16 hardware and the load average (the machine may be shared)."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{name}, native bf16: {cpu_bf16_kind() or 'none'}, {os.cpu_count()} CPUs, load average {load}"


def latency(repeats: int, threads: int) -> None:
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 20).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.5 * rng.randn(len(X)) > 0).astype(int)
    X_train, y_train, X_test = X[:1000], y[:1000], X[1000:]
    makers = {p: (lambda p=p: MitraClassifier("mitra-small-classifier", inference_precision=p, n_jobs=threads,
                                              random_state=0)) for p in PRECISIONS}
    makers["RandomForest(300, n_jobs=2)"] = lambda: RandomForestClassifier(300, n_jobs=2, random_state=0)
    for make in makers.values():  # warm-up: weights loaded, kernels chosen
        make().fit(X_train[:100], y_train[:100]).predict_proba(X_test[:10])
    times: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            start = time.perf_counter()
            make().fit(X_train, y_train).predict_proba(X_test)
            times[name].append(time.perf_counter() - start)
    forest = min(times["RandomForest(300, n_jobs=2)"])
    print(f"\nDefault latency, 1,000 x 1,000 x 20, 4 members, {threads} torch threads, {repeats} interleaved repeats")
    print(f"{'':28s} {'best s':>7s} {'median s':>9s} {'/ float32':>10s} {'/ forest':>9s}")
    for name, values in times.items():
        best = min(values)
        print(f"{name:28s} {best:7.2f} {statistics.median(values):9.2f} {best / min(times['float32']):10.2f} "
              f"{best / forest:9.2f}")


def _tables() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    tables = [("breast_cancer", "classification", *load_breast_cancer(return_X_y=True)),
              ("diabetes", "regression", *load_diabetes(return_X_y=True))]
    for seed in (0, 1):
        X, y = make_classification(3000, 20, n_informative=8, n_classes=4, n_clusters_per_class=1, random_state=seed)
        tables.append((f"make_classification 4 classes (seed {seed})", "classification", X, y))
        X, y = make_regression(3000, 20, n_informative=10, noise=10.0, random_state=seed)
        tables.append((f"make_regression (seed {seed})", "regression", X, y))
    return tables


def drift(threads: int) -> None:
    print("\nOutput drift of bfloat16 from float32 (shipped checkpoints, 4 members, same random_state)")
    for name, task, X, y in _tables():
        X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=min(0.75, 2000 / len(X)), random_state=0)
        outputs = {}
        for precision in PRECISIONS:
            if task == "classification":
                est = MitraClassifier("mitra-small-classifier", inference_precision=precision, n_jobs=threads,
                                      random_state=0).fit(X_train, y_train)
                outputs[precision] = est.predict_proba(X_test)
            else:
                est = MitraRegressor("mitra-small-regressor", inference_precision=precision, n_jobs=threads,
                                     random_state=0).fit(X_train, y_train)
                outputs[precision] = est.predict(X_test)
        full, half = outputs["float32"], outputs["bfloat16"]
        if task == "classification":
            print(f"{name:42s} max |dp| {np.abs(full - half).max():.4f}  mean {np.abs(full - half).mean():.5f}  "
                  f"labels agree {np.mean(full.argmax(1) == half.argmax(1)):.4f}  accuracy "
                  f"{accuracy_score(y_test, full.argmax(1)):.4f} / {accuracy_score(y_test, half.argmax(1)):.4f}  "
                  f"log-loss {log_loss(y_test, full):.4f} / {log_loss(y_test, half):.4f}")
        else:
            scale = np.std(y_train)
            print(f"{name:42s} max |dy|/std {np.abs(full - half).max() / scale:.4f}  mean "
                  f"{np.abs(full - half).mean() / scale:.5f}  R2 {r2_score(y_test, full):.4f} / "
                  f"{r2_score(y_test, half):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-drift", action="store_true")
    args = parser.parse_args()
    print(f"{cpu_line()}; torch {torch.__version__}")
    latency(args.repeats, args.threads)
    if not args.skip_drift:
        drift(args.threads)
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Measure the CPU cost of the released model shape: the rule behind the estimators' CPU warning.

Builds a random-weight model of the official shape (dim 512, 12 layers, 4 heads, 75.7 M
parameters; no download), times one ensemble member's ``fit`` + ``predict_proba`` of
``MitraClassifier`` for several support sizes, and fits

    seconds per member = cells x (A + B x support_rows),    cells = (support + query rows) x (features + 1)

by least squares: ``A`` is the per-cell cost of the dense layers, ``B`` the part of the
attention across rows that grows with the support set. The printed constants are the ones
``mitra_sklearn._inference`` uses (``CPU_SECONDS_PER_CELL``, ``CPU_SECONDS_PER_CELL_AND_SUPPORT_ROW``).
The same is timed for the shipped checkpoint for comparison.

    python benchmarks/cpu_rule.py [--threads 2] [--sizes 256x1000x10 1024x1000x10 ...] [--skip-shipped]

About 5 minutes on 2 busy cores with the default sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from _measure import cpu_name

from mitra_sklearn import MitraClassifier
from mitra_sklearn.checkpoint import shipped_checkpoints
from mitra_sklearn.config import OFFICIAL_SHAPE
from mitra_sklearn.model import MitraConfig, MitraModel


def time_member(checkpoint: str, support: int, query: int, features: int, threads: int) -> float:
    rng = np.random.RandomState(0)
    X = rng.randn(support + query, features).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.randn(len(X)) > 0).astype(int)
    clf = MitraClassifier(checkpoint, n_estimators=1, random_state=0, n_jobs=threads)
    clf.fit(X[:support], y[:support]).predict_proba(X[support:support + 8])  # load + warm-up
    start = time.perf_counter()
    clf.fit(X[:support], y[:support]).predict_proba(X[support:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", nargs="+",
                        default=["256x1000x10", "1024x1000x10", "2048x1000x10", "1024x1000x20", "4096x256x10"],
                        help="support x query x features cases")
    parser.add_argument("--skip-shipped", action="store_true")
    args = parser.parse_args()
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, "
          f"{args.threads} thread(s), float32, 1 member, support_cache='predict'")
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        MitraModel(MitraConfig(**OFFICIAL_SHAPE, dim_output=10, task="CLASSIFICATION")).save_pretrained(folder)
        rows = []
        for size in args.sizes:
            support, query, features = (int(v) for v in size.split("x"))
            seconds = time_member(folder, support, query, features, args.threads)
            cells = (support + query) * (features + 1)
            rows.append((support, cells, seconds))
            print(f"official shape {size}: {seconds:7.2f} s, {cells / seconds:8.0f} cells/s", flush=True)
    # seconds / cells = A + B * support
    design = np.array([[1.0, s] for s, _, _ in rows])
    target = np.array([t / c for _, c, t in rows])
    (a, b), *_ = np.linalg.lstsq(design, target, rcond=None)
    print(f"rule: seconds per member = cells x ({a:.3e} + {b:.3e} x support_rows)")
    for s, c, t in rows:
        print(f"  support {s}: predicted {c * (a + b * s):7.2f} s, measured {t:7.2f} s")
    for support in (1000, 8192):
        print(f"  = {1 / (a + b * support):.0f} cells/s at {support} support rows")
    if not args.skip_shipped:
        names = [n for n in shipped_checkpoints() if "classifier" in n]
        for name in names[:1]:
            size = args.sizes[min(1, len(args.sizes) - 1)]
            support, query, features = (int(v) for v in size.split("x"))
            seconds = time_member(name, support, query, features, args.threads)
            cells = (support + query) * (features + 1)
            print(f"shipped {name} {size}: {seconds:7.2f} s, {cells / seconds:8.0f} cells/s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

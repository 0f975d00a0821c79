"""Throughput of the synthetic-table priors in one single-threaded worker process.

Prints tables/s (and ms/table) for every prior, both tasks and a few table sizes, plus the
default Mitra mixture and the full `SyntheticTableStream` pipeline (split, permutations,
imputation, scaling, padding). Class counts are drawn from the config (50% binary, else 2..10).

Usage::

    python benchmarks/prior_throughput.py --seconds 3
    python benchmarks/prior_throughput.py --priors scm,gb --sizes 640x16 --tasks classification
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# One worker = one thread: keep BLAS from using the other cores (set before numpy loads).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

# The imports below must follow the BLAS thread settings and the sys.path entry above.
import torch  # noqa: E402  loads numpy and BLAS: only after the thread settings

from pretraining.config import PriorConfig  # noqa: E402  from the checkout put on sys.path above
from pretraining.data import SyntheticTableStream  # noqa: E402  same
from pretraining.priors import PRIORS, Mixture, Prior  # noqa: E402  same

TASKS = ("classification", "regression")


def measure(prior: Prior, n_rows: int, n_features: int, task: str, seconds: float) -> float:
    """Tables per second generating ``n_rows x n_features`` tables for ``seconds`` (>= 3 tables)."""
    count, start = 0, time.perf_counter()
    while True:
        prior.sample(count, n_rows, n_features, task)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count / elapsed


def measure_stream(task: str, n_rows: int, n_features: int, seconds: float) -> float:
    """Tables per second through `SyntheticTableStream` (default mixture, batches of 16)."""
    cfg = PriorConfig(
        n_support=(n_rows - 128, n_rows - 128) if n_rows > 256 else (n_rows // 2, n_rows // 2),
        n_query=(128, 128) if n_rows > 256 else (n_rows - n_rows // 2,) * 2,
        n_features=(n_features, n_features),
    )
    stream = SyntheticTableStream(task, 16, cfg, seed=0)
    count, index, start = 0, 0, time.perf_counter()
    while True:
        count += len(stream.make_batch(index)["prior"])
        index += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="budget per measurement")
    parser.add_argument("--sizes", default="640x16,256x8", help="comma list of ROWSxFEATURES")
    parser.add_argument("--priors", default=",".join([*PRIORS, "mixture", "stream"]),
                        help="comma list of prior names, 'mixture' and 'stream'")
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args(argv)

    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    names = [n.strip() for n in args.priors.split(",") if n.strip()]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    torch.set_num_threads(1)

    print(f"# prior throughput, one process, 1 thread; {platform.processor() or platform.machine()}"
          f", {os.cpu_count()} cores, {args.seconds:g} s per cell")
    short = {"classification": "clf", "regression": "reg"}
    cols = [f"{short.get(t, t)} {r}x{f}" for t in tasks for (r, f) in sizes]
    print("| prior | " + " | ".join(f"{c} tables/s (ms)" for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name in names:
        cells = []
        for task in tasks:
            for n_rows, n_features in sizes:
                if name == "stream":
                    rate = measure_stream(task, n_rows, n_features, args.seconds)
                else:
                    prior = Mixture() if name == "mixture" else PRIORS[name]()
                    rate = measure(prior, n_rows, n_features, task, args.seconds)
                cells.append(f"{rate:.0f} ({1000 / rate:.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

"""Scoring on a Dask cluster against a local call on the same cores.

One process fits ``MitraClassifier`` (shipped checkpoint, default 4 members) on 1,000 rows x 20
features and scores ``--rows`` rows: locally with ``n_jobs=2`` (2 torch threads), then with
``dask_ml.wrappers.ParallelPostFit`` on a ``distributed.LocalCluster`` of 2 worker processes x 1
thread, over ``--partitions`` partitions, with the workers' shared support sets on (the default)
and off (each partition runs every member's support rows again: the behaviour before issue 27).
Repeats are interleaved so that background load hits every variant alike; the ratios are of
best times. Needs the ``[dask]`` extra.

    python benchmarks/dask_scoring.py [--rows 20000] [--partitions 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from mitra_sklearn import MitraClassifier, _runtime


def _set_support_share(share: float) -> None:
    _runtime._SUPPORT_SHARE = share
    _runtime.clear_process_caches()


def main() -> None:
    import dask.dataframe as dd
    from dask_ml.wrappers import ParallelPostFit
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--n-estimators", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.RandomState(0)
    columns = [f"x{i}" for i in range(20)]
    X = pd.DataFrame(rng.randn(1000 + args.rows, 20).astype(np.float32), columns=columns)
    y = (X["x0"] + X["x1"] * X["x2"] + 0.5 * rng.randn(len(X)) > 0).astype(int)
    train, test = X.iloc[:1000], X.iloc[1000:]
    local = MitraClassifier("mitra-small-classifier", n_estimators=args.n_estimators, n_jobs=2,
                            random_state=0).fit(train, y[:1000])
    remote = ParallelPostFit(MitraClassifier("mitra-small-classifier", n_estimators=args.n_estimators,
                                             random_state=0).fit(train, y[:1000]))
    ddf = dd.from_pandas(test, npartitions=args.partitions)
    print(f"{os.uname().machine}, load average {os.getloadavg()[0]:.2f}; {args.rows} rows x 20 features, "
          f"{args.n_estimators} members, {args.partitions} partitions")
    times: dict[str, list[float]] = {"local, 2 threads": [], "dask 2 x 1, shared support sets": [],
                                     "dask 2 x 1, support per partition": []}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: MitraClassifier("mitra-small-classifier", n_estimators=1).fit(
            train[:50], y[:50]).predict(test[:5]))  # warm-up: imports and weights in both workers
        expected = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            expected = local.predict_proba(test)
            times["local, 2 threads"].append(time.perf_counter() - start)
            for name, share in (("dask 2 x 1, shared support sets", 0.25), ("dask 2 x 1, support per partition", 0)):
                client.run(_set_support_share, share)
                start = time.perf_counter()
                proba = remote.predict_proba(ddf).compute()
                times[name].append(time.perf_counter() - start)
                print(f"  {name}: {times[name][-1]:.1f} s, max |difference| from local "
                      f"{np.abs(proba - expected).max():.1e}", flush=True)
    baseline = min(times["local, 2 threads"])
    for name, values in times.items():
        print(f"{name:36s} best {min(values):7.1f} s  {args.rows / min(values):7.0f} rows/s  "
              f"{min(values) / baseline:.2f}x local")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

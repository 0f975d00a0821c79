"""How fit + predict time grows with the training rows: random subsamples vs retrieval ('nearest').

For 1k to 50k training rows of a synthetic binary table (8 numeric features), one process
times, in this order: HistGradientBoosting (the baseline: every ratio is to its time in the same
process), ``MitraClassifier`` with ``support_selection="random"`` and with ``"nearest"`` (the
defaults otherwise: ``checkpoint=None``, which falls back to the shipped small checkpoint
offline), and predict alone per query row with ``support_cache="predict"`` (the default: support
rows run once per call; one call) and ``"fit"`` (support sets encoded in fit; the best of 3 calls)
for both selections, at the same ``max_support_rows``. It also prints the CPU time rule's
estimate for the nearest predict call (what the slow-call warning says) next to the time
measured.

Run with one thread (``OMP_NUM_THREADS=1``; the estimators get ``n_jobs=1``). Example::

    OMP_NUM_THREADS=1 python benchmarks/support_scaling.py --max-support-rows 2048
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # checkpoint=None: the shipped checkpoint, without network look-ups

import numpy as np  # noqa: E402 - after the environment above
import torch  # noqa: E402
from _measure import cpu_name  # noqa: E402 - benchmarks/ is the script's folder
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402

from mitra_sklearn import MitraClassifier  # noqa: E402
from mitra_sklearn._inference import cpu_seconds  # noqa: E402

ROWS = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000)


def table(n_rows: int, n_query: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A binary task whose class depends on two features non-linearly (8 features in all)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n_rows + n_query, 8)
    y = ((X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2])) > 0).astype(int)
    return X[:n_rows], y[:n_rows], X[n_rows:], y[n_rows:]


def timed(call, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = call(*args)
    return time.perf_counter() - start, result


def mitra(selection: str, cache: str, max_support_rows: int) -> MitraClassifier:
    return MitraClassifier(n_estimators=1, random_state=0, n_jobs=1, support_selection=selection,
                           support_cache=cache, max_support_rows=max_support_rows)


def estimate(fitted: MitraClassifier, X_query: np.ndarray) -> float:
    """The CPU rule's seconds for a predict call (the passes `_warn_if_slow_on_cpu` counts)."""
    encoded = fitted._encode_query(X_query)
    n_features = len(fitted.members_[0].feature_order)
    if fitted.local_support_ is None:
        passes = [(min(len(fitted.X_support_), fitted.max_support_rows_), len(encoded), n_features)]
    else:
        passes = [(len(support), len(queries), n_features)
                  for queries, support in fitted.local_support_.assign(encoded)]
    return cpu_seconds(fitted.config_, passes, torch.get_num_threads())


def measure(n_rows: int, n_query: int, max_support_rows: int) -> dict[str, float]:
    X, y, X_query, y_query = table(n_rows, n_query)
    row: dict[str, float] = {}
    row["hgb"], hgb = timed(HistGradientBoostingClassifier(random_state=0).fit, X, y)
    seconds, proba = timed(hgb.predict_proba, X_query)
    row["hgb"] += seconds
    row["hgb_acc"] = float(np.mean(proba.argmax(1) == y_query))
    for selection in ("random", "nearest"):
        for cache in ("predict", "fit"):
            fit_s, fitted = timed(mitra(selection, cache, max_support_rows).fit, X, y)
            predict_s, proba = timed(fitted.predict_proba, X_query)
            if cache == "fit":  # cheap to repeat: the best of 3 calls (one call is noisy on shared cores)
                predict_s = min([predict_s] + [timed(fitted.predict_proba, X_query)[0] for _ in range(2)])
            row[f"{selection}_{cache}_fit"], row[f"{selection}_{cache}_predict"] = fit_s, predict_s
            row[f"{selection}_{cache}_acc"] = float(np.mean(proba.argmax(1) == y_query))
            if cache == "predict":
                row[f"{selection}_estimate"] = estimate(fitted, X_query)
            if fitted.local_support_ is not None:
                row["neighbourhoods"] = len(fitted.local_support_.centres)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-support-rows", type=int, default=2048)
    parser.add_argument("--query", type=int, default=1000, help="predict rows")
    parser.add_argument("--query-50k", type=int, default=500, help="predict rows of the 50k-row case (shorter run)")
    parser.add_argument("--rows", type=int, nargs="*", default=list(ROWS))
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the shipped-checkpoint fallback warning, once per table
    mitra("random", "predict", args.max_support_rows).fit(*table(200, 0)[:2])  # imports and model loading, untimed
    print(f"CPU: {cpu_name()}; torch threads {torch.get_num_threads()}; max_support_rows {args.max_support_rows}; "
          f"n_estimators 1")
    print("fit + predict seconds (ratio to HistGradientBoosting); predict ms per query row with support_cache="
          "'predict' / 'fit'; accuracy; the CPU rule's estimate of the nearest predict call")
    header = (f"{'rows':>6} {'query':>5} {'HGB s':>7} {'random s':>14} {'nearest s':>14} {'nbhd':>4} "
              f"{'random ms/row':>15} {'nearest ms/row':>15} {'acc HGB/rnd/nst':>16} {'nearest est/meas':>17}")
    print(header)
    for n_rows in args.rows:
        n_query = args.query_50k if n_rows >= 50_000 else args.query
        r = measure(n_rows, n_query, args.max_support_rows)
        total = {s: r[f"{s}_predict_fit"] + r[f"{s}_predict_predict"] for s in ("random", "nearest")}
        per_row = {s: f"{1e3 * r[f'{s}_predict_predict'] / n_query:.1f}/{1e3 * r[f'{s}_fit_predict'] / n_query:.1f}"
                   for s in ("random", "nearest")}
        print(f"{n_rows:>6} {n_query:>5} {r['hgb']:>7.2f} "
              f"{total['random']:>7.1f} ({total['random'] / r['hgb']:>4.0f}x) "
              f"{total['nearest']:>7.1f} ({total['nearest'] / r['hgb']:>4.0f}x) {int(r.get('neighbourhoods', 0)):>4} "
              f"{per_row['random']:>15} {per_row['nearest']:>15} "
              f"{r['hgb_acc']:.3f}/{r['random_predict_acc']:.3f}/{r['nearest_predict_acc']:.3f} "
              f"{r['nearest_estimate']:>7.1f}/{r['nearest_predict_predict']:.1f} s", flush=True)


if __name__ == "__main__":
    main()

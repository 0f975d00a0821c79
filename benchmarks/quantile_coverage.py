"""Are the predicted quantiles of a binned regression head calibrated? Coverage on data with known noise.

For synthetic regression problems whose noise is known (Gaussian, homoscedastic at three levels,
and heteroscedastic), fits ``MitraRegressor`` with each checkpoint given and prints, on held-out
rows: the empirical coverage of the predicted 10-90 % interval (nominal 0.80), its mean width
relative to the true 10-90 % interval, the coverage of the 25-75 % interval (nominal 0.50), the
mean pinball loss over the levels 0.1, 0.5, 0.9 relative to that of the true quantiles (1.0 is
perfect), and R2. Only checkpoints with a binned head have quantiles.

    python benchmarks/quantile_coverage.py --checkpoints <binned checkpoint> [...] [--train 500]

With ``--real-suite`` (e.g. ``benchmark-select``) it scores the regression tables of that real-data
suite instead, on the evaluation's splits (``pretraining.evaluate``), where the noise is unknown:
coverage of the 10-90 % and 25-75 % intervals and the mean pinball loss of the 10/50/90 %
quantiles (targets divided by the training split's standard deviation), for each checkpoint at
each ``--temperatures`` value (``softmax_temperature``; below 1 narrows the distribution) and for
three ``HistGradientBoostingRegressor(loss="quantile")`` models (the baseline, same splits, same
process). Means over the tables (each averaged over its splits first).

    python benchmarks/quantile_coverage.py --checkpoints <binned checkpoint> --real-suite benchmark-select \\
        --temperatures 1.0 0.8 0.6
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import r2_score

from mitra_sklearn import MitraRegressor

LEVELS = np.array([0.1, 0.25, 0.5, 0.75, 0.9])


def _problems() -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]]:
    """name -> (mean function, noise std function) of 4 features (two of them irrelevant)."""
    def signal(X: np.ndarray) -> np.ndarray:
        return 2 * X[:, 0] + np.sin(3 * X[:, 1])

    return {
        "homoscedastic, noise 0.1": (signal, lambda X: np.full(len(X), 0.1)),
        "homoscedastic, noise 0.5": (signal, lambda X: np.full(len(X), 0.5)),
        "homoscedastic, noise 1.0": (signal, lambda X: np.full(len(X), 1.0)),
        "heteroscedastic, 0.05-1.05": (signal, lambda X: 0.05 + np.abs(X[:, 0])),
    }


def pinball(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> float:
    """Mean pinball loss of quantile predictions (rows, levels)."""
    diff = y[:, None] - quantiles
    return float(np.mean(np.maximum(levels * diff, (levels - 1) * diff)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--n-estimators", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--real-suite", help="score this real-data suite's regression tables instead")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0],
                        help="softmax_temperature values (with --real-suite)")
    parser.add_argument("--n-repeats", type=int, default=3, help="splits per table (with --real-suite)")
    args = parser.parse_args()
    if args.real_suite:
        real_data(args)
        return
    print(f"{args.train} training rows, {args.test} test rows, {args.n_estimators} members, {args.seeds} seeds "
          "(means over seeds)")
    print(f"{'checkpoint':<40} {'problem':<28} {'cov80':>6} {'width':>6} {'cov50':>6} {'pinball':>8} {'R2':>6}")
    for checkpoint in args.checkpoints:
        for name, (mean, std) in _problems().items():
            rows = []
            for seed in range(args.seeds):
                rng = np.random.RandomState(seed)
                X = rng.uniform(-1, 1, (args.train + args.test, 4))
                y = mean(X) + std(X) * rng.randn(len(X))
                X_train, y_train, X_test, y_test = X[: args.train], y[: args.train], X[args.train :], y[args.train :]
                model = MitraRegressor(checkpoint, n_estimators=args.n_estimators, random_state=seed)
                predicted = model.fit(X_train, y_train).predict_quantiles(X_test, LEVELS)
                true = mean(X_test)[:, None] + std(X_test)[:, None] * norm.ppf(LEVELS)[None, :]
                rows.append((
                    np.mean((y_test >= predicted[:, 0]) & (y_test <= predicted[:, 4])),
                    np.mean(predicted[:, 4] - predicted[:, 0]) / np.mean(true[:, 4] - true[:, 0]),
                    np.mean((y_test >= predicted[:, 1]) & (y_test <= predicted[:, 3])),
                    pinball(y_test, predicted[:, [0, 2, 4]], LEVELS[[0, 2, 4]])
                    / pinball(y_test, true[:, [0, 2, 4]], LEVELS[[0, 2, 4]]),
                    r2_score(y_test, model.predict(X_test)),
                ))
            cov80, width, cov50, loss, r2 = np.mean(rows, axis=0)
            print(f"{checkpoint[-40:]:<40} {name:<28} {cov80:6.3f} {width:6.2f} {cov50:6.3f} {loss:8.3f} {r2:6.3f}")


def interval_scores(y: np.ndarray, quantiles: np.ndarray, scale: float) -> tuple[float, float, float]:
    """Coverage of the outer and inner intervals and the 10/50/90 % pinball loss of ``LEVELS`` quantiles."""
    return (float(np.mean((y >= quantiles[:, 0]) & (y <= quantiles[:, 4]))),
            float(np.mean((y >= quantiles[:, 1]) & (y <= quantiles[:, 3]))),
            pinball(y / scale, quantiles[:, [0, 2, 4]] / scale, LEVELS[[0, 2, 4]]))


def real_data(args: argparse.Namespace) -> None:
    """Interval coverage and pinball loss on a real-data suite, against quantile gradient boosting."""
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # pretraining/ from a source checkout
    from mitra_sklearn.config import Task
    from pretraining.evaluate.splits import cached_splits
    from pretraining.realdata import load_suite

    datasets = load_suite(args.real_suite, task=Task.REGRESSION)
    rows = []
    for dataset in datasets:
        for split in cached_splits(dataset, n_repeats=args.n_repeats, test_size=0.2, max_train_rows=2000,
                                   max_test_rows=2000, seed=0):
            X_train, X_test = dataset.X.iloc[split.train], dataset.X.iloc[split.test]
            y_train, y_test = dataset.y[split.train], dataset.y[split.test]
            scale = float(np.std(y_train)) or 1.0
            hgb = np.column_stack([
                HistGradientBoostingRegressor(loss="quantile", quantile=level, categorical_features="from_dtype",
                                              random_state=0).fit(X_train, y_train).predict(X_test)
                for level in LEVELS
            ])
            hgb.sort(axis=1)  # separately fitted quantiles can cross
            rows.append((dataset.name, "HGB quantile", *interval_scores(y_test, hgb, scale)))
            for checkpoint in args.checkpoints:
                for temperature in args.temperatures:
                    model = MitraRegressor(checkpoint, n_estimators=args.n_estimators, random_state=0,
                                           softmax_temperature=temperature).fit(X_train, y_train)
                    rows.append((dataset.name, f"{checkpoint[-30:]} T={temperature:g}",
                                 *interval_scores(y_test, model.predict_quantiles(X_test, LEVELS), scale)))
    table = pd.DataFrame(rows, columns=["dataset", "method", "cov80", "cov50", "pinball"])
    per_dataset = table.groupby(["method", "dataset"], sort=False).mean()
    print(f"{args.real_suite}: {len(datasets)} regression tables x {args.n_repeats} splits, "
          f"{args.n_estimators} members (pinball loss of targets / training std; nominal coverage 0.80 / 0.50)")
    print(per_dataset.groupby("method", sort=False).mean().round(4).to_string())
    hgb_loss = per_dataset.loc["HGB quantile", "pinball"]
    for method in per_dataset.index.get_level_values("method").unique().drop("HGB quantile"):
        better = int((per_dataset.loc[method, "pinball"] < hgb_loss).sum())
        print(f"{method}: pinball loss below HGB quantile's on {better} of {len(hgb_loss)} tables")


if __name__ == "__main__":
    main()

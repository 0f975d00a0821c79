"""Are the predicted quantiles of a binned regression head calibrated? Coverage on data with known noise.

For synthetic regression problems whose noise is known (Gaussian, homoscedastic at three levels,
and heteroscedastic), fits ``MitraRegressor`` with each checkpoint given and prints, on held-out
rows: the empirical coverage of the predicted 10-90 % interval (nominal 0.80), its mean width
relative to the true 10-90 % interval, the coverage of the 25-75 % interval (nominal 0.50), the
mean pinball loss over the levels 0.1, 0.5, 0.9 relative to that of the true quantiles (1.0 is
perfect), and R2. Only checkpoints with a binned head have quantiles.

    python benchmarks/quantile_coverage.py --checkpoints <binned checkpoint> [...] [--train 500]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from scipy.stats import norm
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()

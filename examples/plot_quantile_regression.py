"""
Predictive intervals from a binned regression head
===================================================

A regressor whose head is *binned* predicts, for every row, probabilities over bins of the
target: a whole distribution, not one value. Mitra v2 (``autogluon/mitra-regressor-2``, what
``checkpoint=None`` uses where it can be had) has 1,000 bins;
``mitra-small-regressor-binned``, shipped with the package, has 256 and works offline.
``predict_quantiles`` turns the distribution into intervals in the units of ``y``,
``predict(X, output_type="median")`` into another point prediction, and
``predict_distribution`` hands over the histogram itself.

We fit a noisy 1-D curve whose noise grows to the right, draw the 10-90 % and 25-75 %
intervals, and measure how often they cover held-out targets (0.80 and 0.50 if calibrated).
"""

import matplotlib.pyplot as plt
import numpy as np

from mitra_sklearn import MitraRegressor


def truth(x):
    return np.sin(2 * x) + 0.3 * x


def noise_std(x):
    return 0.1 + 0.2 * (x + 3) / 6  # from 0.1 on the left to 0.3 on the right


def sample(n, rng):
    x = rng.uniform(-3, 3, n)
    return x[:, None], truth(x) + rng.normal(0, noise_std(x))


rng = np.random.default_rng(0)
X_train, y_train = sample(300, rng)
X_test, y_test = sample(1000, rng)
grid = np.linspace(-3, 3, 200)[:, None]

model = MitraRegressor(checkpoint="mitra-small-regressor-binned", n_estimators=4, random_state=0)
model.fit(X_train, y_train)

# %%
# One call for the grid and the test rows (the support rows are read once).
levels = [0.1, 0.25, 0.5, 0.75, 0.9]
quantiles = model.predict_quantiles(np.vstack([grid, X_test]), quantiles=levels)
on_grid, on_test = quantiles[: len(grid)], quantiles[len(grid):]
inside_80 = (y_test >= on_test[:, 0]) & (y_test <= on_test[:, 4])
inside_50 = (y_test >= on_test[:, 1]) & (y_test <= on_test[:, 3])
print(f"coverage of the 10-90 % interval: {inside_80.mean():.2f} (nominal 0.80)")
print(f"coverage of the 25-75 % interval: {inside_50.mean():.2f} (nominal 0.50)")
true_width = 2 * 1.2816 * noise_std(X_test[:, 0])
print(f"mean width of the 10-90 % interval: {np.mean(on_test[:, 4] - on_test[:, 0]):.3f} "
      f"(the true one: {true_width.mean():.3f})")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
left.scatter(X_train[:, 0], y_train, s=6, color="0.5", label="training rows")
left.plot(grid[:, 0], truth(grid[:, 0]), "k--", lw=1, label="noise-free curve")
left.fill_between(grid[:, 0], on_grid[:, 0], on_grid[:, 4], color="tab:blue", alpha=0.2, label="10-90 %")
left.fill_between(grid[:, 0], on_grid[:, 1], on_grid[:, 3], color="tab:blue", alpha=0.35, label="25-75 %")
left.plot(grid[:, 0], on_grid[:, 2], color="tab:blue", lw=1.5, label="median")
for z in (-1.2816, 1.2816):
    left.plot(grid[:, 0], truth(grid[:, 0]) + z * noise_std(grid[:, 0]), color="tab:red", lw=0.8,
              label="true 10 % / 90 %" if z < 0 else None)
left.set_xlabel("x")
left.set_ylabel("y")
left.set_title(f"test coverage: 10-90 % {inside_80.mean():.2f}, 25-75 % {inside_50.mean():.2f}", fontsize=10)
left.legend(fontsize=8, loc="upper left")

# %%
# The distribution of one row: ``bin_edges`` (in units of y) and the probability of each bin.
# Each ensemble member has its own bins (its own target scaling); the ensemble's distribution is
# their mixture, on the union of their edges.
distribution = model.predict_distribution(np.array([[2.0]]))
edges = distribution.bin_edges[0]
density = distribution.probabilities[0] / np.diff(edges)
right.stairs(density, edges, fill=True, alpha=0.5, color="tab:blue", label="predicted density")
ys = np.linspace(edges[0], edges[-1], 400)
sd = noise_std(2.0)
right.plot(ys, np.exp(-0.5 * ((ys - truth(2.0)) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), color="tab:red",
           lw=1, label="true density")
right.set_xlim(truth(2.0) - 6 * sd, truth(2.0) + 6 * sd)
right.set_xlabel("y at x = 2")
right.set_title(f"mean {distribution.mean()[0]:.2f}, median {distribution.median()[0]:.2f}, "
                f"mode {distribution.mode()[0]:.2f}", fontsize=10)
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The shipped binned regressor is small and trained on synthetic tables only; how well its
# intervals are calibrated across noise levels is measured in the benchmarks
# (``benchmarks/quantile_coverage.py``). Checkpoints with a scalar head (Mitra v1, the default
# shipped ``mitra-small-regressor``) predict one value per row and raise a ``ValueError`` here;
# for their ensemble spread see :ref:`sphx_glr_auto_examples_plot_regression_uncertainty.py`.

"""
Predictive intervals from a binned regression head
===================================================

A regressor whose head is *binned* predicts, for every row, probabilities over bins of the
target: a whole distribution, not one value. Mitra v2 (``autogluon/mitra-regressor-2``, what
``checkpoint=None`` uses where it can be had) has a 1,000-bin head trained for this.
``predict_quantiles`` turns the distribution into intervals in the units of ``y``,
``predict(X, output_type="median")`` into another point prediction, and
``predict_distribution`` hands over the histogram itself.

The checkpoints shipped with the package have scalar heads. To show the same calls offline,
this example makes a binned head from the shipped regressor (``pretraining/heads.py``, from the
repository's checkout): the same network, whose head now spreads each prediction as a Gaussian
of fixed width over 256 bins. That width was not learned, so we calibrate it on held-out rows
with ``softmax_temperature`` (logits divided by ``T``: the Gaussian's variance times ``T``),
then measure how often the intervals cover test targets (0.80 and 0.50 if calibrated).
"""

import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mitra_sklearn import MitraRegressor

# `pretraining` lives in the checkout, not in the installed package: run this from the
# repository root (the documentation build puts the root on the path itself).
sys.path.insert(0, str(Path.cwd()))

from pretraining.heads import save_binned_from_scalar  # noqa: E402


def truth(x):
    return np.sin(2 * x) + 0.3 * x


def noise_std(x):
    return 0.1 + 0.2 * (x + 3) / 6  # from 0.1 on the left to 0.3 on the right


def sample(n, rng):
    x = rng.uniform(-3, 3, n)
    return x[:, None], truth(x) + rng.normal(0, noise_std(x))


rng = np.random.default_rng(0)
X_train, y_train = sample(300, rng)
X_valid, y_valid = sample(300, rng)
X_test, y_test = sample(1000, rng)
grid = np.linspace(-3, 3, 200)[:, None]
binned = save_binned_from_scalar("mitra-small-regressor", tempfile.mkdtemp(), n_bins=256, sigma=0.15)

# %%
# Calibrate the temperature: the one whose 10-90 % interval covers 80 % of the validation rows
# (a log-likelihood or pinball criterion works as well). The support set stays the training
# rows; only the temperature is chosen on the validation rows.
temperatures = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
coverages = []
for temperature in temperatures:
    model = MitraRegressor(checkpoint=str(binned), softmax_temperature=temperature, random_state=0)
    q = model.fit(X_train, y_train).predict_quantiles(X_valid, quantiles=[0.1, 0.9])
    coverages.append(np.mean((y_valid >= q[:, 0]) & (y_valid <= q[:, 1])))
best = temperatures[int(np.argmin(np.abs(np.array(coverages) - 0.8)))]
print("validation coverage of the 10-90 % interval by temperature:",
      ", ".join(f"{t:g}: {c:.2f}" for t, c in zip(temperatures, coverages)))
print(f"chosen temperature: {best:g}")

model = MitraRegressor(checkpoint=str(binned), softmax_temperature=best, random_state=0).fit(X_train, y_train)

# %%
# One call for the grid and the test rows (the support rows are read once).
levels = [0.1, 0.25, 0.5, 0.75, 0.9]
quantiles = model.predict_quantiles(np.vstack([grid, X_test]), quantiles=levels)
on_grid, on_test = quantiles[: len(grid)], quantiles[len(grid):]
inside_80 = (y_test >= on_test[:, 0]) & (y_test <= on_test[:, 4])
inside_50 = (y_test >= on_test[:, 1]) & (y_test <= on_test[:, 3])
print(f"test coverage of the 10-90 % interval: {inside_80.mean():.2f} (nominal 0.80)")
print(f"test coverage of the 25-75 % interval: {inside_50.mean():.2f} (nominal 0.50)")
left_rows, right_rows = X_test[:, 0] < 0, X_test[:, 0] >= 0
print(f"10-90 % coverage where the noise is low (x < 0): {inside_80[left_rows].mean():.2f}, "
      f"where it is high (x >= 0): {inside_80[right_rows].mean():.2f}")

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
left.set_title(f"temperature {best:g}; test coverage 10-90 %: {inside_80.mean():.2f}, "
               f"25-75 %: {inside_50.mean():.2f}", fontsize=10)
left.legend(fontsize=8, loc="upper left")

# %%
# The distribution of one row: ``bin_edges`` (in units of y) and the probability of each bin.
# Each ensemble member has its own bins (its own target scaling); the ensemble's distribution is
# their mixture, on the union of their edges.
distribution = model.predict_distribution(np.array([[2.0]]))
edges = distribution.bin_edges[0]
widths = np.diff(edges)
density = np.divide(distribution.probabilities[0], widths, out=np.zeros_like(widths), where=widths > 0)
right.stairs(density, edges, fill=True, alpha=0.5, color="tab:blue", label="predicted density")
sd = noise_std(2.0)
ys = np.linspace(truth(2.0) - 5 * sd, truth(2.0) + 5 * sd, 400)
right.plot(ys, np.exp(-0.5 * ((ys - truth(2.0)) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), color="tab:red",
           lw=1, label="true density")
right.set_xlim(ys[0], ys[-1])
right.set_xlabel("y at x = 2")
right.set_title(f"mean {distribution.mean()[0]:.2f}, median {distribution.median()[0]:.2f}, "
                f"mode {distribution.mode()[0]:.2f}", fontsize=10)
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# A head made this way spreads every prediction by the same width (in units of the target's
# range), so it cannot follow noise that changes along x: compare the coverage on the low-noise
# and the high-noise halves above. A head trained for distributions (Mitra v2's, or the binned
# small regressor this project is training) learns the width per row from the support set. How
# calibrated each is on data with known noise is measured by ``benchmarks/quantile_coverage.py``.
# Checkpoints with a scalar head predict one value per row and raise a ``ValueError`` in
# ``predict_quantiles``; for their ensemble spread see
# :ref:`sphx_glr_auto_examples_plot_regression_uncertainty.py`.

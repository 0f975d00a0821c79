"""
Decision surfaces next to tree ensembles
========================================

Mitra, RandomForest and HistGradientBoosting on three small 2-D problems, as in
scikit-learn's classifier comparison. Each panel shows the predicted probability of the second
class on a grid, the training points (solid) and the test points (faded), and the test
accuracy in the corner.

Mitra has no training loop: ``fit`` stores the 100-odd training points, and ``predict_proba``
reads them together with every grid point. Its surfaces are smooth where the trees' are
axis-aligned steps.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_circles, make_classification, make_moons
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier

linear_X, linear_y = make_classification(n_features=2, n_redundant=0, n_informative=2, n_clusters_per_class=1,
                                         class_sep=1.2, random_state=1)
datasets = {
    "moons": make_moons(noise=0.3, random_state=0),
    "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
    "linearly separable": (linear_X + np.random.default_rng(2).uniform(0, 2, linear_X.shape), linear_y),
}
classifiers = {
    # The shipped checkpoint, named explicitly: offline, and the same on every machine.
    "Mitra": MitraClassifier(checkpoint="mitra-small-classifier", random_state=0),
    "RandomForest": RandomForestClassifier(n_estimators=200, random_state=0),
    "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
}

fig, axes = plt.subplots(len(datasets), len(classifiers), figsize=(9, 8.4), sharex="row", sharey="row")
for row, (data_name, (X, y)) in enumerate(datasets.items()):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    low, high = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
    grid_x, grid_y = np.meshgrid(np.linspace(low[0], high[0], 50), np.linspace(low[1], high[1], 50))
    grid = np.c_[grid_x.ravel(), grid_y.ravel()]
    for col, (name, classifier) in enumerate(classifiers.items()):
        classifier.fit(X_train, y_train)
        surface = classifier.predict_proba(grid)[:, 1].reshape(grid_x.shape)
        ax = axes[row, col]
        ax.contourf(grid_x, grid_y, surface, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.8)
        ax.scatter(*X_train.T, c=y_train, cmap="RdBu", edgecolors="k", s=18)
        ax.scatter(*X_test.T, c=y_test, cmap="RdBu", edgecolors="k", s=18, alpha=0.5)
        ax.text(0.97, 0.04, f"{classifier.score(X_test, y_test):.2f}", transform=ax.transAxes,
                ha="right", fontsize=12, bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
        ax.set_xticks(())
        ax.set_yticks(())
        if row == 0:
            ax.set_title(name)
        if col == 0:
            ax.set_ylabel(data_name)
fig.tight_layout()
plt.show()

"""
What the synthetic priors draw
==============================

Mitra is pretrained on synthetic tables only, drawn from a mixture of *priors*: random
structural causal models (SCM), trees and forests fitted on random labels (DT, ET, GB, RF), a
directly sampled random forest (DSRF), and, in the v2 mixture, rule-like tables and additive
models. Every prior has the same interface,
``prior.sample(seed, n_rows, n_features, task, n_classes)``, which returns a
`~pretraining.priors.Table`.

Here each prior of the registry draws one classification table with two features and three
requested classes (a prior may return fewer: tree priors keep the classes their fitted model
predicts), and we scatter its rows coloured by label. To show the shape of the label function,
categorical columns are switched off (the priors do draw them, see ``docs/priors.md``); the
rules prior still makes its numeric columns discrete, as it does in pretraining.

Run from the repository root: ``python examples/pretraining/plot_priors.py``.
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt

# `pretraining` lives in the checkout, not in the installed package: run this from the
# repository root (the documentation build puts the root on the path itself).
sys.path.insert(0, str(Path.cwd()))

from pretraining.config import PriorConfig
from pretraining.priors import PRIORS

config = PriorConfig().replace(categorical_share=(0.0, 0.0), scm_categorical_prob=0.0,
                               rules_categorical_share=(0.0, 0.0), additive_categorical_share=(0.0, 0.0))
print(f"priors in the registry: {', '.join(PRIORS)}")
print(f"default mixture (v1): {config.mixture_spec}")

# %%
# One table per prior, each from its own seed, so a run draws the same tables every time.
tables = {name: prior_class(config).sample(seed, n_rows=600, n_features=2, task="classification", n_classes=3)
          for seed, (name, prior_class) in enumerate(PRIORS.items())}
for name, table in tables.items():
    print(f"{name:9s} {table.n_rows} rows x {table.n_features} features, {table.n_classes} classes")

# %%
# The grid of panels: every point is a row, its colour the class. Axis-aligned boxes (the tree
# priors and DSRF), smooth boundaries (additive) and cells of a few discrete values (rules) are
# what the model learns to read in context. In an SCM table the features and the label are nodes
# of one random network, so the label can depend on nodes that are not columns: with two
# features, its panel can look like noise.
fig, axes = plt.subplots(2, 4, figsize=(12, 6.2))
for ax, (name, table) in zip(axes.ravel(), tables.items()):
    ax.scatter(table.x[:, 0], table.x[:, 1], c=table.y, cmap="viridis", s=6, vmin=0, vmax=max(table.n_classes - 1, 1))
    ax.set_title(f"{name} ({PRIORS[name].__name__}), {table.n_classes} classes", fontsize=9)
    ax.set_xticks(())
    ax.set_yticks(())
fig.suptitle("One synthetic classification table per prior (feature 1 vs feature 2, colour = class)")
fig.tight_layout()
plt.show()

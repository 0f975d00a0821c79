"""
Stacking Mitra with tree ensembles
==================================

AutoML systems often combine very different models by *stacking*: each base model predicts
every training row out of fold (a 5-fold cross-validation: a row's prediction comes from the
model fitted on the four other folds), and a simple final model learns how to weigh those
predictions. Because the final model only ever sees out-of-fold predictions, it learns how much
to trust each base model on rows that model has not been fitted on.

Here :class:`~sklearn.ensemble.StackingClassifier` stacks
:class:`~mitra_sklearn.MitraClassifier`, a RandomForest and HistGradientBoosting with a
logistic regression on top, on the breast-cancer table, and compares the stack with each of its
members on the same held-out test split.
"""

import time

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

members = [
    ("Mitra", MitraClassifier(checkpoint="mitra-small-classifier", random_state=0)),
    ("RandomForest", RandomForestClassifier(n_estimators=200, random_state=0)),
    ("HistGradientBoosting", HistGradientBoostingClassifier(random_state=0)),
]

# %%
# The stack. ``cv=5`` makes the out-of-fold predictions the final model is trained on; after
# that, every member is refitted on the whole training split (``final_estimator_`` then combines
# their test predictions). ``stack_method="predict_proba"`` passes the probability of the positive
# class of each member (one column each, for a binary target).
stack = StackingClassifier(members, final_estimator=LogisticRegression(), cv=5, stack_method="predict_proba")
models = {name: model for name, model in members} | {"Stack (LogisticRegression)": stack}

rows = []
for name, model in models.items():
    start = time.perf_counter()
    proba = model.fit(X_train, y_train).predict_proba(X_test)[:, 1]
    rows.append({"model": name, "ROC-AUC": roc_auc_score(y_test, proba),
                 "accuracy": accuracy_score(y_test, proba > 0.5), "log-loss": log_loss(y_test, proba),
                 "seconds": time.perf_counter() - start})
results = pd.DataFrame(rows).set_index("model")
print(f"{len(X_train)} training rows, {len(X_test)} test rows")
print(results.to_string(float_format="{:.4f}".format))

# %%
# The weights the final logistic regression gave each member's out-of-fold probability (on the
# logit scale; larger = trusted more):
weights = pd.Series(stack.final_estimator_.coef_[0], index=[name for name, _ in members], name="weight")
print(weights.to_string(float_format="{:.3f}".format))

# %%
# Test scores side by side. One misclassified test row moves the accuracy by ``1 / n_test``,
# so differences of a row or two are within noise. Stacking pays off when the members make
# different errors; on a small, easy table like this one it need not beat the best member.
print(f"one test row = {1 / len(y_test):.4f} accuracy")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
colors = ["tab:blue", "tab:green", "tab:orange", "tab:purple"]
for ax, metric in zip(axes, ["ROC-AUC", "accuracy", "log-loss"]):
    values = results[metric]
    ax.barh(results.index, values, color=colors)
    for i, value in enumerate(values):
        ax.text(value, i, f"{value:.3f} ", ha="right", va="center", color="white", fontsize=8)
    ax.set_xlim((0, values.max() * 1.05) if metric == "log-loss" else (values.min() - 0.03, 1))
    ax.set_title(metric + (" (lower is better)" if metric == "log-loss" else ""), fontsize=10)
    ax.invert_yaxis()
for ax in axes[1:]:
    ax.set_yticks([])
fig.tight_layout()
plt.show()

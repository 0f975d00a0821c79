"""
Row embeddings: what the model's head reads
===========================================

:meth:`~mitra_sklearn.MitraClassifier.get_embeddings` returns, for every ensemble member and
every row, the vector that the member's output head maps (linearly) to its logits: the row as
the model sees it after reading the training rows: features for another model, for clustering
or for nearest-neighbour search. Each member reads its own view (feature order, class order,
support rows), so the members' vectors are not aligned with each other: keep them side by side
(or take one member) rather than averaging them.

Here the training half of :func:`~sklearn.datasets.load_breast_cancer` is the support set; the
other half's rows are embedded (their labels are never shown to the model), projected to two
dimensions with PCA beside the standardised raw features, and a logistic regression is
cross-validated on each, within those rows.

A training row can be embedded too, but it then sits in the support set that it is read
against, with its own label: its embedding knows its target, so do not fit a model on
training-row embeddings and score it on other rows' embeddings as if they were alike.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mitra_sklearn import MitraClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=0.5, stratify=y, random_state=0)

clf = MitraClassifier(checkpoint="mitra-small-classifier", random_state=0).fit(X_train, y_train)
embeddings = clf.get_embeddings(X_rest)
print(f"embeddings: {embeddings.shape} (members, rows, width)")
features = embeddings.transpose(1, 0, 2).reshape(len(X_rest), -1)  # the members side by side

# %%
# Two dimensions of each: the embeddings lay the rows out along their classes.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, data) in zip(axes, [("raw features (standardised)", StandardScaler().fit_transform(X_rest)),
                                   ("Mitra embeddings", features)]):
    points = PCA(n_components=2, random_state=0).fit_transform(data)
    for label, colour in [(0, "tab:red"), (1, "tab:blue")]:
        ax.scatter(*points[y_rest == label].T, s=10, c=colour, alpha=0.6, label=f"class {label}")
    ax.set(title=f"PCA of the {name}", xlabel="component 1", ylabel="component 2")
axes[0].legend()
fig.tight_layout()

# %%
# A logistic regression on each, 5-fold cross-validated within the embedded rows, beside the
# classifier's own predictions for those rows. On this nearly linear table the raw features
# serve a linear model at least as well: embeddings are a view of the rows, not a free gain.
print(f"MitraClassifier itself: ROC-AUC {roc_auc_score(y_rest, clf.predict_proba(X_rest)[:, 1]):.3f}")
for name, data in [("raw features", X_rest), ("embeddings", features)]:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_score(model, data, y_rest, cv=5, scoring="roc_auc")
    print(f"logistic regression on the {name}: ROC-AUC {scores.mean():.3f} +- {scores.std():.3f}")

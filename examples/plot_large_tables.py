"""
Training sets larger than one support set
=========================================

One forward pass of Mitra reads at most ``max_support_rows`` training rows (8,192 by default).
With more training rows, ``support_selection`` says which ones a prediction reads:

* ``"random"`` (the default): every ensemble member reads its own random subsample.
* ``"nearest"``: retrieval, as in TabDPT and LoCalPFN. At fit time the training rows are
  clustered (about two clusters per ``max_support_rows`` rows, k-means on standardised
  features) and every cluster centre gets its ``max_support_rows`` nearest training rows; a
  query row reads the support set of its nearest centre.

To keep this example fast, the training set has 3,000 rows and we shrink ``max_support_rows``
to a few hundred rows instead of growing the table, on a synthetic problem whose classes are
made of many small clusters (where which rows are read matters). The reference reads all
3,000 training rows in every pass.
"""

import time

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier

X, y = make_classification(n_samples=4000, n_features=8, n_informative=6, n_redundant=0, n_classes=2,
                           n_clusters_per_class=8, class_sep=1.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=3000, stratify=y, random_state=0)


def run(max_support_rows, selection):
    model = MitraClassifier(checkpoint="mitra-small-classifier", n_estimators=2, max_support_rows=max_support_rows,
                            support_selection=selection, random_state=0)
    start = time.perf_counter()
    accuracy = model.fit(X_train, y_train).score(X_test, y_test)
    centres = 0 if model.local_support_ is None else len(model.local_support_.centres)
    return {"max_support_rows": max_support_rows, "selection": selection, "accuracy": accuracy,
            "seconds": time.perf_counter() - start, "centres": centres}


# %%
# Every combination, timed from ``fit`` to the end of ``score`` (1,000 test rows, 2 members each),
# after one untimed run that loads the checkpoint:
run(64, "random")
rows = [run(size, selection) for size in (64, 256, 1024) for selection in ("random", "nearest")]
reference = run(len(X_train), "random")
results = pd.DataFrame(rows)
print(pd.DataFrame(rows + [reference]).to_string(index=False, float_format="{:.3f}".format))

# %%
# Accuracy and time against the support size. ``nearest`` reads a support set picked for the
# query rows around a centre (and one forward pass per centre in use), ``random`` the same
# number of rows picked without looking at the query.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
for selection, marker in [("random", "o"), ("nearest", "s")]:
    part = results[results["selection"] == selection]
    left.plot(part["max_support_rows"], part["accuracy"], marker=marker, label=f'support_selection="{selection}"')
    right.plot(part["max_support_rows"], part["seconds"], marker=marker, label=selection)
left.axhline(reference["accuracy"], color="k", ls="--", lw=1)
left.plot(len(X_train), reference["accuracy"], "k*", ms=10, label=f"all {len(X_train)} rows in every pass")
right.plot(len(X_train), reference["seconds"], "k*", ms=10)
for ax, label in [(left, "test accuracy"), (right, "fit + predict seconds")]:
    ax.set_xscale("log")
    ax.set_xticks([64, 256, 1024, len(X_train)], ["64", "256", "1024", f"{len(X_train)}\n(all)"])
    ax.minorticks_off()
    ax.set_xlabel("max_support_rows")
    ax.set_ylabel(label)
left.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Which selection wins depends on how local the structure of the target is (here: many small
# clusters per class) and on the checkpoint: a model pretrained on support sets of a few hundred
# rows need not gain from reading thousands. On real tables larger than 8,192 rows, validate both
# selections with the default ``max_support_rows``. The times depend on the machine; on a GPU
# they grow much less with the support size.

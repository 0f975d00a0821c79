"""
Probability calibration: a reliability diagram
==============================================

A classifier is *calibrated* when, of the rows it gives a probability of about 0.8, about 80 %
are positive. The reliability diagram (:class:`~sklearn.calibration.CalibrationDisplay`) bins
the test rows by predicted probability and plots, per bin, the share of positives against the
mean prediction: a calibrated model follows the diagonal. The Brier score and the log-loss
measure calibration and sharpness together (lower is better).

We compare :class:`~mitra_sklearn.MitraClassifier` (as it is, and recalibrated) with a
RandomForest and a logistic regression on a synthetic binary problem from :func:`~sklearn.datasets.make_classification`
(some label noise, a few informative features among redundant and useless ones), with 1,000
training rows and 1,500 test rows, so that most bins hold enough rows to be read.
"""

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV, CalibrationDisplay
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mitra_sklearn import MitraClassifier

X, y = make_classification(n_samples=2500, n_features=12, n_informative=4, n_redundant=4, flip_y=0.05,
                           class_sep=0.8, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=1000, stratify=y, random_state=0)
print(f"{len(X_train)} training rows, {len(X_test)} test rows, {X.shape[1]} features")

models = {
    "Mitra": MitraClassifier(checkpoint="mitra-small-classifier", random_state=0),
    "RandomForest": RandomForestClassifier(n_estimators=300, random_state=0),
    "LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression()),
    # Mitra recalibrated: a sigmoid fitted on its out-of-fold training predictions (3 folds),
    # then applied to Mitra refitted on all training rows (ensemble=False).
    "Mitra + sigmoid": CalibratedClassifierCV(MitraClassifier(checkpoint="mitra-small-classifier", random_state=0),
                                              method="sigmoid", cv=3, ensemble=False),
}

# %%
# Fit every model, predict the probability of the positive class on the test rows, and score it.
probabilities, rows = {}, []
for name, model in models.items():
    probabilities[name] = model.fit(X_train, y_train).predict_proba(X_test)[:, 1]
    p = probabilities[name]
    rows.append({"model": name, "Brier": brier_score_loss(y_test, p), "log-loss": log_loss(y_test, p),
                 "ROC-AUC": roc_auc_score(y_test, p)})
print(pd.DataFrame(rows).to_string(index=False, float_format="{:.4f}".format))

# %%
# The reliability diagram (10 bins of equal width) and, below it, how many test rows fall into each
# range of predicted probability: a model that is often very sure puts most rows at the ends.
fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 7.5), height_ratios=[3, 1.3], sharex=True)
for name, p in probabilities.items():
    display = CalibrationDisplay.from_predictions(y_test, p, n_bins=10, name=name, ax=top)
    bottom.hist(p, bins=10, range=(0, 1), histtype="step", lw=1.8, color=display.line_.get_color(), label=name)
top.set_title("Reliability diagram (test rows)")
top.set_xlabel("")
bottom.set_xlabel("predicted probability of the positive class")
bottom.set_ylabel("test rows")
bottom.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# How to read it: where a curve is below the diagonal the model predicts the positive class more
# often than it happens; where it is above, less often. A curve steeper than the diagonal
# belongs to an under-confident model (probabilities too close to 0.5), a flatter one to an
# over-confident model. Recalibration (:class:`~sklearn.calibration.CalibratedClassifierCV`,
# sigmoid or isotonic) can only fix the first kind of error, not the ranking: it leaves the
# ROC-AUC of the model (almost) as it was, as the table shows.

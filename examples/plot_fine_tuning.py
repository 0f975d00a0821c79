"""
Fine-tuning on the training set
===============================

By default ``fit`` only stores the training set: the pretrained weights read it in context.
With ``fine_tune=True``, ``fit`` also runs ``fine_tune_steps`` optimizer steps on tasks drawn
from the training set (AdamW at ``fine_tune_lr`` after 10 warm-up steps). A validation split of
20 % of the training rows is scored before tuning and after every step, and the weights of the
best step are kept, the pretrained ones when no step improved on them. Those validation losses
are the fitted attribute ``fine_tune_losses_``.

We fine-tune the shipped classifier on the wine table (178 rows, 3 classes) with the default
learning rate and a ten times larger one, for 40 steps each to keep the example fast, and
compare test scores with the model as pretrained.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
print(f"{len(X_train)} training rows, {len(X_test)} test rows; one test row = {1 / len(y_test):.3f} accuracy")

settings = {
    "pretrained (fine_tune=False)": {},
    "fine-tuned, lr 1e-5 (default)": {"fine_tune": True, "fine_tune_steps": 40},
    "fine-tuned, lr 1e-4": {"fine_tune": True, "fine_tune_steps": 40, "fine_tune_lr": 1e-4},
}

# %%
# Fit, score on the test split, and keep the validation losses of each run. ``n_jobs=1``: the
# steps on a table this small are too short to gain from a second torch thread (measured: the
# same time), and on a busy machine a second thread makes them many times slower.
rows, losses = [], {}
for name, params in settings.items():
    start = time.perf_counter()
    model = MitraClassifier(checkpoint="mitra-small-classifier", n_jobs=1, random_state=0, **params)
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    rows.append({"model": name, "accuracy": accuracy_score(y_test, proba.argmax(axis=1)),
                 "log-loss": log_loss(y_test, proba), "seconds": time.perf_counter() - start,
                 "kept step": "-" if model.fine_tune_losses_ is None else int(np.argmin(model.fine_tune_losses_))})
    if model.fine_tune_losses_ is not None:
        losses[name] = model.fine_tune_losses_
print(pd.DataFrame(rows).to_string(index=False, float_format="{:.4f}".format))

# %%
# The validation loss against the step (step 0: the pretrained weights); the marker is the step
# whose weights ``fit`` kept. The validation split has a few dozen rows, so the curve is a noisy
# guide, which is why the test split above is scored separately.
fig, ax = plt.subplots(figsize=(6.4, 4))
for name, curve in losses.items():
    (line,) = ax.plot(np.arange(len(curve)), curve, label=name)
    best = int(np.argmin(curve))
    ax.plot(best, curve[best], "o", color=line.get_color())
ax.axhline(next(iter(losses.values()))[0], color="0.5", ls=":", lw=1, label="pretrained weights")
ax.set_xlabel("fine-tuning step")
ax.set_ylabel("validation cross-entropy (fine_tune_losses_)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Fine-tuning costs a forward and a backward pass per step, far more than prediction; whether it
# pays off is a question for a validation set of your own, table by table. A few dozen steps on a
# small table say little about larger budgets or larger checkpoints.

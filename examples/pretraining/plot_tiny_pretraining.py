"""
A tiny pretraining run and its learning curve
=============================================

`pretraining.train.train` pretrains a Mitra model on tables drawn from the synthetic priors and
writes a run folder: checkpoints in the format the estimators read, and ``log.jsonl``, one JSON
record per log line (training loss, learning rate, tables per second) and per evaluation (loss
and accuracy on a fixed set of held-out prior tables).

We start from the ``tiny`` preset of ``pretraining.config.PRESETS`` (a 2-layer, 32-wide model on
tables of at most 48 support rows), run it for 200 steps of 8 tables into a temporary folder,
and plot the learning curve. Then the final checkpoint is used like any other, on a real table.

Be clear about what this is: a model of some fifty thousand parameters, trained for seconds on a
couple of thousand small tables (the numbers are printed below). It shows the machinery, not a
useful model: it has never seen a table as wide or as long as a real one, and the shipped
checkpoints were trained for hours (``docs/pretraining.md``).

Run from the repository root: ``python examples/pretraining/plot_tiny_pretraining.py``.
"""

import json
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

# `pretraining` lives in the checkout, not in the installed package: run this from the
# repository root (the documentation build puts the root on the path itself).
sys.path.insert(0, str(Path.cwd()))

from mitra_sklearn import MitraClassifier
from pretraining.config import preset
from pretraining.train import count_parameters, train

config = preset("tiny", steps=200, warmup_steps=10, log_every=5, eval_every=20, save_every=1000)
print(f"model: {count_parameters(config):,} parameters, dim {config.dim}, {config.n_layers} layers; "
      f"{config.steps} steps of {config.batch_size} tables = {config.steps * config.batch_size:,} tables")
print(f"tables: {config.priors.n_support} support rows, {config.priors.n_features} features, "
      f"prior mixture {config.priors.mixture_spec}")

# %%
# Train into a temporary folder (removed at the end of the example). ``device="cpu"`` keeps the
# run the same on every machine; ``progress=False`` leaves the output readable. One torch thread:
# the operations of a 32-wide model are too small to gain from more (and a busy machine makes
# extra threads much slower).
run_folder = tempfile.TemporaryDirectory()
threads = torch.get_num_threads()
torch.set_num_threads(1)
try:
    result = train(config, run_folder.name, device="cpu", progress=False)
finally:
    torch.set_num_threads(threads)
log = pd.DataFrame([json.loads(line) for line in result.log_path.read_text().splitlines()])
print(f"stopped at step {result.step}; run folder: {sorted(p.name for p in Path(run_folder.name).iterdir())}")
print(f"final checkpoint: {result.checkpoint.relative_to(run_folder.name)}")

# %%
# The final checkpoint is a folder like any other: the estimators read it directly. Here on the
# breast-cancer table (30 features, 398 training rows: far beyond the tiny run's tables), next to
# the shipped checkpoint and the accuracy of always predicting the majority class.
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
for name, checkpoint in [("tiny run", str(result.checkpoint)), ("mitra-small-classifier", "mitra-small-classifier")]:
    model = MitraClassifier(checkpoint=checkpoint, random_state=0).fit(X_train, y_train)
    print(f"test accuracy, {name:24s} {model.score(X_test, y_test):.3f}")
print(f"test accuracy, {'majority class':24s} {max(y_test.mean(), 1 - y_test.mean()):.3f}")
run_folder.cleanup()

# %%
# The learning curve against the tables seen. The training loss is that of each logged step's 8
# tables (noisy); the held-out prior loss and accuracy come from the same 16 prior tables at
# every evaluation, step 0 being the random initial weights.
training = log.dropna(subset=["loss"])
held_out = log.dropna(subset=["eval_prior_loss"])
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
left.plot(training["step"] * config.batch_size, training["loss"], lw=1, alpha=0.7, label="training batches")
left.plot(held_out["step"] * config.batch_size, held_out["eval_prior_loss"], "o-", label="held-out prior tables")
left.set_ylabel("cross-entropy")
right.plot(held_out["step"] * config.batch_size, held_out["eval_prior_accuracy"], "o-", color="tab:orange")
right.set_ylabel("held-out prior accuracy")
for ax in (left, right):
    ax.set_xlabel("tables seen")
left.legend()
fig.tight_layout()
plt.show()

"""
The generalizability matrix of priors
=====================================

The Mitra paper compares priors with a matrix G: ``G[i, j]`` is the score of a model pretrained
on prior ``i`` on fresh tables of prior ``j``, and a vector P holds each model's score on real
data. A low diagonal entry marks a *diverse* prior (hard even for its own model); a column no
other model scores well on marks a *distinctive* one. ``pretraining.generalizability`` computes
both: `~pretraining.generalizability.generalizability_matrix` returns a
`~pretraining.generalizability.GeneralizabilityResult`.

The paper's protocol trains a full model per prior and scores 100 tables of 1,000 rows per
prior. To run in seconds, this example trains three *tiny* models (the ``tiny`` preset, 150
steps, on one prior each: SCM, decision trees, DSRF) and adds the shipped checkpoint, trained
on a mixture of priors, as a fourth row; each cell is the mean ROC-AUC over 20 small tables. The tiny
models are barely trained, so this shows how G is made and read, not the paper's result.

Run from the repository root: ``python examples/pretraining/plot_generalizability.py``.
"""

import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

# `pretraining` lives in the checkout, not in the installed package: run this from the
# repository root (the documentation build puts the root on the path itself).
sys.path.insert(0, str(Path.cwd()))

from pretraining.config import preset
from pretraining.generalizability import (
    distinctiveness,
    generalizability_matrix,
    markdown,
)
from pretraining.train import train

PRIORS = ["scm", "dt", "dsrf"]
# Every model and table here is tiny: one torch thread is faster than more (whose
# synchronisation costs more than these small operations gain, a lot more on a busy machine).
threads = torch.get_num_threads()
torch.set_num_threads(1)

# %%
# One tiny model per prior, each a run folder in a temporary directory (removed at the end).
runs = tempfile.TemporaryDirectory()
checkpoints = {}
for prior in PRIORS:
    config = preset("tiny", steps=150, warmup_steps=10, log_every=50, eval_every=1000, save_every=1000)
    config = config.replace(**{"priors.mixture": ((prior, 1.0),)})
    checkpoints[prior] = train(config, Path(runs.name, prior), device="cpu", progress=False).checkpoint
checkpoints["shipped (mixture)"] = "mitra-small-classifier"

# %%
# G on 20 tables per prior of the tiny preset's sizes (48 support and 32 query rows, 2-6
# features), and P on the small scikit-learn datasets (``real_data="sklearn"``). Every model
# reads exactly the same tables.
result = generalizability_matrix(checkpoints, PRIORS, n_tables=20, n_support=48, n_query=32, n_features=(2, 6),
                                 real_data="sklearn", seed=0)
torch.set_num_threads(threads)
runs.cleanup()
print(markdown(result, "auc"))
print(f"{result.settings['seconds']:.1f} s for {len(result.per_table)} fitted tables and P")
for prior, entry in distinctiveness(result, "auc").items():
    print(f"{prior:5s} diagonal {entry['diagonal']:.3f}, best other model {entry['best_other']:.3f}")

# %%
# The heatmap: rows are models (the prior they were trained on), columns the evaluation priors,
# then P. An AUC of 0.5 is chance (it and anything below it get the darkest colour).
auc = np.column_stack([result.G["auc"], result.P["auc"]])
fig, ax = plt.subplots(figsize=(6.4, 3.8))
image = ax.imshow(auc, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
for (row, col), value in np.ndenumerate(auc):
    ax.text(col, row, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.75 else "black")
ax.axvline(len(PRIORS) - 0.5, color="white", lw=3)
ax.set_xticks(range(auc.shape[1]), [*PRIORS, "P (sklearn)"])
ax.set_yticks(range(len(result.models)), result.models)
ax.set_xlabel("evaluation prior")
ax.set_ylabel("model (training prior)")
fig.colorbar(image, ax=ax, label="ROC-AUC")
ax.set_title("Generalizability matrix G and real-data vector P", fontsize=10)
fig.tight_layout()
plt.show()

# %%
# At the paper's scale, train one model per prior with the same preset and budget
# (``python -m pretraining train --preset <preset> --prior scm --out runs/scm``, ...), then run
# ``python -m pretraining generalizability --checkpoint scm=runs/scm/latest ...``, which also
# writes the matrices as CSV and JSON and draws these heatmaps (``docs/pretraining.md``).

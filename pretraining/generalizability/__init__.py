"""The Mitra paper's generalizability matrix G and real-data performance vector P (§3.2, App. C.1).

``G[i, j]`` is the metric of the model pretrained on prior ``i`` when it is evaluated on fresh
synthetic tables drawn from prior ``j``; ``P[i]`` is the same model's metric on real data. The
paper reads them as follows: a high ``P[i]`` means prior ``i`` is useful on real data; a low
diagonal ``G[i, i]`` means prior ``i`` is *diverse* (hard even for a model trained on it); a
prior ``j`` is *distinctive* for a mixture when no model of the mixture predicts its tables
well, i.e. ``max_i G[i, j]`` over the mixture's models is low.

Protocol (paper App. C.1): 100 tables per prior, 1,000 rows each, split 800 support / 200
query; AUC (one-vs-one macro average over class pairs for multiclass), accuracy and
cross-entropy. Every model is evaluated on exactly the same tables: table ``t`` of prior ``j``
is generated from ``numpy.random.default_rng([seed, crc32(j), t])``. Each table is read by the
scikit-learn estimator (``MitraClassifier(checkpoint, n_estimators=1)`` by default), i.e. the
same preprocessing as at inference time; categorical columns stay integer codes, as in the
pretraining stream.

Intended workflow
-----------------
1. Train one model per prior with the same preset and budget (the trainer's job, e.g.)::

       python -m pretraining train --preset <preset> --prior scm  --out runs/scm
       python -m pretraining train --preset <preset> --prior et   --out runs/et
       ... (gb, dt, rf, dsrf, and optionally the mixture)

2. Run this tool on the resulting checkpoint folders::

       python -m pretraining.generalizability \\
           --checkpoint scm=runs/scm/final --checkpoint et=runs/et/final ... \\
           --priors scm,et,gb,dt,rf,dsrf --out docs/results/generalizability

   It writes ``G_<metric>.csv`` (models x priors, plus a ``P`` column), ``generalizability.json``,
   ``per_table.csv`` and ``G_<metric>.png`` heatmaps, and prints the AUC matrix as markdown.
   Use ``--n-tables 10 --n-support 200 --n-query 50`` for a quick look.

Modules, one job each (as `pretraining.evaluate`):

============================================  ==============================================
`pretraining.generalizability.tables`         the evaluation tables (`make_eval_tables`)
`pretraining.generalizability.matrix`         G and P (`generalizability_matrix`), reading G
                                              (`distinctiveness`)
`pretraining.generalizability.reports`        CSV, JSON, heatmaps, markdown
`pretraining.generalizability.cli`            ``python -m pretraining generalizability``
============================================  ==============================================
"""

from .cli import build_parser, main, run
from .matrix import (
    G_METRICS,
    GeneralizabilityResult,
    distinctiveness,
    generalizability_matrix,
)
from .reports import markdown, plot_generalizability, save_generalizability
from .tables import EvalTable, make_eval_tables

__all__ = [
    "G_METRICS",
    "EvalTable",
    "GeneralizabilityResult",
    "make_eval_tables",
    "generalizability_matrix",
    "save_generalizability",
    "plot_generalizability",
    "distinctiveness",
    "markdown",
    "main",
    "run",
    "build_parser",
]


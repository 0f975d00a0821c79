"""Regenerating Mitra weights: synthetic priors, pretraining, and evaluation on real data.

A folder of the repository, used from a checkout (``python -m pretraining --help``); the wheel
installs only ``mitra_sklearn``, which this package imports the model from (never the other
way round).

* `pretraining.config` -- `PriorConfig` (every generator choice the paper leaves open) and
  `TrainConfig` (a run: model shape, ``priors``, optimiser, schedule), the named `PRESETS`.
* `pretraining.priors` -- SCM, DT/ET/GB/RF fitted on random labels, DSRF, the rule-based and
  additive priors, and their `Mixture`.
* `pretraining.data` -- `SyntheticTableStream`, deterministic batches of support/query tables.
* `pretraining.train` -- the training loop (one process, or torchrun DDP).
* `pretraining.optim` -- the optimiser (AdamW, or Muon + AdamW) and the weight average (EMA).
* `pretraining.runfolder` -- a run's folder, checkpoints and training state, packing, campaigns.
* `pretraining.evaluate` -- real-data evaluation against baselines; `pretraining.realdata` --
  the offline datasets; `pretraining.generalizability` -- the paper's G matrix and P vector.
* `pretraining.cli` -- ``python -m pretraining train | resume | presets | pack | unpack |
  evaluate | generalizability``.
"""

from .config import PriorConfig, TrainConfig

__all__ = ["PriorConfig", "TrainConfig"]

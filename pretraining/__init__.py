"""Regenerating MITRA's pretraining data: synthetic priors, their configuration and a torch stream.

* `pretraining.config.PriorConfig` -- every generator choice the paper leaves open.
* `pretraining.priors` -- SCM, DT/ET/GB/RF fitted on random labels, DSRF, and their `Mixture`.
* `pretraining.data.SyntheticTableStream` -- padded batches of support/query tables for training.
"""

from .config import PriorConfig

__all__ = ["PriorConfig"]

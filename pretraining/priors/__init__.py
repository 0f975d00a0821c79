"""Synthetic-table priors for Mitra pretraining.

Every prior implements `Prior.sample(rng_or_seed, n_rows, n_features, task, n_classes=None) -> Table`.

========  ============  ==========================================================  ==============
name          prior                                                       Mitra weight
============  ==========================================================  ==============
``scm``       TabPFN-v1-style random MLP / structural causal model        0.5
``et``        ExtraTrees fitted on random labels                          0.1
``gb``        GradientBoosting fitted on random labels                    0.1
``dt``        DecisionTree fitted on random labels                        0.1
``rf``        RandomForest fitted on random labels                        0.1
``dsrf``      directly sampled random forest                              0.1
``rules``     lookup table / decision list / scorecard, few discrete cols 0 (v2: 0.15)
``additive``  linear + smooth univariate terms + pairwise interactions    0 (v2: 0.15)
============  ==========================================================  ==============

`V2_MIXTURE_SPEC` and `V2_PRIOR_SETTINGS` hold the suggested v2-campaign mixture and feature
options (``docs/priors.md``); the default mixture (``PriorConfig.mixture``) is unchanged.
"""

from __future__ import annotations

from ..config import PRIOR_NAMES, V2_MIXTURE_SPEC, V2_PRIOR_SETTINGS, PriorConfig
from .additive import AdditivePrior
from .base import Prior, PriorGenerationError, Table, as_rng, sample_n_classes
from .dsrf import DSRFPrior
from .features import FeatureSpec
from .mixture import Mixture
from .rules import RulesPrior
from .scm import SCMPrior
from .trees import DecisionTreePrior, ExtraTreesPrior, GradientBoostingPrior, RandomForestPrior

#: Registry: prior name -> class (each takes an optional `PriorConfig`).
PRIORS: dict[str, type[Prior]] = {
    "scm": SCMPrior,
    "dt": DecisionTreePrior,
    "et": ExtraTreesPrior,
    "gb": GradientBoostingPrior,
    "rf": RandomForestPrior,
    "dsrf": DSRFPrior,
    "rules": RulesPrior,
    "additive": AdditivePrior,
}

if tuple(PRIORS) != PRIOR_NAMES:  # the config validates mixtures against PRIOR_NAMES
    raise ImportError(f"pretraining.config.PRIOR_NAMES {PRIOR_NAMES} differs from the registry {tuple(PRIORS)}")

# The v2 campaign's mixture and feature options are defined with its preset (re-exported here).


def get_prior(name: str, config: PriorConfig | None = None) -> Prior:
    """Instantiate a prior by registry name, or a mixture from a ``"scm=0.5,et=0.5"`` spec."""
    key = name.strip().lower()
    if key in PRIORS:
        return PRIORS[key](config)
    return Mixture.from_string(name, config)

__all__ = [
    "PRIORS",
    "get_prior",
    "Prior",
    "PriorGenerationError",
    "Table",
    "FeatureSpec",
    "SCMPrior",
    "DecisionTreePrior",
    "ExtraTreesPrior",
    "GradientBoostingPrior",
    "RandomForestPrior",
    "DSRFPrior",
    "RulesPrior",
    "AdditivePrior",
    "Mixture",
    "V2_MIXTURE_SPEC",
    "V2_PRIOR_SETTINGS",
    "as_rng",
    "sample_n_classes",
]

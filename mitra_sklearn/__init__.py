"""mitra-sklearn: scikit-learn estimators for MITRA, the tabular foundation model.

Mitra: Mixed Synthetic Priors for Enhancing Tabular Foundation Models (arXiv 2510.21204).
"""

from ._version import __version__
from .classifier import MitraClassifier
from .regressor import MitraRegressor

__all__ = ["MitraClassifier", "MitraRegressor", "__version__"]

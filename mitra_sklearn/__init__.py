"""mitra-sklearn: scikit-learn estimators for MITRA, the tabular foundation model.

Mitra: Mixed Synthetic Priors for Enhancing Tabular Foundation Models (arXiv 2510.21204).

``MitraClassifier`` / ``MitraRegressor`` are the estimators. ``load_model`` / ``save_model``
(the same as ``MitraModel.from_pretrained`` / ``model.save_pretrained``) read and write
checkpoints in the official format; ``mitra_sklearn.checkpoint`` says where checkpoints are
found.
"""

from ._version import __version__
from .checkpoint import load_model, save_model
from .classifier import MitraClassifier
from .config import MitraConfig, Task
from .distribution import RegressionDistribution
from .exceptions import (
    CheckpointIntegrityError,
    CheckpointNotFoundError,
    CheckpointWriteError,
    MitraError,
    MitraOutOfMemoryError,
)
from .model import MitraModel
from .regressor import MitraRegressor

__all__ = [
    "MitraClassifier",
    "MitraRegressor",
    "RegressionDistribution",
    "MitraModel",
    "MitraConfig",
    "Task",
    "load_model",
    "save_model",
    "MitraError",
    "CheckpointNotFoundError",
    "CheckpointIntegrityError",
    "CheckpointWriteError",
    "MitraOutOfMemoryError",
    "__version__",
]

"""Deprecated alias of `mitra_sklearn.checkpoint` (the module's name before 0.2).

``mitra_sklearn.hub.load_model`` / ``save_model`` are ``mitra_sklearn.load_model`` /
``save_model``; every other name is the checkpoint module's. Import from ``mitra_sklearn`` or
``mitra_sklearn.checkpoint`` instead.
"""

from __future__ import annotations

import warnings

from .checkpoint import *  # noqa: F401,F403 - the old public names
from .checkpoint import __all__ as _checkpoint_names

__all__ = list(_checkpoint_names)

warnings.warn(
    "mitra_sklearn.hub is deprecated; use mitra_sklearn.load_model / save_model and mitra_sklearn.checkpoint.",
    DeprecationWarning,
    stacklevel=2,
)
